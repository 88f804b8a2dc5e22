import Foundation
import Testing

@testable import USVCCore
import USVCSys

/// What a hostile new user found (issue 9): each test failed before its fix.
@Suite("robustness: broken confs, full and read-only homes, concurrent commands")
struct RobustnessTests {
  /// A job's conf replaced by text libgit2 cannot parse.
  static func breakConf(_ t: TestHome, _ name: String, _ text: String = "[job") throws {
    try text.write(toFile: t.home + "/jobs/\(name).conf", atomically: true, encoding: .utf8)
  }

  @Test("one broken conf: status lists every job (the broken one as broken, its reason on stderr), exit 0")
  func brokenConfStatus() throws {
    let t = try TestHome()
    try t.ok("start", "-n", "3", "x", "sleep", "1000")
    try Self.breakConf(t, "x-1")
    let status = try t.usvc("status")
    #expect(status.status == 0)
    let lines = status.lines
    #expect(lines.count == 4, "\(lines)")
    #expect(lines[0].contains("jobs 3: 2 running, 1 broken"), "\(lines[0])")
    #expect(lines[1].split(separator: " ", omittingEmptySubsequences: true)[3] == "broken", "\(lines[1])")
    #expect(lines[2].contains("  running  ") && lines[3].contains("  running  "))
    #expect(status.stderr.hasPrefix("usvc: \(t.home)/jobs/x-1.conf: "), "\(status.stderr)")
    #expect(status.stderr.split(separator: "\n").count == 1)
    let json = try t.usvc("status", "--json")
    #expect(json.status == 0 && json.stdout.contains("\"state\":\"broken\""))
    // Reading commands still work.
    #expect(try t.ok("jobs").lines == ["x-1", "x-2", "x-3"])
    #expect(try t.usvc("check").stdout.contains("x-1.conf"))
  }

  @Test("one broken conf: stop all stops every job, the broken one from its last spec")
  func brokenConfStop() throws {
    let t = try TestHome()
    try t.ok("start", "-n", "3", "x", "sleep", "1000")
    try Self.breakConf(t, "x-1")
    let stop = try t.usvc("stop", "all")
    #expect(stop.status == 0, "\(stop.stderr)")
    #expect(stop.lines == ["stopped x-1", "stopped x-2", "stopped x-3"])
    #expect(["x-1", "x-2", "x-3"].allSatisfy { t.processes(of: $0).isEmpty })
    #expect(try t.state("x-2") == .stopped && t.state("x-3") == .stopped)
  }

  @Test("one broken conf: restart all restarts the others, then reports it (exit 1); rm removes it")
  func brokenConfRestartAndRemove() throws {
    let t = try TestHome()
    try t.ok("start", "-n", "3", "x", "sleep", "1000")
    let before = try ["x-2", "x-3"].map { try t.pid($0) }
    try Self.breakConf(t, "x-1")
    let restart = try t.usvc("restart", "all")
    #expect(restart.status == 1)
    #expect(restart.lines == ["started x-2", "started x-3"])
    #expect(restart.stderr.hasPrefix("usvc: cannot start x-1: \(t.home)/jobs/x-1.conf: "), "\(restart.stderr)")
    let after = try ["x-2", "x-3"].map { try t.pid($0) }
    #expect(after.allSatisfy { $0 != nil } && after != before)
    #expect(try t.state("x-1") == .broken)
    #expect(try t.ok("rm", "x-1").lines == ["removed x-1"])
    #expect(!FileManager.default.fileExists(atPath: t.home + "/jobs/x-1.conf"))
    #expect(!FileManager.default.fileExists(atPath: t.home + "/run/x-1.spec"))
    #expect(try t.ok("jobs").lines == ["x-2", "x-3"])
    #expect(try t.tmux("list-windows", "-t", "=usvc", "-F", "#{window_name}").lines == ["usvc", "x-2", "x-3"])
  }

