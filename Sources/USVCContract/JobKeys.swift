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
  /// Reaches this key's `JobSpec` property for one `Use` of it (`use.value(&spec.x, codec)`
  /// or `use.values(&spec.x)`). A closure that captures nothing, so the table costs
  /// each runner nothing but its array: a key path and three capturing closures per
  /// key had cost ~16 KiB of private memory in every runner (the closures' contexts,
  /// the key path objects, their generic classes' metadata).
  let field: @Sendable (inout Use, inout JobSpec) -> Void

  /// The spec's value(s) of this key as the spec file holds them.
  public func encode(_ spec: JobSpec) -> [String] {
    var use = Use.encode([])
    var spec = spec  // `field` takes the spec inout; encoding only reads it.
    field(&use, &spec)
    guard case .encode(let texts) = use else { return [] }
    return texts
  }

  /// Sets (or, for a list, appends) one value read from the spec file; one that
  /// does not parse leaves the field as it was.
  public func decode(_ spec: inout JobSpec, _ text: String) {
    var use = Use.decode(text)
    field(&use, &spec)
  }

  /// Sets the field from the conf's value(s): every value of a list, the last
  /// of a single key; one that does not parse leaves the default.
  public func fromConf(_ spec: inout JobSpec, _ texts: [String]) {
    var use = Use.fromConf(texts)
    field(&use, &spec)
  }

  /// What is done with a key's property: `encode`, `decode` or `fromConf`.
  enum Use {
    /// The property's value(s) as spec-file text, filled in.
    case encode([String])
    case decode(String)
    case fromConf([String])

    /// Does it to a key with one value.
    mutating func value<Value>(_ value: inout Value, _ codec: Codec<Value>) {
      switch self {
      case .encode: self = .encode([codec.toSpec(value)])
      case .decode(let text): if let parsed = codec.fromSpec(text) { value = parsed }
      case .fromConf(let texts): if let text = texts.last, let parsed = codec.fromConf(text) { value = parsed }
      }
    }

    /// Does it to a key with a list of values, kept in order.
    mutating func values(_ values: inout [String]) {
      switch self {
      case .encode: self = .encode(values)
      case .decode(let text): values.append(text)
      case .fromConf(let texts): values = texts
      }
    }

    /// Does it to a list of `ResourceLimit`s, `NAME=SOFT:HARD` each; one that does not parse is left out.
    mutating func limits(_ limits: inout [ResourceLimit]) {
      switch self {
      case .encode: self = .encode(limits.map(\.text))
      case .decode(let text): if let limit = ResourceLimit(captured: text) { limits.append(limit) }
      case .fromConf(let texts): limits = texts.compactMap(ResourceLimit.init(captured:))
      }
    }
  }

  /// How one value type is written to and read from the spec file and the conf.
  public struct Codec<Value>: Sendable {
    let toSpec: @Sendable (Value) -> String
    let fromSpec: @Sendable (String) -> Value?
    let fromConf: @Sendable (String) -> Value?
  }

  /// A key with one value: `field` is `{ $0.value(&$1.property, codec) }`.
  static func single(
    _ name: String, spec: String? = nil, _ kind: Kind, bounds: (ClosedRange<Int>, String)? = nil, fixed: Bool = false,
    saved: Bool = true, _ field: @escaping @Sendable (inout Use, inout JobSpec) -> Void
  ) -> JobKey {
    JobKey(
      name: name, specName: spec ?? name, multivar: false, kind: kind, bounds: bounds, fixed: fixed, saved: saved,
      field: field)
  }

  /// A key with a list of values: `field` is `{ $0.values(&$1.property) }`.
  static func list(
    _ name: String, spec: String? = nil, _ kind: Kind, _ field: @escaping @Sendable (inout Use, inout JobSpec) -> Void
  ) -> JobKey {
    JobKey(
      name: name, specName: spec ?? name, multivar: true, kind: kind, bounds: nil, fixed: false, saved: true,
      field: field)
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
    .single("name", .text, fixed: true, saved: false) { $0.value(&$1.name, .text) },
    .single("group", .text, fixed: true, saved: false) { $0.value(&$1.group, .text) },
    .single("cmd", .command) { $0.value(&$1.command, .text) },
    .list("args", spec: "arg", .text) { $0.values(&$1.arguments) },
    .list("env", .environment) { $0.values(&$1.environment) },
    .single("cwd", .directory) { $0.value(&$1.directory, .text) },
    .single("restart", .policy) { $0.value(&$1.restart, .policy) },
    .single("stop-signal", .signal) { $0.value(&$1.stopSignal, .signal) },
    .single("stop-timeout", .seconds) { $0.value(&$1.stopTimeout, .seconds) },
    .single("stable-after", .seconds) { $0.value(&$1.stableAfter, .seconds) },
    .single("backoff-max", .seconds) { $0.value(&$1.backoffMax, .seconds) },
    .single("log-max-bytes", .count, bounds: (LogRotation.maxBytesRange, "bytes")) { $0.value(&$1.logMaxBytes, .count) },
    .single("log-keep", .count, bounds: (LogRotation.keepRange, "copies")) { $0.value(&$1.logKeep, .count) },
    .single("scrollback", .count) { $0.value(&$1.scrollback, .count) },
    .single("desired", .desired, saved: false) { $0.value(&$1.desiredRunning, .desired) },
    .list("after", .text) { $0.values(&$1.after) },
    .single("after-delay", .seconds) { $0.value(&$1.afterDelay, .seconds) },
    .single("propagate", .bool) { $0.value(&$1.propagate, .bool) },
    .list("pre", .text) { $0.values(&$1.pre) },
    .list("post", .text) { $0.values(&$1.post) },
    .list("on-failure", .text) { $0.values(&$1.onFailure) },
    .single("hook-timeout", .seconds) { $0.value(&$1.hookTimeout, .seconds) },
    .single("umask", .octal) { $0.value(&$1.umask, .umask) },
    .list("start-limit", .startLimit) { $0.limits(&$1.startLimits) },
    .single("nice", .nice) { $0.value(&$1.nice, .text) },
    .single("ready", .readiness) { $0.value(&$1.ready, .text) },
    .single("ready-timeout", .seconds) { $0.value(&$1.readyTimeout, .seconds) },
    .single("ready-interval", .interval) { $0.value(&$1.readyInterval, .seconds) },
    .single("health", .health) { $0.value(&$1.health, .text) },
    .single("health-interval", .interval) { $0.value(&$1.healthInterval, .seconds) },
    .single("health-timeout", .interval) { $0.value(&$1.healthTimeout, .seconds) },
    .single("health-retries", .count, bounds: (1...1_000_000, "failures")) { $0.value(&$1.healthRetries, .count) },
    .single("silence-max", .seconds) { $0.value(&$1.silenceMax, .seconds) },
    .single("memory-max", .bytes) { $0.value(&$1.memoryMax, .bytes) },
    .list("limit", .limit) { $0.values(&$1.limits) },
  ]

  /// `all` by conf key (without `job.`).
  public static let named: [String: JobKey] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

  /// Where in `all` the key written `specName` in a spec file is, looked for
  /// from `start` on, then from the top; nil for a key this version does not
  /// know. A spec file lists its keys in the order of `all`, so the one after
  /// the last found is nearly always the next. (No dictionary: the runner would
  /// keep its ~9 KiB, and its type's metadata, for the one spec it reads.)
  public static func index(ofSpecName specName: String, from start: Int) -> Int? {
    for step in all.indices {
      let index = (start + step) % all.count
      if all[index].specName == specName { return index }
    }
    return nil
  }
}
