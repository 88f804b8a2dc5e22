import Foundation
import Testing

@testable import USVCCore
import USVCContract
import USVCSys

/// A throw-away sshd (Tests/fixtures/sshd.sh) whose aliases `hosta` and `hostb`
/// log in with USVC_HOME set to a home of their own, each holding jobs, and
/// `hostdown` points at a closed port. `local` runs usvc with USVC_SSH and
/// USVC_REMOTE_COMMAND pointing at them. Torn down (tmux servers, jobs, sshd,
/// files) when the test ends.
final class SSHHosts: @unchecked Sendable {  // Used from one test at a time.
  let local: TestHome
  var directory: String { local.root }
  /// The homes of hosta and hostb, which hold jobs from the start.
  var homes: [String] { [directory + "/home-a", directory + "/home-b"] }
  /// hostc's home (the host behind a relay that can be cut), empty at first.
  var homeC: String { directory + "/home-c" }
  /// The user the aliases log in as (a plain one when the tests run as root), nil when it is us.
  private(set) var remoteUser: String?

  /// Starts sshd, then `alpha-1` behind hosta and `beta-1`, `beta-2` behind
  /// hostb. Cancels (skips) the test when sshd cannot run on this machine.
  init() throws {
    local = try TestHome()
    let fixture = try TestHome.run(
      ["/bin/bash", packageRoot + "/Tests/fixtures/sshd.sh", "up", local.root], environment: local.environment)
    if fixture.status == 3 { try skip("sshd cannot run here: \(fixture.stderr)") }
    guard fixture.status == 0 else { throw FixtureError(what: "sshd.sh up", output: fixture.stderr) }
    // usvc refuses a home others could write to; the fixture made these with the umask's modes.
    for home in homes + [homeC] { chmod(home, 0o700) }
    let user = (local.read(directory + "/remote-user") ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    remoteUser = user.isEmpty || user == String(cString: getpwuid(geteuid()).pointee.pw_name) ? nil : user
    local.environment["USVC_SSH"] = directory + "/ssh"
    local.environment["USVC_REMOTE_COMMAND"] = usvcBinary
    try run(in: homes[0], "start", "alpha", "sleep", "1000")
    try run(in: homes[1], "start", "-n", "2", "beta", "sleep", "1000")
  }

  deinit {
    // The control masters usvc left (ControlPersist would keep them a minute more).
    var variables = local.environment
    variables["USVC_SSH"] = directory + "/ssh"  // a test may have put a stand-in there
    variables["USVC_SSH_MUX"] = nil
    let environment = variables.map { "\($0.key)=\($0.value)" }
    for alias in ["hosta", "hostb", "hostc", "hostdown", "hosthang"] {
      guard let fleet = try? Fleet(hosts: [alias], words: [], mode: .reading, environment: environment),
        let path = fleet.controlPath(for: alias), FileManager.default.fileExists(atPath: path)
      else { continue }
      _ = try? TestHome.run([fleet.ssh, "-o", "ControlPath=" + path, "-O", "exit", alias], environment: variables)
    }
    for home in homes + [homeC] {
      let socket = home + "/tmux.sock"
      if FileManager.default.fileExists(atPath: socket) {
        _ = try? TestHome.run(["tmux", "-S", socket, "kill-server"], environment: local.environment)
      }
      for process in ProcStat.all() where ProcStat.environment(of: process.pid).contains("USVC_HOME=\(home)") {
        kill(process.pid, SIGKILL)
      }
    }
    _ = try? TestHome.run(
      ["/bin/bash", packageRoot + "/Tests/fixtures/sshd.sh", "down", local.root], environment: local.environment)
    // `local` goes next and removes the directory.
  }

  /// Runs usvc locally in one of the remote homes, as if logged in there (as the remote user).
  func run(in home: String, _ arguments: String...) throws {
    let outcome = try runAsRemote(in: home, [usvcBinary] + arguments)
    guard outcome.status == 0 else { throw FixtureError(what: "usvc \(arguments)", output: outcome.stderr) }
  }

  /// Runs `argv` with USVC_HOME=home as the user the aliases log in as.
  func runAsRemote(in home: String, _ argv: [String]) throws -> Outcome {
    var environment = local.environment
    environment["USVC_HOME"] = home
    return try TestHome.run((remoteUser.map { ["/usr/sbin/runuser", "-u", $0, "--"] } ?? []) + argv, environment: environment)
  }

  /// A script the remote user can run (whatever umask the test process has by now:
  /// a Supervisor made in-process sets 077).
  func remoteScript(_ name: String, _ body: String) throws -> String {
    let path = try local.script(name, body)
    chmod(path, 0o755)
    return path
  }

  /// A file anyone may write (the remote user records into it), empty.
  func sharedFile(_ name: String) -> String {
    let path = directory + "/" + name
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o666)
    if fd >= 0 { close(fd) }
    chmod(path, 0o666)  // not the umask's
    return path
  }
}

/// Cancels (skips) the running test. Not called straight from an initializer:
/// there a never-returning call makes Swift warn about its generated cleanup.
func skip(_ why: String) throws { try Test.cancel(Comment(rawValue: why)) }

struct FixtureError: Error, CustomStringConvertible {
  var what: String
  var output: String
  var description: String { "\(what) failed: \(output)" }
}

/// The second field of each line: `system`, a job name, `unreachable` or `error`.
func secondFields(_ outcome: Outcome) -> [String] {
  outcome.lines.map { line in
    let fields = line.split(separator: " ")
    return fields.count > 1 ? String(fields[1]) : ""
  }
}

