import USVCContract
import USVCSys

/// The runner's state machine, after s6-supervise: every (state, event) pair is
/// written down, no `default`, so a new case does not compile until handled.
/// Pure: time comes in with the event, effects go out as actions.
public struct RunnerMachine: Sendable {
  public enum State: Equatable, Sendable {
    /// About to run the program.
    case starting
    /// The `pre` hook runs as `hook` (its own session); it is killed at
    /// `killAt` and the program starts anyway. The job is `starting` meanwhile.
    case preStart(hook: Int32, killAt: Double)
    /// The program runs as `pid` since `since` but is not ready yet (`job.ready`):
    /// SPEC's `starting`. The next readiness probe is due at `probeAt`; at
    /// `giveUpAt` (`ready-timeout`) the run is ended as `unready`.
    case awaitingReady(pid: Int32, since: Double, probeAt: Double, giveUpAt: Double)
    /// The program runs as `pid` since `since` (monotonic seconds), ready.
    case running(pid: Int32, since: Double)
    /// Ready, but its last `failures` health checks failed, fewer than
    /// `health-retries` (SPEC's `unhealthy`).
    case unhealthy(pid: Int32, since: Double, failures: Int)
    /// Not running until `until`: in back-off, or looking again whether what
    /// the job is `after` runs.
    case waiting(until: Double, reason: WaitReason)
    /// Stop sent; `pid` is the main process still to be reaped (0 once it
    /// was), SIGKILL goes out at `killAt`, `final` is what the job becomes.
    case stopping(pid: Int32, killAt: Double, final: JobState)
    /// usvc ends the run itself (`cause`, SPEC: Health): like `stopping`, but once
    /// everything is gone the run counts as a failed one that ran `ranFor` seconds.
    case ending(pid: Int32, killAt: Double, cause: EndCause, ranFor: Double)
    /// The runner is done and exits; `final` is stopped, exited, failed or lost.
    case finished(JobState)
  }

  /// Why usvc ended a run (SPEC: Health): its event and its last exit.
  public enum EndCause: String, Equatable, Sendable {
    case unready, unhealthy, silent, memory
  }

  /// Why a job is `waiting`.
  public enum WaitReason: Equatable, Sendable {
    /// Back-off after quick deaths.
    case backoff
    /// `selector` (from `job.after`) is not ready: `detail` says which job and why.
    case dependency(selector: String, detail: String)
  }

  public enum Event: Equatable, Sendable {
    case spawned(pid: Int32)
    case spawnFailed(reason: String)
    /// The main process ended after running `ranFor` seconds.
    case childExited(TerminationStatus, ranFor: Double)
    /// `usvc stop` (SIGTERM to the runner).
    case stopRequested
    /// The pane's terminal hung up: the tmux server or window is gone.
    case hangup
    /// The earliest deadline of the current state has passed.
    case deadline
    /// No child process of the runner is left.
    case allGone
    /// What the job is after (`job.after`) does not run yet: look again at
    /// `retryAt` (an `after-delay` that will have passed), or when
    /// `dependenciesChanged` says so (`.infinity`: only then).
    case blocked(selector: String, detail: String, retryAt: Double)
    /// The `pre` hook started as `pid`; it may run until `killAt`.
    case preHookStarted(pid: Int32, killAt: Double)
    /// A `post` or `on-failure` hook started as `pid`; it is killed at `killAt`.
    case hookStarted(pid: Int32, name: String, killAt: Double)
    /// A hook process ended.
    case hookEnded(pid: Int32)
    /// A job's state file changed under `run/` (inotify), or the fallback
    /// timer ticked: what this job is `after` may run now.
    case dependenciesChanged
    /// A job this one is after restarted, and `job.propagate` is set.
    case dependencyRestarted
    /// The readiness probe passed (`job.ready`).
    case ready
    /// A health check (`job.health`) passed, or failed (exit, refusal, or no answer by `health-timeout`).
    case healthPassed, healthFailed
    /// The job's whole tree uses this many bytes of RSS (answer to `measureMemory`).
    case memoryMeasured(UInt64)
  }

