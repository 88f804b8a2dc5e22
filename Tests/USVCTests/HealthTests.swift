import Foundation
import Testing

@testable import USVCCore
import USVCSys

/// SPEC: Health, against real processes.
@Suite("health: limits, readiness, liveness, watchdogs")
struct HealthTests {
  /// The soft and hard value of one row of /proc/PID/limits ("Max open files  64  64  files").
  static func limit(_ row: String, of pid: pid_t) -> (soft: String, hard: String)? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8) else { return nil }
    guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(row) }) else { return nil }
    let words = line.dropFirst(row.count).split(separator: " ")
    return words.count >= 2 ? (String(words[0]), String(words[1])) : nil
  }

  @Test("job.limit is set in the job before exec: /proc/PID/limits shows it, soft and hard")
  func limitsApplied() throws {
    let t = try TestHome()
    try t.ok("start", "lim", "/bin/sleep", "1000")
    try t.ok("conf", "lim-1", "limit", "nofile=64", "core=0", "as=1G", "cpu=unlimited")
    try t.ok("restart", "lim-1")
    var pid: pid_t = 0
    #expect(try eventually { pid = try t.pid("lim-1") ?? 0; return pid > 0 && Self.limit("Max open files", of: pid)?.soft == "64" })
    let open = Self.limit("Max open files", of: pid)
    #expect(open?.soft == "64" && open?.hard == "64")
    #expect(Self.limit("Max core file size", of: pid)?.soft == "0")
    #expect(Self.limit("Max address space", of: pid)?.soft == String(1 << 30))
    #expect(Self.limit("Max cpu time", of: pid)?.soft == "unlimited")
    // The runner itself keeps its own limits: only the job gets them.
    let runner = try #require(t.view("lim-1").run.runner as pid_t?)
    #expect(Self.limit("Max open files", of: runner)?.soft != "64")
  }

  /// A TCP port nothing listens on now (the kernel's pick, then closed).
  static func freePort() throws -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw Errno.current }
    return UInt16(bigEndian: address.sin_port)
  }

  /// The events of `job`, as "EVENT DETAIL".
  static func events(_ t: TestHome, _ job: String) throws -> [String] {
    try t.ok("events", "-n", "1000").stdout.split(separator: "\n").compactMap { line in
      let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
      return fields.count >= 4 && fields[1] == job ? "\(fields[2]) \(fields[3])" : nil
    }
  }

  @Test("--ready http://: starting until python's http.server answers, then running with event ready; a dependent waits for it")
  func httpReadiness() throws {
    let t = try TestHome()
    let port = try Self.freePort()
    // The server opens its port 1.5 s after exec.
    let server = "sleep 1.5; exec python3 -m http.server \(port) --bind 127.0.0.1"
    let started = try t.ok("start", "--ready", "http://127.0.0.1:\(port)/", "web", "/bin/sh", "-c", server)
    #expect(started.stdout == "started web-1\n", "started once exec'd, not once ready")
    #expect(try t.state("web-1") == .starting)
    let dependent = try t.ok("start", "--after", "web", "client", "/bin/sleep", "1000")
    #expect(dependent.stdout.hasPrefix("waiting client-1"), "\(dependent.stdout)")
    #expect(try eventually(within: 20) { try t.state("web-1") == .running })
    #expect(try Self.events(t, "web-1").contains { $0.hasPrefix("ready ") })
    #expect(try eventually(within: 20) { try t.state("client-1") == .running }, "the dependent starts once web is ready")
  }

  @Test("--ready tcp: never answered: event unready at ready-timeout, the run stopped, last exit unready (restart never: exited)")
  func unready() throws {
    let t = try TestHome()
    let port = try Self.freePort()
    try t.ok("start", "--ready", "tcp:\(port)", "--restart", "never", "deaf", "/bin/sleep", "1000")
    try t.ok("conf", "deaf-1", "ready-timeout", "1")
    try t.ok("restart", "deaf-1")
    #expect(try eventually(within: 20) { try t.state("deaf-1") == .exited })
    let run = try t.view("deaf-1").run
    #expect(run.lastExit == "unready")
    #expect(run.failures >= 1)
    #expect(try Self.events(t, "deaf-1").contains("unready not ready after 1s"))
    #expect(t.processes(of: "deaf-1").isEmpty, "the run is stopped")
  }

  @Test("--ready log:REGEX: ready at the first output line that matches, not before")
  func logReadiness() throws {
    let t = try TestHome()
    let script = "echo booting; echo 'listening soon'; sleep 1; printf 'listen'; sleep 0.3; echo 'ing on 8080'; exec sleep 1000"
    try t.ok("start", "--ready", "log:^listening on [0-9]+$", "lg", "/bin/sh", "-c", script)
    #expect(try eventually { (t.read(t.home + "/logs/lg-1.log") ?? "").contains("listening soon") })
    #expect(try t.state("lg-1") == .starting, "a line that does not match")
    #expect(try eventually(within: 20) { try t.state("lg-1") == .running })
    let ready = try Self.events(t, "lg-1").first { $0.hasPrefix("ready ") }
    let seconds = try #require(ready.flatMap { Double($0.dropFirst(6).dropLast()) })
    #expect(seconds >= 1.2, "ready once the whole line came (\(seconds)s)")
  }

  @Test("--ready exec:COMMAND: ready once sh -c COMMAND exits 0; probe children are reaped, none left")
  func execReadiness() throws {
    let t = try TestHome()
    let flag = t.file("flag")
    try t.ok("start", "--ready", "exec:test -e '\(flag)'", "ex", "/bin/sleep", "1000")
    try t.ok("conf", "ex-1", "ready-interval", "0.2")
    try t.ok("restart", "ex-1")
    #expect(try eventually { try t.state("ex-1") == .starting })
    usleep(600_000)
    #expect(try t.state("ex-1") == .starting, "not ready while the check fails")
    #expect(FileManager.default.createFile(atPath: flag, contents: nil))
    #expect(try eventually(within: 20) { try t.state("ex-1") == .running })
    let runner = try #require(t.view("ex-1").run.runner as pid_t?)
    let zombies = ProcStat.all().filter { $0.parent == runner && $0.state == "Z" }
    #expect(zombies.isEmpty, "every probe reaped")
  }

  /// A TCP server that answers until FLAG exists, then removes FLAG and stops
  /// answering (closes its port) while it keeps running: a hung server.
  static let hangingServer = """
    import os, socket, sys, time
    port, flag = int(sys.argv[1]), sys.argv[2]
    server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port)); server.listen(16); server.settimeout(0.05)
    print("listening", flush=True)
    while not os.path.exists(flag):
        try: server.accept()[0].close()
        except socket.timeout: pass
    os.remove(flag); server.close(); print("hung", flush=True)
    while True: time.sleep(1)
    """

  @Test("--health tcp: a server that stops answering goes unhealthy, then is restarted (event unhealthy), and answers again")
  func hungServerRestarted() throws {
    let t = try TestHome()
    let port = try Self.freePort()
    let flag = t.file("hang")
    let server = try t.script("server.py", Self.hangingServer)
    try t.ok("start", "--ready", "tcp:\(port)", "--health", "tcp:\(port)", "hs", "/usr/bin/python3", server, String(port), flag)
    for (key, value) in [("health-interval", "0.3"), ("health-timeout", "0.5"), ("health-retries", "3")] {
      try t.ok("conf", "hs-1", key, value)
    }
    try t.ok("restart", "hs-1")
    #expect(try eventually(within: 20) { try t.state("hs-1") == .running })
    let firstPid = try #require(try t.pid("hs-1"))
    #expect(FileManager.default.createFile(atPath: flag, contents: nil))
    var sawUnhealthy = false
    #expect(try eventually(within: 20) {
      if try t.state("hs-1") == .unhealthy { sawUnhealthy = true }
      return try Self.events(t, "hs-1").contains("unhealthy 3 health checks failed in a row")
    })
    #expect(sawUnhealthy, "unhealthy between the first failure and the third")
    #expect(try eventually(within: 20) { try t.state("hs-1") == .running && (try t.pid("hs-1")) != firstPid })
    #expect(try t.view("hs-1").run.restarts >= 1)
    // The health figures: status --json and show.
    let json = try t.ok("status", "--json", "hs-1").stdout
    let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    let job = try #require((object["jobs"] as? [[String: Any]])?.first)
    #expect(job["ready"] as? Bool == true)
    #expect(job["health"] as? String == "ok")
    #expect(job["health_failures"] as? Int == 0)
    let show = try t.ok("show", "hs-1").stdout.split(separator: "\n")
    #expect(show.contains("ready: true") && show.contains("health: ok") && show.contains("health-failures: 0"))
    #expect(show.contains("job.health: tcp:\(port)"))
  }

  @Test("silence-max: a job that goes quiet is restarted, event silent; one that talks is left alone")
  func silentRestarted() throws {
    let t = try TestHome()
    try t.ok("start", "quiet", "/bin/sh", "-c", "echo hello; exec sleep 1000")
    try t.ok("start", "chatty", "/bin/sh", "-c", "while :; do echo tick; sleep 0.2; done")
    for job in ["quiet-1", "chatty-1"] {
      try t.ok("conf", job, "silence-max", "1")
      try t.ok("restart", job)
    }
    #expect(try eventually(within: 20) { try Self.events(t, "quiet-1").contains("silent no output for 1s") })
    #expect(try eventually(within: 20) { try t.view("quiet-1").run.restarts >= 2 })
    #expect(try t.view("quiet-1").run.lastExit == "silent" || t.state("quiet-1") == .running)
    #expect(try !Self.events(t, "chatty-1").contains { $0.hasPrefix("silent") })
    #expect(try t.view("chatty-1").run.restarts == 1, "only the restart the test asked for")
  }

  @Test("memory-max: a job whose tree grows past it is restarted, event memory (the job runs under ulimit -v 1 GiB)")
  func memoryRestarted() throws {
    let t = try TestHome()
    // A child (the tree, not the main pid) allocates 8 MiB every 50 ms, touched, up to 400 MiB.
    let grow = "import time\nblocks=[]\nfor i in range(50):\n    blocks.append(bytearray(8<<20)); time.sleep(0.05)\ntime.sleep(1000)"
    try t.ok("start", "hog", "/bin/sh", "-c", "ulimit -v 1048576; python3 -c \"$0\"; sleep 1000", grow)
    try t.ok("conf", "hog-1", "memory-max", "64M")
    try t.ok("restart", "hog-1")
    #expect(try eventually(within: 30) { try Self.events(t, "hog-1").contains { $0.hasPrefix("memory ") } })
    let detail = try #require(try Self.events(t, "hog-1").first { $0.hasPrefix("memory ") })
    let bytes = try #require(UInt64(detail.dropFirst(7).prefix { $0 != " " }))
    #expect(bytes > 64 << 20 && bytes < 200 << 20, "caught soon after it passed 64 MiB: \(bytes)")
    #expect(try eventually(within: 20) { try t.view("hog-1").run.lastExit == "memory" })
  }

  @Test("--ready http://: a server slower to answer than ready-interval still gets its check answered (not abandoned each interval)")
  func slowAnswerStillReady() throws {
    let t = try TestHome()
    let port = try Self.freePort()
    let slow = """
      import socket, sys, time
      server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
      server.bind(("127.0.0.1", int(sys.argv[1]))); server.listen(64)
      while True:
          connection = server.accept()[0]; time.sleep(0.4)
          connection.sendall(b"HTTP/1.0 204 No Content\\r\\n\\r\\n"); connection.close()
      """
    let server = try t.script("slow.py", slow)
    try t.ok("start", "--ready", "http://127.0.0.1:\(port)/", "slow", "/usr/bin/python3", server, String(port))
    #expect(try eventually(within: 20) { try t.state("slow-1") == .running })
  }

  @Test("--ready notify: a newline on USVC_READY_FD (s6 style) makes the run ready; garbage before it does not")
  func notifyFd() throws {
    let t = try TestHome()
    let script = "sleep 0.5; printf garbage >&$USVC_READY_FD; sleep 0.5; echo >&$USVC_READY_FD; exec sleep 1000"
    try t.ok("start", "--ready", "notify", "nt", "/bin/sh", "-c", script)
    usleep(700_000)
    #expect(try t.state("nt-1") == .starting, "garbage without a newline is not ready")
    #expect(try eventually(within: 20) { try t.state("nt-1") == .running })
    #expect(try Self.events(t, "nt-1").contains { $0.hasPrefix("ready ") })
  }

  /// Whether something answers a TCP connect on `port` within 200 ms.
  static func answers(_ port: UInt16) -> Bool {
    guard let check = ProbeConnection(.tcp(host: "127.0.0.1", port: port)) else { return false }
    defer { check.close() }
    var check2 = check
    var fds = [pollfd(fd: check.fd, events: check.events, revents: 0)]
    guard poll(&fds, 1, 200) == 1 else { return false }
    return check2.advance() == .passed
  }

  @Test("restart --rolling: one replica at a time, each ready before the next: at every poll at least 2 of 3 answer")
  func rollingKeepsTwoUp() throws {
    let t = try TestHome()
    var ports: [UInt16] = []
    while ports.count < 3 {  // Three different ports: the kernel may hand out one it just gave.
      let port = try Self.freePort()
      if !ports.contains(port) { ports.append(port) }
    }
    // Each replica opens its port 0.5 s after exec; its readiness is that port.
    for (index, port) in ports.enumerated() {
      try t.ok("start", "--ready", "tcp:\(port)", "rep\(index + 1)", "/bin/sh", "-c",
               "sleep 0.5; exec python3 -m http.server \(port) --bind 127.0.0.1")
    }
    #expect(try eventually(within: 20) { try (1...3).allSatisfy { try t.state("rep\($0)-1") == .running } })
    // The roll runs beside a client polling the three ports.
    let roll = try Thread.detachNewRolling(t, ["restart", "--rolling", "rep1", "rep2", "rep3"])
    var polls = 0
    var fewest = 3
    while !roll.done {
      fewest = min(fewest, ports.filter(Self.answers).count)
      polls += 1
      usleep(20_000)
    }
    #expect(roll.outcome?.status == 0, "\(roll.outcome?.stderr ?? "")")
    #expect(polls > 10, "the client polled throughout the roll (\(polls) polls)")
    #expect(fewest >= 2, "at least 2 of 3 answered at every poll")
    let restarts = try (1...3).map { try t.view("rep\($0)-1").run.restarts }
    #expect(restarts == [1, 1, 1], "each restarted once, by the roll")
  }

  @Test("restart --rolling stops at a replica that never becomes ready: one usvc: line, exit 1, the rest untouched")
  func rollingStops() throws {
    let t = try TestHome()
    let deaf = try Self.freePort()
    try t.ok("start", "-n", "3", "--ready", "exec:true", "r", "/bin/sleep", "1000")
    try t.ok("conf", "r-2", "ready", "tcp:\(deaf)")
    try t.ok("conf", "r-2", "ready-timeout", "1")
    let before = try t.pid("r-3")
    let outcome = try t.usvc("restart", "--rolling", "r")
    #expect(outcome.status == 1)
    #expect(outcome.stderr == "usvc: cannot start r-2: not ready within 1.0s: rolling restart stopped there; not restarted: r-3\n")
    #expect(try t.pid("r-3") == before && t.state("r-3") == .running, "r-3 untouched")
    #expect(try t.state("r-1") == .running && t.view("r-1").run.restarts == 1)
  }
}

/// A usvc command run on a thread of its own, so a test can watch while it runs.
final class BackgroundCommand: @unchecked Sendable {
  private let lock = NSLock()
  private var result: Outcome?
  private var finished = false
  var done: Bool { lock.withLock { finished } }
  var outcome: Outcome? { lock.withLock { result } }
  func finish(_ outcome: Outcome?) { lock.withLock { result = outcome; finished = true } }
}

extension Thread {
  static func detachNewRolling(_ t: TestHome, _ arguments: [String]) throws -> BackgroundCommand {
    let command = BackgroundCommand()
    Thread.detachNewThread { command.finish(try? t.usvc(arguments)) }
    return command
  }
}
