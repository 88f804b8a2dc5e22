import Foundation
import Testing

@testable import USVCCore
import USVCContract
import USVCSys

// Reliability and security: faults done for real (a crash loop of 1,000 runs,
// a full log disk, conf writers killed mid-write, runners killed again and
// again), load (concurrent starts and conf writers, 200 jobs), hostile input
// (every refusal is one `usvc:` line and writes nothing) and the privacy of
// USVC_HOME. Each test polls to a deadline; none sleeps a fixed time to wait
// for usvc.

/// Faults and load. One test at a time: some are heavy for a 2-core machine.
@Suite("reliability: faults and load", .serialized)
struct ReliabilityTests {
  @Test(
    "1,000 crash-restart cycles: every line kept in order across rotations, no zombie, the runner's fds and memory stay flat",
    .timeLimit(.minutes(2)))
  func crashLoop() throws {
    let t = try TestHome()
    let counter = t.file("counter")
    let job = try t.script("crash", """
      [ -e "\(t.file("armed"))" ] || exec sleep 1000
      read n < "\(counter)" 2>/dev/null || n=0
      n=$((n + 1)); echo $n > "\(counter)"
      echo "line $n"
      if [ $n -eq 100 ]; then touch "\(t.file("at-100"))"; while [ ! -e "\(t.file("go"))" ]; do sleep 0.01; done; fi
      [ $n -ge 1000 ] && exec sleep 1000
      exit 1
      """)
    try t.ok("start", "cy", job)
    try t.ok("conf", "cy-1", "stable-after", "0")
    try t.ok("conf", "cy-1", "log-max-bytes", "4096")
    try t.ok("conf", "cy-1", "log-keep", "100")
    _ = FileManager.default.createFile(atPath: t.file("armed"), contents: nil)
    let began = Date()
    try t.ok("restart", "cy-1")

    // Cycle 100: the job holds still until the runner's figures are taken.
    #expect(eventually(within: 30) { FileManager.default.fileExists(atPath: t.file("at-100")) })
    let runner = try #require(try t.view("cy-1").runner)
    let fdsAt100 = openDescriptors(of: runner)
    let memoryAt100 = try #require(privateDirtyKiB(of: runner))
    _ = FileManager.default.createFile(atPath: t.file("go"), contents: nil)

    #expect(eventually(within: 60) { t.read(counter) == "1000\n" })
    #expect(try eventually { try t.state("cy-1") == .running && t.view("cy-1").run.restarts >= 999 })
    // The runner may still be copying the last line to the log.
    #expect(try eventually { try t.usvc("logs", "cy-1", "-n", "1").lines == ["line 1000"] })
    let job1000 = try #require(try t.pid("cy-1"))
    #expect(try t.view("cy-1").runner == runner, "the runner itself never restarted")
    let fdsAt1000 = openDescriptors(of: runner)
    let memoryAt1000 = try #require(privateDirtyKiB(of: runner))
    print("crash loop: 1,000 cycles in \(Int(Date().timeIntervalSince(began) * 1000)) ms; runner fds \(fdsAt100) -> \(fdsAt1000), anonymous \(memoryAt100) -> \(memoryAt1000) KiB")
    // Two more fds at most: the log and its index are closed between a rotation and the next write.
    #expect(fdsAt1000 <= fdsAt100 + 2)
    #expect(memoryAt1000 <= memoryAt100 + 64, "the runner's private memory grew by \(memoryAt1000 - memoryAt100) KiB over 900 cycles")
    let children = ProcStat.all().filter { $0.parent == runner }
    #expect(children.filter { $0.state == "Z" }.isEmpty, "zombies: \(children.filter { $0.state == "Z" }.map(\.pid))")
    #expect(children.map(\.pid) == [job1000])

    // Every line, once, in order, across NAME.log.1 … NAME.log.N, NAME.log.
    let rotated = t.rotatedLogs(of: "cy-1")
    #expect(rotated.count >= 10 && rotated.count < 100, "rotations kept: \(rotated.count)")
    #expect(rotated == Array(1...(rotated.last ?? 0)), "copies are numbered in the order they were made")
    let text = String(decoding: t.wholeLog(of: "cy-1"), as: UTF8.self)
    let lines = text.split(separator: "\n").filter { $0.hasPrefix("line ") }.map(String.init)
    #expect(lines == (1...1000).map { "line \($0)" })
    // usvc logs reads back through the rotated copies too.
    let all = text.split(separator: "\n").map(String.init)
    #expect(try t.ok("logs", "cy-1", "-n", "100000").lines == all)
    #expect(try t.ok("logs", "cy-1", "-n", "3").lines == Array(all.suffix(3)))
  }

  @Test(
    "a full log disk: the job and its runner go on, the pane says [usvc] cannot write, logging resumes when space returns",
    .enabled(if: geteuid() == 0, "mounting a small tmpfs on USVC_HOME/logs needs root"))
  func fullLogDisk() throws {
    let t = try TestHome()
    try t.ok("jobs")  // Creates USVC_HOME and its folders.
    let logs = t.home + "/logs"
    let mounted = try TestHome.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", logs], environment: t.environment)
    // Root in a container without CAP_SYS_ADMIN cannot mount.
    if mounted.status != 0 { try skip("cannot mount a tmpfs here: \(mounted.stderr)") }
    defer {
      _ = try? t.usvc("shutdown")
      _ = try? TestHome.run(["umount", "-l", logs], environment: t.environment)
      t.tearDown()
    }
    // About 10 KB/s, so the disk fills at once and new lines show quickly.
    let job = try t.script("ticker", """
      pad=\(String(repeating: "x", count: 100))
      i=0; while :; do i=$((i + 1)); echo "tick $i $pad"; sleep 0.01; done
      """)
    try t.ok("start", "dk", job)
    let log = logs + "/dk-1.log"
    #expect(eventually { (t.read(log) ?? "").contains("tick 5 ") })
    let before = try t.view("dk-1")

    // Fill the disk.
    let filler = logs + "/filler"
    let fd = try FileDescriptor.open(filler, O_WRONLY | O_CREAT)
    let block = [UInt8](repeating: 0, count: 4096)
    #expect(throws: Errno(ENOSPC)) { while true { try fd.writeAll(block) } }
    fd.close()
    let pane = { (try? t.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "=usvc:=dk-1").stdout) ?? "" }
    #expect(eventually { pane().contains("[usvc] cannot write \(log): No space left on device; the job goes on, shown here only") }, "\(pane().suffix(500))")
    // The job goes on: still printing (in the pane), same runner, same pid.
    let shown = { pane().split(separator: "\n").compactMap { $0.hasPrefix("tick ") ? Int($0.split(separator: " ")[1]) : nil }.max() ?? 0 }
    let tickWhenFull = shown()
    #expect(eventually { shown() > tickWhenFull + 20 })
    let during = try t.view("dk-1")
    #expect(during.runner == before.runner && during.pid == before.pid && during.state == .running)

