import Foundation
import Testing

@testable import USVCCore
@testable import USVCRunner
import USVCContract
import USVCSys

@Suite("runner state machine")
struct RunnerMachineTests {
  func machine(_ policy: RestartPolicy = .always, stableAfter: Double = 10, backoffMax: Double = 300) -> RunnerMachine {
    var spec = JobSpec(name: "t-1", group: "t", command: "/bin/true")
    spec.restart = policy
    spec.stableAfter = stableAfter
    spec.backoffMax = backoffMax
    spec.stopTimeout = 5
    return RunnerMachine(spec: spec)
  }

  @Test("a run shorter than stable-after waits 2^(k-1) s, capped by backoff-max")
  func backoffDoubles() {
    var m = machine(backoffMax: 5)
    var delays: [Double] = []
    var now = 0.0
    for _ in 0..<5 {
      _ = m.handle(.spawned(pid: 100), now: now)
      _ = m.handle(.childExited(.exited(1), ranFor: 0.5), now: now + 0.5)
      guard case .waiting(let until, _) = m.state else { Issue.record("not waiting: \(m.state)"); return }
      delays.append(until - (now + 0.5))
      now = until
      #expect(m.handle(.deadline, now: now) == [.spawn])
    }
    #expect(delays == [1, 2, 4, 5, 5])
  }

  @Test("a run of at least stable-after restarts at once and resets the count")
  func stableRunResets() {
    var m = machine()
    _ = m.handle(.spawned(pid: 1), now: 0)
    _ = m.handle(.childExited(.exited(1), ranFor: 1), now: 1)
    #expect(m.quickDeaths == 1)
    _ = m.handle(.deadline, now: 2)
    _ = m.handle(.spawned(pid: 2), now: 2)
    let actions = m.handle(.childExited(.signaled(.kill), ranFor: 10), now: 12)
    #expect(m.quickDeaths == 0)
    #expect(m.state == .starting)
    #expect(actions == [.logExit(.signaled(.kill), ranFor: 10), .killJob, .spawn])
    #expect(RunnerMachine.exitLine(.signaled(.kill), ranFor: 10) == "killed by SIGKILL after 10s")
    #expect(RunnerMachine.exitLine(.exited(3), ranFor: 0.012) == "exited with code 3 after 0.012s")
  }

  @Test("restart policies", arguments: [
    (RestartPolicy.always, TerminationStatus.exited(0), true), (.always, .exited(3), true),
    (.onFailure, .exited(0), false), (.onFailure, .exited(3), true), (.onFailure, .signaled(.kill), true),
    (.never, .exited(3), false), (.never, .signaled(.terminate), false),
  ])
  func policies(policy: RestartPolicy, status: TerminationStatus, restarts: Bool) {
    var m = machine(policy, stableAfter: 0)
    _ = m.handle(.spawned(pid: 1), now: 0)
    _ = m.handle(.childExited(status, ranFor: 1), now: 1)
    #expect((m.state == .starting) == restarts)
    #expect((m.state == .finished(.exited)) == !restarts)
  }

  @Test("stop: signal, SIGKILL at the deadline, stopped once everything is gone")
  func stopSequence() {
    var m = machine()
    _ = m.handle(.spawned(pid: 7), now: 0)
    #expect(m.handle(.stopRequested, now: 1) == [.log("stopping: SIGTERM to the job"), .signalJob(.terminate)])
    #expect(m.deadline == 6)
    #expect(m.handle(.deadline, now: 3) == [])
    #expect(m.handle(.deadline, now: 6) == [.log("still running after 5s: SIGKILL"), .killJob])
    #expect(m.deadline == nil)
    #expect(m.handle(.allGone, now: 6) == [])  // The main process is not reaped yet.
    _ = m.handle(.childExited(.signaled(.kill), ranFor: 6), now: 6.1)
    _ = m.handle(.allGone, now: 6.1)
    #expect(m.state == .finished(.stopped))
  }

  @Test("a hangup (tmux gone) stops the job and ends as lost; stop while waiting ends at once")
  func hangupAndWaiting() {
    var m = machine()
    _ = m.handle(.spawned(pid: 7), now: 0)
    _ = m.handle(.hangup, now: 1)
    _ = m.handle(.childExited(.signaled(.terminate), ranFor: 1), now: 1)
    _ = m.handle(.allGone, now: 1)
    #expect(m.state == .finished(.lost))
    var w = machine()
    _ = w.handle(.spawned(pid: 7), now: 0)
    _ = w.handle(.childExited(.exited(1), ranFor: 0.1), now: 0.1)
    #expect(w.jobState == .waiting)
    #expect(w.handle(.stopRequested, now: 0.2) == [])
    #expect(w.state == .finished(.stopped))
  }