/// `usvc VERB --hosts`, end to end through a real sshd on 127.0.0.1, the remote side a plain user when we are root.
@Suite("many hosts, through a real sshd", .serialized)
struct HostsTests {
  @Test("each host's lines come in the order the hosts were given, with that host's own jobs")
  func orderKept() throws {
    let s = try SSHHosts()
    let forward = try s.local.usvc("status", "--hosts", "hosta,hostb")
    #expect(forward.status == 0, "\(forward.stderr)")
    #expect(forward.stderr == "")
    #expect(secondFields(forward) == ["system", "alpha-1", "system", "beta-1", "beta-2"])
    // Each line begins with the host as given (both aliases are this machine), as SPEC says.
    #expect(forward.lines.map { $0.split(separator: " ").first.map(String.init) ?? "" } == ["hosta", "hosta", "hostb", "hostb", "hostb"])

    let reversed = try s.local.usvc("status", "--hosts", "hostb,hosta")
    #expect(reversed.status == 0, "\(reversed.stderr)")
    #expect(secondFields(reversed) == ["system", "beta-1", "beta-2", "system", "alpha-1"])
  }

  @Test("an unreachable host gets one line in its place, the others still print, and the exit code is 2")
  func unreachableHost() throws {
    let s = try SSHHosts()
    let mixed = try s.local.usvc("status", "--hosts", "hosta,hostdown,hostb")
    #expect(mixed.status == 2)
    #expect(mixed.stderr == "")
    #expect(secondFields(mixed) == ["system", "alpha-1", "unreachable", "system", "beta-1", "beta-2"])
    let down = mixed.lines.filter { $0.hasPrefix("hostdown") }
    #expect(down.count == 1)
    #expect(down.first?.hasPrefix("hostdown  unreachable  ssh: connect to host 127.0.0.1 port ") == true, "\(down)")
    #expect(down.first?.hasSuffix(": Connection refused") == true, "\(down)")
  }

