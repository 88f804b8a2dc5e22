import Glibc
import USVCSys

/// When each part of a job's log was written, kept beside it so the log itself
/// stays verbatim (SPEC: The board, `logs -t` and `--since`).
///
/// Format: the index of the log file `F` is `F.idx` (`NAME.log.idx`, and for
/// the copies `NAME.log.1.idx`, …: it is renamed and removed with its log).
/// It is a run of 16-byte records and nothing else, each two little-endian
/// 64-bit integers:
///
///     bytes 0-7   time: seconds since the epoch (UTC) when a chunk was written
///     bytes 8-15  offset: where in the log that chunk begins
///
/// The runner appends a record before the chunk it dates, and only when the
/// second has changed since its last record (at most one record a second,
/// whatever the job prints); so every byte from a record's offset up to the
/// next record's was written in that record's second. Bytes before the first
/// record (a log begun by a runner without index) have no known time. Offsets
/// only grow within a file; times grow unless the clock was set back.
public enum LogIndex {
  public static let recordSize = 16

  /// The index of the log file at `log`.
  public static func path(of log: String) -> String { log + ".idx" }

  public struct Record: Equatable, Sendable {
    public var time: Int64
    public var offset: Int64
    public init(time: Int64, offset: Int64) {
      self.time = time
      self.offset = offset
    }
  }

  /// Writes `record` into the 16 bytes at `bytes` (little-endian).
  public static func encode(_ record: Record, into bytes: UnsafeMutableRawPointer) {
    bytes.storeBytes(of: record.time.littleEndian, toByteOffset: 0, as: Int64.self)
    bytes.storeBytes(of: record.offset.littleEndian, toByteOffset: 8, as: Int64.self)
  }

  /// The record in the 16 bytes at `bytes`.
  public static func decode(_ bytes: UnsafeRawPointer) -> Record {
    Record(
      time: Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: Int64.self)),
      offset: Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: Int64.self)))
  }

  /// The record at `number` of the index open as `fd`, or nil if it has none there.
  public static func record(_ number: Int, of fd: FileDescriptor) -> Record? {
    var bytes = (Int64(0), Int64(0))
    let got = withUnsafeMutableBytes(of: &bytes) {
      pread(fd.rawValue, $0.baseAddress, recordSize, off_t(number * recordSize))
    }
    guard got == recordSize else { return nil }
    return withUnsafeBytes(of: &bytes) { decode($0.baseAddress!) }
  }

  /// How many whole records the index open as `fd` holds (a record cut short
  /// by a full disk does not count).
  public static func count(of fd: FileDescriptor) -> Int {
    var info = stat()
    guard fstat(fd.rawValue, &info) == 0 else { return 0 }
    return Int(info.st_size) / recordSize
  }
}