  @Test("a pre hook: starting while it runs, the program once it ends, killed at hook-timeout")
  func preHook() {
    var m = machine()
    #expect(m.handle(.preHookStarted(pid: 9, killAt: 10), now: 0) == [])
    #expect(m.jobState == .starting && m.deadline == 10)
    #expect(m.handle(.hookEnded(pid: 8), now: 1) == [])  // Another process.
    #expect(m.handle(.hookEnded(pid: 9), now: 2) == [.spawnProgram])
    var late = machine()
    _ = late.handle(.preHookStarted(pid: 9, killAt: 10), now: 0)
    #expect(late.handle(.deadline, now: 5) == [])
    #expect(late.handle(.deadline, now: 10) == [.log("hook pre still running after 10s: killed"), .killHook(9), .spawnProgram])
    var stopped = machine()
    _ = stopped.handle(.preHookStarted(pid: 9, killAt: 10), now: 0)
    #expect(stopped.handle(.stopRequested, now: 1) == [.killHook(9)])
    #expect(stopped.state == .finished(.stopped))
  }

  @Test("post and on-failure hooks: their deadlines are the machine's, in any state")
  func hookDeadlines() {
    var m = machine()
    _ = m.handle(.spawned(pid: 7), now: 0)
    #expect(m.handle(.hookStarted(pid: 20, name: "post", killAt: 12), now: 2) == [])
    #expect(m.handle(.hookStarted(pid: 21, name: "on-failure", killAt: 11), now: 2) == [])
    #expect(m.deadline == 11)
    _ = m.handle(.stopRequested, now: 3)  // Stopping: SIGKILL at 8, before the hooks' deadlines.
    #expect(m.deadline == 8)
    #expect(m.handle(.hookEnded(pid: 20), now: 4) == [])
    #expect(m.hooks.keys.sorted() == [21])
    #expect(m.handle(.deadline, now: 8) == [.log("still running after 5s: SIGKILL"), .killJob])
    #expect(m.deadline == 11)
    #expect(m.handle(.deadline, now: 11) == [.log("hook on-failure still running after 10s: killed"), .killHook(21)])
    #expect(m.hooks.isEmpty && m.state == .stopping(pid: 7, killAt: .infinity, final: .stopped))
  }

  @Test("waiting for a dependency: until a state changes, or until its after-delay has passed")
  func dependencyWait() {
    var m = machine()
    #expect(m.handle(.blocked(selector: "db", detail: "db-1 to run", retryAt: .infinity), now: 0) == [.log("waiting for db-1 to run")])
    #expect(m.jobState == .waiting && m.deadline == nil)
    #expect(m.handle(.deadline, now: 100) == [])
    #expect(m.handle(.dependenciesChanged, now: 101) == [.spawn])
    // The same reason again is not said again.
    #expect(m.handle(.blocked(selector: "db", detail: "db-1 to run", retryAt: .infinity), now: 101) == [])
    #expect(m.handle(.dependenciesChanged, now: 102) == [.spawn])
    #expect(m.handle(.blocked(selector: "db", detail: "db-1 to run for 5s", retryAt: 107), now: 102) == [.log("waiting for db-1 to run for 5s")])
    #expect(m.deadline == 107)
    #expect(m.handle(.deadline, now: 107) == [.spawn])
    // Back-off is not cut short by another job's state.
    var b = machine()
    _ = b.handle(.spawned(pid: 1), now: 0)
    _ = b.handle(.childExited(.exited(1), ranFor: 0.1), now: 0.1)
    #expect(b.handle(.dependenciesChanged, now: 0.2) == [])
    #expect(b.jobState == .waiting)
  }

  @Test("a program that cannot be run ends as failed")
  func spawnFailure() {
    var m = machine()
    #expect(m.handle(.spawnFailed(reason: "x: Permission denied"), now: 0) == [.log("cannot run the program: x: Permission denied")])
    #expect(m.jobState == .failed)
  }

  /// A machine whose runs wait for `job.ready` (ready-timeout 3 s, interval 0.5 s, stop-timeout 5 s).
  func readinessMachine(_ policy: RestartPolicy = .always) -> RunnerMachine {
    var spec = JobSpec(name: "t-1", group: "t", command: "/bin/true")
    spec.restart = policy
    spec.stopTimeout = 5
    spec.ready = "tcp:8080"
    spec.readyTimeout = 3
    spec.readyInterval = 0.5
    return RunnerMachine(spec: spec)
  }

  /// One row of the readiness part of the table: from `state`, `event` at `now`
  /// gives `actions` and `after` (and SPEC's state name `shown`).
  struct ReadinessRow: Sendable, CustomTestStringConvertible {
    var state: RunnerMachine.State
    var event: RunnerMachine.Event
    var now: Double
    var actions: [RunnerMachine.Action]
    var after: RunnerMachine.State
    var shown: JobState
    var testDescription: String { "\(state) + \(event) at \(now)" }
  }