  @Test("--json prints one parseable object per host, an unreachable host as {host, unreachable}")
  func jsonLines() throws {
    let s = try SSHHosts()
    let result = try s.local.usvc("status", "--json", "--hosts", "hosta,hostdown,hostb")
    #expect(result.status == 2)
    let objects = try result.lines.map { line in
      try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
    }
    try #require(objects.count == 3, "\(result.stdout)")
    func jobNames(_ object: [String: Any]) -> [String] {
      (object["jobs"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
    }
    #expect(objects[0]["host"] as? String == "hosta" && objects[0]["hostname"] as? String == hostName())
    #expect(jobNames(objects[0]) == ["alpha-1"])
    #expect(Set(objects[1].keys) == ["host", "unreachable"])
    #expect(objects[1]["host"] as? String == "hostdown")
    #expect((objects[1]["unreachable"] as? String)?.hasSuffix("Connection refused") == true)
    #expect(objects[2]["host"] as? String == "hostb" && objects[2]["hostname"] as? String == hostName())
    #expect(jobNames(objects[2]) == ["beta-1", "beta-2"])
  }

  @Test("selectors and flags reach the remote usvc as typed, never interpreted by its shell")
  func selectorsAndFlags() throws {
    let s = try SSHHosts()
    let systemOnly = try s.local.usvc("status", "-s", "--hosts", "hosta,hostb")
    #expect(systemOnly.status == 0, "\(systemOnly.stderr)")
    #expect(secondFields(systemOnly) == ["system", "system"])

    // hosta has no beta: that host's usvc fails, hostb answers, exit 2.
    let beta = try s.local.usvc("status", "--hosts", "hosta,hostb", "beta")
    #expect(beta.status == 2)
    #expect(beta.lines.first == "hosta  error  no job or group named 'beta'")
    #expect(secondFields(beta) == ["error", "system", "beta-1", "beta-2"])

    let marker = s.directory + "/pwned"
    for selector in ["it's $(touch \(marker))", "`touch \(marker)`", "x; touch \(marker)", "-s", "--json"] {
      let hostile = try s.local.usvc(["status", "--hosts", "hosta", "--", selector])
      #expect(hostile.status == 2)
      #expect(hostile.lines == ["hosta  error  no job or group named '\(selector)'"])
    }
    #expect(!FileManager.default.fileExists(atPath: marker))
  }

  @Test("a remote login that prints more than usvc (a greeting, an escape sequence): every line begins with a host, nothing reaches the terminal raw, --json stays JSON Lines, exit 2")
  func noisyRemote() throws {
    let s = try SSHHosts()
    // What a chatty shell startup file does before the remote usvc runs.
    s.local.environment["USVC_REMOTE_COMMAND"] = try s.remoteScript(
      "noisy-usvc", #"printf 'not json at all\033]0;PWNED\007\n'; exec "# + "'\(usvcBinary)'" + #" "$@""#)
    let text = try s.local.usvc("status", "--hosts", "hosta,hostb")
    #expect(text.status == 2)
    #expect(text.stderr == "")
    #expect(secondFields(text) == ["error", "system", "alpha-1", "error", "system", "beta-1", "beta-2"])
    #expect(text.lines.filter { $0.contains("error") } == [
      #"hosta  error  unexpected output: not json at all\x1b]0;PWNED\x07"#,
      #"hostb  error  unexpected output: not json at all\x1b]0;PWNED\x07"#,
    ])
    #expect(text.lines.allSatisfy { $0.hasPrefix("hosta  ") || $0.hasPrefix("hostb  ") })
    #expect(!text.stdout.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" })

    let json = try s.local.usvc("status", "--json", "--hosts", "hosta,hostb")
    #expect(json.status == 2)
    let objects = try json.lines.map { line in
      try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
    }
    try #require(objects.count == 4, "\(json.stdout)")
    #expect(objects[0] as? [String: String] == ["host": "hosta", "error": #"unexpected output: not json at all\x1b]0;PWNED\x07"#])
    #expect(objects[1]["host"] as? String == "hosta" && objects[1]["jobs"] != nil)
    #expect(objects[2] as? [String: String] == ["host": "hostb", "error": #"unexpected output: not json at all\x1b]0;PWNED\x07"#])
    #expect(objects[3]["host"] as? String == "hostb" && objects[3]["jobs"] != nil)
  }

  @Test("every verb runs on every host given, each line beginning with that host, exit 0")
  func everyVerb() throws {
    let s = try SSHHosts()
    func both(_ arguments: String...) throws -> Outcome {
      let result = try s.local.usvc([arguments[0], "--hosts", "hosta,hostb"] + arguments.dropFirst())
      #expect(result.status == 0, "\(arguments): \(result.stdout) \(result.stderr)")
      #expect(result.stderr == "", "\(arguments)")
      #expect(result.lines.allSatisfy { $0.hasPrefix("hosta  ") || $0.hasPrefix("hostb  ") || $0.hasPrefix("hosta\t") || $0.hasPrefix("hostb\t") }, "\(arguments): \(result.stdout)")
      return result
    }
    #expect(try both("start", "-n", "2", "web", "sleep", "1000").lines == [
      "hosta  started web-1", "hosta  started web-2", "hostb  started web-1", "hostb  started web-2",
    ])
    #expect(try both("jobs", "web").lines == ["hosta  web-1", "hosta  web-2", "hostb  web-1", "hostb  web-2"])
    #expect(try both("pidof", "web-1").lines.allSatisfy { Int($0.split(separator: " ").last ?? "") != nil })
    #expect(try both("show", "web-2").lines.contains("hostb  job.cmd: /usr/bin/sleep"))
    #expect(try both("conf", "web-1", "args").lines == ["hosta  1000", "hostb  1000"])
    #expect(try both("check").lines == ["hosta  ok: 3 jobs checked", "hostb  ok: 4 jobs checked"])
    #expect(try both("logs", "-n", "1", "web-1").lines.count == 2)
    #expect(try both("events", "-n", "1").lines.allSatisfy { $0.split(separator: "\t").count >= 4 })
    #expect(try both("kill", "-s", "CONT", "web-1").lines == ["hosta  sent SIGCONT to web-1", "hostb  sent SIGCONT to web-1"])
    #expect(try both("restart", "web-2").lines == ["hosta  started web-2", "hostb  started web-2"])
    #expect(try both("stop", "web-2").lines == ["hosta  stopped web-2", "hostb  stopped web-2"])
    #expect(try both("rm", "web-2").lines == ["hosta  removed web-2", "hostb  removed web-2"])
    _ = try both("shutdown")
    #expect(try both("resurrect").lines.contains("hostb  started web-1"))
    #expect(try both("status", "web").lines.count == 4)
  }

  @Test("restart --rolling --hosts goes host after host: the next host's jobs start only once the last one's are ready")
  func rollingHostAfterHost() throws {
    let s = try SSHHosts()
    // On hosta, a job that takes a second to be ready (it prints "up").
    try s.run(in: s.homes[0], "start", "--ready", "log:^up$", "slow", "/bin/sh", "-c", "sleep 1; echo up; exec sleep 1000")
    let roll = try s.local.usvc("restart", "--rolling", "--hosts", "hosta,hostb", "all")
    #expect(roll.status == 0, "\(roll.stderr)")
    #expect(roll.stderr == "")
    #expect(roll.lines == ["hosta  started alpha-1", "hosta  started slow-1", "hostb  started beta-1", "hostb  started beta-2"])
    let slow = try #require(JobPaths(home: s.homes[0], name: "slow-1").readState())
    #expect(slow.state == .running)
    for beta in ["beta-1", "beta-2"] {
      let run = try #require(JobPaths(home: s.homes[1], name: beta).readState())
      #expect(run.started >= slow.since, "\(beta) started at \(run.started), before slow-1 was ready at \(slow.since)")
    }
  }

  @Test("restart --rolling --hosts stops at a host that fails: the hosts after it untouched, one usvc: line names them, exit 2")
  func rollingStopsAtHost() throws {
    let s = try SSHHosts()
    let before = try #require(JobPaths(home: s.homes[1], name: "beta-1").readState())
    // hosta has no beta: its usvc fails there, and hostb is never asked.
    let roll = try s.local.usvc("restart", "--rolling", "--hosts", "hosta,hostb", "beta")
    #expect(roll.status == 2)
    #expect(roll.lines == ["hosta  error  no job or group named 'beta'"])
    #expect(roll.stderr == "usvc: rolling restart stopped at host hosta; not restarted: hostb\n")
    let after = try #require(JobPaths(home: s.homes[1], name: "beta-1").readState())
    #expect(after.pid == before.pid && after.restarts == before.restarts, "hostb's beta-1 was restarted")
    // Without --rolling, every host is asked at once, as for any verb.
    let plain = try s.local.usvc("restart", "--hosts", "hosta,hostb", "beta")
    #expect(plain.status == 2)
    #expect(plain.lines == ["hosta  error  no job or group named 'beta'", "hostb  started beta-1", "hostb  started beta-2"])
  }

  @Test("a hanging host costs at most --timeout, a host without usvc gets a line naming USVC_REMOTE_COMMAND, a remote refusal is that host's error; exit 2")
  func failingHosts() throws {
    let s = try SSHHosts()
    let started = Date()
    let hung = try s.local.usvc("jobs", "--hosts", "hosthang,hosta,hostdown", "--timeout", "2")
    #expect(Date().timeIntervalSince(started) < 15)  // 2 s and the machine's load; 20 s would be the default.
    #expect(hung.status == 2)
    #expect(hung.lines.first == "hosthang  unreachable  timed out after 2 s")
    #expect(hung.lines.dropFirst().first == "hosta  alpha-1")
    #expect(hung.lines.last?.hasPrefix("hostdown  unreachable  ") == true)
    let acting = try s.local.usvc("stop", "--hosts", "hosthang", "--timeout", "2", "nope")
    #expect(acting.status == 2 && acting.lines.count == 1 && acting.lines[0].hasPrefix("hosthang  unreachable  "), "\(acting.stdout)")

    s.local.environment["USVC_REMOTE_COMMAND"] = "/no/such/usvc"
    let missing = try s.local.usvc("status", "--hosts", "hosta")
    #expect(missing.status == 2)
    #expect(missing.lines.count == 1 && missing.lines[0].hasPrefix("hosta  error  no usvc to run there ("), "\(missing.stdout)")
    #expect(missing.lines.first?.hasSuffix("or set USVC_REMOTE_COMMAND to its path there") == true)
    s.local.environment["USVC_REMOTE_COMMAND"] = usvcBinary

    let refused = try s.local.usvc("kill", "--hosts", "hostb,hosta", "-s", "HUP", "beta-1")
    #expect(refused.status == 2)
    #expect(refused.lines == ["hostb  sent SIGHUP to beta-1", "hosta  error  no job or group named 'beta-1'"])
    // Refused locally: nothing is sent, exit 1.
    let local = try s.local.usvc("kill", "--hosts", "hosta", "-s", "NOPE", "alpha-1")
    #expect(local.status == 1 && local.stderr == "usvc: unknown signal 'NOPE'\n" && local.stdout == "")
  }

  @Test("the words travel on the remote usvc's stdin: its command line holds no value, -e reaches the job")
  func wordsOnStandardInput() throws {
    let s = try SSHHosts()
    let record = s.sharedFile("cmdlines")
    // The remote usvc's argv as its own /proc says (exec keeps the pid).
    s.local.environment["USVC_REMOTE_COMMAND"] = try s.remoteScript(
      "recording-usvc", "tr '\\0' ' ' < /proc/$$/cmdline >> '\(record)'; echo >> '\(record)'; exec '\(usvcBinary)' \"$@\"")
    let started = try s.local.usvc(
      "start", "--hosts", "hosta", "-e", "TOKEN=hunter2 $(touch /tmp/x)", "sec", "sh", "-c", "echo \"$TOKEN\"; sleep 1000")
    #expect(started.status == 0, "\(started.stderr)")
    let lines = (s.local.read(record) ?? "").split(separator: "\n")
    #expect(lines.count == 1 && lines[0].hasSuffix(" --stdin-args "), "\(lines)")
    #expect(!(s.local.read(record) ?? "").contains("hunter2"))
    #expect(try eventually { try s.local.usvc("logs", "--hosts", "hosta", "sec-1").lines.contains("hosta  hunter2 $(touch /tmp/x)") })
    // A remote usvc given --hosts through its stdin refuses it (no relaying).
    let relay = try s.runAsRemote(in: s.homes[0], ["/bin/sh", "-c", "printf 'jobs\\0--hosts\\0hostb\\0' | '\(usvcBinary)' --stdin-args"])
    #expect(relay.status == 1 && relay.stderr == "usvc: --hosts is refused in a command read by --stdin-args\n")
  }

  @Test("status --problems prints only the jobs that need a look, with their host's system line, exit 3; nothing and exit 0 when all is well")
  func problems() throws {
    let s = try SSHHosts()
    let calm = try s.local.usvc("status", "--problems", "--hosts", "hosta,hostb")
    #expect(calm.status == 0 && calm.stdout == "", "\(calm.stdout)")
    try s.run(in: s.homes[1], "start", "--once", "bad", "sh", "-c", "exit 3")
    var result = calm
    #expect(try eventually {
      result = try s.local.usvc("status", "--problems", "--hosts", "hosta,hostb")
      return result.status == 3
    })
    #expect(secondFields(result) == ["system", "bad-1"], "\(result.stdout)")
    // The system line still counts every job of the host.
    #expect(result.lines.first?.contains("jobs 3: 2 running, 1 exited") == true, "\(result.stdout)")
    #expect(result.lines.allSatisfy { $0.hasPrefix("hostb  ") })
    let down = try s.local.usvc("status", "--problems", "--hosts", "hosta,hostdown")
    #expect(down.status == 2 && secondFields(down) == ["unreachable"])
  }

  @Test("logs -f interleaves whole lines from every host as they come, each beginning with its host")
  func followInterleaves() throws {
    let s = try SSHHosts()
    for home in s.homes {
      try s.run(in: home, "start", "ticker", "sh", "-c", "i=0; while :; do i=$((i+1)); echo \"tick $i\"; sleep 0.1; done")
    }
    // Followed until killed: printed at all means printed as it came (host by host would wait for hosta's end).
    let followed = try TestHome.run(
      ["/usr/bin/timeout", "-s", "INT", "5", usvcBinary, "logs", "-f", "-n", "0", "--hosts", "hosta,hostb", "ticker-1"],
      environment: s.local.environment)
    let ticks = followed.lines.filter { !$0.contains("[usvc]") }
    #expect(ticks.allSatisfy { $0.wholeMatch(of: /host[ab]  tick [0-9]+/) != nil }, "\(followed.stdout)")
    #expect(ticks.filter { $0.hasPrefix("hosta  ") }.count >= 3, "\(followed.stdout) \(followed.stderr)")
    #expect(ticks.filter { $0.hasPrefix("hostb  ") }.count >= 3, "\(followed.stdout) \(followed.stderr)")
  }

  @Test("logs -t and --since reach every host: 'HOST  TIME line', cut by each host's own index; -f -t too")
  func timedLogsAcrossHosts() throws {
    let s = try SSHHosts()
    let began = Int64(time(nil))
    for home in s.homes {
      try s.run(in: home, "start", "ticker", "sh", "-c", "i=0; while :; do i=$((i+1)); echo \"tick $i\"; sleep 0.1; done")
    }
    let stamp = /[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z/
    #expect(try eventually {
      try s.local.usvc("logs", "-n", "3", "--hosts", "hosta,hostb", "ticker-1").lines.filter { $0.contains("tick 3") }.count == 2
    })
    let timed = try s.local.usvc("logs", "-t", "-n", "3", "--hosts", "hosta,hostb", "ticker-1")
    #expect(timed.status == 0, "\(timed.stderr)")
    #expect(timed.lines.count == 6, "\(timed.stdout)")
    for line in timed.lines {
      let match = line.wholeMatch(of: /(host[ab])  (\S+) (.*)/)
      #expect(match != nil, "\(line)")
      guard let match else { continue }
      #expect(match.2.wholeMatch(of: stamp) != nil, "\(line)")
      let time = Int64(ISO8601DateFormatter().date(from: String(match.2))?.timeIntervalSince1970 ?? 0)
      #expect(time >= began && time <= Int64(Foundation.time(nil)), "\(line)")
    }
    // --since a second that has not come yet cuts everything; one before the start cuts nothing.
    let future = try s.local.usvc("logs", "--since", "2100-01-01T00:00Z", "--hosts", "hosta,hostb", "ticker-1")
    #expect(future.status == 0 && future.stdout.isEmpty, "\(future.stdout) \(future.stderr)")
    let since = try s.local.usvc("logs", "--since", "10m", "--hosts", "hosta,hostb", "ticker-1")
    #expect(since.lines.contains("hosta  tick 1") && since.lines.contains("hostb  tick 1"), "\(since.stdout)")
    // A bad value is refused here, before any host is asked.
    let bad = try s.local.usvc("logs", "--since", "yesterday", "--hosts", "hosta", "ticker-1")
    #expect(bad.status == 1 && bad.stdout.isEmpty && bad.stderr.hasPrefix("usvc: bad value for --since: 'yesterday': "), "\(bad.stderr)")
    let followed = try TestHome.run(
      ["/usr/bin/timeout", "-s", "INT", "4", usvcBinary, "logs", "-f", "-t", "-n", "0", "--hosts", "hosta,hostb", "ticker-1"],
      environment: s.local.environment)
    let ticks = followed.lines.filter { $0.contains(" tick ") }
    #expect(ticks.allSatisfy { $0.wholeMatch(of: /host[ab]  [0-9T:Z-]+ tick [0-9]+/) != nil }, "\(followed.stdout)")
    #expect(ticks.contains { $0.hasPrefix("hosta  ") } && ticks.contains { $0.hasPrefix("hostb  ") }, "\(followed.stdout) \(followed.stderr)")
  }

  @Test("attach --host runs ssh -t with the remote usvc attach JOB; a bad host or job name is refused before ssh runs")
  func attachThroughSSH() throws {
    let s = try SSHHosts()
    let record = s.directory + "/attach-argv"
    s.local.environment["USVC_SSH"] = try s.local.script("record-ssh", "printf '%s\\n' \"$@\" > '\(record)'")
    // attach wants a terminal: script(1) gives it one.
    let attached = try TestHome.run(
      ["/usr/bin/script", "-qec", "'\(usvcBinary)' attach --host hosta alpha-1", "/dev/null"], environment: s.local.environment)
    #expect(attached.status == 0, "\(attached.stdout)")
    let argv = (s.local.read(record) ?? "").split(separator: "\n").map(String.init)
    #expect(Array(argv.suffix(4)) == ["-t", "--", "hosta", "\(usvcBinary) attach alpha-1"], "\(argv)")
    try? FileManager.default.removeItem(atPath: record)
    for (host, job, message) in [("-oProxyCommand=x", "alpha-1", "usvc: bad host name '-oProxyCommand=x'"),
                                 ("hosta", "x;touch y", "usvc: no job named 'x;touch y'")] {
      let refused = try s.local.usvc("attach", "--host", host, job)
      #expect(refused.status == 1 && refused.stderr == message + "\n", "\(refused.stderr)")
    }
    #expect(s.local.read(record) == nil)
  }

  @Test("--hosts @NAME reads the list from USVC_HOME/hosts.conf; an unknown list is refused")
  func namedList() throws {
    let s = try SSHHosts()
    let home = try #require(s.local.environment["USVC_HOME"])
    try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    try "[hosts \"both\"]\n\thost = hostb\n\thost = hosta\n".write(toFile: home + "/hosts.conf", atomically: true, encoding: .utf8)
    let result = try s.local.usvc("jobs", "--hosts", "@both")
    #expect(result.status == 0 && result.lines == ["hostb  beta-1", "hostb  beta-2", "hosta  alpha-1"], "\(result.stderr)")
    let unknown = try s.local.usvc("jobs", "--hosts", "@nope")
    #expect(unknown.status == 1 && unknown.stderr.hasPrefix("usvc: no host list named 'nope' in "))
  }

  @Test("a second call goes through the control master the first left: no new login")
  func sharedConnection() throws {
    let s = try SSHHosts()
    s.local.environment.removeValue(forKey: "USVC_SSH_MUX")
    func logins() -> Int { (s.local.read(s.directory + "/sshd.log") ?? "").components(separatedBy: "Accepted publickey").count - 1 }
    _ = try s.local.usvc("jobs", "--hosts", "hosta,hostb")
    let before = logins()
    let again = try s.local.usvc("jobs", "--hosts", "hosta,hostb")
    #expect(again.status == 0)
    #expect(logins() == before)
    s.local.environment["USVC_SSH_MUX"] = "no"
    _ = try s.local.usvc("jobs", "--hosts", "hosta,hostb")
    #expect(logins() == before + 2)
  }

  @Test("--hosts-file names one host per line; comments and blank lines are skipped")
  func hostsFile() throws {
    let s = try SSHHosts()
    let file = s.local.file("hosts")
    try "# the b side first\n\nhostb\n   hosta   # then a\r\n\n".write(toFile: file, atomically: true, encoding: .utf8)
    let result = try s.local.usvc("status", "--hosts-file", file)
    #expect(result.status == 0, "\(result.stderr)")
    #expect(secondFields(result) == ["system", "beta-1", "beta-2", "system", "alpha-1"])
  }

  @Test("a host name that begins with '-', holds spaces or control characters, or is empty is refused before anything runs")
  func badHostNames() throws {
    let t = try TestHome()
    let marker = t.file("pwned")
    let ran = t.file("ssh-ran")
    t.environment["USVC_SSH"] = try t.script("ssh", "touch '\(ran)'")
    let cases: [([String], String)] = [
      (["--hosts", "-oProxyCommand=touch \(marker)"], "-oProxyCommand=touch \(marker)"),
      (["--hosts=-oProxyCommand=touch \(marker)"], "-oProxyCommand=touch \(marker)"),
      (["--hosts", "hosta,-oProxyCommand=touch \(marker)"], "-oProxyCommand=touch \(marker)"),
      (["--hosts", "two words"], "two words"),
      (["--hosts", "hosta,,hostb"], ""),
      (["--hosts", ""], ""),
      (["--hosts", "tab\there"], "tab\\there"),
      (["--hosts", "new\nline"], "new\\nline"),
    ]
    for (arguments, shown) in cases {
      let result = try t.usvc(["status"] + arguments)
      #expect(result.status == 1, "\(arguments)")
      #expect(result.stdout == "")
      #expect(result.stderr == "usvc: bad host name '\(shown)'\n")
    }
    try "hosta\n-oProxyCommand=touch \(marker)\n".write(toFile: t.file("hosts"), atomically: true, encoding: .utf8)
    let fromFile = try t.usvc("status", "--hosts-file", t.file("hosts"))
    #expect(fromFile.status == 1)
    #expect(fromFile.stderr == "usvc: bad host name '-oProxyCommand=touch \(marker)'\n")
    #expect(!FileManager.default.fileExists(atPath: marker))
    #expect(!FileManager.default.fileExists(atPath: ran))
  }

  @Test("an unreadable or empty hosts file is refused with its reason, exit 1")
  func badHostsFile() throws {
    let t = try TestHome()
    let missing = try t.usvc("status", "--hosts-file", t.file("nope"))
    #expect(missing.status == 1)
    #expect(missing.stderr == "usvc: \(t.file("nope")): No such file or directory\n")
    let directory = try t.usvc("status", "--hosts-file", t.root)
    #expect(directory.stderr == "usvc: \(t.root): Is a directory\n")
    try "# nobody\n\n".write(toFile: t.file("empty"), atomically: true, encoding: .utf8)
    let empty = try t.usvc("status", "--hosts-file", t.file("empty"))
    #expect(empty.status == 1)
    #expect(empty.stderr == "usvc: \(t.file("empty")): no host names in it\n")
    t.environment["USVC_SSH"] = "no-such-ssh"
    let noSSH = try t.usvc("status", "--hosts", "hosta")
    #expect(noSSH.status == 1)
    #expect(noSSH.stderr == "usvc: no-such-ssh: command not found\n")
  }
}

