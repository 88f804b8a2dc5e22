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
    // One `started` when the program was exec'd, then `ready`: events in the order they happened.
    let pid = try #require(try t.pid("web-1"))
    #expect(try Self.events(t, "web-1").map { $0.prefix { $0 != " " } } == ["started", "ready"])
    #expect(try Self.events(t, "web-1").first == "started pid \(pid)")
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
    #expect(eventually { (t.read(t.home + "/logs/lg-1.log") ?? "").contains("listening soon") })
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

  /// Shell: `mark TAG` prints TAG, waits until the runner logged it, prints
  /// `TAG handled`, then waits for the test to create `$FLAGS/TAG`. The runner
  /// reads the job's output before the ready fd and the socket in each
  /// wake-up, so once `TAG handled` is in the log, everything the job sent
  /// before `mark TAG` has been handled, and nothing after it is sent until
  /// the test says so (`proceed`): a barrier both ways, not a sleep.
  static let shellMark = """
    mark() {
      echo "$1"; until grep -qx "$1" "$USVC_HOME/logs/$USVC_JOB.log"; do sleep 0.01; done
      echo "$1 handled"; until [ -e "$FLAGS/$1" ]; do sleep 0.01; done
    }
    """

  /// Python: `notify(bytes)` sends one datagram to NOTIFY_SOCKET (sd_notify by
  /// hand, as `socket.AF_UNIX, SOCK_DGRAM`); `mark(tag)` as `shellMark`.
  static let pythonNotify = """
    import os, socket, sys, time
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    def notify(data): sock.sendto(data, os.environ["NOTIFY_SOCKET"])
    def mark(tag):
        print(tag, flush=True)
        log = os.environ["USVC_HOME"] + "/logs/" + os.environ["USVC_JOB"] + ".log"
        while tag + "\\n" not in open(log, errors="replace").read(): time.sleep(0.01)
        print(tag + " handled", flush=True)
        while not os.path.exists(os.environ["FLAGS"] + "/" + tag): time.sleep(0.01)
    """

  /// Lets a job waiting in `mark(tag)` go on.
  static func proceed(_ t: TestHome, _ tag: String) {
    #expect(FileManager.default.createFile(atPath: t.file(tag), contents: nil))
  }

  /// Waits until the job's log holds `line` as a whole line.
  static func logged(_ t: TestHome, _ job: String, _ line: String, within seconds: Double = 20) -> Bool {
    eventually(within: seconds) {
      (t.read(t.home + "/logs/\(job).log") ?? "").split(separator: "\n").contains { $0 == line }
    }
  }

  @Test("--ready notify: a newline on USVC_READY_FD (s6 style) makes the run ready; garbage before it does not")
  func notifyFd() throws {
    let t = try TestHome()
    let script = Self.shellMark + """

      printf 'garbage\\0\\377 READY=1' >&$USVC_READY_FD; mark garbage
      echo >&$USVC_READY_FD; mark newline
      exec sleep 1000
      """
    try t.ok("start", "--ready", "notify", "-e", "FLAGS=\(t.root)", "nt", "/bin/sh", "-c", script)
    #expect(Self.logged(t, "nt-1", "garbage handled"))
    #expect(try t.state("nt-1") == .starting, "garbage without a newline is not ready")
    Self.proceed(t, "garbage")
    #expect(Self.logged(t, "nt-1", "newline handled"))
    #expect(try t.state("nt-1") == .running)
    #expect(try Self.events(t, "nt-1").filter { $0.hasPrefix("ready ") }.count == 1)
  }

  @Test("--ready notify: a job that closes USVC_READY_FD without writing stays starting, then unready at ready-timeout")
  func notifyFdClosed() throws {
    let t = try TestHome()
    let script = Self.shellMark + "\nexec 3>&-; mark closed; exec sleep 1000"
    try t.ok("start", "--ready", "notify", "--restart", "never", "-e", "FLAGS=\(t.root)", "cl", "/bin/sh", "-c", script)
    try t.ok("conf", "cl-1", "ready-timeout", "3")
    try t.ok("restart", "cl-1")
    #expect(Self.logged(t, "cl-1", "closed handled"))
    #expect(try t.state("cl-1") == .starting, "a closed fd is not ready")
    #expect(try eventually(within: 20) { try t.state("cl-1") == .exited })
    #expect(try t.view("cl-1").run.lastExit == "unready")
    #expect(try Self.events(t, "cl-1").contains("unready not ready after 3s"))
  }

  @Test("--ready notify: READY=1 on NOTIFY_SOCKET (python AF_UNIX SOCK_DGRAM) makes the run ready once; garbage, other keys, oversized datagrams and a second READY=1 change nothing")
  func notifySocketDatagrams() throws {
    let t = try TestHome()
    let program = Self.pythonNotify + """

      for junk in [b"READY=0", b"READY=10", b"XREADY=1", b"READY=1 ", b"ready=1", b"", b"\\xff\\x00READY=1",
                   b"READY=1\\n" + b"x" * 100000, b"STATUS=loading\\nMAINPID=1\\nWATCHDOG=1"]:
          notify(junk)
      mark("garbage")
      notify(b"STATUS=up\\nREADY=1\\n"); mark("ready")
      notify(b"READY=1"); notify(b"WATCHDOG=1\\nREADY=1\\nSTOPPING=1"); mark("again")
      time.sleep(1000)
      """
    let path = t.file("notify.py")
    #expect(FileManager.default.createFile(atPath: path, contents: Data(program.utf8)))
    try t.ok("start", "--ready", "notify", "-e", "FLAGS=\(t.root)", "sd", "/usr/bin/python3", path)
    #expect(Self.logged(t, "sd-1", "garbage handled"))
    #expect(try t.state("sd-1") == .starting, "no datagram so far held the line READY=1")
    let runner = try #require(t.view("sd-1").run.runner as pid_t?)
    Self.proceed(t, "garbage")
    #expect(Self.logged(t, "sd-1", "ready handled"))
    #expect(try t.state("sd-1") == .running)
    let pid = try t.pid("sd-1")
    Self.proceed(t, "ready")
    #expect(Self.logged(t, "sd-1", "again handled"))
    #expect(try t.state("sd-1") == .running && t.pid("sd-1") == pid && t.view("sd-1").run.runner == runner)
    #expect(try Self.events(t, "sd-1").filter { $0.hasPrefix("ready ") }.count == 1, "one ready event")
    #expect(try t.view("sd-1").run.restarts == 0)
  }

  @Test("--ready notify: redis-server --supervised systemd is starting until it sends READY=1, then running with event ready; without it, unready")
  func notifyRedis() throws {
    let redis = "/usr/bin/redis-server"
    guard access(redis, X_OK) == 0 else { return try skip("\(redis) is not installed (Debian package redis-server)") }
    let t = try TestHome()
    // 1 s after exec redis starts; --port 0 and a Unix socket: nothing to collide with.
    let run = "sleep 1; exec \(redis) --supervised $0 --port 0 --unixsocket \"$1\" --save ''"
    try t.ok("start", "--ready", "notify", "rd", "/bin/sh", "-c", run, "systemd", t.file("rd.sock"))
    try t.ok("start", "--ready", "notify", "--restart", "never", "plain", "/bin/sh", "-c", run, "no", t.file("plain.sock"))
    try t.ok("conf", "plain-1", "ready-timeout", "3")
    try t.ok("restart", "plain-1")
    #expect(try eventually { try t.state("rd-1") == .starting })
    #expect(try eventually(within: 20) { try t.state("rd-1") == .running })
    let ready = try #require(try Self.events(t, "rd-1").first { $0.hasPrefix("ready ") })
    let seconds = try #require(Double(ready.dropFirst(6).dropLast()))
    #expect(seconds >= 1, "ready when redis said so, not at exec (\(seconds)s)")
    #expect(try Self.events(t, "rd-1").filter { $0.hasPrefix("ready ") }.count == 1)
    // The same redis, not told to notify, is never ready.
    #expect(try eventually(within: 20) { try t.state("plain-1") == .exited })
    #expect(try t.view("plain-1").run.lastExit == "unready")
    #expect(try !Self.events(t, "plain-1").contains { $0.hasPrefix("ready ") })
  }

  @Test("--ready notify: NOTIFY_SOCKET is run/NAME.notify, a socket of mode 0600 in a 0700 run/; gone when the runner ends; a stale one is replaced")
  func notifySocketFile() throws {
    let t = try TestHome()
    let program = Self.pythonNotify + "\nnotify(b'READY=1'); time.sleep(1000)"
    let path = t.file("ready.py")
    #expect(FileManager.default.createFile(atPath: path, contents: Data(program.utf8)))
    try t.ok("start", "--ready", "notify", "sk", "/usr/bin/python3", path)
    #expect(try eventually(within: 20) { try t.state("sk-1") == .running })
    let socket = t.home + "/run/sk-1.notify"
    let pid = try #require(try t.pid("sk-1"))
    #expect(ProcStat.environment(of: pid).contains("NOTIFY_SOCKET=\(socket)"))
    #expect(ProcStat.environment(of: pid).filter { $0.hasPrefix("NOTIFY_SOCKET=") }.count == 1)
    var info = stat()
    #expect(lstat(socket, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK && info.st_uid == geteuid())
    #expect(info.st_mode & 0o777 == 0o600, "mode \(String(info.st_mode & 0o777, radix: 8))")
    #expect(lstat(t.home + "/run", &info) == 0 && info.st_mode & 0o077 == 0, "run/ lets no one else in")
    try t.ok("stop", "sk-1")
    #expect(eventually { lstat(socket, &info) != 0 }, "removed when the runner ended")
    // A runner killed outright leaves its socket file; the next one (its
    // window's loop starts it again) binds over it, and its run gets ready.
    try t.ok("restart", "sk-1")
    #expect(try eventually(within: 20) { try t.state("sk-1") == .running })
    let runner = try #require(t.view("sk-1").run.runner as pid_t?)
    kill(runner, SIGKILL)
    #expect(try eventually(within: 20) {
      let view = try t.view("sk-1")
      return view.state == .running && view.run.runner != runner && view.pid != nil && view.pid != pid
    })
    #expect(lstat(socket, &info) == 0 && info.st_mode & 0o777 == 0o600)
    try t.ok("rm", "sk-1")
    #expect(lstat(socket, &info) != 0, "rm leaves no socket")
  }

  @Test("--ready notify: when run/NAME.notify would pass 107 bytes, the socket is /tmp/usvc-UID/HASH.notify, said in the log, removed at the end")
  func notifySocketLongPath() throws {
    let t = try TestHome()
    // USVC_HOME short enough for tmux.sock, too deep for run/NAME.notify.
    let deep = t.root + "/" + String(repeating: "d", count: 60)
    try FileManager.default.createDirectory(atPath: deep, withIntermediateDirectories: true)
    let home = deep + "/home"
    t.environment["USVC_HOME"] = home
    defer { _ = try? TestHome.run([usvcBinary, "shutdown"], environment: t.environment) }
    let program = Self.pythonNotify + "\nnotify(b'READY=1'); time.sleep(1000)"
    let path = t.file("ready.py")
    #expect(FileManager.default.createFile(atPath: path, contents: Data(program.utf8)))
    let name = "notifywithalongname"
    let preferred = home + "/run/\(name)-1.notify"
    #expect(preferred.utf8.count > 107 && (home + "/tmux.sock").utf8.count <= 107)
    try t.ok("start", "--ready", "notify", name, "/usr/bin/python3", path)
    let socket = "/tmp/usvc-\(geteuid())/" + String(fnv1a(preferred.utf8), radix: 16) + ".notify"
    // t.state and t.pid look in the deep home now.
    #expect(try eventually(within: 20) { try t.state(name + "-1") == .running }, "READY=1 came through the fallback")
    let pid = try #require(try t.pid(name + "-1"))
    #expect(ProcStat.environment(of: pid).contains("NOTIFY_SOCKET=\(socket)"))
    var info = stat()
    #expect(lstat(socket, &info) == 0 && info.st_mode & 0o777 == 0o600 && info.st_uid == geteuid())
    #expect(isPrivateDirectory("/tmp/usvc-\(geteuid())"))
    #expect(!FileManager.default.fileExists(atPath: preferred))
    let log = t.read(home + "/logs/\(name)-1.log") ?? ""
    #expect(log.contains("[usvc] NOTIFY_SOCKET is \(socket): \(preferred) is longer than a socket path may be"), "\(log)")
    try t.ok("stop", name + "-1")
    #expect(eventually { lstat(socket, &info) != 0 }, "removed when the runner ended")
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