  static let readinessRows: [ReadinessRow] = [
    // Exec'd: starting (not ready), first probe due at once, giving up at ready-timeout.
    .init(state: .starting, event: .spawned(pid: 7), now: 10, actions: [.log("started pid 7")],
          after: .awaitingReady(pid: 7, since: 10, probeAt: 10, giveUpAt: 13), shown: .starting),
    // A probe is due: run it, the next one an interval later.
    .init(state: .awaitingReady(pid: 7, since: 10, probeAt: 10, giveUpAt: 13), event: .deadline, now: 10,
          actions: [.probeReadiness], after: .awaitingReady(pid: 7, since: 10, probeAt: 10.5, giveUpAt: 13), shown: .starting),
    .init(state: .awaitingReady(pid: 7, since: 10, probeAt: 10.5, giveUpAt: 13), event: .deadline, now: 10.2,
          actions: [], after: .awaitingReady(pid: 7, since: 10, probeAt: 10.5, giveUpAt: 13), shown: .starting),
    // Passed: running since exec, event ready with the seconds it took.
    .init(state: .awaitingReady(pid: 7, since: 10, probeAt: 11, giveUpAt: 13), event: .ready, now: 11.25,
          actions: [.log("ready after 1.250s"), .record(event: "ready", detail: "1.250s")],
          after: .running(pid: 7, since: 10), shown: .running),
    // Not ready by ready-timeout: event unready, the run is ended (stop signal, SIGKILL at stop-timeout).
    .init(state: .awaitingReady(pid: 7, since: 10, probeAt: 13.5, giveUpAt: 13), event: .deadline, now: 13,
          actions: [.log("not ready after 3s: stopping the run"), .record(event: "unready", detail: "not ready after 3s"), .signalJob(.terminate)],
          after: .ending(pid: 7, killAt: 18, cause: .unready, ranFor: 3), shown: .stopping),
    .init(state: .ending(pid: 7, killAt: 18, cause: .unready, ranFor: 3), event: .childExited(.signaled(.terminate), ranFor: 3.1), now: 13.1,
          actions: [], after: .ending(pid: 0, killAt: 18, cause: .unready, ranFor: 3), shown: .stopping),
    .init(state: .ending(pid: 7, killAt: 18, cause: .unready, ranFor: 3), event: .deadline, now: 18,
          actions: [.log("still running after 5s: SIGKILL"), .killJob], after: .ending(pid: 7, killAt: .infinity, cause: .unready, ranFor: 3), shown: .stopping),
    .init(state: .ending(pid: 7, killAt: 18, cause: .unready, ranFor: 3), event: .allGone, now: 13.2,
          actions: [], after: .ending(pid: 7, killAt: 18, cause: .unready, ranFor: 3), shown: .stopping),
    // All gone: a failed run, always a quick death (back-off 1 s for the first).
    .init(state: .ending(pid: 0, killAt: 18, cause: .unready, ranFor: 3), event: .allGone, now: 13.2,
          actions: [.recordEnd(.unready, ranFor: 3), .log("quick death 1 in a row: waiting 1s before restarting")],
          after: .waiting(until: 14.2, reason: .backoff), shown: .waiting),
    // Stop or hangup while not ready, or while ending: stopping as any run.
    .init(state: .awaitingReady(pid: 7, since: 10, probeAt: 11, giveUpAt: 13), event: .stopRequested, now: 11,
          actions: [.log("stopping: SIGTERM to the job"), .signalJob(.terminate)], after: .stopping(pid: 7, killAt: 16, final: .stopped), shown: .stopping),
    .init(state: .awaitingReady(pid: 7, since: 10, probeAt: 11, giveUpAt: 13), event: .hangup, now: 11,
          actions: [.log("terminal gone: stopping the job"), .signalJob(.terminate)], after: .stopping(pid: 7, killAt: 16, final: .lost), shown: .stopping),
    .init(state: .ending(pid: 7, killAt: 18, cause: .unready, ranFor: 3), event: .stopRequested, now: 14,
          actions: [], after: .stopping(pid: 7, killAt: 18, final: .stopped), shown: .stopping),
    // It exits before it is ready: an exit as any other (policy, back-off).
    .init(state: .awaitingReady(pid: 7, since: 10, probeAt: 11, giveUpAt: 13), event: .childExited(.exited(1), ranFor: 0.5), now: 10.5,
          actions: [.logExit(.exited(1), ranFor: 0.5), .killJob, .log("quick death 1 in a row: waiting 1s before restarting")],
          after: .waiting(until: 11.5, reason: .backoff), shown: .waiting),
    // A late answer once running, or any state but awaitingReady: nothing.
    .init(state: .running(pid: 7, since: 10), event: .ready, now: 12, actions: [], after: .running(pid: 7, since: 10), shown: .running),
  ]

