import Glibc
import USVCContract
import USVCSys

/// A job's log: appended by its runner only, rotated by size to `NAME.log.1`,
/// `.2`, … (the highest the newest: `LogRotation`). Being the only writer is
/// what makes rotation lose nothing: the rename and reopen happen between two
/// writes.
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
      do {
        let opened = try FileDescriptor.open(path, O_WRONLY | O_APPEND | O_CREAT)
        var info = stat()
        fstat(opened.rawValue, &info)
        fd = opened
        size = Int(info.st_size)
      } catch {
        return fail(error)
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

  private mutating func fail(_ error: Errno) -> Errno? {
    retryAt = monotonicClock() + 1
    let isNew = failure == nil
    failure = error
    return isNew ? error : nil
  }

  /// `NAME.log` → `NAME.log.(newest + 1)`, and the copy `keep` back removed:
  /// a close, a rename and an unlink, whatever `keep` is. The next write opens
  /// a new `NAME.log`.
  private mutating func rotate() {
    fd?.close()
    fd = nil
    let next: Int
    if let newest = newestCopy {
      next = newest + 1
      if keep > 0 && next - keep >= 1 { unlink(LogRotation.path(path, copy: next - keep)) }
    } else {
      // Once per runner (and when keep shrinks): carry on from the copies there.
      let copies = LogRotation.copies(of: path)
      next = (copies.last ?? 0) + 1
      for number in copies where number <= next - keep { unlink(LogRotation.path(path, copy: number)) }
    }
    newestCopy = next - 1
    guard keep > 0 else {
      unlink(path)
      return
    }
    // The target does not exist: copy numbers only grow.
    if rename(path, LogRotation.path(path, copy: next)) == 0 { newestCopy = next }
  }
}