/// Fleet itself, with stand-ins for ssh: deadlines, the bound, quoting, outcomes.
@Suite("many hosts: the core")
struct CoreHostsTests {
  /// A Fleet whose ssh is a shell script; in it `$6` is the host (no control master).
  func makeRemote(_ t: TestHome, hosts: [String], ssh body: String, mode: Fleet.Mode = .reading) throws -> Fleet {
    try Fleet(
      hosts: hosts, words: ["status"], mode: mode,
      environment: ["USVC_SSH=\(try t.script("ssh", body))", "PATH=/usr/bin:/bin", "USVC_SSH_MUX=no"])
  }

  func ask(_ remote: Fleet) -> [HostReport] {
    var reports: [HostReport] = []
    remote.exchange { reports.append($0) }
    return reports
  }

  @Test("a host that does not answer in time is killed at its deadline and reported as timed out")
  func timeout() throws {
    let t = try TestHome()
    var remote = try makeRemote(t, hosts: ["slow1", "fast", "slow2"], ssh: #"[ "$6" = fast ] || exec sleep 60; echo "$6  system""#)
    remote.timeout = 3  // Room for the fast one on a loaded machine.
    let reports = ask(remote)
    #expect(reports == [
      HostReport(host: "slow1", output: "", outcome: .unreachable("timed out after 3 s")),
      HostReport(host: "fast", output: "fast  system\n", outcome: .answered),
      HostReport(host: "slow2", output: "", outcome: .unreachable("timed out after 3 s")),
    ])
  }

  @Test("for a verb that may take long, --timeout counts only until the remote usvc says it runs (its first byte, a NUL, taken out)")
  func timeoutUntilArrival() throws {
    let t = try TestHome()
    var remote = try makeRemote(
      t, hosts: ["slowlogin", "slowverb"],
      ssh: #"[ "$6" = slowverb ] || exec sleep 60; printf 'hi\n\0'; sleep 4; echo "stopped a-1""#, mode: .acting)
    remote.timeout = 2
    #expect(ask(remote) == [
      HostReport(host: "slowlogin", output: "", outcome: .unreachable("timed out after 2 s")),
      HostReport(host: "slowverb", output: "hi\nstopped a-1\n", outcome: .answered),
    ])
  }

  @Test("hosts are asked in parallel: each answers only once all three have started")
  func parallel() throws {
    let t = try TestHome()
    let dir = t.root
    // Run one after the other, the first would wait for the others until its deadline.
    var remote = try makeRemote(t, hosts: ["p1", "p2", "p3"], ssh: """
      touch "\(dir)/up.$6"
      i=0; while [ "$(ls "\(dir)" | grep -c '^up\\.')" -lt 3 ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i + 1)); done
      [ $i -lt 1000 ] && echo "$6  system"
      """)
    remote.timeout = 15
    let reports = ask(remote)
    #expect(reports.map(\.outcome) == [.answered, .answered, .answered])
  }

  @Test("while streaming (a follow never ends), only hosts still connecting count against maxParallel")
  func streamingBound() throws {
    let t = try TestHome()
    let dir = t.root
    // Each answers only once all three run: with the plain bound of 1, the first would wait alone.
    var remote = try makeRemote(t, hosts: ["p1", "p2", "p3"], ssh: """
      printf '\\0'; touch "\(dir)/up.$6"
      i=0; while [ "$(ls "\(dir)" | grep -c '^up\\.')" -lt 3 ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i + 1)); done
      [ $i -lt 1000 ] && echo "$6 saw all"
      """, mode: Fleet.Mode(shape: .plain, bounded: false, streaming: true))
    remote.maxParallel = 1
    var lines: [String] = []
    var reports: [HostReport] = []
    remote.exchange(line: { lines.append("\(remote.hosts[$0]): " + String(decoding: $1, as: UTF8.self)) }, done: { reports.append($0) })
    #expect(lines.sorted() == ["p1: p1 saw all", "p2: p2 saw all", "p3: p3 saw all"])
    #expect(reports.count == 3 && reports.allSatisfy { $0.outcome == .answered && $0.output.isEmpty })
  }

  @Test("no more than maxParallel ssh run at once")
  func bound() throws {
    let t = try TestHome()
    let dir = t.root
    // Each fake ssh records how many are up and not done when it starts.
    var remote = try makeRemote(t, hosts: ["a", "b", "c", "d"], ssh: """
      touch "\(dir)/up.$6"
      echo $(( $(ls "\(dir)" | grep -c '^up\\.') - $(ls "\(dir)" | grep -c '^done\\.') )) > "\(dir)/seen.$6"
      sleep 0.5; touch "\(dir)/done.$6"; echo "$6  system"
      """)
    remote.timeout = 15
    remote.maxParallel = 2
    let reports = ask(remote)
    #expect(reports.map(\.host) == ["a", "b", "c", "d"])
    #expect(reports.allSatisfy { $0.outcome == .answered })
    let seen = ["a", "b", "c", "d"].compactMap { Int((t.read(t.file("seen.\($0)")) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)) }
    #expect(seen.count == 4 && seen.allSatisfy { $0 >= 1 && $0 <= 2 }, "\(seen)")
  }

  @Test("a host is done when its ssh ends, even if a child of ssh keeps the pipes open")
  func leftoverChild() throws {
    let t = try TestHome()
    let pidFile = t.file("leftover")
    let remote = try makeRemote(t, hosts: ["h"], ssh: #"sleep 30 & echo $! > "\#(pidFile)"; echo "$6  system""#)
    // Waiting for the pipes would end in "timed out after 20 s" (the leftover sleeps 30 s).
    let reports = ask(remote)
    if let pid = t.read(pidFile).flatMap({ pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) {
      kill(pid, SIGKILL)
    }
    #expect(reports == [HostReport(host: "h", output: "h  system\n", outcome: .answered)])
  }

  @Test("every remote word is single-quoted so a POSIX shell gives it back exactly")
  func quoting() throws {
    #expect("it's".shellQuoted == #"'it'\''s'"#)
    let words = CoreIntegrationTests.hostileArguments
    let script = #"printf '%s\0' "# + words.map(\.shellQuoted).joined(separator: " ")
    let result = try TestHome.run(["/bin/sh", "-c", script], environment: [:])
    #expect(result.stdout.split(separator: "\0", omittingEmptySubsequences: false).dropLast().map(String.init) == words)
  }

  @Test("ssh gets its options, --, the host, then fixed words; the command's words go on stdin, NUL-terminated")
  func sshArguments() throws {
    let t = try TestHome()
    let fake = try t.script("ssh", "exit 0")
    let remote = try Fleet(
      hosts: ["hosta"], words: ["status", "--json", "web", "it's"], mode: .reading,
      environment: ["PATH=\(t.root):/usr/bin", "USVC_REMOTE_COMMAND=/opt/my usvc", "USVC_SSH_MUX=no"])
    #expect(remote.ssh == fake)
    #expect(remote.sshArguments(for: "hosta") == [
      fake, "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", "--", "hosta", "'/opt/my usvc' --stdin-args",
    ])
    #expect(remote.stdinWords == Array("status\0--json\0web\0it's\0".utf8))
    var shared = try Fleet(
      hosts: ["hosta"], words: [], mode: .reading, environment: ["USVC_SSH=\(fake)", "USVC_HOME=\(t.root)"])
    shared.timeout = 2.5
    #expect(shared.remoteCommandLine == "usvc --stdin-args")
    let path = try #require(shared.controlPath(for: "hosta"))
    #expect(path.hasPrefix(t.root + "/ssh/") || path.hasPrefix("/tmp/usvc-ssh-"))
    #expect(path.utf8.count + 17 < 108)
    #expect(shared.controlPath(for: "hostb") != path)
    #expect(shared.sshArguments(for: "hosta") == [
      fake, "-o", "BatchMode=yes", "-o", "ConnectTimeout=3", "-o", "ControlMaster=auto", "-o", "ControlPersist=60",
      "-o", "ControlPath=" + path, "--", "hosta", "usvc --stdin-args",
    ])
    var info = stat()
    #expect(lstat(String(path[..<path.lastIndex(of: "/")!]), &info) == 0 && info.st_mode & 0o777 == 0o700)
  }

  @Test("the fan-out's own options leave the words; a program's arguments and what follows -- stay")
  func remoteWords() {
    #expect(Fleet.remoteWords(["status", "--hosts", "a,b", "--timeout=3", "-s", "--parallel", "4", "web"]) == ["status", "-s", "web"])
    #expect(Fleet.remoteWords(["start", "--hosts", "a", "web", "prog", "--hosts", "x"], passthrough: 3) == ["start", "web", "prog", "--hosts", "x"])
    #expect(Fleet.remoteWords(["stop", "--hosts-file=f", "--", "--hosts", "x"]) == ["stop", "--", "--hosts", "x"])
  }

  @Test("exit 255, a signal or a timeout is unreachable; a remote usvc's own error is an error line, its other lines warnings")
  func outcomes() {
    func outcome(_ status: TerminationStatus, _ output: String, _ errors: String, timedOut: Bool = false) -> HostReport.Outcome {
      Fleet.outcome(of: status, timedOut: timedOut, output: output, errors: errors, timeout: 20).0
    }
    #expect(outcome(.exited(0), "h  system\n", "") == .answered)
    #expect(outcome(.exited(255), "", "ssh: connect to host x port 22: Connection refused\r\n")
      == .unreachable("ssh: connect to host x port 22: Connection refused"))
    #expect(outcome(.exited(255), "", "") == .unreachable("ssh failed (exit 255)"))
    #expect(outcome(.exited(1), "", "usvc: no job or group named 'x'\n") == .failed("no job or group named 'x'"))
    #expect(outcome(.exited(127), "", "bash: line 1: usvc: command not found\n")
      == .failed("no usvc to run there (bash: line 1: usvc: command not found): put it on the PATH ssh gives a command, or set USVC_REMOTE_COMMAND to its path there"))
    #expect(outcome(.exited(3), "h  system\n", "") == .failed("exit 3"))
    #expect(Fleet.outcome(of: .exited(3), timedOut: false, output: "h  a-1\n", errors: "", timeout: 20, answered: [0, 3]).0 == .answered)
    #expect(outcome(.signaled(.terminate), "", "") == .unreachable("ssh ended by SIGTERM"))
    #expect(outcome(.signaled(.kill), "h  system\n", "", timedOut: true) == .unreachable("timed out after 20 s"))
    #expect(outcome(.exited(255), "", "evil \u{1b}[31mred\n") == .unreachable("evil \\x1b[31mred"))
    let (failed, warnings) = Fleet.outcome(
      of: .exited(1), timedOut: false, output: "", errors: "usvc: a-1 is not running\nusvc: a-2 is not running\n", timeout: 20)
    #expect(failed == .failed("a-2 is not running") && warnings == ["a-1 is not running"])
    #expect(Fleet.outcome(of: .exited(0), timedOut: false, output: "", errors: "usvc: a-2 is not running\n", timeout: 20).1 == ["a-2 is not running"])
  }

  @Test("an unreachable host renders as one line, a failed one as its output then an error line")
  func rendering() {
    let down = HostReport(host: "b", output: "partial", outcome: .unreachable("timed out after 20 s"))
    #expect(down.rendered(.status) == ("b  unreachable  timed out after 20 s\n", false))
    #expect(down.rendered(.json) == (#"{"host":"b","unreachable":"timed out after 20 s"}"# + "\n", false))
    #expect(down.rendered(.events) == ("b\tunreachable\ttimed out after 20 s\n", false))
    let failed = HostReport(host: "a", output: "vm  system", outcome: .failed("no job or group named 'x'"), warnings: ["w"])
    #expect(failed.rendered(.status) == ("a  system\na  warning  w\na  error  no job or group named 'x'\n", false))
    let failedJSON = HostReport(host: "a", output: #"{"host":"vm"}"#, outcome: .failed("no job or group named 'x'"))
    #expect(failedJSON.rendered(.json) == (#"{"host":"a","hostname":"vm"}"# + "\n" + #"{"host":"a","error":"no job or group named 'x'"}"# + "\n", false))
    #expect(HostReport(host: "c", output: "", outcome: .answered).rendered(.status) == ("", true))
    #expect(HostReport(host: "c", output: "stopped a-1\n\tx\u{1b}\n", outcome: .answered).rendered(.plain) == ("c  stopped a-1\nc  \tx\\x1b\n", true))
    #expect(HostReport(host: "c", output: "{}\n", outcome: .answered).rendered(.json) == (#"{"host":"c"}"# + "\n", true))
  }

  @Test("what a remote prints is checked: status lines kept with control characters escaped, anything else an error line of that host")
  func remoteOutputChecked() {
    let noisy = HostReport(
      host: "h",
      output: "not json at all\u{1b}]0;PWNED\u{07}\nvm  system  up 1s\nvm  web-1  web  running  /bin/x \u{1b}[2J\u{9b}1m\n\nWelcome to vm\n",
      outcome: .answered)
    let text = noisy.rendered(.status)
    #expect(text.text == """
      h  error  unexpected output: not json at all\\x1b]0;PWNED\\x07
      h  system  up 1s
      h  web-1  web  running  /bin/x \\x1b[2J\\x9b1m
      h  error  unexpected output: Welcome to vm

      """)
    #expect(!text.clean)
    #expect(HostReport(host: "h", output: "vm  system  up 1s\r\nvm  a-1  a\n", outcome: .answered).rendered(.status) == ("h  system  up 1s\nh  a-1  a\n", true))
    let long = HostReport(host: "h", output: String(repeating: "x", count: 500), outcome: .answered).rendered(.status).text
    #expect(long == "h  error  unexpected output: " + String(repeating: "x", count: 200) + "…\n")

    let json = HostReport(
      host: "h",
      output: #"not json at all"# + "\u{1b}[2J\n" + #"{"host":"vm","jobs":[{"name":"a-1","command":["x\u001b","\#u{9b}"]}]}"# + "\n[1]\n{\"a\":\n",
      outcome: .answered
    ).rendered(.json)
    #expect(json.text == """
      {"host":"h","error":"unexpected output: not json at all\\\\x1b[2J"}
      {"host":"h","hostname":"vm","jobs":[{"name":"a-1","command":["x\\u001b","\\u009b"]}]}
      {"host":"h","error":"unexpected output: [1]"}
      {"host":"h","error":"unexpected output: {\\"a\\":"}

      """)
    #expect(!json.clean)
  }

  @Test("JSON.isObject takes one well-formed object and nothing else", arguments: [
    (#"{}"#, true), (#" {"a":[1,-2.5e3,true,false,null,"x\"\\\/\b\f\n\r\t\u00e9"],"b":{}} "#, true),
    (#"{"a":1}{"#, false), (#"[{}]"#, false), (#""{}""#, false), (#"{"a":01}"#, false), (#"{"a":1.}"#, false),
    (#"{"a":"\x"}"#, false), ("{\"a\":\"\u{1b}\"}", false), (#"{a:1}"#, false), (#"{"a":1,}"#, false),
    (#"{"a":tru}"#, false), (#"{"a":"\u12g4"}"#, false), ("", false), (String(repeating: "{\"a\":", count: 100) + "1" + String(repeating: "}", count: 100), false),
  ])
  func jsonObjects(text: String, valid: Bool) {
    #expect(JSON.isObject(text) == valid, "\(text)")
  }
}