  @Test("readiness: starting until ready, ready and unready events, an unready run is a failed quick death", arguments: readinessRows)
  func readiness(_ row: ReadinessRow) {
    var m = readinessMachine()
    m.state = row.state
    #expect(m.handle(row.event, now: row.now) == row.actions)
    #expect(m.state == row.after)
    #expect(m.jobState == row.shown)
  }

  /// A ready machine checking health every 2 s, 1 s to answer, 2 failures in a row to restart.
  func healthMachine() -> RunnerMachine {
    var spec = JobSpec(name: "t-1", group: "t", command: "/bin/true")
    spec.stopTimeout = 5
    spec.health = "tcp:8080"
    spec.healthInterval = 2
    spec.healthTimeout = 1
    spec.healthRetries = 2
    var m = RunnerMachine(spec: spec)
    _ = m.handle(.spawned(pid: 7), now: 0)
    return m
  }

  @Test("liveness: a check every health-interval while ready; failures make it unhealthy, health-retries in a row restart it")
  func liveness() {
    var m = healthMachine()
    #expect(m.state == .running(pid: 7, since: 0))
    #expect(m.deadline == 2, "the first check an interval after ready")
    #expect(m.handle(.deadline, now: 1) == [])
    #expect(m.handle(.deadline, now: 2) == [.checkHealth])
    #expect(m.deadline == 3, "its answer is due within health-timeout")
    #expect(m.handle(.healthPassed, now: 2.1) == [])
    #expect(m.state == .running(pid: 7, since: 0))
    #expect(m.deadline == 4)
    #expect(m.handle(.deadline, now: 4) == [.checkHealth])
    #expect(m.handle(.healthFailed, now: 4.1) == [.log("health check failed")])
    #expect(m.state == .unhealthy(pid: 7, since: 0, failures: 1))
    #expect(m.jobState == .unhealthy)
    // Passing again: running.
    #expect(m.handle(.deadline, now: 6) == [.checkHealth])
    #expect(m.handle(.healthPassed, now: 6.1) == [.log("health check passed again")])
    #expect(m.jobState == .running)
    // No answer by health-timeout is a failure; two in a row end the run.
    #expect(m.handle(.deadline, now: 8) == [.checkHealth])
    #expect(m.handle(.deadline, now: 9) == [.abandonHealthCheck, .log("health check failed")])
    #expect(m.handle(.deadline, now: 10) == [.checkHealth])
    #expect(m.handle(.healthFailed, now: 10.5) == [
      .log("2 health checks failed in a row: restarting"), .record(event: "unhealthy", detail: "2 health checks failed in a row"),
      .signalJob(.terminate),
    ])
    #expect(m.state == .ending(pid: 7, killAt: 15.5, cause: .unhealthy, ranFor: 10.5))
    #expect(m.deadline == 15.5, "no more checks while ending")
    _ = m.handle(.childExited(.signaled(.terminate), ranFor: 10.6), now: 10.6)
    // Ran past stable-after (10 s): restarted at once, not a quick death.
    #expect(m.handle(.allGone, now: 10.7) == [.recordEnd(.unhealthy, ranFor: 10.5), .spawn])
    #expect(m.quickDeaths == 0)
  }

  @Test("watchdogs: silence-max ends a quiet run (event silent); memory-max ends one whose tree grew past it (event memory)")
  func watchdogs() {
    var spec = JobSpec(name: "t-1", group: "t", command: "/bin/true")
    spec.stopTimeout = 5
    spec.silenceMax = 3
    spec.memoryMax = 1000
    var m = RunnerMachine(spec: spec)
    _ = m.handle(.spawned(pid: 7), now: 0)
    #expect(m.deadline == 1, "memory measured every second")
    #expect(m.handle(.deadline, now: 1) == [.measureMemory])
    #expect(m.handle(.memoryMeasured(1000), now: 1) == [], "at the limit is not above it")
    m.lastOutput = 2.5
    #expect(m.handle(.deadline, now: 3) == [.measureMemory], "output at 2.5 s: not silent at 3 s")
    #expect(m.deadline == 4)
    #expect(m.handle(.deadline, now: 5.5) == [
      .log("no output for 3s: restarting"), .record(event: "silent", detail: "no output for 3s"), .signalJob(.terminate),
    ])
    #expect(m.state == .ending(pid: 7, killAt: 10.5, cause: .silent, ranFor: 5.5))
    var big = RunnerMachine(spec: spec)
    _ = big.handle(.spawned(pid: 8), now: 0)
    #expect(big.handle(.memoryMeasured(1001), now: 1) == [
      .log("memory 1001 bytes, above memory-max 1000: restarting"),
      .record(event: "memory", detail: "1001 bytes, above memory-max 1000"), .signalJob(.terminate),
    ])
    #expect(big.state == .ending(pid: 8, killAt: 6, cause: .memory, ranFor: 1))
    _ = big.handle(.childExited(.signaled(.terminate), ranFor: 1), now: 1.1)
    #expect(big.handle(.allGone, now: 1.2) == [.recordEnd(.memory, ranFor: 1), .log("quick death 1 in a row: waiting 1s before restarting")])
  }

  @Test("unhealthy: stop, hangup and exits act as in running")
  func unhealthyRows() {
    var m = healthMachine()
    m.state = .unhealthy(pid: 7, since: 0, failures: 1)
    #expect(m.handle(.stopRequested, now: 3) == [.log("stopping: SIGTERM to the job"), .signalJob(.terminate)])
    #expect(m.state == .stopping(pid: 7, killAt: 8, final: .stopped))
    var e = healthMachine()
    e.state = .unhealthy(pid: 7, since: 0, failures: 1)
    #expect(e.handle(.childExited(.exited(0), ranFor: 20), now: 20) == [.logExit(.exited(0), ranFor: 20), .killJob, .spawn])
  }

  @Test("an unready run under restart never: exited, last exit unready; without job.ready: running at exec")
  func unreadyNever() {
    var m = readinessMachine(.never)
    m.state = .ending(pid: 0, killAt: 18, cause: .unready, ranFor: 3)
    #expect(m.handle(.allGone, now: 14) == [.recordEnd(.unready, ranFor: 3)])
    #expect(m.jobState == .exited)
    var plain = machine()
    _ = plain.handle(.spawned(pid: 3), now: 1)
    #expect(plain.state == .running(pid: 3, since: 1))
    // An unready run that lasted past stable-after is still a quick death.
    var late = readinessMachine()
    late.state = .ending(pid: 0, killAt: 99, cause: .unready, ranFor: 60)
    _ = late.handle(.allGone, now: 70)
    #expect(late.quickDeaths == 1)
  }
}