  public enum Action: Equatable, Sendable {
    /// Start a run: look at what the job is `after`, then run the `pre` hook
    /// if it has one, else the program (the executor answers with an event).
    case spawn
    /// Run the program now (the `pre` hook is done or was killed).
    case spawnProgram
    /// SIGKILL to a hook's process group.
    case killHook(Int32)
    /// The stop signal (then SIGCONT, so a stopped process can act on it) to the whole job.
    case signalJob(Signal)
    /// SIGKILL to every process left of the job.
    case killJob
    case log(String)
    /// The line saying how a run ended (`exitLine`), formatted only once the
    /// next run started.
    case logExit(TerminationStatus, ranFor: Double)
    /// Run the readiness probe once (it answers `.ready` when it passes).
    case probeReadiness
    /// Run one health check (it answers `.healthPassed` or `.healthFailed`).
    case checkHealth
    /// The health check in flight took longer than `health-timeout`: drop it (it failed).
    case abandonHealthCheck
    /// Sum the RSS of the job's process tree (it answers `.memoryMeasured`).
    case measureMemory
    /// Write an event to the stream (`ready`, `unready`, …).
    case record(event: String, detail: String)
    /// A run usvc ended (`EndCause`) is over: its figures as for an exit.
    case recordEnd(EndCause, ranFor: Double)
  }

  /// `exited with code 3 after 0.012s`, `killed by SIGKILL after 12s`.
  public static func exitLine(_ status: TerminationStatus, ranFor: Double) -> String {
    switch status {
    case .exited(let code): "exited with code \(code) after \(format(ranFor))"
    case .signaled(let signal): "killed by \(signal) after \(format(ranFor))"
    }
  }

  public var state: State = .starting
  public var quickDeaths = 0
  /// `post` and `on-failure` hooks still running: pid → which, and when it is killed.
  public private(set) var hooks: [Int32: Hook] = [:]
  public struct Hook: Equatable, Sendable {
    public var name: String
    public var killAt: Double
  }
  /// What the job last waited for (`job.after`), so a wait is said once, not every look.
  public private(set) var lastDependencyDetail: String?
  public private(set) var restart: RestartPolicy = .always
  public private(set) var stopSignal: Signal = .terminate
  public private(set) var stopTimeout: Double = 10
  public private(set) var stableAfter: Double = 10
  public private(set) var backoffMax: Double = 300
  public private(set) var hookTimeout: Double = 10
  /// Whether runs wait for a readiness probe (`job.ready` set), how long, how often.
  public private(set) var probesReadiness = false
  public private(set) var readyTimeout: Double = 60
  public private(set) var readyInterval: Double = 0.1
  /// Liveness (`job.health`): whether, how often, how long a check may take, how many failures in a row.
  public private(set) var checksHealth = false
  public private(set) var healthInterval: Double = 10
  public private(set) var healthTimeout: Double = 5
  public private(set) var healthRetries = 3
  /// When the next health check is due, and when the one in flight fails for
  /// want of an answer (`.infinity`: none); both only while ready.
  public private(set) var nextHealthCheck = Double.infinity
  public private(set) var healthCheckGivesUpAt = Double.infinity
  /// Watchdogs: seconds without output (`silence-max`), bytes of tree RSS
  /// (`memory-max`); 0: none. `lastOutput` is set by the executor as output comes.
  public private(set) var silenceMax: Double = 0
  public private(set) var memoryMax: UInt64 = 0
  public var lastOutput: Double = 0
  public private(set) var nextMemoryCheck = Double.infinity
  /// How often the tree's memory is measured while a run lives.
  public static let memoryCheckInterval: Double = 1

  public init(spec: JobSpec, quickDeaths: Int = 0) {
    self.quickDeaths = quickDeaths
    configure(spec)
  }

