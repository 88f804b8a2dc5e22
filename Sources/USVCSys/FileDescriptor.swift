import CShims
import Glibc

/// An open file descriptor. Not closed automatically: callers use `closeAfter`.
public struct FileDescriptor: Sendable, Hashable {
  public let rawValue: Int32
  public init(rawValue: Int32) { self.rawValue = rawValue }

  public static let standardInput = FileDescriptor(rawValue: 0)
  public static let standardOutput = FileDescriptor(rawValue: 1)
  public static let standardError = FileDescriptor(rawValue: 2)

  /// Opens `path` with close-on-exec set. C: `open`.
  public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o600) throws(Errno)
    -> FileDescriptor
  {
    let fd = try retryingEINTR { Glibc.open(path, flags | O_CLOEXEC, mode) }
    return FileDescriptor(rawValue: fd)
  }

  /// C: `close`. Not retried: after EINTR the descriptor is already gone.
  public func close() { _ = Glibc.close(rawValue) }

  /// Runs `body`, then closes the descriptor whatever happened.
  public func closeAfter<R, E: Error>(_ body: (FileDescriptor) throws(E) -> R) throws(E) -> R {
    defer { close() }
    return try body(self)
  }

  /// One `read`; 0 at end of file. C: `read`.
  public func read(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
    try retryingEINTR { Glibc.read(rawValue, buffer.baseAddress, buffer.count) }
  }

  /// Writes every byte, retrying short writes and EINTR. C: `write`.
  public func writeAll(_ bytes: UnsafeRawBufferPointer) throws(Errno) {
    var offset = 0
    while offset < bytes.count {
      let base = bytes.baseAddress! + offset
      let count = bytes.count - offset
      offset += try retryingEINTR { Glibc.write(rawValue, base, count) }
    }
  }

  /// Writes `text` as the bytes it was decoded from (lossless text).
  public func writeAll(_ text: String) throws(Errno) {
    try writeAll(text.losslessBytes)
  }

  public func writeAll(_ bytes: [UInt8]) throws(Errno) {
    // withUnsafeBytes only rethrows untyped errors: carry the Errno out as a value.
    let result: Result<Void, Errno> = bytes.withUnsafeBytes { raw in
      Result { () throws(Errno) in try writeAll(raw) }
    }
    try result.get()
  }

  /// Everything up to end of file.
  /// With `shortReadEnds`, a read that returns less than asked is taken as the
  /// end, which saves a read per file: true of regular files and of /proc's
  /// files, which hand over all they have up to the size asked; not of pipes.
  public func readAll(shortReadEnds: Bool = false) throws(Errno) -> [UInt8] {
    var result: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
      let count = try chunk.withUnsafeMutableBytes { raw in
        Result { () throws(Errno) in try read(into: raw) }
      }.get()
      result.append(contentsOf: chunk[0..<count])
      if count == 0 || (shortReadEnds && count < chunk.count) { return result }
    }
  }

  /// Takes an exclusive `flock`, waiting for it unless `wait` is false. False when busy.
  /// The lock dies with the process, which is what makes it a liveness test.
  public func lockExclusive(wait: Bool) throws(Errno) -> Bool {
    do {
      _ = try retryingEINTR { flock(rawValue, LOCK_EX | (wait ? 0 : LOCK_NB)) }
      return true
    } catch where error == .wouldBlock {
      return false
    }
  }

  /// Takes a POSIX write lock on the whole file without waiting: false when
  /// another process holds it. Unlike `flock`, others can ask who holds it
  /// (`lockHolder`). C: `fcntl(F_SETLK)`.
  public func lockForLife() -> Bool { usvc_lock_file(rawValue) == 0 }

  /// The pid holding a POSIX write lock on this file, or nil when none does.
  /// Asks without taking it. C: `fcntl(F_GETLK)`.
  public func lockHolder() -> pid_t? {
    let holder = usvc_lock_holder(rawValue)
    return holder > 0 ? pid_t(holder) : nil
  }

  public func setNonBlocking() {
    let flags = fcntl(rawValue, F_GETFL)
    _ = fcntl(rawValue, F_SETFL, flags | O_NONBLOCK)
  }
}