@Suite("names, signals, specs and formats")
struct PureLogicTests {
  @Test("natural order puts web-2 before web-10")
  func naturalOrder() {
    let names = ["web-10", "web-2", "db-1", "web-1", "web-a", "w"]
    #expect(names.sorted(by: Names.naturalLess) == ["db-1", "w", "web-1", "web-2", "web-10", "web-a"])
  }

  @Test("the lowest free index is used first")
  func freeNames() {
    #expect(Names.freeNames(group: "web", count: 3, taken: ["web-1", "web-3", "web-x-2", "db-2"]) == ["web-2", "web-4", "web-5"])
    #expect(Names.split(job: "my-app-12")! == ("my-app", 12))
    #expect(Names.split(job: "web") == nil)
    #expect(Names.split(job: "web-0") == nil)
  }

  @Test("group names", arguments: [
    ("web", true), ("a", true), ("a-1-b", true), (String(repeating: "a", count: 32), true),
    (String(repeating: "a", count: 33), false), ("", false), ("1web", false), ("Web", false),
    ("we_b", false), ("all", false), ("live", false), ("dead", false), ("usvc", false), ("wéb", false),
    ("a/b", false), ("-web", false),
  ])
  func groupNames(name: String, valid: Bool) {
    #expect(((try? Names.validateGroup(name)) != nil) == valid)
  }

  @Test("signals parse by name, SIG name or number")
  func signals() {
    #expect(Signal(parsing: "HUP") == .hangup)
    #expect(Signal(parsing: "sighup") == .hangup)
    #expect(Signal(parsing: "9") == .kill)
    #expect(Signal(parsing: "0") == nil)
    #expect(Signal(parsing: "65") == nil)
    #expect(Signal(parsing: "NOPE") == nil)
    #expect(Signal.terminate.description == "SIGTERM")
  }