    // Space returns: lines printed from then on reach the log again.
    let lastLogged = { (t.read(log) ?? "").split(separator: "\n").compactMap { $0.hasPrefix("tick ") ? Int($0.split(separator: " ")[1]) : nil }.max() ?? 0 }
    let tickWhenFreed = shown()
    #expect(lastLogged() < tickWhenFreed)
    #expect(unlink(filler) == 0)
    #expect(eventually { lastLogged() > tickWhenFreed + 10 })
    let after = try t.view("dk-1")
    #expect(after.runner == before.runner && after.pid == before.pid && after.state == .running)
  }

  @Test("conf writers killed by SIGKILL mid-write, over stale locks: the conf stays readable by git, old or new list, never half; the next write succeeds")
  func killedWriters() throws {
    let t = try TestHome()
    try t.ok("start", "kw", "sleep", "1000")
    let conf = t.home + "/jobs/kw-1.conf"
    let lock = conf + ".lock"
    let list = { (tag: String) in (1...200).map { "K\($0)=\(tag)-\($0)" } }
    // How long one writer takes here: the kills land within that, so most land mid-write.
    let timed = Date()
    #expect(try t.usvc(["conf", "kw-1", "env"] + list("start")).status == 0)
    let writerMicroseconds = UInt32(max(10_000, Date().timeIntervalSince(timed) * 1_000_000))
    var complete: Set<[String]> = [list("start")]
    var killed = 0
    let began = Date()
    var round = 0
    while round < 25 || (killed < 10 && round < 100) {
      round += 1
      if round % 2 == 1 { _ = FileManager.default.createFile(atPath: lock, contents: Data("stale".utf8)) }
      complete.insert(list("r\(round)"))
      let writer = try spawnQuietly([usvcBinary, "conf", "kw-1", "env"] + list("r\(round)"), environment: t.environment)
      usleep(UInt32.random(in: 0...writerMicroseconds))
      kill(writer, SIGKILL)
      if try waitForExit(of: writer) == .signaled(.kill) { killed += 1 }
      let git = try TestHome.run(["git", "config", "-f", conf, "--list"], environment: t.environment)
      #expect(git.status == 0, "round \(round): \(git.stderr)")
      let env = try TestHome.run(["git", "config", "-f", conf, "--get-all", "job.env"], environment: t.environment).lines
      #expect(complete.contains(env), "round \(round): a half-written list of \(env.count) values")
    }
    print("killed writers: \(killed) of \(round) killed before they finished (one takes \(writerMicroseconds / 1000) ms), in \(Int(Date().timeIntervalSince(began) * 1000)) ms")
    #expect(killed >= 10, "too few writers were killed mid-write to test anything")
    _ = FileManager.default.createFile(atPath: lock, contents: Data("stale".utf8))
    try t.ok("conf", "kw-1", "stop-timeout", "7")
    #expect(try t.ok("conf", "kw-1", "stop-timeout").stdout == "7\n")
    #expect(!FileManager.default.fileExists(atPath: lock))
    try t.ok("conf", "kw-1", "env", "ONLY=this")
    #expect(try TestHome.run(["git", "config", "-f", conf, "--get-all", "job.env"], environment: t.environment).stdout == "ONLY=this\n")
    // The runner's copy follows the conf again.
    let spec = try Data(contentsOf: URL(fileURLWithPath: t.home + "/run/kw-1.spec"))
    #expect(JobSpec(decoding: Array(spec))?.environment == ["ONLY=this"])
    #expect(try t.view("kw-1").spec?.stopTimeout == 7)
  }

  @Test("a runner killed with SIGKILL ten times in a row is back every time, and no dead runner is left unreaped under tmux")
  func runnerKilledAgainAndAgain() throws {
    let t = try TestHome()
    try t.ok("start", "ra", "sleep", "1000")
    var server: pid_t = 0
    for round in 1...10 {
      let before = try t.view("ra-1")
      let runner = try #require(before.runner)
      server = ProcStat.read(runner)?.parent ?? server
      kill(runner, SIGKILL)
      let back = try eventually(within: 15) {
        let now = try t.view("ra-1")
        return now.runner != nil && now.runner != runner && now.pid != nil && now.pid != before.pid
      }
      #expect(back, "round \(round): runner \(runner) was not replaced; tmux server \(server) has zombies \(zombieChildren(of: server))")
      if !back { break }
    }
    #expect(zombieChildren(of: server).isEmpty)
    #expect(try t.state("ra-1") == .running)
  }

  @Test("50 concurrent 'usvc start g ./job' make exactly g-1 … g-50, all running, every conf readable by git")
  func concurrentStarts() throws {
    let t = try TestHome()
    _ = try t.script("job", "exec sleep 1000")
    let outcomes = Locked<[Outcome]>([])
    let began = Date()
    concurrently(50) { _ in
      let outcome = (try? t.usvc(["start", "g", "./job"], directory: t.root)) ?? Outcome(status: -1, stdout: "", stderr: "cannot run")
      outcomes.withValue { $0.append(outcome) }
    }
    print("50 concurrent starts: \(Int(Date().timeIntervalSince(began) * 1000)) ms")
    let all = outcomes.value
    #expect(all.count == 50)
    #expect(all.allSatisfy { $0.status == 0 }, "\(all.filter { $0.status != 0 }.map(\.stderr))")
    let names = (1...50).map { "g-\($0)" }
    #expect(all.flatMap(\.lines).sorted() == names.map { "started \($0)" }.sorted())
    #expect(try t.ok("jobs").lines == names)
    #expect(try eventually { try t.ok("status", "g").lines.dropFirst().filter { $0.contains("  running  ") }.count == 50 })
    for name in names {
      let conf = try TestHome.run(["git", "config", "-f", t.home + "/jobs/\(name).conf", "--list"], environment: t.environment)
      #expect(conf.status == 0 && conf.lines.contains("job.name=\(name)"), "\(name): \(conf.stderr)")
    }
  }

  @Test("20 concurrent conf writers: distinct keys all kept, pre is one writer's whole value, readers never see a corrupt file")
  func concurrentConfWriters() throws {
    let t = try TestHome()
    try t.ok("start", "cw", "sleep", "1000")
    let conf = t.home + "/jobs/cw-1.conf"
    let distinct: [(key: String, value: String)] = [
      ("stop-timeout", "11"), ("stable-after", "12"), ("backoff-max", "13"), ("after-delay", "14"),
      ("hook-timeout", "15"), ("log-max-bytes", "16000"), ("log-keep", "17"), ("umask", "027"),
      ("stop-signal", "INT"), ("propagate", "true"),
    ]
    let pre: @Sendable (Int) -> [String] = { writer in ["/bin/echo", "writer-\(writer)"] + (1...30).map { "word-\(writer)-\($0)" } }
    let writers = Locked<[Int: Outcome]>([:])
    let done = Locked(false)
    let readerFailures = Locked<[String]>([])
    let reads = Locked(0)
    concurrently(22) { index in
      if index < 20 {
        let arguments = index < 10 ? ["conf", "cw-1", distinct[index].key, distinct[index].value] : ["conf", "cw-1", "pre"] + pre(index)
        let outcome = (try? t.usvc(arguments)) ?? Outcome(status: -1, stdout: "", stderr: "cannot run")
        writers.withValue { $0[index] = outcome }
        if writers.value.count == 20 { done.withValue { $0 = true } }
        return
      }
      // Readers: usvc conf, and git itself, until every writer is done.
      while !done.value {
        let outcome = try? (index == 20
          ? t.usvc("conf", "cw-1")
          : TestHome.run(["git", "config", "-f", conf, "--list"], environment: t.environment))
        reads.withValue { $0 += 1 }
        guard let outcome, outcome.status == 0, outcome.lines.contains("job.name=cw-1") else {
          readerFailures.withValue { $0.append("reader \(index): \(outcome?.stderr ?? "cannot run")") }
          continue
        }
      }
    }
    print("20 conf writers, \(reads.value) reads alongside")
    #expect(readerFailures.value.isEmpty, "\(readerFailures.value.prefix(3))")
    #expect(reads.value >= 2)
    let outcomes = writers.value
    // Writers wait for each other's lock: none is refused.
    #expect(outcomes.count == 20)
    for (index, outcome) in outcomes.sorted(by: { $0.key < $1.key }) {
      #expect(outcome.status == 0 && outcome.stderr.isEmpty, "writer \(index): \(outcome.status) \(outcome.stderr)")
    }
    // No lost update: every writer finds its value.
    for (index, item) in distinct.enumerated() {
      #expect(try t.ok("conf", "cw-1", item.key).stdout == item.value + "\n", "writer \(index) lost its \(item.key)")
    }
    let finalPre = try t.ok("conf", "cw-1", "pre").lines
    #expect((10..<20).contains { pre($0) == finalPre }, "pre is no writer's whole value: \(finalPre.prefix(3))")
    #expect(try TestHome.run(["git", "config", "-f", conf, "--list"], environment: t.environment).status == 0)
  }

  @Test("200 jobs at once on a 2-core machine: all run, status answers with 201 lines, stop all leaves no job process", .timeLimit(.minutes(2)))
  func twoHundredJobs() throws {
    let t = try TestHome()
    var began = Date()
    #expect(try t.ok("start", "-n", "200", "big", "sleep", "1000").lines == (1...200).map { "started big-\($0)" })
    let startMs = Int(Date().timeIntervalSince(began) * 1000)
    began = Date()
    let status = try t.ok("status").lines
    let statusMs = Int(Date().timeIntervalSince(began) * 1000)
    #expect(status.count == 201)
    #expect(status.first?.contains("jobs 200: 200 running") == true, "\(status.first ?? "")")
    #expect(status.dropFirst().allSatisfy { $0.contains("  running  ") })
    #expect(jobProcesses(t.home).count == 200)
    began = Date()
    #expect(try t.ok("stop", "all").lines.count == 200)
    print("200 jobs: start \(startMs) ms, status \(statusMs) ms, stop all \(Int(Date().timeIntervalSince(began) * 1000)) ms")
    #expect(jobProcesses(t.home).isEmpty)
    let pidof = try t.usvc("pidof", "all")
    #expect(pidof.status == 1 && pidof.stdout == "")
    #expect(pidof.stderr.split(separator: "\n").map(String.init) == (1...200).map { "usvc: big-\($0) is not running" })
  }
}

