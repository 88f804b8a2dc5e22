import Glibc
import USVCContract
import USVCSys

/// The conf keys usvc knows (SPEC: Files), how each is checked, and how a conf
/// becomes the runner's `JobSpec`.
public enum ConfKeys {
  /// Keys only usvc sets.
  public static let fixed: Set<String> = Set(JobKeys.all.filter(\.fixed).map { "job." + $0.name })

  /// `stop-timeout` or `job.stop-timeout` → `job.stop-timeout`; nil when unknown.
  public static func normalize(_ key: String) -> String? {
    let lower = key.lowercased()
    let short = lower.hasPrefix("job.") ? String(lower.dropFirst(4)) : lower
    return JobKeys.named[short] == nil ? nil : "job." + short
  }

  public static func isMultivar(_ key: String) -> Bool {
    JobKeys.named[key.hasPrefix("job.") ? String(key.dropFirst(4)) : key]?.multivar ?? false
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
    guard let descriptor = JobKeys.named[String(key.dropFirst(4))] else { throw .unknownKey(key) }
    let kind = descriptor.kind
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
      guard parseGitBool(value) != nil else { throw bad("expected true or false") }
    case .desired:
      guard value == "running" || value == "stopped" else { throw bad("expected running or stopped") }
    case .count:
      guard let number = Int(value), number >= 0 else { throw bad("expected a whole number, 0 or more") }
      if let (range, unit) = descriptor.bounds, !range.contains(number) {
        throw bad("expected \(range.lowerBound) to \(range.upperBound) \(unit)")
      }
    case .octal:
      guard let number = mode_t(value, radix: 8), number <= 0o777 else { throw bad("expected an octal mode like 022") }
    case .interval:
      guard let number = Double(value), number > 0, number.isFinite, number <= 31_536_000 else {
        throw bad("expected a number of seconds, more than 0")
      }
    case .readiness:
      guard Probe(parsing: value) != nil else { throw bad("expected \(Probe.readinessForms)") }
    case .health:
      guard let probe = Probe(parsing: value), probe.checksHealth else { throw bad("expected \(Probe.healthForms)") }
    case .bytes:
      guard parseByteCount(value) != nil else { throw bad("expected a number of bytes, 0 or more (K, M or G may follow)") }
    case .limit:
      guard let equals = value.firstIndex(of: "="),
        ResourceLimit.resources.contains(where: { $0.name == value[..<equals] })
      else { throw bad("expected NAME=VALUE, NAME one of \(ResourceLimit.names)") }
      guard ResourceLimit(parsing: value) != nil else {
        throw bad("expected a whole number (K, M or G may follow) or unlimited after =")
      }
    case .startLimit:
      guard ResourceLimit(captured: value) != nil else {
        throw bad("expected NAME=SOFT:HARD, each a whole number or unlimited, SOFT not above HARD")
      }
    case .nice:
      guard let number = Int32(value), (-20...19).contains(number) else { throw bad("expected a nice value, -20 to 19") }
    case .environment:
      guard let equals = value.firstIndex(of: "="), equals != value.startIndex else {
        throw bad("expected KEY=VALUE")
      }
    }
  }

  /// The runner's view of a conf; nil fields keep their defaults.
  public static func spec(from conf: JobConf, name: String) -> JobSpec {
    var spec = JobSpec(
      name: name, group: conf.value("job.group") ?? Names.split(job: name)?.group ?? name,
      command: conf.value("job.cmd") ?? "")
    for key in JobKeys.all where key.name != "name" {
      let values = key.multivar ? conf.values("job." + key.name) : conf.value("job." + key.name).map { [$0] } ?? []
      if !values.isEmpty || key.multivar { key.fromConf(&spec, values) }
    }
    return spec
  }
}
