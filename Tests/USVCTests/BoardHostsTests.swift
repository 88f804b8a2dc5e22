import Foundation
import Testing

@testable import USVCCore
import USVCSys

extension TestTerminal {
  /// The screen's lines that begin with `prefix` (a host's system or trouble row).
  func lines(startingWith prefix: String) throws -> [String] { try screen().filter { $0.hasPrefix(prefix) } }

  /// The screen as one text, for a failing expectation's message.
  var shown: Comment { Comment(rawValue: ((try? screen()) ?? []).joined(separator: "\n")) }
}

/// Processes of a remote home that are a usvc run through `--stdin-args` (what the board's sessions run there).
func remoteUsvcProcesses(home: String) -> [pid_t] {
  ProcStat.all().filter { process in
    guard process.state != "Z", ProcStat.environment(of: process.pid).contains("USVC_HOME=\(home)"),
      let cmdline = try? String(contentsOfFile: "/proc/\(process.pid)/cmdline", encoding: .utf8)
    else { return false }
    return cmdline.split(separator: "\0").contains("--stdin-args")
  }.map(\.pid)
}

@Suite("the board across hosts and its health columns (usvc top --hosts)", .serialized)
struct BoardHostsTests {
  @Test("a 3-host board in a real terminal: every host's jobs; r restarts a remote job; a host cut off shows as unreachable while the others go on, and comes back; q ends every session")
  func threeHosts() throws {
    let s = try SSHHosts()
    // hostc's job fails its health check for good (as many retries as it takes): unhealthy, on the board too.
    try s.run(in: s.homeC, "start", "--health", "exec:false", "gamma", "sleep", "1000")
    for (key, value) in [("health-interval", "0.3"), ("health-retries", "100000")] {
      try s.run(in: s.homeC, "conf", "gamma-1", key, value)
    }
    try s.run(in: s.homeC, "restart", "gamma-1")
    let terminal = try TestTerminal(s.local, [usvcBinary, "top", "-d", "0.5", "--hosts", "hosta,hostb,hostc"])
    #expect(try eventually(within: 30) {
      try terminal.row("alpha-1")?[1] == "running" && terminal.row("beta-2")?[1] == "running"
        && terminal.row("gamma-1")?[1] == "unhealthy"
    }, terminal.shown)
    // Per host, its system line then its jobs, hosts in the order given.
    let shown = try terminal.screen().compactMap { line -> String? in
      let fields = line.dropFirst().split(separator: " ")
      if line.hasPrefix("host"), fields.count > 1 { return String(line.split(separator: " ")[0]) + " " + fields[1] }
      return fields.first.map(String.init).flatMap { ["alpha-1", "beta-1", "beta-2", "gamma-1"].contains($0) ? $0 : nil }
    }
    #expect(shown == ["hosta system", "alpha-1", "hostb system", "beta-1", "beta-2", "hostc system", "gamma-1"])
    // gamma-1: ready, its checks failing (name, state, pid, up, age, restarts, exit, cpu, mem, READY, HEALTH…).
    let gamma = try #require(try terminal.row("gamma-1"))
    #expect(gamma[9] == "yes" && gamma[10] == "fail" && (Int(gamma[11]) ?? 0) >= 1, "\(gamma)")

    // r on another host's job: a one-shot call to that host restarts it; its new pid shows.
    func remotePid(_ job: String) throws -> String {
      try s.runAsRemote(in: s.homes[1], [usvcBinary, "pidof", job]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
    let before = try remotePid("beta-2")
    try terminal.send("Home", "j", "j")
    #expect(try eventually { try terminal.cursor() == "beta-2" })
    try terminal.send("r")
    #expect(try eventually(within: 30) {
      let now = try remotePid("beta-2")
      return try !now.isEmpty && now != before && terminal.row("beta-2")?[2] == now
    })
    #expect(try eventually { try terminal.screen().contains { $0.hasPrefix("hostb  started beta-2") } })

    // hostc goes off the network: its row says so within a few refreshes...
    let fixture = packageRoot + "/Tests/fixtures/sshd.sh"
    #expect(try TestHome.run(["/bin/bash", fixture, "cut", s.directory], environment: s.local.environment).status == 0)
    #expect(try eventually(within: 10) { try !terminal.lines(startingWith: "hostc  unreachable").isEmpty })
    #expect(try terminal.row("gamma-1") == nil)
    // ...while the other hosts' rows go on changing.
    try s.run(in: s.homes[1], "stop", "beta-1")
    #expect(try eventually(within: 10) { try terminal.row("beta-1")?[1] == "stopped" })
    #expect(try terminal.lines(startingWith: "hostc  unreachable").first?.contains("connecting again") == true)

    // It comes back: connected again after its back-off.
    #expect(try TestHome.run(["/bin/bash", fixture, "mend", s.directory], environment: s.local.environment).status == 0)
    #expect(try eventually(within: 40) { try terminal.row("gamma-1")?[1] == "unhealthy" && !terminal.lines(startingWith: "hostc  system").isEmpty })

    // q: the screen is given back, and every host's session ends (the remote usvc with it).
    try terminal.send("q")
    #expect(try eventually { try terminal.screen().contains("board exited 0") })
    #expect(try !terminal.alternateScreen())
    #expect(eventually(within: 15) { (s.homes + [s.homeC]).allSatisfy { remoteUsvcProcesses(home: $0).isEmpty } })
  }

  @Test("Enter on another host's job: the board gives the terminal back and becomes ssh -t HOST usvc attach JOB, a real client of that host's tmux")
  func enterAttachesThroughSSH() throws {
    let s = try SSHHosts()
    let terminal = try TestTerminal(s.local, [usvcBinary, "top", "-d", "0.5", "--hosts", "hosta,hostb"])
    #expect(try eventually(within: 30) { try terminal.row("beta-2")?[1] == "running" }, terminal.shown)
    try terminal.send("End", "Enter")
    func remoteClients() throws -> String {
      try s.runAsRemote(in: s.homes[1], ["tmux", "-S", s.homes[1] + "/tmux.sock", "list-clients", "-F", "#{client_session}"]).stdout
    }
    #expect(try eventually(within: 30) { try remoteClients().contains("usvc") })
    let windows = try s.runAsRemote(
      in: s.homes[1], ["tmux", "-S", s.homes[1] + "/tmux.sock", "list-windows", "-t", "=usvc", "-F", "#{window_active} #{window_name}"])
    #expect(windows.stdout.contains("1 beta-2"), "\(windows.stdout)")
    // The board's own sessions are gone: only the attach's ssh is left of it.
    #expect(eventually(within: 15) { s.homes.allSatisfy { remoteUsvcProcesses(home: $0).isEmpty } })
  }

  @Test("a host that cannot be reached, or answers nothing, is a row of its own from the start; the others show; SIGHUP gives the terminal back and ends the sessions")
  func unreachableFromTheStart() throws {
    let s = try SSHHosts()
    let terminal = try TestTerminal(s.local, [usvcBinary, "top", "-d", "0.5", "--hosts", "hostdown,hosthang,hosta"])
    #expect(try eventually(within: 30) {
      try terminal.row("alpha-1")?[1] == "running"
        && terminal.lines(startingWith: "hostdown  unreachable  ssh: connect to host 127.0.0.1 port ").count == 1
        && terminal.lines(startingWith: "hosthang  silent  no answer for ").count == 1
    }, terminal.shown)
    // The user's own link dies (SIGHUP): the terminal is given back and the sessions end.
    let board = try #require(try terminal.boardPid())
    kill(board, SIGHUP)
    #expect(try eventually { try terminal.screen().contains("board exited \(128 + SIGHUP)") })
    #expect(try !terminal.alternateScreen())
    #expect(eventually(within: 15) { remoteUsvcProcesses(home: s.homes[0]).isEmpty })
  }

  @Test("a host whose usvc stops sending shows silent within 2 refreshes, its last jobs kept; after --timeout its session is ended and started again")
  func silentHostReconnected() throws {
    let s = try SSHHosts()
    let terminal = try TestTerminal(s.local, [usvcBinary, "top", "-d", "0.5", "--timeout", "3", "--hosts", "hosta,hostb"])
    #expect(try eventually(within: 30) { try terminal.row("alpha-1")?[1] == "running" && terminal.row("beta-1") != nil }, terminal.shown)
    let frozen = remoteUsvcProcesses(home: s.homes[0])
    try #require(frozen.count == 1, "\(frozen)")
    kill(frozen[0], SIGSTOP)
    defer { kill(frozen[0], SIGCONT) }
    #expect(try eventually(within: 10) {
      try !terminal.lines(startingWith: "hosta  silent  no line for ").isEmpty && terminal.row("alpha-1") != nil
    }, terminal.shown)
    // Ended after 3 s of silence, connected again: a new remote usvc, and the host's rows are back.
    #expect(try eventually(within: 30) {
      try remoteUsvcProcesses(home: s.homes[0]).contains { $0 != frozen[0] } && !terminal.lines(startingWith: "hosta  system").isEmpty
    }, terminal.shown)
    #expect(try terminal.row("beta-1") != nil)
  }

  @Test("a remote line that is not a feed object is that host's error row, shown escaped, never sent to the terminal")
  func hostileRemote() throws {
    let s = try SSHHosts()
    // What a remote that is not usvc (or a hostile one) prints instead of its feed.
    s.local.environment["USVC_REMOTE_COMMAND"] = try s.remoteScript(
      "liar", #"printf '\000'; while :; do printf 'not json\033]0;PWNED\007\n'; sleep 0.2; done"#)
    let terminal = try TestTerminal(s.local, [usvcBinary, "top", "-d", "0.5", "--hosts", "hosta"])
    #expect(try eventually(within: 30) {
      try terminal.lines(startingWith: #"hosta  error  unexpected output: not json\x1b]0;PWNED\x07"#).count == 1
    }, terminal.shown)
    #expect(try terminal.tmux("display", "-p", "#{pane_title}").stdout.contains("PWNED") == false)
  }

  @Test("READY and HEALTH columns: a failing --health shows unhealthy with its failures in red, a passing one ok, a run not ready yet no")
  func healthColumns() throws {
    let t = try TestHome()
    try t.ok("start", "--health", "exec:false", "sick", "sleep", "100000")
    try t.ok("start", "--health", "exec:true", "fine", "sleep", "100000")
    try t.ok("start", "--ready", "exec:false", "slow", "sleep", "100000")
    for (job, key, value) in [
      ("sick-1", "health-interval", "0.3"), ("sick-1", "health-retries", "100000"), ("fine-1", "health-interval", "0.3"),
      ("slow-1", "ready-timeout", "1000"),
    ] {
      try t.ok("conf", job, key, value)
    }
    try t.ok("restart", "sick-1", "fine-1", "slow-1")
    let terminal = try TestTerminal(t, ["env", "-u", "NO_COLOR", usvcBinary, "top", "-d", "0.5"])
    #expect(try eventually(within: 20) {
      guard let sick = try terminal.row("sick-1"), let fine = try terminal.row("fine-1"), let slow = try terminal.row("slow-1"),
        sick.count > 11, fine.count > 10, slow.count > 10
      else { return false }
      return sick[1] == "unhealthy" && sick[3] == "up" && sick[9] == "yes" && sick[10] == "fail" && (Int(sick[11]) ?? 0) >= 2
        && fine[1] == "running" && fine[9] == "yes" && fine[10] == "ok"
        && slow[1] == "starting" && slow[9] == "no" && slow[10] == "-"
    }, terminal.shown)
    // A problem sorts above the others, and is red.
    let order = try terminal.screen().compactMap { $0.dropFirst().split(separator: " ").first.map(String.init) }
      .filter { ["sick-1", "fine-1", "slow-1"].contains($0) }
    #expect(order.first == "sick-1")
    let escapes = try terminal.tmux("capture-pane", "-p", "-e").stdout.components(separatedBy: "\n")
    let sick = try #require(escapes.first { $0.contains("sick-1") })
    #expect(sick.contains("31munhealthy") && sick.contains("31mfail"), "\(sick.debugDescription)")
  }

  // MARK: Pure parts

  @Test("a feed line becomes the host's section: figures clamped, strings kept for escaping, anything else refused")
  func decodingFeedLines() throws {
    let line = #"{"host":"far","system":{"uptime_seconds":90,"load":[0.5,0.25,1],"cpus":2,"cpu_percent":12.34,"mem_percent":50,"swap_percent":0},"jobs":[{"name":"web-1","group":"web","state":"unhealthy","pid":1e300,"up_seconds":75,"restarts":-4,"last_exit":"SIGKILL","cpu_percent":1.25,"rss_bytes":2048,"command":["/bin/x","a\u001b]0;t\u0007"],"health":"failing","health_failures":2}],"problem":"no job or group named 'gone'"}"#
    let section = try #require(BoardSection.decoding(feed: line, host: "h1"))
    #expect(section.system.prefix(3) == ["h1", "system", "up 1m"])
    #expect(section.system.contains("load 0.50 0.25 1.00") && section.system.last == "jobs 1: 1 unhealthy")
    #expect(section.problem == "no job or group named 'gone'")
    let job = try #require(section.jobs.first)
    #expect(job.pid == Int32.max && job.run.restarts == 0 && job.cpuPercent == 1.25 && job.residentBytes == 2048)
    #expect(Board.health(job) == "fail 2" && Board.readiness(job) == "yes")
    #expect(StatusFormat.commandLine(job.argv) == #"/bin/x 'a\x1b]0;t\x07'"#)
    for bad in ["", "not json", "[]", #"{"system":{}}"#, #"{"system":{},"jobs":[{"name":"x","group":"x","state":"dancing"}]}"#,
      #"{"system":{},"jobs":[{"group":"x","state":"running"}]}"#]
    {
      #expect(BoardSection.decoding(feed: bad, host: "h") == nil, "\(bad)")
    }
  }

  @Test("JSON is read back as written: escapes, surrogate pairs, nesting; malformed text refused")
  func jsonReading() throws {
    let value = try #require(JSON.parse(#" {"a":[1,-2.5e1,true,null],"b":"\u00e9\ud83d\ude00\n\"","c":{}} "#))
    #expect(value["a"]?.arrayValue?.map { $0.numberValue ?? 0 } == [1, -25, 0, 0])
    #expect(value["b"]?.stringValue == "é😀\n\"")
    #expect(JSON.parse(#""\ud800x""#)?.stringValue == "\u{fffd}x")
    for bad in ["{", #"{"a":01}"#, "[1,]", #""\x""#, "{\"a\":\"\u{1}\"}", "1 2", String(repeating: "[", count: 100) + String(repeating: "]", count: 100)] {
      #expect(JSON.parse(bad) == nil, "\(bad)")
    }
    #expect(JSON.isObject(#"{"x":1}"#) && !JSON.isObject("[1]"))
  }
}
