import Glibc
import USVCContract
import USVCSys

/// The conf keys usvc knows (SPEC: Files), how each is checked, and how a conf
/// becomes the runner's `JobSpec`.
public enum ConfKeys {
  public enum Kind: Sendable {
    case text, path, directory, command, policy, signal, seconds, bool, desired, count, octal, environment
  }

  /// Key (without `job.`) → (multivar?, kind).
  public static let known: [String: (multivar: Bool, kind: Kind)] = [
    "name": (false, .text), "group": (false, .text), "cmd": (false, .command),
    "args": (true, .text), "cwd": (false, .directory), "env": (true, .environment),
    "restart": (false, .policy), "stop-signal": (false, .signal), "stop-timeout": (false, .seconds),
    "stable-after": (false, .seconds), "backoff-max": (false, .seconds),
    "after": (true, .text), "after-delay": (false, .seconds), "propagate": (false, .bool),
    "pre": (true, .text), "post": (true, .text), "on-failure": (true, .text),
    "desired": (false, .desired), "log-max-bytes": (false, .count), "log-keep": (false, .count), "umask": (false, .octal), "hook-timeout": (false, .seconds),
    "scrollback": (false, .count),
  ]

  /// The bounds of counts, so that no value makes the runner spin or fill the
  /// disk with files (`LogRotation`).
  static let countBounds: [String: (ClosedRange<Int>, String)] = [
    "job.log-max-bytes": (LogRotation.maxBytesRange, "bytes"), "job.log-keep": (LogRotation.keepRange, "copies"),
  ]

  /// Keys only usvc sets.
  public static let fixed: Set<String> = ["job.name", "job.group"]

  /// `stop-timeout` or `job.stop-timeout` → `job.stop-timeout`; nil when unknown.
  public static func normalize(_ key: String) -> String? {
    let lower = key.lowercased()
    let short = lower.hasPrefix("job.") ? String(lower.dropFirst(4)) : lower
    return known[short] == nil ? nil : "job." + short
  }

  public static func isMultivar(_ key: String) -> Bool {
    known[key.hasPrefix("job.") ? String(key.dropFirst(4)) : key]?.multivar ?? false
  }

  /// The most values one list key of a conf (`args`, `env`, `after`, the
  /// hooks) may hold. Writing a conf costs time and memory linear in its
  /// values (`ConfStore.write`), and so do the checks before it. Measured on
  /// this 2-core machine (shared, release build, bench/conf_writes.py):
  /// `start` with 10,000 arguments 0.13 s and 19 MB, with 10,000 variables
  /// 0.25 s and 21 MB; the worst conf, all six lists at the cap (`load`),
  /// 1.0 to 1.8 s and 34 MB, against a target of 2 s and 256 MB. (`start`
  /// with 140,000 arguments took 0.8 s and 66 MB; the kernel execs no more
  /// than about 200,000 words at the default 8 MiB stack.) A typical
  /// environment (100–200 variables) is far inside.
  public static let maximumValues = 10_000

  /// Refuses a conf with a list key of more than `maximumValues` values;
  /// `counts` gives each key's number of values.
  public static func checkValueCounts(_ counts: [String: Int]) throws(UsvcError) {
    let over = counts.filter { isMultivar($0.key) && $0.value > maximumValues }
    guard let largest = over.max(by: { $0.value != $1.value ? $0.value < $1.value : $0.key > $1.key }) else { return }
    throw .tooManyValues(key: largest.key, count: largest.value, limit: maximumValues)
  }

  /// `checkValueCounts` for a whole conf.
  public static func checkValueCounts(of conf: JobConf) throws(UsvcError) {
    var counts: [String: Int] = [:]
    for entry in conf.entries { counts[entry.key, default: 0] += 1 }
    try checkValueCounts(counts)
  }