  @Test("one broken conf: save writes every other job, names the one it left out, exit 1")
  func brokenConfSave() throws {
    let t = try TestHome()
    try t.ok("start", "-n", "3", "x", "sleep", "1000")
    try t.ok("start", "y", "sleep", "1000")
    try Self.breakConf(t, "x-1")
    let file = t.file("saved.conf")
    let save = try t.usvc("save", file)
    #expect(save.status == 1)
    #expect(save.stdout == "saved 2 groups to \(file)\n")
    #expect(save.stderr.hasPrefix("usvc: cannot save x-1: \(t.home)/jobs/x-1.conf: "), "\(save.stderr)")
    let count = try TestHome.run(["git", "config", "-f", file, "group.x.count"], environment: t.environment)
    #expect(count.stdout == "2\n")
  }

  @Test("a conf edited by hand into a bad value is broken; fixed, it is not")
  func badValueIsBroken() throws {
    let t = try TestHome()
    try t.ok("start", "x", "sleep", "1000")
    let conf = t.home + "/jobs/x-1.conf"
    let good = try #require(t.read(conf))
    try (good + "\tstop-timeout = soon\n").write(toFile: conf, atomically: true, encoding: .utf8)
    #expect(try t.state("x-1") == .broken)
    try good.write(toFile: conf, atomically: true, encoding: .utf8)
    #expect(try t.state("x-1") == .running)
  }

  @Test("a group name ending in - and digits is refused, so a selector names one thing")
  func groupNameLikeJobName() throws {
    let t = try TestHome()
    try t.ok("start", "a", "sleep", "1000")
    let refused = try t.usvc("start", "a-1", "true")
    #expect(refused.status == 1)
    #expect(refused.stderr == "usvc: bad group name 'a-1': it ends in - and digits, like a job name (GROUP-N)\n")
    #expect(try t.ok("jobs").lines == ["a-1"])
  }

  @Test("a conf deleted by hand: its running job is shown, stoppable, and its name is not reused")
  func confDeletedByHand() throws {
    let t = try TestHome()
    try t.ok("start", "g", "sleep", "1000")
    let pid = try #require(try t.pid("g-1"))
    try FileManager.default.removeItem(atPath: t.home + "/jobs/g-1.conf")
    let status = try t.ok("status").lines
    #expect(status.count == 2 && status[1].contains("g-1") && status[1].contains("running") && status[1].contains("sleep 1000"), "\(status)")
    #expect(try t.ok("start", "g", "true").lines == ["started g-2"])
    #expect(try t.ok("stop", "all").lines == ["stopped g-1", "stopped g-2"])
    #expect(kill(pid, 0) != 0)
    #expect(try t.ok("jobs").lines == ["g-2"])
  }

  @Test("a state file removed under a running job: status, pidof and kill still see its process")
  func stateFileRemoved() throws {
    let t = try TestHome()
    try t.ok("start", "ks", "sleep", "1000")
    let pid = try #require(try t.pid("ks-1"))
    try FileManager.default.removeItem(atPath: t.home + "/run/ks-1.state")
    #expect(try t.ok("pidof", "ks-1").lines == [String(pid)])
    let line = try t.ok("status", "ks-1").lines[1]
    #expect(line.contains("running") && line.contains("pid \(pid)"), "\(line)")
  }

  @Test("a job that never ran shows no downtime, not 55 years")
  func noStateFile() throws {
    let t = try TestHome()
    try t.ok("start", "ns", "sleep", "1000")
    try t.ok("stop", "ns")
    try FileManager.default.removeItem(atPath: t.home + "/run/ns-1.state")
    let line = try t.ok("status", "ns").lines[1]
    #expect(line.contains("down -"), "\(line)")
  }

  @Test("a job after itself, or after its own group, is refused as a cycle")
  func selfDependency() throws {
    let t = try TestHome()
    try t.ok("start", "db", "sleep", "1000")
    let direct = try t.usvc("conf", "db-1", "after", "db-1")
    #expect(direct.status == 1 && direct.stderr == "usvc: dependency cycle: db-1 -> db-1\n")
    let group = try t.usvc("conf", "db-1", "after", "db")
    #expect(group.status == 1 && group.stderr == "usvc: dependency cycle: db-1 -> db-1\n")
    #expect(try t.ok("conf", "db-1", "after").stdout == "")
  }

