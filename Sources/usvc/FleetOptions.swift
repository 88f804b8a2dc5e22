import ArgumentParser
import Glibc
import USVCCore
import USVCSys

/// `--hosts`, `--hosts-file`, `--parallel`, `--timeout`: every verb that acts on
/// jobs runs through `Fleet` with them (SPEC: Many hosts). The verb calls
/// `run(_:)` first thing in its own `run()` when `isActive`.
struct FleetOptions: ParsableArguments {
  // .unconditional: '--hosts -oProxyCommand=…' must reach the host check, which
  // says what is wrong, instead of being read as a missing value.
  @Option(
    parsing: .unconditional,
    help: "Run on these hosts through ssh, in parallel: H1,H2,… or @NAME (a [hosts \"NAME\"] list in USVC_HOME/hosts.conf).")
  var hosts: String?
  @Option(parsing: .unconditional, help: "Run on the hosts in FILE: one per line, # comments.")
  var hostsFile: String?
  @Option(parsing: .unconditional, help: "With --hosts: how many hosts at once (default 32).")
  var parallel: Int?
  @Option(
    parsing: .unconditional,
    help: "With --hosts: seconds until the remote usvc runs; for status, jobs, pidof, show, conf and check, for the whole call (default 20).")
  var timeout: Double?

  var isActive: Bool { hosts != nil || hostsFile != nil }

  func validate() throws {
    if let parallel, parallel < 1 {
      throw UsvcError.badValue(key: "--parallel", value: String(parallel), why: "expected a number of hosts, 1 or more")
    }
    if let timeout, !(timeout > 0 && timeout <= 86400) {
      throw UsvcError.badValue(key: "--timeout", value: String(timeout), why: "expected seconds, more than 0")
    }
  }

  /// Runs this command line on the hosts and prints their lines; exits 2 when
  /// a host was unreachable or failed, else 3 when `problems` and anything was
  /// printed, else returns. `passthrough`: how many last words are the
  /// command's own whatever they look like (a program's arguments). `rolling`:
  /// host after host, stopping at the first that fails (`restart --rolling`).
  func run(_ mode: Fleet.Mode, passthrough: Int = 0, problems: Bool = false, rolling: Bool = false) throws {
    var fleet = try fleet(words: Fleet.remoteWords(Array(CommandLine.arguments.dropFirst()), passthrough: passthrough), mode: mode)
    fleet.rolling = rolling
    let result = fleet.run { output($0) }
    if !result.notRun.isEmpty {
      let stoppedAt = fleet.hosts[fleet.hosts.count - result.notRun.count - 1]
      printError("usvc: rolling restart stopped at host \(stoppedAt); not restarted: \(result.notRun.joined(separator: ", "))")
    }
    if !result.clean { throw ExitCode(2) }
    if problems && result.printed { throw ExitCode(3) }
  }

  /// The fan-out these options name, sending `words` to each host's usvc
  /// (`usvc top --hosts` sends its feed's words, not its own command line).
  func fleet(words: [String], mode: Fleet.Mode) throws -> Fleet {
    if USVC.viaStandardInput { throw UsvcError.fleet("--hosts is refused in a command read by --stdin-args") }
    let environment = processEnvironment()
    let names = try Fleet.hostNames(list: hosts, file: hostsFile) { () throws(UsvcError) in
      try Home.open(environment: environment, forWriting: false).path + "/hosts.conf"
    }
    var fleet = try Fleet(hosts: names, words: words, mode: mode, environment: environment)
    if let parallel { fleet.maxParallel = parallel }
    if let timeout { fleet.timeout = timeout }
    return fleet
  }

  /// `usvc attach --host HOST [JOB]`: replaces this process with `ssh -t`.
  static func attach(host: String, job: String?) throws -> Never {
    let environment = processEnvironment()
    let fleet = try Fleet(hosts: [host], words: [], mode: .acting, environment: environment)
    let argv = try fleet.attachArguments(host: host, job: job)
    guard isatty(0) == 1 else { throw UsvcError.notATerminal(command: "attach", what: "standard input is not one") }
    try replaceProcess(argv, environment: environment)
  }
}
