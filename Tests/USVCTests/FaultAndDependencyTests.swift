import Foundation
import Testing

@testable import USVCCore
import USVCSys

/// Faults a real machine does to a supervisor, and the features that order jobs.
@Suite("faults, dependencies, events")
struct FaultAndDependencyTests {
  @Test("kill -9 of a runner: the old job does not linger, a new runner runs it again at once")
  func runnerKilled() throws {
    let t = try TestHome()
    let tree = try t.script("tree", "( setsid sh -c 'trap \"\" HUP TERM; exec sleep 1003' & ) ; trap '' HUP; exec sleep 1004")
    try t.ok("start", "rk", tree)
    #expect(eventually { t.processes(of: "rk-1").count == 2 })
    let before = try t.view("rk-1")
    let oldProcesses = Set(t.processes(of: "rk-1"))
    kill(try #require(before.runner), SIGKILL)
    // (How fast is measured by the benchmark; here only that it happens.)
    #expect(try eventually { try t.view("rk-1").runner.map { $0 != before.runner } ?? false && t.pid("rk-1") != nil })
    #expect(eventually { Set(t.processes(of: "rk-1")).isDisjoint(with: oldProcesses) && t.processes(of: "rk-1").count == 2 },
      "old \(oldProcesses), now \(t.processes(of: "rk-1")), state \(t.read(t.home + "/run/rk-1.state") ?? "-"), log \(t.read(t.home + "/logs/rk-1.log") ?? "-")")
    #expect(try t.state("rk-1") == .running)
  }

  @Test("tmux kill-server: every job process ends, status says lost, resurrect brings all back")
  func serverKilled() throws {
    let t = try TestHome()
    try t.ok("start", "-n", "3", "ks", "sleep", "1000")
    try t.ok("start", "--once", "fin", "true")
    #expect(try eventually { try t.state("fin-1") == .exited })
    try t.ok("start", "st", "sleep", "1000")
    try t.ok("stop", "st")
    _ = try t.tmux("kill-server")
    #expect(eventually { ["ks-1", "ks-2", "ks-3"].allSatisfy { t.processes(of: $0).isEmpty } })
    #expect(try eventually { try ["ks-1", "ks-2", "ks-3"].allSatisfy { try t.state($0) == .lost } })
    let status = try t.ok("status").lines
    #expect(status[0].contains("jobs 5: 1 stopped, 1 exited, 3 lost"))
    #expect(try t.ok("resurrect").lines == ["started ks-1", "started ks-2", "started ks-3"])
    #expect(try ["ks-1", "ks-2", "ks-3"].allSatisfy { try t.state($0) == .running })
    #expect(try t.state("st-1") == .stopped)
    #expect(try t.state("fin-1") == .exited)
    // Idempotent: nothing more to start.
    #expect(try t.ok("resurrect").lines == [])
    let events = t.read(t.home + "/events.log") ?? ""
    #expect(events.contains("\tks-1\tlost\t") && events.contains("\tks-1\tresurrected\t"))
  }

  @Test("Ctrl-C typed in an attached window does not reach the job; tmux says how to stop it")
  func ctrlCInAttach() throws {
    let t = try TestHome()
    let marker = t.file("got-int")
    let job = try t.script("int", "trap 'touch \"\(marker)\"' INT; while :; do sleep 0.1; done")
    try t.ok("start", "cc", job)
    let pid = try t.pid("cc-1")
    // A real terminal: an outer tmux server whose pane runs `usvc attach cc-1`.
    let outer = t.root + "/outer.sock"
    let attach = ["env", "USVC_HOME=\(t.home)", "NO_COLOR=1", usvcBinary, "attach", "cc-1"]
    let started = try TestHome.run(["tmux", "-S", outer, "-f", "/dev/null", "new-session", "-d", "-x", "120", "-y", "30", "--"] + attach, environment: t.environment)
    defer { _ = try? TestHome.run(["tmux", "-S", outer, "kill-server"], environment: t.environment) }
    #expect(started.status == 0, "\(started.stderr)")
    #expect(try eventually { try t.tmux("list-clients").stdout.contains("usvc") })
    _ = try TestHome.run(["tmux", "-S", outer, "send-keys", "C-c"], environment: t.environment)
    #expect(try eventually { try t.tmux("show-messages").stdout.contains("Ctrl-C is not sent to jobs") })
    #expect(try t.pid("cc-1") == pid)
    #expect(!FileManager.default.fileExists(atPath: marker))
    // Keys other than the intercepted ones do reach the job's terminal.
    _ = try TestHome.run(["tmux", "-S", outer, "send-keys", "hello-from-keys", "Enter"], environment: t.environment)
    #expect(eventually { (t.read(t.home + "/logs/cc-1.log") ?? "").contains("hello-from-keys") })
  }