  /// Takes the settings of `spec`: a changed conf applies from the next start on.
  public mutating func configure(_ spec: JobSpec) {
    restart = spec.restart
    stopSignal = spec.stopSignal
    stopTimeout = spec.stopTimeout
    stableAfter = spec.stableAfter
    backoffMax = spec.backoffMax
    hookTimeout = spec.hookTimeout
    probesReadiness = !spec.ready.isEmpty
    readyTimeout = spec.readyTimeout
    readyInterval = spec.readyInterval
    checksHealth = !spec.health.isEmpty
    healthInterval = spec.healthInterval
    healthTimeout = spec.healthTimeout
    healthRetries = max(1, spec.healthRetries)
    silenceMax = spec.silenceMax
    memoryMax = UInt64(max(0, spec.memoryMax))
  }

  /// When the silence watchdog fires, if it watches.
  var silenceDue: Double { silenceMax > 0 ? lastOutput + silenceMax : .infinity }

  /// The watchdogs' part of a live run's `.deadline`: silence, or the memory measure.
  private mutating func watchdogs(pid: Int32, since: Double, now: Double) -> [Action]? {
    if now >= silenceDue {
      let detail = "no output for \(format(silenceMax))"
      return [.log("\(detail): restarting"), .record(event: "silent", detail: detail)]
        + endRun(pid: pid, since: since, cause: .silent, now: now)
    }
    if now >= nextMemoryCheck {
      nextMemoryCheck = now + Self.memoryCheckInterval
      return [.measureMemory]
    }
    return nil
  }

  /// The run became ready as `pid` (exec'd `since`): `running`, health checks from an interval on.
  /// A run was exec'd `now`: the watchdogs start watching.
  private mutating func runBegan(now: Double) {
    lastOutput = now
    nextMemoryCheck = memoryMax > 0 ? now + Self.memoryCheckInterval : .infinity
  }

  private mutating func becameReady(pid: Int32, since: Double, now: Double) {
    state = .running(pid: pid, since: since)
    nextHealthCheck = checksHealth ? now + healthInterval : .infinity
    healthCheckGivesUpAt = .infinity
  }

  /// Ends the run because usvc decided so (`cause`): stop signal, SIGKILL at stop-timeout.
  private mutating func endRun(pid: Int32, since: Double, cause: EndCause, now: Double) -> [Action] {
    state = .ending(pid: pid, killAt: now + stopTimeout, cause: cause, ranFor: now - since)
    nextHealthCheck = .infinity
    healthCheckGivesUpAt = .infinity
    nextMemoryCheck = .infinity
    return [.signalJob(stopSignal)]
  }

  /// A health check failed (`health-retries` in a row: the run is ended, event unhealthy).
  private mutating func healthFailed(pid: Int32, since: Double, failures: Int, now: Double) -> [Action] {
    healthCheckGivesUpAt = .infinity
    guard failures >= healthRetries else {
      state = .unhealthy(pid: pid, since: since, failures: failures)
      return failures == 1 ? [.log("health check failed")] : [.log("health check failed \(failures) times in a row")]
    }
    let detail = "\(failures) health checks failed in a row"
    return [.log("\(detail): restarting"), .record(event: "unhealthy", detail: detail)]
      + endRun(pid: pid, since: since, cause: .unhealthy, now: now)
  }

  /// The k-th quick death in a row waits min(backoff-max, 2^(k-1)) seconds.
  public func backoff(forQuickDeath k: Int) -> Double {
    min(backoffMax, Double(1 << min(max(k - 1, 0), 30)))
  }

  /// When `deadline` is next due: the state's own, or a hook's; nil when
  /// none. The executor's one poll waits for nothing else.
  public var deadline: Double? {
    let hookDue = hooks.values.map(\.killAt).min()
    guard let own = stateDeadline else { return hookDue }
    return min(own, hookDue ?? own)
  }