  @Test("a job spec survives encoding, every field set and hostile strings included")
  func specRoundTrip() {
    let defaults = JobSpec(name: "", group: "", command: "")
    var spec = JobSpec(name: "w-1", group: "w", command: "/bin/echo")
    spec.arguments = ["", "a\nb", "=", "ü"]
    spec.environment = ["A=1", "B="]
    spec.directory = "/srv/a b"
    spec.restart = .onFailure
    spec.stopSignal = .hangup
    spec.stopTimeout = 2.5
    spec.stableAfter = 0.5
    spec.backoffMax = 60
    spec.logMaxBytes = 4096
    spec.logKeep = 9
    spec.desiredRunning = false
    spec.after = ["db", "cache-1"]
    spec.afterDelay = 1.5
    spec.propagate = true
    spec.pre = ["/bin/echo", "pre ;"]
    spec.post = ["/bin/echo", "post"]
    spec.onFailure = ["/bin/sh", "-c", "echo 'failed'"]
    spec.hookTimeout = 3
    spec.umask = 0o077
    spec.startLimits = ["nofile=1024:4096", "as=unlimited:unlimited"].compactMap(ResourceLimit.init(captured:))
    spec.nice = "5"
    spec.confIdentity = "12:1700000000.5:300"
    spec.scrollback = 5000
    spec.ready = "log:^listening on [0-9]+$"
    spec.readyTimeout = 30
    spec.readyInterval = 0.25
    spec.health = "http://127.0.0.1:8080/health?x=1"
    spec.healthInterval = 1
    spec.healthTimeout = 0.5
    spec.healthRetries = 5
    spec.silenceMax = 60
    spec.memoryMax = 1 << 30
    spec.limits = ["nofile=1024", "core=unlimited"]
    #expect(fieldsLeftAtDefault(spec, defaults) == [], "set every field, so each is round-tripped")
    #expect(JobSpec(decoding: spec.encoded()) == spec)
    #expect(JobSpec(decoding: Array(spec.encoded().dropLast())) == nil)
  }

  @Test("the spec file's bytes are pinned: key NUL value NUL in the table's order")
  func specBytes() {
    var spec = JobSpec(name: "w-1", group: "w", command: "/bin/echo")
    spec.arguments = ["a"]
    spec.after = ["db"]
    spec.stopSignal = .hangup
    spec.umask = 0o027
    spec.confIdentity = "1:2.3:4"
    spec.health = "tcp:80"
    spec.limits = ["nofile=64", "core=0"]
    spec.startLimits = [ResourceLimit(name: "nofile", resource: Int32(RLIMIT_NOFILE.rawValue), soft: 1024, hard: 4096)]
    spec.nice = "3"
    let words: [String] = [
      "name", "w-1", "group", "w", "cmd", "/bin/echo", "arg", "a", "cwd", "/", "restart", "always",
      "stop-signal", "1", "stop-timeout", "10.0", "stable-after", "10.0", "backoff-max", "300.0",
      "log-max-bytes", "10485760", "log-keep", "5", "scrollback", "100", "desired", "running", "after", "db",
      "after-delay", "0.0", "propagate", "false", "hook-timeout", "10.0", "umask", "23",
      "start-limit", "nofile=1024:4096", "nice", "3",
      "ready", "", "ready-timeout", "60.0", "ready-interval", "0.1", "health", "tcp:80", "health-interval", "10.0",
      "health-timeout", "5.0", "health-retries", "3", "silence-max", "0.0", "memory-max", "0",
      "limit", "nofile=64", "limit", "core=0", "conf-identity", "1:2.3:4",
    ]
    let expected: [UInt8] = words.flatMap { Array($0.utf8) + [0] }
    #expect(spec.encoded() == expected)
  }

  @Test("each conf key reaches its JobSpec field through the key table")
  func confToSpec() {
    let conf = JobConf(entries: [
      ("job.group", "w"), ("job.cmd", "/bin/echo"), ("job.args", "a"), ("job.args", "b"), ("job.env", "A=1"),
      ("job.cwd", "/srv"), ("job.restart", "never"), ("job.stop-signal", "HUP"), ("job.stop-timeout", "2.5"),
      ("job.stable-after", "1"), ("job.backoff-max", "7"), ("job.log-max-bytes", "8192"), ("job.log-keep", "2"),
      ("job.scrollback", "50"), ("job.desired", "stopped"), ("job.after", "db"), ("job.after-delay", "3"),
      ("job.propagate", "yes"), ("job.pre", "/bin/true"), ("job.post", "/bin/true"), ("job.on-failure", "/bin/false"),
      ("job.hook-timeout", "4"), ("job.umask", "027"), ("job.stop-timeout", "3"),
      ("job.ready", "http://127.0.0.1:8080/up"), ("job.ready-timeout", "9"), ("job.ready-interval", "0.5"),
      ("job.health", "exec:true"), ("job.health-interval", "2"), ("job.health-timeout", "1"),
      ("job.health-retries", "4"), ("job.silence-max", "30"), ("job.memory-max", "64M"),
      ("job.limit", "nofile=100"), ("job.limit", "as=1G"), ("job.start-limit", "core=0:unlimited"), ("job.nice", "7"),
    ])
    let spec = ConfKeys.spec(from: conf, name: "w-1")
    var expected = JobSpec(name: "w-1", group: "w", command: "/bin/echo")
    expected.arguments = ["a", "b"]
    expected.environment = ["A=1"]
    expected.directory = "/srv"
    expected.restart = .never
    expected.stopSignal = .hangup
    expected.stopTimeout = 3  // The last value of a single key, git's rule.
    expected.stableAfter = 1
    expected.backoffMax = 7
    expected.logMaxBytes = 8192
    expected.logKeep = 2
    expected.scrollback = 50
    expected.desiredRunning = false
    expected.after = ["db"]
    expected.afterDelay = 3
    expected.propagate = true
    expected.pre = ["/bin/true"]
    expected.post = ["/bin/true"]
    expected.onFailure = ["/bin/false"]
    expected.hookTimeout = 4
    expected.umask = 0o027
    expected.ready = "http://127.0.0.1:8080/up"
    expected.readyTimeout = 9
    expected.readyInterval = 0.5
    expected.health = "exec:true"
    expected.healthInterval = 2
    expected.healthTimeout = 1
    expected.healthRetries = 4
    expected.silenceMax = 30
    expected.memoryMax = 64 << 20
    expected.limits = ["nofile=100", "as=1G"]
    expected.startLimits = [ResourceLimit(name: "core", resource: Int32(RLIMIT_CORE.rawValue), soft: 0, hard: .max)]
    expected.nice = "7"
    #expect(spec == expected)
    #expect(ConfKeys.spec(from: JobConf(entries: []), name: "web-2").group == "web", "group from the name")
  }

