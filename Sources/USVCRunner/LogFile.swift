import Glibc
import USVCContract
import USVCSys

/// A job's log: appended by its runner only, rotated by size to `NAME.log.1`,
/// `.2`, … (the highest the newest: `LogRotation`). Being the only writer is
/// what makes rotation lose nothing: the rename and reopen happen between two
/// writes. Beside it, its index (`LogIndex`: when each chunk was written), a
/// record at most once a second, renamed and removed with the log.
struct LogFile {
  let path: String
  /// Clamped to `LogRotation.maxBytesRange`: a hand-edited spec cannot make the
  /// runner rotate after every write.
  var maxBytes: Int { didSet { maxBytes = Self.clamped(maxBytes, LogRotation.maxBytesRange) } }
  /// Clamped to `LogRotation.keepRange`. When it shrinks, the next rotation
  /// looks at the copies again and removes those now too old.
  var keep: Int {
    didSet {
      keep = Self.clamped(keep, LogRotation.keepRange)
      if keep < oldValue { newestCopy = nil }
    }
  }
  /// The number of the newest copy; nil until the directory has been read (at
  /// the first rotation, not at start: most runners never rotate).
  private var newestCopy: Int?
  private var fd: FileDescriptor?
  private var size = 0
  /// `NAME.log.idx`, opened with the log; nil when it could not be (the log
  /// goes on, its times unknown until the log is opened again).
  private var indexFD: FileDescriptor?
  /// The second of the index's last record (-1: none since the log was opened).
  private var indexedSecond = -1
  /// Why the last write failed; nil while logging works.
  private(set) var failure: Errno?
  private var retryAt: Double = 0

  init(path: String, maxBytes: Int, keep: Int) {
    self.path = path
    self.maxBytes = Self.clamped(maxBytes, LogRotation.maxBytesRange)
    self.keep = Self.clamped(keep, LogRotation.keepRange)
  }

  private static func clamped(_ value: Int, _ range: ClosedRange<Int>) -> Int {
    min(max(value, range.lowerBound), range.upperBound)
  }

  /// Appends `bytes`. Returns the error when logging just stopped working, so the
  /// caller can say so once; later failures are silent until it works again.
  mutating func append(_ bytes: UnsafeRawBufferPointer) -> Errno? {
    if fd == nil {
      // 1. After a failure, try again at most once a second, not on every write.
      guard failure == nil || monotonicClock() >= retryAt else { return nil }
      // 2. The index before the log, so whoever finds the new log finds its index.
      indexFD = try? FileDescriptor.open(LogIndex.path(of: path), O_RDWR | O_APPEND | O_CREAT)
      do {
        let opened = try FileDescriptor.open(path, O_WRONLY | O_APPEND | O_CREAT)
        var info = stat()
        fstat(opened.rawValue, &info)
        fd = opened
        size = Int(info.st_size)
      } catch {
        indexFD?.close()
        indexFD = nil
        return fail(error)
      }
      if let indexFD { Self.mend(indexFD, logSize: size) }
      indexedSecond = -1
    }
    // 3. Dated before it is written: a reader that sees the bytes finds their time.
    let second = time(nil)
    if second != indexedSecond, let index = indexFD {
      indexedSecond = second
      var record = (Int64(0), Int64(0))
      withUnsafeMutableBytes(of: &record) {
        LogIndex.encode(LogIndex.Record(time: Int64(second), offset: Int64(size)), into: $0.baseAddress!)
      }
      // A failed record costs the times, never the log.
      if (try? withUnsafeBytes(of: &record, { bytes throws(Errno) in try index.writeAll(bytes) })) == nil {
        index.close()
        indexFD = nil
      }
    }
    do {
      try fd!.writeAll(bytes)
      size += bytes.count
      failure = nil
    } catch {
      fd?.close()
      fd = nil
      return fail(error)
    }
    if size >= maxBytes { rotate() }
    return nil
  }

  /// Makes the index fit the log it was opened with: a record cut short (a full
  /// disk) is dropped, and an index whose records point past the end of the
  /// log (the log was removed or truncated by hand) is emptied.
  private static func mend(_ index: FileDescriptor, logSize: Int) {
    var info = stat()
    guard fstat(index.rawValue, &info) == 0 else { return }
    let whole = Int(info.st_size) / LogIndex.recordSize
    if let last = whole > 0 ? LogIndex.record(whole - 1, of: index) : nil, last.offset > logSize {
      ftruncate(index.rawValue, 0)
    } else if Int(info.st_size) % LogIndex.recordSize != 0 {
      ftruncate(index.rawValue, off_t(whole * LogIndex.recordSize))
    }
  }

  private mutating func fail(_ error: Errno) -> Errno? {
    retryAt = monotonicClock() + 1
    let isNew = failure == nil
    failure = error
    return isNew ? error : nil
  }

  /// `NAME.log` → `NAME.log.(newest + 1)`, and the copy `keep` back removed:
  /// a close, a rename and an unlink, whatever `keep` is (each twice: the log
  /// and its index). The next write opens a new `NAME.log`.
  private mutating func rotate() {
    fd?.close()
    fd = nil
    indexFD?.close()
    indexFD = nil
    let next: Int
    if let newest = newestCopy {
      next = newest + 1
      if keep > 0 && next - keep >= 1 { Self.remove(LogRotation.path(path, copy: next - keep)) }
    } else {
      // Once per runner (and when keep shrinks): carry on from the copies there.
      let copies = LogRotation.copies(of: path)
      next = (copies.last ?? 0) + 1
      for number in copies where number <= next - keep { Self.remove(LogRotation.path(path, copy: number)) }
    }
    newestCopy = next - 1
    guard keep > 0 else {
      Self.remove(path)
      return
    }
    // The target does not exist: copy numbers only grow. 1. The log, then its
    // index: a reader that opened the log and then finds the log still there
    // knows the index it opened is that log's (`LogReader`).
    let copy = LogRotation.path(path, copy: next)
    if rename(path, copy) == 0 {
      newestCopy = next
      rename(LogIndex.path(of: path), LogIndex.path(of: copy))
    }
  }

  /// Removes a log file and its index.
  private static func remove(_ log: String) {
    unlink(log)
    unlink(LogIndex.path(of: log))
  }
}
