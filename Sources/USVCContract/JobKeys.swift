import Glibc
import USVCSys

/// One conf key (SPEC: Files) and everything usvc does with it: how its values
/// are checked (`kind`, checked by `ConfKeys.validate` in USVCCore, which alone
/// looks at files), whether it is saved, and how it maps onto `JobSpec` both
/// from the conf and through the spec file the runner reads (`run/NAME.spec`).
/// `JobKeys.all` is the one list of them: a new key is one line there plus
/// its `JobSpec` property (which holds its default).
public struct JobKey: Sendable {
  /// What a value must look like.
  public enum Kind: Sendable, Equatable {
    case text, path, directory, command, policy, signal, seconds, bool, desired, count, octal, environment
    /// More than 0 seconds.
    case interval
    /// A `Probe` SPEC: any form for readiness, tcp/http/exec for health.
    case readiness, health
    /// Bytes, `parseByteCount`.
    case bytes
    /// `ResourceLimit`'s `NAME=VALUE`.
    case limit
    /// `ResourceLimit`'s `NAME=SOFT:HARD`, any limit Linux has.
    case startLimit
    /// A nice value, -20 to 19.
    case nice
  }

  /// The conf key without `job.`.
  public let name: String
  /// Its key in the spec file (`arg` for `args`: the format predates the table).
  public let specName: String
  public let multivar: Bool
  public let kind: Kind
  /// The range a `count` must be in, and its unit in the message.
  public let bounds: (range: ClosedRange<Int>, unit: String)?
  /// Set by usvc only (`job.name`, `job.group`).
  public let fixed: Bool
  /// Part of a group's definition in `usvc save` (not `name`, `group`, `desired`).
  public let saved: Bool
  /// The spec's value(s) of this key as the spec file holds them.
  public let encode: @Sendable (JobSpec) -> [String]
  /// Sets (or, for a list, appends) one value read from the spec file; one that
  /// does not parse leaves the field as it was.
  public let decode: @Sendable (inout JobSpec, String) -> Void
  /// Sets the field from the conf's value(s): every value of a list, the last
  /// of a single key; one that does not parse leaves the default.
  public let fromConf: @Sendable (inout JobSpec, [String]) -> Void

  /// How one value type is written to and read from the spec file and the conf.
  public struct Codec<Value>: Sendable {
    let toSpec: @Sendable (Value) -> String
    let fromSpec: @Sendable (String) -> Value?
    let fromConf: @Sendable (String) -> Value?
  }

  /// A key with one value.
  static func single<Value>(
    _ name: String, spec: String? = nil, _ kind: Kind, _ field: WritableKeyPath<JobSpec, Value> & Sendable,
    _ codec: Codec<Value>, bounds: (ClosedRange<Int>, String)? = nil, fixed: Bool = false, saved: Bool = true
  ) -> JobKey {
    JobKey(
      name: name, specName: spec ?? name, multivar: false, kind: kind, bounds: bounds, fixed: fixed, saved: saved,
      encode: { [codec.toSpec($0[keyPath: field])] },
      decode: { spec, text in if let value = codec.fromSpec(text) { spec[keyPath: field] = value } },
      fromConf: { spec, texts in
        if let text = texts.last, let value = codec.fromConf(text) { spec[keyPath: field] = value }
      })
  }

  /// A key with a list of values, kept in order.
  static func list(
    _ name: String, spec: String? = nil, _ kind: Kind, _ field: WritableKeyPath<JobSpec, [String]> & Sendable
  ) -> JobKey {
    JobKey(
      name: name, specName: spec ?? name, multivar: true, kind: kind, bounds: nil, fixed: false, saved: true,
      encode: { $0[keyPath: field] }, decode: { spec, text in spec[keyPath: field].append(text) },
      fromConf: { spec, texts in spec[keyPath: field] = texts })
  }
}

extension JobKey {
  /// A list of `ResourceLimit`s, `NAME=SOFT:HARD` each; one that does not parse is left out.
  static func limits(_ name: String, _ field: WritableKeyPath<JobSpec, [ResourceLimit]> & Sendable) -> JobKey {
    JobKey(
      name: name, specName: name, multivar: true, kind: .startLimit, bounds: nil, fixed: false, saved: true,
      encode: { $0[keyPath: field].map(\.text) },
      decode: { spec, text in if let limit = ResourceLimit(captured: text) { spec[keyPath: field].append(limit) } },
      fromConf: { spec, texts in spec[keyPath: field] = texts.compactMap(ResourceLimit.init(captured:)) })
  }
}