  @Test("probe SPECs parse into their forms; malformed ones do not", arguments: [
    ("tcp:8080", Probe.tcp(host: "127.0.0.1", port: 8080)), ("tcp:db.local:5432", .tcp(host: "db.local", port: 5432)),
    ("tcp:[::1]:80", .tcp(host: "::1", port: 80)), ("http://127.0.0.1:8000/", .http(host: "127.0.0.1", port: 8000, path: "/")),
    ("http://localhost:8000", .http(host: "localhost", port: 8000, path: "/")),
    ("http://h:1/a/b?c=d", .http(host: "h", port: 1, path: "/a/b?c=d")), ("exec:test -e /tmp/x", .exec("test -e /tmp/x")),
    ("log:listening on [0-9]+", .log("listening on [0-9]+")), ("notify", .notify),
    ("tcp:", nil), ("tcp:0", nil), ("tcp:65536", nil), ("tcp:x", nil), ("tcp:h:", nil), ("http://h/x", nil),
    ("http://h:80/a b", nil), ("https://h:443/", nil), ("exec:", nil), ("log:(", nil), ("log:", nil), ("NOTIFY", nil), ("", nil),
  ] as [(String, Probe?)])
  func probes(_ text: String, _ expected: Probe?) {
    #expect(Probe(parsing: text) == expected)
  }

  @Test("sd_notify: a message is ready when one of its lines is exactly READY=1; other keys, garbage and cut messages are not", arguments: [
    ("READY=1", false, true), ("READY=1\n", false, true), ("STATUS=Ready to accept connections\nREADY=1\n", false, true),
    ("MAINPID=7\nREADY=1", false, true), ("\n\nREADY=1\n\n", false, true), ("READY=1\n", true, false),
    ("READY=0", false, false), ("READY=10", false, false), ("READY=1 ", false, false), (" READY=1", false, false),
    ("XREADY=1", false, false), ("READY=1\r\n", false, false), ("ready=1", false, false), ("STATUS=READY=1", false, false),
    ("WATCHDOG=1\nSTOPPING=1\nSTATUS=x", false, false), ("", false, false), ("\n", false, false), ("READY=\u{0}1", false, false),
  ] as [(String, Bool, Bool)])
  func notifyMessages(_ message: String, _ truncated: Bool, _ ready: Bool) {
    #expect(Array(message.utf8).withUnsafeBytes { NotifySocket.saysReady($0, truncated: truncated) } == ready)
  }

  @Test("limits: a name SPEC allows, a whole number with K/M/G or unlimited")
  func limits() {
    #expect(ResourceLimit(parsing: "nofile=64").map { [$0.soft, $0.hard] } == [64, 64])
    #expect(ResourceLimit(parsing: "as=1G")?.soft == 1 << 30)
    #expect(ResourceLimit(parsing: "core=unlimited")?.hard == UInt64.max)
    #expect(ResourceLimit(parsing: "stack=8M")?.resource == Int32(RLIMIT_STACK.rawValue))
    for bad in ["files=1", "nofile", "nofile=", "nofile=-1", "nofile=1.5", "nofile=1T", "=1", "nofile=99999999999999999999G",
      "rttime=1", "nofile=1:2"] {
      #expect(ResourceLimit(parsing: bad) == nil, "\(bad)")
    }
  }

