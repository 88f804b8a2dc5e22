import Glibc
import USVCSys

/// A job's log: appended by its runner only, rotated by size to `NAME.log.1`,
/// `.2`, … Being the only writer is what makes rotation lose nothing: the
/// rename and reopen happen between two writes.
struct LogFile {
  let path: String
  var maxBytes: Int
  var keep: Int
  private var fd: FileDescriptor?
  private var size = 0
  /// Why the last write failed; nil while logging works.
  private(set) var failure: Errno?
  private var retryAt: Double = 0

  init(path: String, maxBytes: Int, keep: Int) {
    self.path = path
    self.maxBytes = maxBytes
    self.keep = keep
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
    if size >= maxBytes && maxBytes > 0 { rotate() }
    return nil
  }

  private mutating func fail(_ error: Errno) -> Errno? {
    retryAt = monotonicClock() + 1
    let isNew = failure == nil
    failure = error
    return isNew ? error : nil
  }

  /// `NAME.log.(k)` → `.(k+1)` from the oldest kept, `NAME.log` → `.1`; the next
  /// write opens a new `NAME.log`.
  private mutating func rotate() {
    fd?.close()
    fd = nil
    guard keep > 0 else {
      unlink(path)
      return
    }
    // rename replaces its target atomically, so the oldest kept goes without an unlink.
    var index = keep - 1
    while index >= 1 {
      rename("\(path).\(index)", "\(path).\(index + 1)")
      index -= 1
    }
    rename(path, "\(path).1")
  }
}