extension JobKey.Codec where Value == String {
  static var text: Self { .init(toSpec: { $0 }, fromSpec: { $0 }, fromConf: { $0 }) }
}
extension JobKey.Codec where Value == Double {
  static var seconds: Self { .init(toSpec: { String($0) }, fromSpec: { Double($0) }, fromConf: { Double($0) }) }
}
extension JobKey.Codec where Value == Int {
  static var count: Self { .init(toSpec: { String($0) }, fromSpec: { Int($0) }, fromConf: { Int($0) }) }
}
extension JobKey.Codec where Value == Int {
  /// `parseByteCount` in the conf (`512M`), a plain number in the spec.
  static var bytes: Self { .init(toSpec: { String($0) }, fromSpec: { Int($0) }, fromConf: { parseByteCount($0) }) }
}
extension JobKey.Codec where Value == RestartPolicy {
  static var policy: Self {
    .init(toSpec: { $0.rawValue }, fromSpec: { RestartPolicy(rawValue: $0) }, fromConf: { RestartPolicy(rawValue: $0) })
  }
}
extension JobKey.Codec where Value == Signal {
  /// A name or number in the conf, the number in the spec.
  static var signal: Self {
    .init(
      toSpec: { String($0.rawValue) }, fromSpec: { Int32($0).map { Signal(rawValue: $0) } },
      fromConf: { Signal(parsing: $0) })
  }
}
extension JobKey.Codec where Value == mode_t {
  /// Octal in the conf, decimal in the spec.
  static var umask: Self {
    .init(toSpec: { String($0) }, fromSpec: { mode_t($0) }, fromConf: { mode_t($0, radix: 8) })
  }
}
extension JobKey.Codec where Value == Bool {
  /// git's booleans in the conf, `true`/`false` in the spec.
  static var bool: Self {
    .init(toSpec: { $0 ? "true" : "false" }, fromSpec: { $0 == "true" }, fromConf: { parseGitBool($0) })
  }
  /// `running` or `stopped`; anything else is running.
  static var desired: Self {
    .init(toSpec: { $0 ? "running" : "stopped" }, fromSpec: { $0 != "stopped" }, fromConf: { $0 != "stopped" })
  }
}

/// git's booleans.
public func parseGitBool(_ value: String) -> Bool? {
  switch value.lowercased() {
  case "true", "yes", "on", "1": return true
  case "false", "no", "off", "0", "": return false
  default: return nil
  }
}

/// The conf keys, in the order the spec file and `usvc save` write them.
public enum JobKeys {
  public static let all: [JobKey] = [
    .single("name", .text, \.name, .text, fixed: true, saved: false),
    .single("group", .text, \.group, .text, fixed: true, saved: false),
    .single("cmd", .command, \.command, .text),
    .list("args", spec: "arg", .text, \.arguments),
    .list("env", .environment, \.environment),
    .single("cwd", .directory, \.directory, .text),
    .single("restart", .policy, \.restart, .policy),
    .single("stop-signal", .signal, \.stopSignal, .signal),
    .single("stop-timeout", .seconds, \.stopTimeout, .seconds),
    .single("stable-after", .seconds, \.stableAfter, .seconds),
    .single("backoff-max", .seconds, \.backoffMax, .seconds),
    .single("log-max-bytes", .count, \.logMaxBytes, .count, bounds: (LogRotation.maxBytesRange, "bytes")),
    .single("log-keep", .count, \.logKeep, .count, bounds: (LogRotation.keepRange, "copies")),
    .single("scrollback", .count, \.scrollback, .count),
    .single("desired", .desired, \.desiredRunning, .desired, saved: false),
    .list("after", .text, \.after),
    .single("after-delay", .seconds, \.afterDelay, .seconds),
    .single("propagate", .bool, \.propagate, .bool),
    .list("pre", .text, \.pre),
    .list("post", .text, \.post),
    .list("on-failure", .text, \.onFailure),
    .single("hook-timeout", .seconds, \.hookTimeout, .seconds),
    .single("umask", .octal, \.umask, .umask),
    .limits("start-limit", \.startLimits),
    .single("nice", .nice, \.nice, .text),
    .single("ready", .readiness, \.ready, .text),
    .single("ready-timeout", .seconds, \.readyTimeout, .seconds),
    .single("ready-interval", .interval, \.readyInterval, .seconds),
    .single("health", .health, \.health, .text),
    .single("health-interval", .interval, \.healthInterval, .seconds),
    .single("health-timeout", .interval, \.healthTimeout, .seconds),
    .single("health-retries", .count, \.healthRetries, .count, bounds: (1...1_000_000, "failures")),
    .single("silence-max", .seconds, \.silenceMax, .seconds),
    .single("memory-max", .bytes, \.memoryMax, .bytes),
    .list("limit", .limit, \.limits),
  ]

  /// `all` by conf key (without `job.`).
  public static let named: [String: JobKey] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
  /// `all` by spec-file key.
  public static let bySpecName: [String: JobKey] = Dictionary(uniqueKeysWithValues: all.map { ($0.specName, $0) })
}
