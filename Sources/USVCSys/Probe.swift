import CShims
import Glibc

/// A readiness or health check (SPEC: Health): what `job.ready` and
/// `job.health` name. Parsed the same way by the CLI (to refuse a bad one)
/// and by the runner (to run it).
public enum Probe: Equatable, Sendable {
  /// A TCP connect to HOST:PORT succeeds.
  case tcp(host: String, port: UInt16)
  /// `GET PATH` answers 2xx or 3xx.
  case http(host: String, port: UInt16, path: String)
  /// `sh -c COMMAND` exits 0.
  case exec(String)
  /// A line of the job's output matches the POSIX extended regex (readiness only).
  case log(String)
  /// The job says so itself: `USVC_READY_FD` or `NOTIFY_SOCKET` (readiness only).
  case notify

  /// What a SPEC may be, for the message that refuses one.
  public static let readinessForms = "tcp:PORT, tcp:HOST:PORT, http://HOST:PORT/PATH, exec:COMMAND, log:REGEX or notify"
  public static let healthForms = "tcp:PORT, tcp:HOST:PORT, http://HOST:PORT/PATH or exec:COMMAND"

  /// Parses SPEC; nil when it is none of the forms. `log:` regexes are compiled
  /// (`regcomp`) so that a bad one is refused here, not in the runner.
  public init?(parsing text: String) {
    if text == "notify" {
      self = .notify
    } else if text.hasPrefix("exec:") {
      let command = String(text.dropFirst(5))
      guard !command.isEmpty else { return nil }
      self = .exec(command)
    } else if text.hasPrefix("log:") {
      let pattern = String(text.dropFirst(4))
      guard !pattern.isEmpty, Self.compiles(pattern) else { return nil }
      self = .log(pattern)
    } else if text.hasPrefix("tcp:") {
      guard let (host, port) = Self.hostPort(text.dropFirst(4), defaultHost: true) else { return nil }
      self = .tcp(host: host, port: port)
    } else if text.hasPrefix("http://") {
      let rest = text.dropFirst(7)
      let slash = rest.firstIndex(of: "/") ?? rest.endIndex
      guard let (host, port) = Self.hostPort(rest[..<slash], defaultHost: false) else { return nil }
      let path = slash == rest.endIndex ? "/" : String(rest[slash...])
      // The path goes on the request line as it is: no space, no control character.
      guard path.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else { return nil }
      self = .http(host: host, port: port, path: path)
    } else {
      return nil
    }
  }

  /// Whether it may be a health check (`log:` and `notify` are about starting).
  public var checksHealth: Bool {
    switch self {
    case .tcp, .http, .exec: return true
    case .log, .notify: return false
    }
  }

  /// `PORT` (with `defaultHost`: 127.0.0.1) or `HOST:PORT`; HOST a name, an
  /// IPv4 address or `[IPv6]`, PORT 1 to 65535.
  static func hostPort(_ text: Substring, defaultHost: Bool) -> (String, UInt16)? {
    var host = defaultHost ? "127.0.0.1" : ""
    var portText = text
    if let colon = text.lastIndex(of: ":") {
      host = String(text[..<colon])
      portText = text[text.index(after: colon)...]
      if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    }
    guard !host.isEmpty, host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "/") }),
      portText.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
      let port = UInt16(portText), port > 0
    else { return nil }
    return (host, port)
  }

  static func compiles(_ pattern: String) -> Bool {
    var regex = regex_t()
    guard regcomp(&regex, pattern, REG_EXTENDED | REG_NOSUB) == 0 else { return false }
    regfree(&regex)
    return true
  }
}

/// A resource limit, set in the child before exec: one of `job.limit NAME=VALUE`
/// (SPEC: Health; soft and hard alike), or one the user's shell had at `start`
/// (`job.start-limit NAME=SOFT:HARD`), which the job gets as its own.
public struct ResourceLimit: Equatable, Sendable {
  /// The names SPEC allows in `job.limit`, and their `RLIMIT_*`.
  public static let resources: [(name: String, resource: Int32)] = [
    ("nofile", Int32(RLIMIT_NOFILE.rawValue)), ("nproc", Int32(__RLIMIT_NPROC.rawValue)),
    ("core", Int32(RLIMIT_CORE.rawValue)), ("as", Int32(RLIMIT_AS.rawValue)),
    ("fsize", Int32(RLIMIT_FSIZE.rawValue)), ("cpu", Int32(RLIMIT_CPU.rawValue)),
    ("stack", Int32(RLIMIT_STACK.rawValue)), ("memlock", Int32(__RLIMIT_MEMLOCK.rawValue)),
  ]
  public static let names = resources.map(\.name).joined(separator: " ")
  /// Every limit Linux has (prlimit's names): what a job takes from the `start` that made it.
  public static let everyResource: [(name: String, resource: Int32)] =
    resources + [
      ("data", Int32(RLIMIT_DATA.rawValue)), ("rss", Int32(__RLIMIT_RSS.rawValue)),
      ("locks", Int32(__RLIMIT_LOCKS.rawValue)), ("sigpending", Int32(__RLIMIT_SIGPENDING.rawValue)),
      ("msgqueue", Int32(__RLIMIT_MSGQUEUE.rawValue)), ("nice", Int32(__RLIMIT_NICE.rawValue)),
      ("rtprio", Int32(__RLIMIT_RTPRIO.rawValue)), ("rttime", Int32(__RLIMIT_RTTIME.rawValue)),
    ]
  /// RLIM_INFINITY (Swift cannot import its macro).
  public static let unlimited = UInt64.max