  var stateDeadline: Double? {
    switch state {
    case .waiting(let until, _): return until.isFinite ? until : nil
    case .preStart(_, let killAt): return killAt.isFinite ? killAt : nil
    case .stopping(_, let killAt, _), .ending(_, let killAt, _, _): return killAt.isFinite ? killAt : nil
    case .awaitingReady(_, _, let probeAt, let giveUpAt): return min(probeAt, giveUpAt, silenceDue, nextMemoryCheck)
    case .running, .unhealthy:
      let due = min(nextHealthCheck, healthCheckGivesUpAt, silenceDue, nextMemoryCheck)
      return due.isFinite ? due : nil
    case .starting, .finished: return nil
    }
  }

  /// Health checks of this run that failed in a row.
  public var healthFailures: Int {
    if case .unhealthy(_, _, let failures) = state { return failures }
    return 0
  }

  /// The state as SPEC names it.
  public var jobState: JobState {
    switch state {
    case .starting, .preStart, .awaitingReady: return .starting
    case .running: return .running
    case .unhealthy: return .unhealthy
    case .waiting: return .waiting
    case .stopping, .ending: return .stopping
    case .finished(let final): return final
    }
  }

  public mutating func handle(_ event: Event, now: Double) -> [Action] {
    // Hooks are the same in every state: kept until they end, killed when overdue.
    switch event {
    case .hookStarted(let pid, let name, let killAt):
      hooks[pid] = Hook(name: name, killAt: killAt)
      return []
    case .hookEnded(let pid) where hooks[pid] != nil:
      hooks[pid] = nil
      return []
    case .deadline:
      let overdue = hooks.filter { now >= $0.value.killAt }.sorted { $0.key < $1.key }
      for (pid, _) in overdue { hooks[pid] = nil }
      let killed = overdue.flatMap { pid, hook -> [Action] in
        [.log("hook \(hook.name) still running after \(format(hookTimeout)): killed"), .killHook(pid)]
      }
      return killed + handleState(event, now: now)
    default:
      return handleState(event, now: now)
    }
  }

