import Glibc

/// A signal number, named the way users type them (`TERM`, `SIGHUP`, `9`).
public struct Signal: Equatable, Hashable, Sendable, CustomStringConvertible {
  public var rawValue: Int32
  public init(rawValue: Int32) { self.rawValue = rawValue }

  public static let hangup = Signal(rawValue: SIGHUP)
  public static let interrupt = Signal(rawValue: SIGINT)
  public static let kill = Signal(rawValue: SIGKILL)
  public static let terminate = Signal(rawValue: SIGTERM)
  public static let `continue` = Signal(rawValue: SIGCONT)
  public static let child = Signal(rawValue: SIGCHLD)
  public static let windowChanged = Signal(rawValue: SIGWINCH)
  public static let pipe = Signal(rawValue: SIGPIPE)

  /// The names Linux gives signals 1–31, without `SIG`.
  static let names: [String] = [
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
  ]

  /// Parses `HUP`, `SIGHUP`, `hup` or a number from 1 to 64; nil for anything else.
  public init?(parsing text: String) {
    if let number = Int32(text) {
      guard number >= 1, number <= 64 else { return nil }
      self.rawValue = number
      return
    }
    var name = text.uppercased()
    if name.hasPrefix("SIG") { name.removeFirst(3) }
    guard let index = Signal.names.firstIndex(of: name) else { return nil }
    self.rawValue = Int32(index + 1)
  }

  /// `SIGTERM`, or `SIG45` for a real-time signal.
  public var description: String {
    let index = Int(rawValue) - 1
    return index >= 0 && index < Signal.names.count ? "SIG" + Signal.names[index] : "SIG\(rawValue)"
  }

  /// Sends this signal to one process. C: `kill(pid, sig)`.
  public func send(to pid: pid_t) throws(Errno) {
    _ = try retryingEINTR { Glibc.kill(pid, rawValue) }
  }

  /// Sends this signal to every process of a process group. C: `kill(-pgid, sig)`.
  public func send(toGroup pgid: pid_t) throws(Errno) {
    precondition(pgid > 1, "can't happen: signalling process group \(pgid)")
    _ = try retryingEINTR { Glibc.kill(-pgid, rawValue) }
  }
}

/// A set of signals. C: `sigset_t`.
public struct SignalSet: Sendable {
  public var raw = sigset_t()
  public init(_ signals: [Signal] = []) {
    sigemptyset(&raw)
    for signal in signals { sigaddset(&raw, signal.rawValue) }
  }

  /// Blocks these signals for the calling thread (so they queue for a signalfd).
  public func block() { var set = raw; sigprocmask(SIG_BLOCK, &set, nil) }
}

/// How a process ended. No WIF* macro leaks past this type.
public enum TerminationStatus: Equatable, Sendable, CustomStringConvertible {
  case exited(Int32)
  case signaled(Signal)

  public init(waitStatus status: Int32) {
    if usvc_exited(status) != 0 {
      self = .exited(usvc_exit_status(status))
    } else {
      self = .signaled(Signal(rawValue: usvc_term_signal(status)))
    }
  }

  public var isSuccess: Bool { self == .exited(0) }

  /// `0`, `1`, `SIGKILL`: the form `status` prints as the last exit.
  public var description: String {
    switch self {
    case .exited(let code): return String(code)
    case .signaled(let signal): return signal.description
    }
  }
}

import CShims