  /// Checks one value for `key` (normalised); throws a sentence saying what is wrong.
  /// Any byte but NUL is allowed in any value (SPEC: start), control characters
  /// included: `ConfStore.write` quotes and escapes so that git reads each back.
  /// With `checkingFiles`, the program of `job.cmd` must be executable and the
  /// folder of `job.cwd` must exist and be enterable, now.
  public static func validate(_ key: String, _ value: String, checkingFiles: Bool = true) throws(UsvcError) {
    guard let kind = known[String(key.dropFirst(4))]?.kind else { throw .unknownKey(key) }
    func bad(_ why: String) -> UsvcError { .badValue(key: key, value: value.visible, why: why) }
    switch kind {
    case .text: break
    case .path, .command:
      guard value.hasPrefix("/") else { throw bad("an absolute path is needed") }
      if kind == .command && checkingFiles { try Commands.checkExecutable(value) }
    case .directory:
      guard value.hasPrefix("/") else { throw bad("an absolute path is needed") }
      if checkingFiles { try Commands.checkDirectory(value) }
    case .policy:
      guard RestartPolicy(rawValue: value) != nil else { throw bad("expected always, on-failure or never") }
    case .signal:
      guard Signal(parsing: value) != nil else { throw bad("not a signal name or number") }
    case .seconds:
      guard let number = Double(value), number >= 0, number.isFinite, number <= 31_536_000 else {
        throw bad("expected a number of seconds, 0 or more")
      }
    case .bool:
      guard parseBool(value) != nil else { throw bad("expected true or false") }
    case .desired:
      guard value == "running" || value == "stopped" else { throw bad("expected running or stopped") }
    case .count:
      guard let number = Int(value), number >= 0 else { throw bad("expected a whole number, 0 or more") }
      if let (range, unit) = countBounds[key], !range.contains(number) {
        throw bad("expected \(range.lowerBound) to \(range.upperBound) \(unit)")
      }
    case .octal:
      guard let number = mode_t(value, radix: 8), number <= 0o777 else { throw bad("expected an octal mode like 022") }
    case .environment:
      guard let equals = value.firstIndex(of: "="), equals != value.startIndex else {
        throw bad("expected KEY=VALUE")
      }
    }
  }

  /// git's booleans.
  public static func parseBool(_ value: String) -> Bool? {
    switch value.lowercased() {
    case "true", "yes", "on", "1": return true
    case "false", "no", "off", "0", "": return false
    default: return nil
    }
  }



  /// The runner's view of a conf; nil fields keep their defaults.
  public static func spec(from conf: JobConf, name: String) -> JobSpec {
    var spec = JobSpec(
      name: name, group: conf.value("job.group") ?? Names.split(job: name)?.group ?? name,
      command: conf.value("job.cmd") ?? "")
    spec.arguments = conf.values("job.args")
    spec.environment = conf.values("job.env")
    spec.directory = conf.value("job.cwd") ?? "/"
    if let value = conf.value("job.restart"), let policy = RestartPolicy(rawValue: value) { spec.restart = policy }
    if let value = conf.value("job.stop-signal"), let signal = Signal(parsing: value) { spec.stopSignal = signal }
    if let value = conf.value("job.stop-timeout").flatMap(Double.init) { spec.stopTimeout = value }
    if let value = conf.value("job.stable-after").flatMap(Double.init) { spec.stableAfter = value }
    if let value = conf.value("job.backoff-max").flatMap(Double.init) { spec.backoffMax = value }
    if let value = conf.value("job.log-max-bytes").flatMap(Int.init) { spec.logMaxBytes = value }
    if let value = conf.value("job.log-keep").flatMap(Int.init) { spec.logKeep = value }
    if let value = conf.value("job.scrollback").flatMap(Int.init) { spec.scrollback = value }
    if let value = conf.value("job.umask").flatMap({ mode_t($0, radix: 8) }) { spec.umask = value }
    spec.desiredRunning = conf.value("job.desired") != "stopped"
    spec.after = conf.values("job.after")
    if let value = conf.value("job.after-delay").flatMap(Double.init) { spec.afterDelay = value }
    spec.propagate = conf.value("job.propagate").flatMap(parseBool) ?? false
    spec.pre = conf.values("job.pre")
    spec.post = conf.values("job.post")
    spec.onFailure = conf.values("job.on-failure")
    if let value = conf.value("job.hook-timeout").flatMap(Double.init) { spec.hookTimeout = value }
    return spec
  }
}