  @Test("a working directory that does not exist is refused by conf, and named when it goes away later")
  func missingDirectory() throws {
    let t = try TestHome()
    let folder = t.file("wd")
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    try t.ok("start", "-C", folder, "--once", "cw", "true")
    let refused = try t.usvc("conf", "cw-1", "cwd", "/nonexistent")
    #expect(refused.status == 1 && refused.stderr == "usvc: /nonexistent: No such file or directory\n")
    try FileManager.default.removeItem(atPath: folder)
    let restart = try t.usvc("restart", "cw-1")
    #expect(restart.status == 1)
    #expect(restart.stderr == "usvc: cannot start cw-1: working directory \(folder): No such file or directory\n")
  }

  @Test("start --after a stopped job prints 'waiting NAME for SEL' at once, exit 0; it starts once that runs")
  func startWaitingForDependency() throws {
    let t = try TestHome()
    try t.ok("start", "db", "sleep", "1000")
    try t.ok("stop", "db")
    let start = try t.usvc("start", "--after", "db", "api", "sleep", "1000")
    #expect(start.status == 0 && start.stdout == "waiting api-1 for db\n", "\(start.stdout)\(start.stderr)")
    #expect(try t.state("api-1") == .waiting)
    #expect(try t.pid("api-1") == nil)
    try t.ok("restart", "db")
    #expect(try eventually { try t.state("api-1") == .running })
  }

  @Test("a pre hook: the job is starting while it runs, restart says started only once the program ran, and restarts take turns")
  func preHookStarting() throws {
    let t = try TestHome()
    let trace = t.file("trace")
    let hook = try t.script("hook", "echo begin >> '\(trace)'; sleep 1; echo end >> '\(trace)'")
    try t.ok("start", "ph", "sleep", "1000")
    try t.ok("conf", "ph-1", "pre", hook)
    // Two restarts at once, and a status while the hook runs.
    let first = try Self.background(t, ["restart", "ph"])
    #expect(eventually { (t.read(trace) ?? "").hasPrefix("begin") })
    #expect(try t.ok("status", "ph").lines[1].contains("  starting  "))
    let second = try Self.background(t, ["restart", "ph"])
    for job in [first, second] {
      let outcome = try job.wait()
      #expect(outcome.status == 0 && outcome.stdout == "started ph-1\n", "\(outcome.stdout)\(outcome.stderr)")
    }
    // Each restart ran the hook once, one after the other, and left the program running.
    #expect(t.read(trace) == "begin\nend\nbegin\nend\n")
    let pid = try #require(try t.pid("ph-1"))
    #expect(ProcStat.read(pid) != nil)
    #expect(try t.state("ph-1") == .running)
  }

  @Test("five concurrent restarts of a group all succeed, leaving one window and one process per job")
  func concurrentRestarts() throws {
    let t = try TestHome()
    try t.ok("start", "-n", "3", "rr", "sleep", "1000")
    let restarts = try (0..<5).map { _ in try Self.background(t, ["restart", "rr"]) }
    for restart in restarts {
      let outcome = try restart.wait()
      #expect(outcome.status == 0, "\(outcome.stderr)")
      #expect(outcome.lines == ["started rr-1", "started rr-2", "started rr-3"])
    }
    #expect(try t.tmux("list-windows", "-t", "=usvc", "-F", "#{window_name}").lines == ["usvc", "rr-1", "rr-2", "rr-3"])
    #expect(["rr-1", "rr-2", "rr-3"].allSatisfy { t.processes(of: $0).count == 1 })
    #expect(try ["rr-1", "rr-2", "rr-3"].allSatisfy { try t.state($0) == .running })
  }

  @Test("a relative USVC_HOME is refused, not resolved against each folder")
  func relativeHome() throws {
    let t = try TestHome()
    t.environment["USVC_HOME"] = "relative/home"
    let outcome = try t.usvc(["status"], directory: t.root)
    #expect(outcome.status == 1)
    #expect(outcome.stderr == "usvc: USVC_HOME must be an absolute path, not 'relative/home' (it would name another home from every folder)\n")
    #expect(!FileManager.default.fileExists(atPath: t.root + "/relative"))
  }

  // MARK: full and read-only homes (mounts need root)

