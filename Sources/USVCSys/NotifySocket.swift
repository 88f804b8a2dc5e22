import CShims
import Glibc

/// The longest path a Unix socket may have: `sun_path` holds 108 bytes with
/// its NUL (PLATFORM-NOTES: Paths).
public let maximumSocketPathLength = 107

/// `/tmp/usvc-UID`: where a socket of usvc goes when the path it should have
/// is too long (PLATFORM-NOTES: Paths). Private to this user, never shared.
public var shortSocketDirectory: String { "/tmp/usvc-\(geteuid())" }

/// Whether `path` is a directory (not a link to one) of this user's that no
/// one else may enter, list or write: mode & 077 is 0. C: `lstat`.
public func isPrivateDirectory(_ path: String) -> Bool {
  var info = stat()
  return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR && info.st_uid == geteuid()
    && info.st_mode & 0o077 == 0
}

/// FNV-1a, 64 bits: a stable short name made from a long one.
public func fnv1a<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt64 {
  var hash: UInt64 = 0xcbf2_9ce4_8422_2325
  for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
  return hash
}

/// The datagram socket a job sends sd_notify messages to (`NOTIFY_SOCKET`,
/// SPEC: Health): bound to a path, mode 0600, non-blocking, close-on-exec.
/// Read from the runner's one poll; the path is removed by `close()`.
public struct NotifySocket: Sendable {
  public let fd: Int32
  public let path: String

  /// Binds a new socket at `path` (at most `maximumSocketPathLength` bytes),
  /// replacing a socket file left there by a runner that was killed.
  /// C: `socket(AF_UNIX, SOCK_DGRAM)`, `bind`.
  public init(binding path: String) throws(Errno) {
    let result = usvc_unix_datagram_bind(path)
    guard result >= 0 else { throw Errno(-result) }
    fd = result
    self.path = path
  }

  /// One waiting datagram, its first `buffer.count` bytes copied to `buffer`:
  /// how many, and whether it was longer (the rest is dropped). Nil when none
  /// waits. C: `recv(MSG_TRUNC)`.
  public func receive(into buffer: UnsafeMutableRawBufferPointer) -> (count: Int, truncated: Bool)? {
    guard let length = try? retryingEINTR({ recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT | MSG_TRUNC)) })
    else { return nil }
    return (min(length, buffer.count), length > buffer.count)
  }

  /// Drops every datagram waiting (sent to an earlier run).
  public func discardPending() {
    var byte: UInt8 = 0
    while (try? retryingEINTR({ recv(fd, &byte, 1, Int32(MSG_DONTWAIT)) })) != nil {}
  }

  /// Closes the socket and removes its file. C: `close`, `unlink`.
  public func close() {
    _ = Glibc.close(fd)
    unlink(path)
  }

  /// Whether an sd_notify message holds the line `READY=1`. Messages are
  /// newline-separated `KEY=VALUE` lines (sd_notify(3)); every other key
  /// (`STATUS=`, `MAINPID=`, `WATCHDOG=1`, `STOPPING=1`, …) and anything that
  /// is no such line is ignored. A `truncated` message (longer than what was
  /// read) is ignored whole, as systemd ignores one past its buffer.
  public static func saysReady(_ message: UnsafeRawBufferPointer, truncated: Bool) -> Bool {
    !truncated && hasLine("READY=1", in: message)
  }
}