  public var name: String
  public var resource: Int32
  public var soft: UInt64
  public var hard: UInt64

  /// `NAME=VALUE` (`job.limit`): VALUE a whole number (bytes may take K, M or G)
  /// or `unlimited`, for soft and hard alike.
  public init?(parsing text: String) {
    guard let (name, resource, valueText) = Self.split(text, among: Self.resources),
      let value = Self.value(valueText, suffixes: true)
    else { return nil }
    (self.name, self.resource, soft, hard) = (name, resource, value, value)
  }

  /// `NAME=SOFT:HARD` (`job.start-limit`), as `text` writes it.
  public init?(captured text: String) {
    guard let (name, resource, pair) = Self.split(text, among: Self.everyResource),
      let colon = pair.firstIndex(of: ":"),
      let soft = Self.value(pair[..<colon], suffixes: false),
      let hard = Self.value(pair[pair.index(after: colon)...], suffixes: false), soft <= hard
    else { return nil }
    (self.name, self.resource, self.soft, self.hard) = (name, resource, soft, hard)
  }

  public init(name: String, resource: Int32, soft: UInt64, hard: UInt64) {
    (self.name, self.resource, self.soft, self.hard) = (name, resource, soft, hard)
  }

  /// `NAME=SOFT:HARD`, read back by `init(captured:)`.
  public var text: String {
    let show = { (value: UInt64) in value == Self.unlimited ? "unlimited" : String(value) }
    return "\(name)=\(show(soft)):\(show(hard))"
  }

  /// Whether this process has this limit already, soft and hard (its children inherit it).
  public var isInEffect: Bool {
    var current = rlimit()
    return getrlimit(__rlimit_resource_t(UInt32(resource)), &current) == 0 && UInt64(current.rlim_cur) == soft
      && UInt64(current.rlim_max) == hard
  }

  /// Every limit of this process (`everyResource`), to be given to the jobs it starts.
  public static func ofThisProcess() -> [ResourceLimit] {
    everyResource.compactMap { name, resource in
      var current = rlimit()
      guard getrlimit(__rlimit_resource_t(UInt32(resource)), &current) == 0 else { return nil }
      return ResourceLimit(name: name, resource: resource, soft: UInt64(current.rlim_cur), hard: UInt64(current.rlim_max))
    }
  }

  /// The names of the limits in a spawn's shortfall (`PreparedSpawn.shortfall`),
  /// `nice` for the nice value, in `everyResource`'s order.
  public static func names(inShortfall shortfall: UInt64) -> [String] {
    everyResource.filter { shortfall & (1 << UInt64($0.resource)) != 0 }.map(\.name)
      + (shortfall & (1 << UInt64(USVC_SHORT_NICE)) != 0 ? ["nice value"] : [])
  }

  private static func split(_ text: String, among table: [(name: String, resource: Int32)]) -> (String, Int32, Substring)? {
    guard let equals = text.firstIndex(of: "=") else { return nil }
    let name = String(text[..<equals])
    guard let resource = table.first(where: { $0.name == name })?.resource else { return nil }
    return (name, resource, text[text.index(after: equals)...])
  }

  private static func value(_ text: Substring, suffixes: Bool) -> UInt64? {
    if text == "unlimited" { return unlimited }
    if suffixes { return parseByteCount(String(text)).map { UInt64($0) } }
    return text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) ? UInt64(text) : nil
  }
}

/// This process's nice value (`getpriority`, which may rightly return -1).
public func currentNice() -> Int32 {
  errno = 0
  let value = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
  return errno == 0 ? value : 0
}

/// A whole number of bytes, with an optional `K`, `M` or `G` (powers of 1024);
/// nil for anything else, a negative number included.
public func parseByteCount(_ text: String) -> Int? {
  var digits = Substring(text)
  var unit = 1
  switch digits.last {
  case "K", "k": unit = 1 << 10
  case "M", "m": unit = 1 << 20
  case "G", "g": unit = 1 << 30
  default: break
  }
  if unit != 1 { digits = digits.dropLast() }
  guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
    let number = Int(digits)
  else { return nil }
  let (product, overflow) = number.multipliedReportingOverflow(by: unit)
  return overflow ? nil : product
}
