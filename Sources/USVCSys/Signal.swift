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

  /// The real-time signals programs may use: glibc keeps the first two of the
  /// kernel's for itself (32 and 33), so `SIGRTMIN` is 34 here.
  static let realTime = __libc_current_sigrtmin()...__libc_current_sigrtmax()

  /// Parses `HUP`, `SIGHUP`, `hup`, a real-time signal as kill(1) and bash name
  /// them (`RTMIN`, `SIGRTMIN+3`, `RTMAX-2`, `RTMAX`) or a number from 1 to 64;
  /// nil for anything else.
  public init?(parsing text: String) {
    if let number = Int32(text) {
      guard number >= 1, number <= 64 else { return nil }
      self.rawValue = number
      return
    }
    var name = text.uppercased()
    if name.hasPrefix("SIG") { name.removeFirst(3) }
    if let index = Signal.names.firstIndex(of: name) {
      self.rawValue = Int32(index + 1)
      return
    }
    /// The N of `+N` (`-N` when `sign` is "-"), 0 for nothing; nil for anything else.
    func offset(_ rest: Substring, sign: Character) -> Int32? {
      if rest.isEmpty { return 0 }
      let digits = rest.dropFirst()
      guard rest.first == sign, (1...2).contains(digits.count), digits.allSatisfy({ ("0"..."9").contains($0) }) else {
        return nil
      }
      return Int32(digits)
    }
    let number: Int32
    if name.hasPrefix("RTMIN"), let plus = offset(name.dropFirst(5), sign: "+") {
      number = Signal.realTime.lowerBound + plus
    } else if name.hasPrefix("RTMAX"), let minus = offset(name.dropFirst(5), sign: "-") {
      number = Signal.realTime.upperBound - minus
    } else {
      return nil
    }
    guard Signal.realTime.contains(number) else { return nil }
    self.rawValue = number
  }

  /// `SIGTERM`; a real-time signal as bash's `kill -l` names it (`SIGRTMIN+3`,
  /// `SIGRTMAX-2`); `SIG32` for the two glibc keeps.
  public var description: String {
    let index = Int(rawValue) - 1
    if index >= 0 && index < Signal.names.count { return "SIG" + Signal.names[index] }
    let low = Signal.realTime.lowerBound
    let high = Signal.realTime.upperBound
    guard Signal.realTime.contains(rawValue) else { return "SIG\(rawValue)" }
    if rawValue - low <= (high - low) / 2 { return rawValue == low ? "SIGRTMIN" : "SIGRTMIN+\(rawValue - low)" }
    return rawValue == high ? "SIGRTMAX" : "SIGRTMAX-\(high - rawValue)"
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