  @Test("a job after another waits (state waiting, reason in show) until it runs; propagate restarts it")
  func dependencies() throws {
    let t = try TestHome()
    try t.ok("start", "db", "sleep", "1000")
    try t.ok("stop", "db")
    #expect(try t.ok("start", "--after", "db", "api", "sleep", "1000").lines == ["waiting api-1 for db"])
    #expect(try eventually { try t.state("api-1") == .waiting })
    #expect(try t.ok("show", "api-1").lines.contains("reason: waiting for db-1 to run"))
    #expect(try t.pid("api-1") == nil)
    try t.ok("restart", "db")
    #expect(try eventually { try t.state("api-1") == .running })
    try t.ok("conf", "api-1", "propagate", "true")
    try t.ok("restart", "api")
    let before = try #require(try t.pid("api-1"))
    try t.ok("restart", "db")
    #expect(try eventually { try t.pid("api-1").map { $0 != before } ?? false })
    let cycle = try t.usvc("conf", "db-1", "after", "api")
    #expect(cycle.status == 1)
    #expect(cycle.stderr == "usvc: dependency cycle: api-1 -> db-1 -> api-1\n" || cycle.stderr == "usvc: dependency cycle: db-1 -> api-1 -> db-1\n")
    #expect(try t.ok("conf", "db-1", "after").stdout == "")
  }

  @Test("shutdown stops dependents first and ends the server; resurrect brings back the same set")
  func shutdownOrder() throws {
    let t = try TestHome()
    try t.ok("start", "db", "sleep", "1000")
    try t.ok("start", "--after", "db", "api", "sleep", "1000")
    try t.ok("start", "--after", "api", "-n", "2", "worker", "sleep", "1000")
    try t.ok("start", "other", "sleep", "1000")
    try t.ok("stop", "other")
    #expect(try eventually { try t.state("worker-2") == .running })
    try t.ok("shutdown")
    #expect(try t.tmux("has-session").status != 0)
    for name in ["db-1", "api-1", "worker-1", "worker-2"] {
      #expect(t.processes(of: name).isEmpty)
      #expect(try t.ok("conf", name, "desired").stdout == "running\n")
    }
    let stops = (t.read(t.home + "/events.log") ?? "").split(separator: "\n")
      .filter { $0.contains("\tstopped\t") }.map { String($0.split(separator: "\t")[1]) }
    let order = stops.suffix(4)
    #expect(order.firstIndex(of: "db-1")! > order.firstIndex(of: "api-1")!)
    #expect(order.firstIndex(of: "api-1")! > order.firstIndex(of: "worker-1")!)
    #expect(order.firstIndex(of: "api-1")! > order.firstIndex(of: "worker-2")!)
    #expect(try t.ok("resurrect").lines == ["started db-1", "started api-1", "started worker-1", "started worker-2"])
    #expect(try eventually { try ["db-1", "api-1", "worker-1", "worker-2"].allSatisfy { try t.state($0) == .running } })
    #expect(try t.state("other-1") == .stopped)
  }

