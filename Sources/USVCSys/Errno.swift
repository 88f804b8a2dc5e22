import Glibc

/// An error number from a failed system call, with the call's name for messages.
public struct Errno: Error, Equatable, CustomStringConvertible, Sendable {
  public var rawValue: Int32
  public init(_ rawValue: Int32) { self.rawValue = rawValue }

  /// The current thread's `errno`.
  public static var current: Errno { Errno(errno) }

  public static let wouldBlock = Errno(EAGAIN)

  /// The C library's sentence for this error ("No such file or directory").
  public var description: String { String(cString: strerror(rawValue)) }
}

/// Calls `body` until it does not fail with EINTR; -1 becomes `Errno`.
/// `close` must not use this: after EINTR the descriptor is already gone.
@inline(__always)
public func retryingEINTR<T: FixedWidthInteger>(_ body: () -> T) throws(Errno) -> T {
  while true {
    let result = body()
    if result != -1 { return result }
    if errno != EINTR { throw Errno.current }
  }
}

/// For calls that return an error number instead of setting errno (posix_spawn, pthread).
@inline(__always)
public func checkingReturnedErrno(_ result: Int32) throws(Errno) {
  if result != 0 { throw Errno(result) }
}