  @Test(
    "a full disk: stop still stops the job, and says it could not record desired",
    .enabled(if: geteuid() == 0, "mounting a small tmpfs needs root"))
  func stopOnFullDisk() throws {
    let t = try TestHome()
    try FileManager.default.createDirectory(atPath: t.home, withIntermediateDirectories: true)
    #expect(try TestHome.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", t.home], environment: t.environment).status == 0)
    defer {
      t.tearDown()
      _ = try? TestHome.run(["umount", "-l", t.home], environment: t.environment)
    }
    try t.ok("start", "full", "sleep", "1000")
    // Fill what is left of the disk.
    _ = try TestHome.run(["dd", "if=/dev/zero", "of=\(t.home)/filler", "bs=4k"], environment: t.environment)
    let stop = try t.usvc("stop", "full")
    #expect(stop.status == 0)
    #expect(stop.stdout == "stopped full-1\n")
    #expect(stop.stderr.hasPrefix("usvc: cannot write ") && stop.stderr.contains("No space left on device"), "\(stop.stderr)")
    #expect(stop.stderr.contains("'usvc resurrect' would start them again"))
    #expect(t.processes(of: "full-1").isEmpty)
  }

  @Test(
    "a read-only home: reading commands work, stop stops the job and says so, lost events are counted",
    .enabled(if: geteuid() == 0, "a read-only bind mount needs root"))
  func readOnlyHome() throws {
    let t = try TestHome()
    try t.ok("start", "-n", "2", "ro", "sleep", "1000")
    try t.ok("conf", "ro-2", "stable-after", "0")  // A crash restarts at once: two events, exited and started.
    try t.ok("restart", "ro-2")
    func mount(_ arguments: String...) throws -> Int32 {
      try TestHome.run(["mount"] + arguments, environment: t.environment).status
    }
    #expect(try mount("--bind", t.home, t.home) == 0)
    #expect(try mount("-o", "remount,ro,bind", t.home) == 0)
    var mounted = true
    defer { if mounted { _ = try? TestHome.run(["umount", "-l", t.home], environment: t.environment) } }
    for command in [["status"], ["jobs"], ["pidof", "ro"], ["logs", "ro-1"], ["events"], ["show", "ro-1"], ["check"]] {
      let outcome = try t.usvc(command)
      #expect(outcome.status == 0, "\(command): \(outcome.stderr)")
    }
    let stop = try t.usvc("stop", "ro-1")
    #expect(stop.status == 0)
    #expect(stop.stdout == "stopped ro-1\n")
    #expect(stop.stderr.contains("Read-only file system") && stop.stderr.contains("'usvc resurrect' would start them again"), "\(stop.stderr)")
    #expect(t.processes(of: "ro-1").isEmpty)
    // ro-2 crashes while the disk is read-only: its runner restarts it, but cannot
    // write those events; once the disk is writable, its next event says how many were lost.
    let crashed = try #require(try t.pid("ro-2"))
    let eventsBefore = t.read(t.home + "/events.log")
    try t.ok("kill", "-s", "KILL", "ro-2")
    #expect(try eventually { try t.pid("ro-2").map { $0 != crashed } ?? false })
    #expect(t.read(t.home + "/events.log") == eventsBefore)
    #expect(try TestHome.run(["umount", t.home], environment: t.environment).status == 0)
    mounted = false
    try t.ok("kill", "-s", "KILL", "ro-2")
    #expect(eventually { (t.read(t.home + "/events.log") ?? "").contains("\tro-2\tevents-lost\t2 events could not be written\n") },
      "\(t.read(t.home + "/events.log") ?? "")")
  }

  /// A usvc command running in the background, for commands that must overlap.
  struct Background {
    let thread: Thread
    let box: Box
    final class Box: @unchecked Sendable {  // Written by the thread once, read after `done`.
      var outcome: Result<Outcome, any Error>?
      let done = DispatchSemaphore(value: 0)
    }
    func wait() throws -> Outcome {
      box.done.wait()
      return try box.outcome!.get()
    }
  }

  static func background(_ t: TestHome, _ arguments: [String]) throws -> Background {
    let box = Background.Box()
    let environment = t.environment
    let thread = Thread {
      box.outcome = Result { try TestHome.run([usvcBinary] + arguments, environment: environment) }
      box.done.signal()
    }
    thread.start()
    return Background(thread: thread, box: box)
  }
}