  @Test("events: started, exited with code or signal, waiting, stopped, removed; events -n")
  func events() throws {
    let t = try TestHome()
    try t.ok("start", "ev", "sleep", "1000")
    let pid = try #require(try t.pid("ev-1"))
    kill(pid, SIGKILL)
    #expect(try eventually { try t.state("ev-1") == .waiting })
    try t.ok("stop", "ev")
    try t.ok("rm", "ev")
    let lines = try t.ok("events", "-n", "100").lines
    let parsed = lines.map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
    #expect(parsed.allSatisfy { $0.count == 4 && $0[0].hasSuffix("Z") && $0[0].contains("T") })
    let kinds = parsed.filter { $0[1] == "ev-1" }.map { $0[2] }
    // A slow `stop` may come after the 1 s back-off ended: more runs in the middle.
    #expect(kinds.prefix(3) == ["started", "exited", "waiting"] && kinds.suffix(2) == ["stopped", "removed"], "\(kinds)")
    #expect(parsed.first { $0[2] == "exited" }?[3].hasPrefix("SIGKILL after ") == true)
    #expect(try t.ok("events", "-n", "2").lines == Array(lines.suffix(2)))
  }
}

@Suite("hooks")
struct HookTests {
  @Test("pre, post and on-failure hooks run with the job's environment and USVC_EXIT, USVC_RUN_SECONDS, USVC_RESTARTS")
  func hooksRun() throws {
    let t = try TestHome()
    let record = try t.script("record", "echo \"$1 exit=$USVC_EXIT restarts=$USVC_RESTARTS job=$USVC_JOB secs=$USVC_RUN_SECONDS\" >> \"\(t.file("hooks.log"))\"")
    let job = try t.script("job", "[ -e \"\(t.file("second"))\" ] && exec sleep 1000; touch \"\(t.file("second"))\"; exit 4")
    try t.ok("start", "hk", job)
    #expect(eventually { FileManager.default.fileExists(atPath: t.file("second")) })
    // Stopped before the confs: the first run's 1 s back-off must not end among them.
    try t.ok("stop", "hk-1")
    try t.ok("conf", "hk-1", "pre", record, "pre")
    try t.ok("conf", "hk-1", "post", record, "post")
    try t.ok("conf", "hk-1", "on-failure", record, "failure")
    try t.ok("conf", "hk-1", "stable-after", "0")
    try FileManager.default.removeItem(atPath: t.file("second"))
    try t.ok("restart", "hk-1")
    #expect(eventually { (t.read(t.file("hooks.log")) ?? "").split(separator: "\n").count >= 4 })
    let lines = (t.read(t.file("hooks.log")) ?? "").split(separator: "\n").map(String.init)
    #expect(lines.count == 4)
    #expect(lines[0].hasPrefix("pre exit= restarts=") && lines[0].contains("job=hk-1"))
    #expect(lines.contains { $0.hasPrefix("post exit=4 ") })
    #expect(lines.contains { $0.hasPrefix("failure exit=4 ") && $0.contains("job=hk-1") })
    #expect(lines.last!.hasPrefix("pre exit=4") || lines.filter { $0.hasPrefix("pre ") }.count == 2)
  }

  @Test("a hanging hook is killed at hook-timeout and never blocks stop")
  func hangingHook() throws {
    let t = try TestHome()
    try t.ok("start", "hang", "sleep", "1000")
    try t.ok("conf", "hang-1", "pre", "/bin/sleep", "1000")
    try t.ok("conf", "hang-1", "hook-timeout", "1")
    try t.ok("restart", "hang-1")
    #expect(try eventually(within: 5) { try t.state("hang-1") == .running })
    #expect((t.read(t.home + "/logs/hang-1.log") ?? "").contains("[usvc] hook pre still running after 1s: killed"))
    try t.ok("conf", "hang-1", "--unset", "pre")
    try t.ok("conf", "hang-1", "hook-timeout", "100")
    try t.ok("conf", "hang-1", "post", "/bin/sleep", "1000")
    try t.ok("conf", "hang-1", "stop-timeout", "1")
    try t.ok("restart", "hang-1")
    let pid = try #require(try t.pid("hang-1"))
    kill(pid, SIGKILL)
    #expect(try eventually { try t.pid("hang-1").map { $0 != pid } ?? false })
    // The post hook hangs (100 s); stop still ends everything (hook included) at stop-timeout.
    try t.ok("stop", "hang-1")
    #expect(t.processes(of: "hang-1").isEmpty)
    #expect(!(t.read(t.home + "/logs/hang-1.log") ?? "").contains("hook post still running"))
  }
}
