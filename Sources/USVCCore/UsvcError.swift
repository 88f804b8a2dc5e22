import USVCSys

/// Every sentence usvc says when something goes wrong. The CLI prints one as
/// `usvc: DESCRIPTION` on stderr and exits 1.
public enum UsvcError: Error, CustomStringConvertible, Equatable {
  case badHome(String)
  case badGroupName(String, why: String)
  case noSuchSelector(String)
  case noSuchJob(String)
  case commandNotFound(String)
  case commandNotExecutable(String, why: String)
  case badDirectory(String, why: String)
  case badEnvironment(String)
  case badValue(key: String, value: String, why: String)
  case unknownKey(String)
  case notMultivar(String)
  case tooManyValues(key: String, count: Int, limit: Int)
  case badConf(path: String, why: String)
  case confWrite(path: String, why: String)
  case tmux(String)
  case cannotStart(job: String, why: String)
  case stopTimedOut(job: String)
  case badSignal(String)
  case notATerminal(command: String, what: String)
  case dependencyCycle([String])
  case badHost(String)
  /// A `--hosts` call that cannot be made as asked (no such host list, words too long).
  case fleet(String)
  case badFile(path: String, why: String)
  case conflict(String)
  case system(String, Errno)

  /// A value refused by `ConfKeys.validate`, said about `key` (a conf's
  /// `job.stop-timeout`, a saved file's `group.web.stop-timeout`): the one
  /// mapping of a validation error for `check`, `load` and `conf`.
  func about(_ key: String) -> UsvcError {
    switch self {
    case .badValue(_, let value, let why): return .badValue(key: key, value: value, why: why)
    case .commandNotExecutable(let path, let why), .badDirectory(let path, let why): return .conflict("\(key): \(path): \(why)")
    default: return .conflict("\(key): \(description)")
    }
  }

  /// `load` creates groups, it does not merge into them.
  static func groupExists(_ group: String) -> UsvcError { .conflict("group '\(group)' already exists: rm it first") }

  public var description: String {
    switch self {
    case .badHome(let why): return why
    case .badGroupName(let name, let why): return "bad group name '\(name)': \(why)"
    case .noSuchSelector(let name): return "no job or group named '\(name)'"
    case .noSuchJob(let name): return "no job named '\(name)'"
    case .commandNotFound(let command): return "\(command): command not found"
    case .commandNotExecutable(let path, let why): return "\(path): \(why)"
    case .badDirectory(let path, let why): return "\(path): \(why)"
    case .badEnvironment(let text): return "bad environment setting '\(text)': expected KEY=VALUE"
    case .badValue(let key, let value, let why): return "bad value for \(key): '\(value)': \(why)"
    case .unknownKey(let key): return "unknown conf key '\(key)'"
    case .notMultivar(let key): return "\(key) takes one value"
    case .tooManyValues(let key, let count, let limit): return "too many values for \(key): \(count) (at most \(limit) per key)"
    case .badConf(let path, let why): return "\(path): \(why)"
    case .confWrite(let path, let why): return "cannot write \(path): \(why)"
    case .tmux(let why): return "tmux: \(why)"
    case .cannotStart(let job, let why): return "cannot start \(job): \(why)"
    case .stopTimedOut(let job): return "\(job) did not stop in time"
    case .badSignal(let text): return "unknown signal '\(text)'"
    case .notATerminal(let command, let what): return "\(command) needs a terminal: \(what)"
    case .dependencyCycle(let names): return "dependency cycle: \(names.joined(separator: " -> "))"
    case .badHost(let host): return "bad host name '\(host)'"
    case .fleet(let why): return why
    case .badFile(let path, let why): return "\(path): \(why)"
    case .conflict(let why): return why
    case .system(let what, let error): return "\(what): \(error)"
    }
  }
}
