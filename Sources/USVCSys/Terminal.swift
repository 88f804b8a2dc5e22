import CShims
import Glibc

/// The size of the terminal `fd` is, or nil when it is not one. C: `ioctl(TIOCGWINSZ)`.
public func windowSize(of fd: Int32) -> winsize? {
  var size = winsize()
  return usvc_get_winsize(fd, &size) == 0 ? size : nil
}

/// Gives the terminal `fd` this size (its foreground process gets SIGWINCH). C: `ioctl(TIOCSWINSZ)`.
public func setWindowSize(_ size: winsize, of fd: Int32) {
  var size = size
  _ = usvc_set_winsize(fd, &size)
}

/// A new pseudo-terminal: its master, its slave (both close-on-exec) and the
/// slave's path, with `attributes` (the kernel's defaults when nil) and `size`.
/// C: `openpty`.
public func openPseudoTerminal(attributes: termios?, size: winsize) throws(Errno)
  -> (master: FileDescriptor, slave: FileDescriptor, path: String)
{
  var master: Int32 = -1
  var slave: Int32 = -1
  var name = [CChar](repeating: 0, count: 128)
  var size = size
  let opened: Int32
  if var attributes {
    opened = usvc_openpty(&master, &slave, &name, 128, &attributes, &size)
  } else {
    opened = usvc_openpty(&master, &slave, &name, 128, nil, &size)
  }
  guard opened == 0 else { throw Errno.current }
  let path = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  return (FileDescriptor(rawValue: master), FileDescriptor(rawValue: slave), path)
}

/// The one way a full-screen program gives its terminal back (`usvc top`):
/// installed once with the settings to restore and the bytes that leave the
/// screen, then run on quit, on SIGTERM/SIGHUP/SIGINT and on a crash, where
/// only async-signal-safe calls may run (CShims: a write and a `tcsetattr`).
public enum TerminalGuard {
  /// Remembers how to give back the terminal `fd`: `saved` settings, and
  /// `leaving` written first. C: `usvc_terminal_guard`.
  public static func install(fd: Int32, saved: termios, leaving: String) throws(Errno) {
    var saved = saved
    let result = leaving.withCString { usvc_terminal_guard(fd, &saved, $0, strlen($0)) }
    guard result == 0 else { throw Errno.current }
  }

  /// Gives the terminal back as it was; only the first call does anything.
  public static func restore() { usvc_terminal_restore() }
}

/// The columns a character takes on a terminal (2 for wide CJK, 0 for a
/// combining mark), or nil when it has no width (a control). C: `wcwidth`.
public func terminalColumns(of scalar: Unicode.Scalar) -> Int? {
  let width = Int(usvc_wcwidth(scalar.value))
  return width < 0 ? nil : width
}