  /// The transitions of `state` (SPEC's states, s6-style: every pair written down).
  mutating func handleState(_ event: Event, now: Double) -> [Action] {
    switch (state, event) {
    case (.starting, .spawned(let pid)):
      runBegan(now: now)
      // The first probe at once: a job may be ready before the first interval.
      if probesReadiness {
        state = .awaitingReady(pid: pid, since: now, probeAt: now, giveUpAt: now + readyTimeout)
      } else {
        becameReady(pid: pid, since: now, now: now)
      }
      lastDependencyDetail = nil
      return [.log("started pid \(pid)")]
    case (.starting, .spawnFailed(let reason)):
      state = .finished(.failed)
      return [.log("cannot run the program: \(reason)")]
    case (.starting, .stopRequested):
      state = .finished(.stopped)
      return []
    case (.starting, .hangup):
      state = .finished(.lost)
      return []
    case (.starting, .blocked(let selector, let detail, let retryAt)):
      state = .waiting(until: retryAt, reason: .dependency(selector: selector, detail: detail))
      defer { lastDependencyDetail = detail }
      return detail == lastDependencyDetail ? [] : [.log("waiting for \(detail)")]
    case (.starting, .preHookStarted(let hook, let killAt)):
      state = .preStart(hook: hook, killAt: killAt)
      return []
    case (.starting, .childExited), (.starting, .deadline), (.starting, .allGone),
      (.starting, .dependencyRestarted), (.starting, .hookEnded), (.starting, .hookStarted),
      (.starting, .dependenciesChanged), (.starting, .ready),
      (.starting, .healthPassed), (.starting, .healthFailed), (.starting, .memoryMeasured):
      return []

    case (.preStart(let hook, _), .hookEnded(let pid)):
      guard pid == hook else { return [] }
      state = .starting
      return [.spawnProgram]
    case (.preStart(let hook, let killAt), .deadline):
      guard now >= killAt else { return [] }
      state = .starting
      return [.log("hook pre still running after \(format(hookTimeout)): killed"), .killHook(hook), .spawnProgram]
    case (.preStart(let hook, _), .stopRequested):
      state = .finished(.stopped)
      return [.killHook(hook)]
    case (.preStart(let hook, _), .hangup):
      state = .finished(.lost)
      return [.killHook(hook)]
    case (.preStart, .spawned), (.preStart, .spawnFailed), (.preStart, .childExited), (.preStart, .allGone),
      (.preStart, .blocked), (.preStart, .preHookStarted), (.preStart, .dependencyRestarted),
      (.preStart, .hookStarted), (.preStart, .dependenciesChanged), (.preStart, .ready),
      (.preStart, .healthPassed), (.preStart, .healthFailed), (.preStart, .memoryMeasured):
      return []

    case (.awaitingReady(let pid, let since, _, _), .ready):
      becameReady(pid: pid, since: since, now: now)
      return [.log("ready after \(format(now - since))"), .record(event: "ready", detail: format(now - since))]
    case (.awaitingReady(let pid, let since, let probeAt, let giveUpAt), .deadline):
      if now < giveUpAt, let actions = watchdogs(pid: pid, since: since, now: now) { return actions }
      if now >= giveUpAt {
        return [
          .log("not ready after \(format(readyTimeout)): stopping the run"),
          .record(event: "unready", detail: "not ready after \(format(readyTimeout))"),
        ] + endRun(pid: pid, since: since, cause: .unready, now: now)
      }
      guard now >= probeAt else { return [] }
      state = .awaitingReady(pid: pid, since: since, probeAt: now + readyInterval, giveUpAt: giveUpAt)
      return [.probeReadiness]
    case (.awaitingReady(let pid, _, _, _), .stopRequested):
      state = .stopping(pid: pid, killAt: now + stopTimeout, final: .stopped)
      return [.log("stopping: \(stopSignal) to the job"), .signalJob(stopSignal)]
    case (.awaitingReady(let pid, _, _, _), .hangup):
      state = .stopping(pid: pid, killAt: now + stopTimeout, final: .lost)
      return [.log("terminal gone: stopping the job"), .signalJob(stopSignal)]
    case (.awaitingReady, .childExited(let status, let ranFor)):
      return ended(status, ranFor: ranFor, now: now)
    case (.awaitingReady(let pid, _, _, _), .dependencyRestarted):
      state = .stopping(pid: pid, killAt: now + stopTimeout, final: .starting)
      return [.log("a job this one is after restarted: restarting (propagate)"), .signalJob(stopSignal)]
    case (.awaitingReady, .spawned), (.awaitingReady, .spawnFailed), (.awaitingReady, .allGone),
      (.awaitingReady, .blocked), (.awaitingReady, .preHookStarted), (.awaitingReady, .hookEnded),
      (.awaitingReady, .hookStarted), (.awaitingReady, .dependenciesChanged),
      (.awaitingReady, .healthPassed), (.awaitingReady, .healthFailed):
      return []

    case (.running(let pid, let since), .deadline), (.unhealthy(let pid, let since, _), .deadline):
      if let actions = watchdogs(pid: pid, since: since, now: now) { return actions }
      var failures = 0
      if case .unhealthy(_, _, let count) = state { failures = count }
      if now >= healthCheckGivesUpAt {
        return [.abandonHealthCheck] + healthFailed(pid: pid, since: since, failures: failures + 1, now: now)
      }
      guard now >= nextHealthCheck else { return [] }
      nextHealthCheck = now + healthInterval
      healthCheckGivesUpAt = now + healthTimeout
      return [.checkHealth]
    case (.running, .healthPassed):
      healthCheckGivesUpAt = .infinity
      return []
    case (.unhealthy(let pid, let since, _), .healthPassed):
      healthCheckGivesUpAt = .infinity
      state = .running(pid: pid, since: since)
      return [.log("health check passed again")]
    case (.running(let pid, let since), .healthFailed):
      return healthFailed(pid: pid, since: since, failures: 1, now: now)
    case (.unhealthy(let pid, let since, let failures), .healthFailed):
      return healthFailed(pid: pid, since: since, failures: failures + 1, now: now)

    case (.running(let pid, let since), .memoryMeasured(let bytes)), (.unhealthy(let pid, let since, _), .memoryMeasured(let bytes)),
      (.awaitingReady(let pid, let since, _, _), .memoryMeasured(let bytes)):
      guard memoryMax > 0, bytes > memoryMax else { return [] }
      let detail = "\(bytes) bytes, above memory-max \(memoryMax)"
      return [.log("memory \(detail): restarting"), .record(event: "memory", detail: detail)]
        + endRun(pid: pid, since: since, cause: .memory, now: now)

    case (.running(let pid, _), .stopRequested), (.unhealthy(let pid, _, _), .stopRequested):
      state = .stopping(pid: pid, killAt: now + stopTimeout, final: .stopped)
      return [.log("stopping: \(stopSignal) to the job"), .signalJob(stopSignal)]
    case (.running(let pid, _), .hangup), (.unhealthy(let pid, _, _), .hangup):
      state = .stopping(pid: pid, killAt: now + stopTimeout, final: .lost)
      return [.log("terminal gone: stopping the job"), .signalJob(stopSignal)]
    case (.running, .childExited(let status, let ranFor)), (.unhealthy, .childExited(let status, let ranFor)):
      return ended(status, ranFor: ranFor, now: now)
    case (.running(let pid, _), .dependencyRestarted), (.unhealthy(let pid, _, _), .dependencyRestarted):
      state = .stopping(pid: pid, killAt: now + stopTimeout, final: .starting)
      return [.log("a job this one is after restarted: restarting (propagate)"), .signalJob(stopSignal)]
    case (.running, .spawned), (.running, .spawnFailed),
      (.running, .allGone), (.running, .blocked), (.running, .preHookStarted), (.running, .hookEnded),
      (.running, .hookStarted), (.running, .dependenciesChanged), (.running, .ready),
      (.unhealthy, .spawned), (.unhealthy, .spawnFailed), (.unhealthy, .allGone), (.unhealthy, .blocked),
      (.unhealthy, .preHookStarted), (.unhealthy, .hookEnded), (.unhealthy, .hookStarted),
      (.unhealthy, .dependenciesChanged), (.unhealthy, .ready):
      return []

    case (.waiting(let until, _), .deadline):
      guard now >= until else { return [] }
      state = .starting
      return [.spawn]
    case (.waiting, .stopRequested):
      state = .finished(.stopped)
      return []
    case (.waiting, .hangup):
      state = .finished(.lost)
      return []
    case (.waiting(_, .dependency), .dependenciesChanged):
      // Look again now rather than at the deadline.
      state = .starting
      return [.spawn]
    case (.waiting, .spawned), (.waiting, .spawnFailed), (.waiting, .childExited),
      (.waiting, .allGone), (.waiting, .blocked), (.waiting, .dependencyRestarted),
      (.waiting, .preHookStarted), (.waiting, .hookEnded), (.waiting, .hookStarted),
      (.waiting(_, .backoff), .dependenciesChanged), (.waiting, .ready),
      (.waiting, .healthPassed), (.waiting, .healthFailed), (.waiting, .memoryMeasured):
      return []

    case (.stopping(_, let killAt, let final), .childExited):
      state = .stopping(pid: 0, killAt: killAt, final: final)
      return []
    case (.stopping(let pid, let killAt, let final), .deadline):
      guard now >= killAt else { return [] }
      state = .stopping(pid: pid, killAt: .infinity, final: final)
      return [.log("still running after \(format(stopTimeout)): SIGKILL"), .killJob]
    case (.stopping(let pid, _, let final), .allGone):
      guard pid == 0 else { return [] }
      if final == .starting {
        state = .starting
        return [.spawn]
      }
      state = .finished(final)
      return [.log(final == .lost ? "job stopped: its terminal is gone" : "stopped")]
    case (.stopping(let pid, let killAt, _), .hangup):
      state = .stopping(pid: pid, killAt: killAt, final: .lost)
      return []
    case (.stopping(let pid, let killAt, let final), .stopRequested):
      if final == .starting { state = .stopping(pid: pid, killAt: killAt, final: .stopped) }
      return []
    case (.stopping, .spawned), (.stopping, .spawnFailed), (.stopping, .blocked),
      (.stopping, .dependencyRestarted), (.stopping, .preHookStarted), (.stopping, .hookEnded),
      (.stopping, .hookStarted), (.stopping, .dependenciesChanged), (.stopping, .ready),
      (.stopping, .healthPassed), (.stopping, .healthFailed), (.stopping, .memoryMeasured):
      return []

    case (.ending(_, let killAt, let cause, let ranFor), .childExited):
      state = .ending(pid: 0, killAt: killAt, cause: cause, ranFor: ranFor)
      return []
    case (.ending(let pid, let killAt, let cause, let ranFor), .deadline):
      guard now >= killAt else { return [] }
      state = .ending(pid: pid, killAt: .infinity, cause: cause, ranFor: ranFor)
      return [.log("still running after \(format(stopTimeout)): SIGKILL"), .killJob]
    case (.ending(let pid, _, let cause, let ranFor), .allGone):
      guard pid == 0 else { return [] }
      return endedByUsvc(cause, ranFor: ranFor, now: now)
    case (.ending(let pid, let killAt, _, _), .stopRequested):
      state = .stopping(pid: pid, killAt: killAt, final: .stopped)
      return []
    case (.ending(let pid, let killAt, _, _), .hangup):
      state = .stopping(pid: pid, killAt: killAt, final: .lost)
      return []
    case (.ending, .spawned), (.ending, .spawnFailed), (.ending, .blocked), (.ending, .dependencyRestarted),
      (.ending, .preHookStarted), (.ending, .hookEnded), (.ending, .hookStarted), (.ending, .dependenciesChanged),
      (.ending, .ready), (.ending, .healthPassed), (.ending, .healthFailed), (.ending, .memoryMeasured):
      return []

    case (.finished, _):
      return []
    }
  }