/// What a user can type, and what the files of USVC_HOME let others see.
@Suite("reliability: hostile input and security", .serialized)
struct HostileInputAndSecurityTests {
  @Test("a refused command: exit 1, one 'usvc: ' line, nothing on stdout, nothing written", arguments: HostileCase.all)
  func refused(_ hostile: HostileCase) throws {
    let t = try TestHome()
    let template = try #require(HostileCase.template, "the fixture home could not be made")
    #expect(try TestHome.run(["cp", "-a", template, t.home], environment: t.environment).status == 0)
    // Things the cases name: a plain file, a hosts file.
    _ = FileManager.default.createFile(atPath: t.file("plain"), contents: Data("#!/bin/sh\n".utf8), attributes: [.posixPermissions: 0o644])
    _ = FileManager.default.createFile(atPath: t.file("hosts"), contents: Data("good-host\n-oProxyCommand=touch /tmp/usvc-pwned\n".utf8))
    let place = { (text: String) in
      text.replacing("{ROOT}", with: t.root).replacing("{HOME}", with: t.home).replacing("{CONF}", with: t.home + "/jobs/fx-1.conf")
    }
    // What usvc runs under: itself, or a command that runs it as another user.
    var runAs: [String] = []
    switch hostile.setup {
    case .fixture: break
    case .homeIsFile:
      _ = FileManager.default.createFile(atPath: t.file("afile"), contents: Data("not a folder\n".utf8))
      t.environment["USVC_HOME"] = t.file("afile")
    case .homeMissingParent: t.environment["USVC_HOME"] = t.file("no/such/home")
    case .homeRelative: t.environment["USVC_HOME"] = "relative/home"
    case .homeMode(let mode): chmod(t.home, mode)
    case .homeOwnedByNobody:
      if geteuid() != 0 { try skip("only root can give a folder to another user") }
      #expect(chown(t.home, 65534, 65534) == 0)
    case .homeNotWritable:
      if geteuid() == 0 {
        // Root writes into a 0500 folder anyway: usvc runs as nobody instead, in a home of nobody's.
        if !FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") { try skip("as root this needs setpriv to run usvc as nobody") }
        #expect(try TestHome.run(["chown", "-R", "65534:65534", t.home], environment: t.environment).status == 0)
        #expect(chmod(t.root, 0o711) == 0)
        runAs = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
      }
      #expect(chmod(t.home, 0o500) == 0)
    case .conf(let text):
      #expect(FileManager.default.createFile(atPath: t.home + "/jobs/fx-1.conf", contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]))
    }
    let before = treeSnapshot(t.root)
    let outcome = try t.usvcUnderLimits(hostile.arguments.map(place), runAs: runAs)
    let after = treeSnapshot(t.root)
    if case .homeNotWritable = hostile.setup { chmod(t.home, 0o700) }
    if case .homeMode = hostile.setup { chmod(t.home, 0o700) }

    #expect(outcome.status == 1)
    #expect(outcome.stdout == "")
    let lines = outcome.stderr.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
    #expect(lines.count == 1 && outcome.stderr.hasPrefix("usvc: ") && outcome.stderr.hasSuffix("\n"), "\(outcome.stderr)")
    let message = place(hostile.message)
    if hostile.messageIsPrefix {
      #expect(outcome.stderr.hasPrefix(message), "\(outcome.stderr)")
      if let also = hostile.alsoContains { #expect(outcome.stderr.contains(place(also)), "\(outcome.stderr)") }
    } else {
      #expect(outcome.stderr == message + "\n")
    }
    let changed = Set(before.keys).union(after.keys).filter { before[$0] != after[$0] }.sorted()
    #expect(changed.isEmpty, "written: \(changed)")
  }

  @Test("-e values, a -C folder and USVC_HOME itself holding ; $(…) `…` newlines and #{…} reach the job verbatim, also after its runner is killed")
  func hostilePathsAndEnvironment() throws {
    let t = try TestHome()
    let home = t.root + "/h $(touch pwned) `touch pwned` #{pane_id}\nx;"
    let directory = t.root + "/d;$(touch pwned)`touch pwned`#{session_name}\nnl;"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    t.environment["USVC_HOME"] = home
    defer { _ = try? t.usvc("shutdown") }
    let values = ["V1=ends;", "V2=$(touch pwned) `touch pwned`", "V3=#{pane_id}", "V4=new\nline", "V5=;", "V6=#{session_name};"]
    let out = t.file("received")
    let dump = try t.script("dump", """
      for v in "$(pwd)" "$V1" "$V2" "$V3" "$V4" "$V5" "$V6" "$USVC_HOME"; do printf '%s\\0' "$v"; done > "\(out).tmp"
      mv "\(out).tmp" "\(out)"; exec sleep 1000
      """)
    let started = try t.usvc(["start", "-C", directory] + values.flatMap { ["-e", $0] } + ["hp", dump])
    #expect(started.status == 0, "\(started.stderr)")
    let expected = [directory] + values.map { String($0.dropFirst(3)) } + [home]
    let received = {
      (try? Data(contentsOf: URL(fileURLWithPath: out)))?.split(separator: 0, omittingEmptySubsequences: false)
        .dropLast().map { String(decoding: $0, as: UTF8.self) }
    }
    #expect(eventually { received() != nil })
    #expect(received() == expected)
    // A new runner, started by tmux's hook from what it stored, gets the same.
    unlink(out)
    let supervisor = try Supervisor(environment: t.environment.map { "\($0.key)=\($0.value)" }, executable: usvcBinary)
    let runner = try #require(supervisor.view("hp-1").runner)
    kill(runner, SIGKILL)
    #expect(eventually(within: 15) { received() != nil })
    #expect(received() == expected)
    #expect(supervisor.view("hp-1").runner != runner)
    for folder in [t.root, directory, home, home + "/run", packageRoot, "/", "/tmp"] {
      #expect(!FileManager.default.fileExists(atPath: folder + "/pwned"), "a shell ran something in \(folder)")
    }
    let git = try TestHome.run(["git", "config", "-z", "-f", home + "/jobs/hp-1.conf", "--get", "job.cwd"], environment: t.environment)
    #expect(git.stdout == directory + "\0")
  }

  @Test("home 0700, confs, specs, state, logs and events 0600 even under umask 000; the socket and its folder closed to others; the captured environment shows only in show and conf")
  func privacy() throws {
    let t = try TestHome()
    let secret = "s3cret-\(UInt64.random(in: 1...UInt64.max))"
    t.environment["SECRET_TOKEN"] = secret
    // About 8.6 KB a run: two rotations at the smallest log-max-bytes.
    let job = try t.script("chatty", "i=0; while [ $i -lt 80 ]; do i=$((i + 1)); echo \"line $i \(String(repeating: ".", count: 100))\"; done; exec sleep 1000")
    // The caller's umask lets everyone read everything: usvc's own files must stay private anyway.
    let started = try TestHome.run(["/bin/sh", "-c", "umask 000; exec \"$@\"", "sh", usvcBinary, "start", "sec", job], environment: t.environment)
    #expect(started.status == 0, "\(started.stderr)")
    try t.ok("conf", "sec-1", "log-max-bytes", "4096")
    try t.ok("restart", "sec-1")
    #expect(eventually { FileManager.default.fileExists(atPath: t.home + "/logs/sec-1.log.2") })
    let pid = try #require(try t.pid("sec-1"))
    try t.ok("kill", "-s", "KILL", "sec-1")
    #expect(try eventually { try t.pid("sec-1").map { $0 != pid } ?? false })

    var info = stat()
    #expect(stat(t.home, &info) == 0 && info.st_mode & 0o777 == 0o700)
    for path in ["jobs/sec-1.conf", "jobs/.lock", "run/sec-1.spec", "run/sec-1.state", "run/sec-1.lock", "logs/sec-1.log.1", "logs/sec-1.log.2", "events.log", "tmux.conf"] {
      // The new run may still be printing (copies never move, but the log itself is renamed).
      #expect(eventually { stat(t.home + "/" + path, &info) == 0 }, "\(path) is missing")
      #expect(info.st_mode & 0o777 == 0o600, "\(path): \(String(info.st_mode & 0o777, radix: 8))")
    }
    for (path, entry) in treeSnapshot(t.home) {
      #expect(entry.mode & 0o077 == 0 && entry.owner == geteuid(), "\(path) is open to others: \(entry.kind) \(String(entry.mode, radix: 8))")
    }
    let socket = try Tmux.socketPath(for: Home(path: t.home))
    #expect(lstat(socket, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK && info.st_mode & 0o077 == 0 && info.st_uid == geteuid())
    let folder = String(socket[..<socket.lastIndex(of: "/")!])
    #expect(lstat(folder, &info) == 0 && info.st_mode & 0o077 == 0 && info.st_uid == geteuid())

    // The environment: in show and conf (to you), nowhere else.
    #expect(try t.ok("show", "sec-1").stdout.contains("job.env: SECRET_TOKEN=\(secret)"))
    #expect(try t.ok("conf", "sec-1", "env").lines.contains("SECRET_TOKEN=\(secret)"))
    for arguments in [["status"], ["status", "--json"], ["status", "sec-1"], ["events", "-n", "1000"], ["logs", "sec-1", "-n", "1000"], ["jobs"], ["pidof", "all"]] {
      let outcome = try t.usvc(arguments)
      #expect(outcome.status == 0 && !outcome.stdout.isEmpty)
      #expect(!outcome.stdout.contains(secret) && !outcome.stderr.contains(secret), "usvc \(arguments) shows the secret")
    }
    #expect(!(t.read(t.home + "/events.log") ?? "").contains(secret))
    // Command lines are visible to every user (ps): the secret is in none of this home's.
    for process in ProcStat.all() where ProcStat.environment(of: process.pid).contains("USVC_HOME=\(t.home)") {
      let commandLine = String(decoding: readFile("/proc/\(process.pid)/cmdline") ?? [], as: UTF8.self)
      #expect(!commandLine.contains(secret), "pid \(process.pid): \(commandLine)")
    }
  }
}

// MARK: The hostile cases

/// How a hostile case prepares its USVC_HOME (a copy of the fixture home).
enum HostileSetup: Sendable {
  case fixture
  case homeIsFile, homeMissingParent, homeOwnedByNobody, homeNotWritable, homeRelative
  case homeMode(mode_t)
  /// The fixture's `jobs/fx-1.conf` replaced by this text.
  case conf(String)
}

/// One refused command: its arguments (`{ROOT}`, `{HOME}`, `{CONF}` are filled
/// in), its home, and the one line it must print.
struct HostileCase: Sendable, CustomTestStringConvertible {
  var label: String
  var arguments: [String]
  var setup: HostileSetup = .fixture
  var message: String
  var messageIsPrefix = false
  var alsoContains: String?