/// The whole content of a small file, or nil when it cannot be read.
/// `shortReadEnds` (see `readAll`) only for files known not to be pipes: usvc's
/// own files under the home and /proc's (`status` reads several per job).
public func readFile(_ path: String, shortReadEnds: Bool = false) -> [UInt8]? {
  guard let fd = try? FileDescriptor.open(path, O_RDONLY) else { return nil }
  return fd.closeAfter { try? $0.readAll(shortReadEnds: shortReadEnds) }
}

/// Whether `line` is one of the newline-separated lines of `bytes` (a state
/// file's `end=1`, an sd_notify message's `READY=1`), without making text of them.
public func hasLine(_ line: StaticString, in bytes: UnsafeRawBufferPointer) -> Bool {
  let wanted = UnsafeRawBufferPointer(start: line.utf8Start, count: line.utf8CodeUnitCount)
  var start = 0
  while start < bytes.count {
    let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
    if bytes[start..<end].elementsEqual(wanted) { return true }
    start = end + 1
  }
  return false
}

/// The whole content of a small file as UTF-8 text (invalid bytes repaired), or nil.
public func readTextFile(_ path: String) -> String? {
  readFile(path).map { String(decoding: $0, as: UTF8.self) }
}

/// Replaces `path` atomically: write `path.new`, then rename, so a reader sees
/// the old or the new content, never a mix.
public func writeFileAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o600) throws(Errno) {
  // Named by the writer: two processes writing the same file at once (50
  // concurrent starts each writing tmux.conf) must not rename each other's.
  let temporary = path + ".\(getpid()).new"
  let fd = try FileDescriptor.open(temporary, O_WRONLY | O_CREAT | O_TRUNC, mode: mode)
  do {
    try fd.closeAfter { (fd) throws(Errno) in try fd.writeAll(bytes) }
  } catch {
    unlink(temporary)
    throw error
  }
  _ = try retryingEINTR { rename(temporary, path) }
}

/// Creates a directory (mode 0700 by default); an existing one is fine.
public func makeDirectory(_ path: String, mode: mode_t = 0o700) throws(Errno) {
  if mkdir(path, mode) != 0 && errno != EEXIST { throw Errno.current }
}

/// C: `stat`. Nil when the path does not exist or cannot be reached.
/// `path` is lossless text: a program or folder named with bytes that are not UTF-8 is found.
public func fileStatus(_ path: String) -> stat? {
  var result = stat()
  return path.withLosslessCString { stat($0, &result) } == 0 ? result : nil
}

/// The names in a directory, without `.` and `..`; empty when it cannot be read.
public func directoryEntries(_ path: String) -> [String] {
  guard let dir = opendir(path) else { return [] }
  defer { closedir(dir) }
  var names: [String] = []
  while let entry = readdir(dir) {
    let name = withUnsafePointer(to: entry.pointee.d_name) {
      $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
    }
    if name != "." && name != ".." { names.append(name) }
  }
  return names
}

/// Seconds since the epoch, with microseconds. C: `clock_gettime(CLOCK_REALTIME)`.
public func wallClock() -> Double {
  var now = timespec()
  clock_gettime(CLOCK_REALTIME, &now)
  return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// Seconds on a clock that never jumps. C: `clock_gettime(CLOCK_MONOTONIC)`.
public func monotonicClock() -> Double {
  var now = timespec()
  clock_gettime(CLOCK_MONOTONIC, &now)
  return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// The process environment as `KEY=VALUE` strings (lossless text: every byte kept).
public func processEnvironment() -> [String] {
  var result: [String] = []
  guard var entry = usvc_environ() else { return result }
  while let pointer = entry.pointee {
    result.append(String(losslessCString: pointer))
    entry += 1
  }
  return result
}

/// The value of `key` in an environment of `KEY=VALUE` strings (the last
/// setting wins, as for `getenv` after `putenv`), or nil. The one lookup of
/// a variable in usvc.
public func value(of key: String, in environment: [String]) -> String? {
  let prefix = key + "="
  return environment.last { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
}

/// Writes one line to standard error, ignoring failure (there is nowhere else to say it).
public func printError(_ line: String) {
  try? FileDescriptor.standardError.writeAll(line.hasSuffix("\n") ? line : line + "\n")
}