  /// A run usvc ended (SPEC: Health) is a failed run: `never` leaves the job
  /// `exited`; else an `unready` run is always a quick death, the others
  /// follow `stable-after` as any exit does.
  private mutating func endedByUsvc(_ cause: EndCause, ranFor: Double, now: Double) -> [Action] {
    let actions: [Action] = [.recordEnd(cause, ranFor: ranFor)]
    guard restart != .never else {
      state = .finished(.exited)
      return actions
    }
    return actions + startAgain(quickDeath: cause == .unready || ranFor < stableAfter, now: now)
  }

  /// The next run: at once after a stable one (the count of quick deaths
  /// starts again), else after the back-off of the k-th quick death in a row.
  private mutating func startAgain(quickDeath: Bool, now: Double) -> [Action] {
    guard quickDeath else {
      quickDeaths = 0
      state = .starting
      return [.spawn]
    }
    quickDeaths += 1
    let delay = backoff(forQuickDeath: quickDeaths)
    state = .waiting(until: now + delay, reason: .backoff)
    return [.log("quick death \(quickDeaths) in a row: waiting \(format(delay)) before restarting")]
  }

  /// A run ended on its own: restart now, wait, or finish, per policy and back-off.
  private mutating func ended(_ status: TerminationStatus, ranFor: Double, now: Double) -> [Action]
  {
    let actions: [Action] = [.logExit(status, ranFor: ranFor), .killJob]
    guard restart.restarts(after: status) else {
      state = .finished(.exited)
      return actions
    }
    return actions + startAgain(quickDeath: ranFor < stableAfter, now: now)
  }
}

/// `0.012s`, `3.4s`, `12s`: a duration for `[usvc]` lines.
public func format(_ seconds: Double) -> String {
  if seconds >= 10 || (seconds >= 1 && seconds == seconds.rounded()) { return "\(Int(seconds.rounded()))s" }
  let millis = Int((seconds * 1000).rounded())
  let whole = millis / 1000
  let fraction = millis % 1000
  let digits = String(fraction)
  return "\(whole).\(String(repeating: "0", count: 3 - digits.count))\(digits)s"
}