  var testDescription: String { label }

  init(_ label: String, _ arguments: [String], _ message: String, setup: HostileSetup = .fixture) {
    self.label = label
    self.arguments = arguments
    self.message = message
    self.setup = setup
  }

  init(_ label: String, _ arguments: [String], prefix: String, containing: String?, setup: HostileSetup) {
    self.init(label, arguments, prefix, setup: setup)
    messageIsPrefix = true
    alsoContains = containing
  }

  static let garbage = "[job\n\tname = fx-1\n"
  static let unterminated = "[job]\n\tname = fx-1\n\tcmd = \"/usr/bin/true\n"

  static let all: [HostileCase] = [
    // Group names.
    HostileCase("empty group", ["start", "", "true"], "usvc: bad group name '': it is empty"),
    HostileCase("reserved group all", ["start", "all", "true"], "usvc: bad group name 'all': it is reserved"),
    HostileCase("reserved group live", ["start", "live", "true"], "usvc: bad group name 'live': it is reserved"),
    HostileCase("reserved group usvc", ["start", "usvc", "true"], "usvc: bad group name 'usvc': it is reserved"),
    HostileCase("33-character group", ["start", String(repeating: "a", count: 33), "true"],
                "usvc: bad group name '\(String(repeating: "a", count: 33))': longer than 32 characters"),
    HostileCase("unicode group", ["start", "wéb", "true"], "usvc: bad group name 'wéb': only a-z, 0-9 and - are allowed"),
    HostileCase("upper-case group", ["start", "Web", "true"], "usvc: bad group name 'Web': it must start with a letter a-z"),
    HostileCase("../ group", ["start", "../x", "true"], "usvc: bad group name '../x': it must start with a letter a-z"),
    HostileCase("group with /..", ["start", "a/../b", "true"], "usvc: bad group name 'a/../b': only a-z, 0-9 and - are allowed"),
    HostileCase("group starting with a digit", ["start", "9lives", "true"], "usvc: bad group name '9lives': it must start with a letter a-z"),
    HostileCase("group named like a job", ["start", "fx-1", "true"], "usvc: bad group name 'fx-1': it ends in - and digits, like a job name (GROUP-N)"),
    HostileCase("group named like a job of a job", ["start", "a-1-2", "true"], "usvc: bad group name 'a-1-2': it ends in - and digits, like a job name (GROUP-N)"),
    // Job names with a slash: no path outside jobs/ is a job.
    HostileCase("conf of ../jobs/fx-1", ["conf", "../jobs/fx-1", "stop-timeout", "5"], "usvc: no job named '../jobs/fx-1'"),
    HostileCase("show of ../jobs/fx-1", ["show", "../jobs/fx-1"], "usvc: no job named '../jobs/fx-1'"),
    HostileCase("conf of fx-1/../fx-1", ["conf", "fx-1/../fx-1"], "usvc: no job named 'fx-1/../fx-1'"),
    HostileCase("stop of ../jobs/fx-1", ["stop", "../jobs/fx-1"], "usvc: no job or group named '../jobs/fx-1'"),
    HostileCase("conf of a hidden name", ["conf", ".lock"], "usvc: no job named '.lock'"),
    // Counts.
    HostileCase("-n 0", ["start", "-n", "0", "g", "true"], "usvc: bad value for -n: '0': expected 1 to 1000 jobs"),
    HostileCase("-n -1", ["start", "-n", "-1", "g", "true"], "usvc: bad value for -n: '-1': expected 1 to 1000 jobs"),
    HostileCase("-n abc", ["start", "-n", "abc", "g", "true"], "usvc: The value 'abc' is invalid for '-n <n>'"),
    HostileCase("-n huge", ["start", "-n", "99999999999999999999", "g", "true"], "usvc: The value '99999999999999999999' is invalid for '-n <n>'"),
    HostileCase("-n 1001", ["start", "-n", "1001", "g", "true"], "usvc: bad value for -n: '1001': expected 1 to 1000 jobs"),
    // Commands.
    HostileCase("missing command", ["start", "g"], "usvc: missing COMMAND: usvc start GROUP COMMAND [ARG…]"),
    HostileCase("only --", ["start", "g", "--"], "usvc: missing COMMAND: usvc start GROUP COMMAND [ARG…]"),
    HostileCase("empty command", ["start", "g", ""], "usvc: '': command not found"),
    HostileCase("folder as command", ["start", "g", "{ROOT}"], "usvc: {ROOT}: is a directory"),
    HostileCase("non-executable file", ["start", "g", "{ROOT}/plain"], "usvc: {ROOT}/plain: Permission denied (not executable)"),
    HostileCase("command not on PATH", ["start", "g", "no-such-command-xyz"], "usvc: no-such-command-xyz: command not found"),
    HostileCase("--once with --restart always", ["start", "--once", "--restart", "always", "g", "true"], "usvc: --once and --restart always contradict each other"),
    HostileCase("--restart sometimes", ["start", "--restart", "sometimes", "g", "true"],
                "usvc: The value 'sometimes' is invalid for '--restart <restart>'. Please provide one of 'always', 'on-failure' or 'never'."),
    HostileCase("-C a missing folder", ["start", "-C", "{ROOT}/missing", "g", "true"], "usvc: {ROOT}/missing: not a directory"),
    HostileCase("--after nothing", ["start", "--after", "nope", "g", "true"], "usvc: no job or group named 'nope'"),
    // Signals.
    HostileCase("kill -s NOPE", ["kill", "-s", "NOPE", "fx-1"], "usvc: unknown signal 'NOPE'"),
    HostileCase("kill -s 0", ["kill", "-s", "0", "fx-1"], "usvc: unknown signal '0'"),
    HostileCase("kill -s 99", ["kill", "-s", "99", "fx-1"], "usvc: unknown signal '99'"),
    HostileCase("kill -s SIGNOPE", ["kill", "-s", "SIGNOPE", "fx-1"], "usvc: unknown signal 'SIGNOPE'"),
    HostileCase("kill -s RTMIN+31", ["kill", "-s", "RTMIN+31", "fx-1"], "usvc: unknown signal 'RTMIN+31'"),
    HostileCase("kill -s RTMAX+1", ["kill", "-s", "RTMAX+1", "fx-1"], "usvc: unknown signal 'RTMAX+1'"),
    // Jobs that are not running (fx-1 exited).
    HostileCase("kill of a job not running", ["kill", "fx-1"], "usvc: fx-1 is not running"),
    HostileCase("pidof of a job not running", ["pidof", "fx-1"], "usvc: fx-1 is not running"),
    // Conf keys and values.
    HostileCase("unknown conf key", ["conf", "fx-1", "colour", "red"], "usvc: unknown conf key 'colour'"),
    HostileCase("stop-timeout -5", ["conf", "fx-1", "stop-timeout", "-5"], "usvc: bad value for job.stop-timeout: '-5': expected a number of seconds, 0 or more"),
    HostileCase("restart sometimes", ["conf", "fx-1", "restart", "sometimes"], "usvc: bad value for job.restart: 'sometimes': expected always, on-failure or never"),
    HostileCase("propagate maybe", ["conf", "fx-1", "propagate", "maybe"], "usvc: bad value for job.propagate: 'maybe': expected true or false"),
    HostileCase("umask 999", ["conf", "fx-1", "umask", "999"], "usvc: bad value for job.umask: '999': expected an octal mode like 022"),
    HostileCase("env NOEQUALS", ["conf", "fx-1", "env", "NOEQUALS"], "usvc: bad value for job.env: 'NOEQUALS': expected KEY=VALUE"),
    HostileCase("stop-signal NOPE", ["conf", "fx-1", "stop-signal", "NOPE"], "usvc: bad value for job.stop-signal: 'NOPE': not a signal name or number"),
    HostileCase("two values for one", ["conf", "fx-1", "stop-timeout", "1", "2"], "usvc: job.stop-timeout takes one value"),
    HostileCase("conf name", ["conf", "fx-1", "name", "other"], "usvc: bad value for job.name: 'other': set by usvc"),
    HostileCase("--unset cmd", ["conf", "fx-1", "--unset", "cmd"], "usvc: bad value for job.cmd: '': cannot be removed"),
    HostileCase("relative cwd", ["conf", "fx-1", "cwd", "relative"], "usvc: bad value for job.cwd: 'relative': an absolute path is needed"),
    HostileCase("missing cwd", ["conf", "fx-1", "cwd", "/nonexistent"], "usvc: /nonexistent: No such file or directory"),
    HostileCase("cwd a file", ["conf", "fx-1", "cwd", "{ROOT}/plain"], "usvc: {ROOT}/plain: not a directory"),
    HostileCase("after itself", ["conf", "fx-1", "after", "fx-1"], "usvc: dependency cycle: fx-1 -> fx-1"),
    HostileCase("after its own group", ["conf", "fx-1", "after", "fx"], "usvc: dependency cycle: fx-1 -> fx-1"),
    HostileCase("start after its own group", ["start", "--after", "fx", "fx", "true"], "usvc: dependency cycle: fx-2 -> fx-2"),
    // Log rotation bounds: a tiny size with many copies made the runner spin.
    HostileCase("log-keep 100000", ["conf", "fx-1", "log-keep", "100000"], "usvc: bad value for job.log-keep: '100000': expected 0 to 1000 copies"),
    HostileCase("log-keep -1", ["conf", "fx-1", "log-keep", "-1"], "usvc: bad value for job.log-keep: '-1': expected a whole number, 0 or more"),
    HostileCase("log-max-bytes 100", ["conf", "fx-1", "log-max-bytes", "100"], "usvc: bad value for job.log-max-bytes: '100': expected 4096 to 1099511627776 bytes"),
    HostileCase("log-max-bytes 0", ["conf", "fx-1", "log-max-bytes", "0"], "usvc: bad value for job.log-max-bytes: '0': expected 4096 to 1099511627776 bytes"),
    HostileCase("log-max-bytes 2 TiB", ["conf", "fx-1", "log-max-bytes", "2199023255552"], "usvc: bad value for job.log-max-bytes: '2199023255552': expected 4096 to 1099511627776 bytes"),
    // Health (SPEC: Health): SPECs, limits, numbers.
    HostileCase("start --ready nonsense", ["start", "--ready", "nonsense", "g", "true"], "usvc: bad value for job.ready: 'nonsense': expected tcp:PORT, tcp:HOST:PORT, http://HOST:PORT/PATH, exec:COMMAND, log:REGEX or notify"),
    HostileCase("start --ready tcp:0", ["start", "--ready", "tcp:0", "g", "true"], "usvc: bad value for job.ready: 'tcp:0': expected tcp:PORT, tcp:HOST:PORT, http://HOST:PORT/PATH, exec:COMMAND, log:REGEX or notify"),
    HostileCase("start --ready tcp:70000", ["start", "--ready", "tcp:70000", "g", "true"], "usvc: bad value for job.ready: 'tcp:70000': expected tcp:PORT, tcp:HOST:PORT, http://HOST:PORT/PATH, exec:COMMAND, log:REGEX or notify"),
    HostileCase("start --ready http without port", ["start", "--ready", "http://localhost/x", "g", "true"], "usvc: bad value for job.ready: 'http://localhost/x': expected tcp:PORT, tcp:HOST:PORT, http://HOST:PORT/PATH, exec:COMMAND, log:REGEX or notify"),
    HostileCase("start --ready log:(", ["start", "--ready", "log:(", "g", "true"], "usvc: bad value for job.ready: 'log:(': expected tcp:PORT, tcp:HOST:PORT, http://HOST:PORT/PATH, exec:COMMAND, log:REGEX or notify"),
    HostileCase("start --ready exec: empty", ["start", "--ready", "exec:", "g", "true"], "usvc: bad value for job.ready: 'exec:': expected tcp:PORT, tcp:HOST:PORT, http://HOST:PORT/PATH, exec:COMMAND, log:REGEX or notify"),
    HostileCase("start --health notify", ["start", "--health", "notify", "g", "true"], "usvc: bad value for job.health: 'notify': expected tcp:PORT, tcp:HOST:PORT, http://HOST:PORT/PATH or exec:COMMAND"),
    HostileCase("start --health log:up", ["start", "--health", "log:up", "g", "true"], "usvc: bad value for job.health: 'log:up': expected tcp:PORT, tcp:HOST:PORT, http://HOST:PORT/PATH or exec:COMMAND"),
    HostileCase("health tcp:x", ["conf", "fx-1", "health", "tcp:x"], "usvc: bad value for job.health: 'tcp:x': expected tcp:PORT, tcp:HOST:PORT, http://HOST:PORT/PATH or exec:COMMAND"),
    HostileCase("ready-timeout -1", ["conf", "fx-1", "ready-timeout", "-1"], "usvc: bad value for job.ready-timeout: '-1': expected a number of seconds, 0 or more"),
    HostileCase("ready-interval 0", ["conf", "fx-1", "ready-interval", "0"], "usvc: bad value for job.ready-interval: '0': expected a number of seconds, more than 0"),
    HostileCase("health-interval soon", ["conf", "fx-1", "health-interval", "soon"], "usvc: bad value for job.health-interval: 'soon': expected a number of seconds, more than 0"),
    HostileCase("health-timeout -2", ["conf", "fx-1", "health-timeout", "-2"], "usvc: bad value for job.health-timeout: '-2': expected a number of seconds, more than 0"),
    HostileCase("health-retries 0", ["conf", "fx-1", "health-retries", "0"], "usvc: bad value for job.health-retries: '0': expected 1 to 1000000 failures"),
    HostileCase("health-retries x", ["conf", "fx-1", "health-retries", "x"], "usvc: bad value for job.health-retries: 'x': expected a whole number, 0 or more"),
    HostileCase("silence-max -1", ["conf", "fx-1", "silence-max", "-1"], "usvc: bad value for job.silence-max: '-1': expected a number of seconds, 0 or more"),
    HostileCase("memory-max -1M", ["conf", "fx-1", "memory-max", "-1M"], "usvc: bad value for job.memory-max: '-1M': expected a number of bytes, 0 or more (K, M or G may follow)"),
    HostileCase("memory-max lots", ["conf", "fx-1", "memory-max", "lots"], "usvc: bad value for job.memory-max: 'lots': expected a number of bytes, 0 or more (K, M or G may follow)"),
    HostileCase("limit unknown name", ["conf", "fx-1", "limit", "files=10"], "usvc: bad value for job.limit: 'files=10': expected NAME=VALUE, NAME one of nofile nproc core as fsize cpu stack memlock"),
    HostileCase("limit without =", ["conf", "fx-1", "limit", "nofile"], "usvc: bad value for job.limit: 'nofile': expected NAME=VALUE, NAME one of nofile nproc core as fsize cpu stack memlock"),
    HostileCase("limit -1", ["conf", "fx-1", "limit", "nofile=-1"], "usvc: bad value for job.limit: 'nofile=-1': expected a whole number (K, M or G may follow) or unlimited after ="),
    HostileCase("limit many", ["conf", "fx-1", "limit", "nofile=many"], "usvc: bad value for job.limit: 'nofile=many': expected a whole number (K, M or G may follow) or unlimited after ="),
    HostileCase("start-limit soft above hard", ["conf", "fx-1", "start-limit", "nofile=4096:1024"], "usvc: bad value for job.start-limit: 'nofile=4096:1024': expected NAME=SOFT:HARD, each a whole number or unlimited, SOFT not above HARD"),
    HostileCase("start-limit one value", ["conf", "fx-1", "start-limit", "nofile=1024"], "usvc: bad value for job.start-limit: 'nofile=1024': expected NAME=SOFT:HARD, each a whole number or unlimited, SOFT not above HARD"),
    HostileCase("nice 20", ["conf", "fx-1", "nice", "20"], "usvc: bad value for job.nice: '20': expected a nice value, -20 to 19"),
    HostileCase("nice x", ["conf", "fx-1", "nice", "x"], "usvc: bad value for job.nice: 'x': expected a nice value, -20 to 19"),
    // Sizes: more values than a conf may hold, more words than are parsed.
    HostileCase("10,001 arguments", ["start", "g", "true"] + TooMany.words, TooMany.message("job.args")),
    HostileCase("10,001 conf values", ["conf", "fx-1", "env"] + TooMany.words.map { _ in "A=1" }, TooMany.message("job.env")),
    HostileCase("1,100 -e options", ["start"] + TooMany.options + ["g", "true"], TooMany.optionsMessage),
    // Selectors that match nothing.
    HostileCase("stop nope", ["stop", "nope"], "usvc: no job or group named 'nope'"),
    HostileCase("restart nope", ["restart", "nope"], "usvc: no job or group named 'nope'"),
    HostileCase("rm nope", ["rm", "nope"], "usvc: no job or group named 'nope'"),
    HostileCase("kill nope", ["kill", "nope"], "usvc: no job or group named 'nope'"),
    HostileCase("logs nope", ["logs", "nope"], "usvc: no job or group named 'nope'"),
    HostileCase("status fx-1 nope", ["status", "fx-1", "nope"], "usvc: no job or group named 'nope'"),
    HostileCase("jobs nope", ["jobs", "nope"], "usvc: no job or group named 'nope'"),
    HostileCase("pidof nope", ["pidof", "nope"], "usvc: no job or group named 'nope'"),
    HostileCase("show nope", ["show", "nope"], "usvc: no job named 'nope'"),
    HostileCase("conf nope", ["conf", "nope"], "usvc: no job named 'nope'"),
    // A newline in a name or value: the message stays one whole line, the newline shown as \n.
    HostileCase("stop a name with a newline", ["stop", "fx-1\nx"], "usvc: no job or group named 'fx-1\\nx'"),
    HostileCase("show a name with a newline", ["show", "a\njob.cmd: /bin/evil"], "usvc: no job named 'a\\njob.cmd: /bin/evil'"),
    HostileCase("logs -n with a newline", ["logs", "-n", "1\n2", "fx-1"], "usvc: The value '1\\n2' is invalid for '-n <n>'"),
    HostileCase("--restart= with a newline", ["start", "--restart=a\nb", "g", "true"],
                "usvc: The value 'a\\nb' is invalid for '--restart <restart>'. Please provide one of 'always', 'on-failure' or 'never'."),
    // Help topics that are no command.
    HostileCase("help nope", ["help", "nope"], "usvc: no command named 'nope': see 'usvc help'"),
    HostileCase("help start nope", ["help", "start", "nope"], "usvc: no command named 'nope': see 'usvc help'"),
    // USVC_HOME that usvc must not use.
    HostileCase("home is a file", ["jobs"], "usvc: USVC_HOME {ROOT}/afile is not a directory", setup: .homeIsFile),
    HostileCase("home world-writable", ["status"], "usvc: USVC_HOME {HOME} is writable by others (mode 777): run chmod 700 {HOME}", setup: .homeMode(0o777)),
    HostileCase("home group-writable", ["jobs"], "usvc: USVC_HOME {HOME} is writable by others (mode 770): run chmod 700 {HOME}", setup: .homeMode(0o770)),
    HostileCase("home of another user", ["status"], "usvc: USVC_HOME {HOME} is owned by uid 65534, not by you (uid 0)", setup: .homeOwnedByNobody),
    HostileCase("home not writable: start", ["start", "g", "true"], "usvc: USVC_HOME {HOME} is not writable: Permission denied", setup: .homeNotWritable),
    HostileCase("relative home", ["jobs"], "usvc: USVC_HOME must be an absolute path, not 'relative/home' (it would name another home from every folder)", setup: .homeRelative),
    HostileCase("home's parent missing", ["jobs"], "usvc: cannot create USVC_HOME {ROOT}/no/such/home: No such file or directory", setup: .homeMissingParent),
    // Hand-corrupted confs: the file and the line, never a crash.
    HostileCase("garbage conf: conf", ["conf", "fx-1"], prefix: "usvc: {CONF}: ", containing: "{CONF}:1", setup: .conf(garbage)),
    HostileCase("garbage conf: show", ["show", "fx-1"], prefix: "usvc: {CONF}: ", containing: "{CONF}:1", setup: .conf(garbage)),
    HostileCase("unterminated quote: conf", ["conf", "fx-1"], "usvc: {CONF}: line 3: unterminated quote (git config cannot read this file)", setup: .conf(unterminated)),
    HostileCase("unterminated quote: show", ["show", "fx-1"], "usvc: {CONF}: line 3: unterminated quote (git config cannot read this file)", setup: .conf(unterminated)),
    HostileCase("unterminated quote: conf KEY VALUE", ["conf", "fx-1", "stop-timeout", "5"], "usvc: {CONF}: line 3: unterminated quote (git config cannot read this file)", setup: .conf(unterminated)),
    // --hosts values that look like options.
    HostileCase("--hosts -oProxyCommand", ["status", "--hosts", "-oProxyCommand=touch /tmp/usvc-pwned"], "usvc: bad host name '-oProxyCommand=touch /tmp/usvc-pwned'"),
    HostileCase("--hosts=-x", ["status", "--hosts=-x"], "usvc: bad host name '-x'"),
    HostileCase("--hosts a,-b", ["status", "--hosts", "a,-b"], "usvc: bad host name '-b'"),
    HostileCase("--hosts-file with an option", ["status", "--hosts-file", "{ROOT}/hosts"], "usvc: bad host name '-oProxyCommand=touch /tmp/usvc-pwned'"),
    // Other option values.
    HostileCase("events -n abc", ["events", "-n", "abc"], "usvc: The value 'abc' is invalid for '-n <n>'"),
    HostileCase("logs -n x", ["logs", "-n", "x", "fx-1"], "usvc: The value 'x' is invalid for '-n <n>'"),
    HostileCase("logs -n -1", ["logs", "-n", "-1", "fx-1"], "usvc: bad value for -n: '-1': expected a number of lines, 0 or more"),
    HostileCase("events -n -1", ["events", "-n", "-1"], "usvc: bad value for -n: '-1': expected a number of events, 0 or more"),
    // logs --since: a duration (s/m/h/d) back, or an ISO 8601 time.
    HostileCase("logs --since yesterday", ["logs", "--since", "yesterday", "fx-1"], "usvc: bad value for --since: 'yesterday': expected a duration like 90s, 10m, 2h or 1d, or a time like 2026-12-01T10:00 (UTC, or with Z or +01:00)"),
    HostileCase("logs --since -5m", ["logs", "--since", "-5m", "fx-1"], "usvc: bad value for --since: '-5m': expected a duration like 90s, 10m, 2h or 1d, or a time like 2026-12-01T10:00 (UTC, or with Z or +01:00)"),
    HostileCase("logs --since 10x", ["logs", "--since", "10x", "fx-1"], "usvc: bad value for --since: '10x': expected a duration like 90s, 10m, 2h or 1d, or a time like 2026-12-01T10:00 (UTC, or with Z or +01:00)"),
    HostileCase("logs --since 2026-13-01", ["logs", "--since", "2026-13-01", "fx-1"], "usvc: bad value for --since: '2026-13-01': expected a duration like 90s, 10m, 2h or 1d, or a time like 2026-12-01T10:00 (UTC, or with Z or +01:00)"),
    HostileCase("logs --since empty", ["logs", "--since", "", "fx-1"], "usvc: bad value for --since: '': expected a duration like 90s, 10m, 2h or 1d, or a time like 2026-12-01T10:00 (UTC, or with Z or +01:00)"),
    HostileCase("logs --since with a newline", ["logs", "--since", "1m\n2m", "fx-1"], "usvc: bad value for --since: '1m\\n2m': expected a duration like 90s, 10m, 2h or 1d, or a time like 2026-12-01T10:00 (UTC, or with Z or +01:00)"),
  ]