  @Test("start limits: NAME=SOFT:HARD of any limit Linux has, written and read back; this process's are all there")
  func startLimits() {
    #expect(ResourceLimit(captured: "rttime=5:unlimited").map { [$0.soft, $0.hard] } == [5, UInt64.max])
    #expect(ResourceLimit(captured: "nofile=1024:4096")?.text == "nofile=1024:4096")
    for bad in ["nofile=1024", "nofile=4096:1024", "nofile=1K:2K", "nofile=:1", "files=1:1", "nofile=-1:1", "nofile=1:2:3"] {
      #expect(ResourceLimit(captured: bad) == nil, "\(bad)")
    }
    let own = ResourceLimit.ofThisProcess()
    #expect(own.count == 16, "RLIMIT_CPU to RLIMIT_RTTIME")
    #expect(own.allSatisfy { ResourceLimit(captured: $0.text) == $0 })
    var open = rlimit()
    getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &open)
    #expect(own.first { $0.name == "nofile" }?.soft == UInt64(open.rlim_cur))
    #expect(ResourceLimit.names(inShortfall: 1 << UInt64(RLIMIT_NOFILE.rawValue) | 1 << 63) == ["nofile", "nice value"])
  }

  @Test("the README's conf tables list every key of the table, and no other")
  func readmeListsEveryKey() throws {
    let readme = try String(contentsOfFile: #filePath.replacingOccurrences(of: "Tests/USVCTests/UnitTests.swift", with: "README.md"), encoding: .utf8)
    var documented: Set<String> = []
    for line in readme.split(separator: "\n") where line.hasPrefix("| `job.") {
      let cell = line.dropFirst(2).prefix { $0 != "|" }
      for part in cell.split(separator: "`") where part.hasPrefix("job.") { documented.insert(String(part.dropFirst(4))) }
    }
    #expect(documented == Set(JobKeys.all.map(\.name)))
  }

  @Test("run state survives encoding, every field set; a reason's newline becomes a space")
  func runStateRoundTrip() {
    var state = RunState()
    state.runner = 5
    state.state = .waiting
    state.pid = 6
    state.pidStart = 7_000_000_007
    state.since = 1_700_000_000.25
    state.started = 1_700_000_001.5
    state.restarts = 8
    state.runs = 9
    state.failures = 3
    state.lastExit = "SIGKILL"
    state.lastRunSeconds = 0.125
    state.totalRunSeconds = 12.75
    state.quickDeaths = 2
    state.retryAt = 1_700_000_004
    state.killAt = 1_700_000_005.5
    state.reason = "back-off = 2 s"
    state.programDevice = 2049
    state.programInode = 131_072
    state.programModified = 1_699_999_999.123
    state.checksHealth = true
    state.healthFailures = 2
    state.waitingFor = "db"
    state.unmetLimits = "nofile, nice value"
    #expect(fieldsLeftAtDefault(state, RunState()) == [], "set every field, so each is round-tripped")
    #expect(RunState(decoding: state.encoded()) == state)
    state.reason = "two\nlines"
    #expect(RunState(decoding: state.encoded()).reason == "two lines")
  }

  @Test("durations, sizes and command lines for status")
  func formats() {
    #expect(StatusFormat.duration(42) == "42s")
    #expect(StatusFormat.duration(312) == "5m12s")
    #expect(StatusFormat.duration(7380) == "2h03m")
    #expect(StatusFormat.duration(273_600) == "3d04h")
    #expect(StatusFormat.bytes(812 * 1024) == "812K")
    #expect(StatusFormat.bytes(13_002_342) == "12.4M")
    #expect(StatusFormat.commandLine(["/srv/server", "--port", "8080", "two words", "new\nline", ""]) ==
      "/srv/server --port 8080 'two words' 'new\\nline' ''")
  }

  @Test("JSON strings are escaped")
  func json() {
    #expect(JSON.object([("a", .string("q\"\\\n\u{1}")), ("b", .null), ("c", .number(1.5)), ("d", .number(3))]).encoded()
      == #"{"a":"q\"\\\n\u0001","b":null,"c":1.5,"d":3}"#)
  }

  @Test("proc stat lines with spaces and parentheses in the name parse")
  func procStat() {
    let line = Array("123 (a) b (c)) S 1 123 123 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 4 0 555 1000 42 1844 ".utf8)
    let stat = ProcStat(line: line)
    #expect(stat?.pid == 123 && stat?.state == "S" && stat?.parent == 1 && stat?.cpuTicks == 10 && stat?.startTicks == 555 && stat?.residentPages == 42)
    #expect(stat?.threads == 4)
  }
}

/// The stored properties of `value` that still equal those of `defaults`: a
/// round-trip test sets every one, so a field added later cannot be missed.
func fieldsLeftAtDefault<T>(_ value: T, _ defaults: T) -> [String] {
  zip(Mirror(reflecting: value).children, Mirror(reflecting: defaults).children).compactMap { field, fallback in
    String(describing: field.value) == String(describing: fallback.value) ? field.label : nil
  }
}