  /// A USVC_HOME with one job, `fx-1`, that ran once and exited, and no tmux
  /// server: made once per run (one real `start`), copied for each case.
  static let template: String? = {
    var bytes = Array("/tmp/ut.XXXXXX".utf8CString)
    guard mkdtemp(&bytes) != nil else { return nil }
    let root = String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    templateRoot.withValue { $0 = root }
    atexit {
      if let root = HostileCase.templateRoot.value { try? FileManager.default.removeItem(atPath: root) }
    }
    var environment = ProcessInfo.processInfo.environment
    environment["USVC_HOME"] = root + "/h"
    for key in ["TMUX", "TMUX_PANE", "USVC_JOB", "USVC_GROUP"] { environment[key] = nil }
    let run = { (arguments: [String]) in (try? TestHome.run([usvcBinary] + arguments, environment: environment))?.status == 0 }
    guard run(["start", "--once", "fx", "true"]) else { return nil }
    guard eventually(within: 10, { (readTextFile(root + "/h/run/fx-1.state") ?? "").contains("state=exited") }),
      run(["shutdown"])
    else { return nil }
    return root + "/h"
  }()
  static let templateRoot = Locked<String?>(nil)
}

// MARK: Helpers

/// A value shared between threads, behind a lock.
final class Locked<Value>: @unchecked Sendable {  // Every access holds `lock`.
  private var stored: Value
  private let lock = NSLock()
  init(_ value: Value) { stored = value }
  var value: Value { lock.withLock { stored } }
  func withValue<R>(_ body: (inout Value) -> R) -> R { lock.withLock { body(&stored) } }
}

/// Runs `body(0)` … `body(count - 1)` each on a thread of its own, all at
/// once (not a pool of as many threads as cores), and returns when all end.
func concurrently(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
  let group = DispatchGroup()
  for index in 0..<count {
    group.enter()
    Thread.detachNewThread {
      body(index)
      group.leave()
    }
  }
  group.wait()
}

/// Starts a program with its output going nowhere; returns its pid (the caller waits).
func spawnQuietly(_ argv: [String], environment: [String: String]) throws -> pid_t {
  try spawn(
    argv, environment: environment.map { "\($0.key)=\($0.value)" },
    actions: [.open("/dev/null", as: 0, flags: O_RDWR), .duplicate(0, as: 1), .duplicate(0, as: 2)])
}

/// How many descriptors a process has open.
func openDescriptors(of pid: pid_t) -> Int { directoryEntries("/proc/\(pid)/fd").count }

/// A process's anonymous memory in KiB (heap, stack, its own data), from
/// `/proc/PID/smaps_rollup`. Not Private_Dirty: a freshly built binary's pages
/// are dirty in the page cache until written back, and count there as the
/// runner touches more of its code, which is not growth.
func privateDirtyKiB(of pid: pid_t) -> Int? {
  guard let text = readTextFile("/proc/\(pid)/smaps_rollup") else { return nil }
  for line in text.split(separator: "\n") where line.hasPrefix("Anonymous:") {
    return Int(line.split(separator: " ")[1])
  }
  return nil
}

/// The children of `parent` that ended but were not reaped.
func zombieChildren(of parent: pid_t) -> [pid_t] {
  ProcStat.all().filter { $0.parent == parent && $0.state == "Z" }.map(\.pid)
}

/// Every live process of any job of `home` (it carries `USVC_HOME` and a `USVC_JOB`).
func jobProcesses(_ home: String) -> [pid_t] {
  ProcStat.all().filter { process in
    guard process.state != "Z" else { return false }
    let environment = ProcStat.environment(of: process.pid)
    return environment.contains("USVC_HOME=\(home)") && environment.contains { $0.hasPrefix("USVC_JOB=") }
  }.map(\.pid)
}

/// One entry of a folder tree: what a refused command must leave as it was.
struct TreeEntry: Equatable, CustomStringConvertible {
  var kind: String
  var mode: mode_t
  var owner: uid_t
  var content: [UInt8]
  var description: String { "\(kind) \(String(mode, radix: 8)) uid \(owner), \(content.count) bytes" }
}

/// Every file, folder, link and socket under `path` (not following links),
/// keyed by its path relative to `path`, with its mode, owner and content.
func treeSnapshot(_ path: String) -> [String: TreeEntry] {
  var entries: [String: TreeEntry] = [:]
  func visit(_ full: String, _ relative: String) {
    var info = stat()
    guard lstat(full, &info) == 0 else { return }
    let type = info.st_mode & S_IFMT
    var content: [UInt8] = []
    let kind: String
    switch type {
    case S_IFDIR: kind = "folder"
    case S_IFREG:
      kind = "file"
      content = readFile(full) ?? []
    case S_IFLNK:
      kind = "link"
      var target = [CChar](repeating: 0, count: Int(PATH_MAX))
      let length = readlink(full, &target, target.count)
      content = length > 0 ? target[0..<length].map { UInt8(bitPattern: $0) } : []
    case S_IFSOCK: kind = "socket"
    default: kind = "other"
    }
    entries[relative] = TreeEntry(kind: kind, mode: info.st_mode & 0o7777, owner: info.st_uid, content: content)
    if type == S_IFDIR {
      for name in directoryEntries(full) { visit(full + "/" + name, relative + "/" + name) }
    }
  }
  visit(path, ".")
  return entries
}
