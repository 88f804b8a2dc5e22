import Glibc
import USVCContract
import USVCSys

/// Runs one job: the executor of `RunnerMachine`. Lives in the job's tmux pane,
/// gives the job a terminal of its own, copies every byte the job prints to
/// the pane and to the log, and publishes `run/NAME.state` after every change.
///
/// Single-threaded: signals stay blocked and arrive through a signalfd, so the
/// only place anything happens is the `poll` in `run()` (runit and s6 style).
public struct Runner {
  let paths: JobPaths
  var spec: JobSpec
  var machine: RunnerMachine
  /// The record being kept up to date, and what was last written of it.
  var published = RunState()
  var written: RunState?
  var log: LogFile
  let signals: SignalDescriptor
  /// `run/NAME.state`, kept open and rewritten in place.
  var stateFile: FileDescriptor
  var stateLength = Int.max
  let master: FileDescriptor
  /// Kept open so the terminal survives between runs; also the path each run opens.
  let slave: FileDescriptor
  let slavePath: String
  var paneOpen = true
  /// The job's output on its way to the pane, which may skip; the log never does.
  var pane = PaneFeed()
  /// Monotonic time the current run began.
  var runBegan: Double = 0
  /// Whether the last byte written to the log was the end of a line.
  var atLineStart = true
  /// For the job's output and the pane's input. Never freed (it lives as long
  /// as the runner) and never zero-filled: a page of it costs memory only once
  /// a read reached it, so a quiet job's runner pays for one page, not two.
  let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 8192, alignment: 16)
  /// The main pids of the jobs this one is after, when it last started (for `job.propagate`).
  var dependencyPids: [String: pid_t] = [:]
  /// Inode, modification time and size of the spec last read.
  var specIdentity: [UInt64] = []
  /// The spec (so a respawn stats nothing unless the CLI replaced it) and
  /// the other jobs' states (for `job.after`), watched.
  var watches: FileWatches
  /// The job's argv, environment and descriptor steps as C data, for this
  /// version of the spec: a respawn builds nothing.
  var preparedLaunch: PreparedSpawn?
  /// Events that could not be written to `events.log` (a full or read-only
  /// disk) since the last one that could: reported with the next that can.
  var lostEvents = 0
  /// The readiness check in flight (`job.ready` tcp or http), polled with the rest.
  var readinessCheck: ProbeConnection?
  /// `job.ready log:REGEX`: the pattern compiled (for `readyPattern`) and the
  /// line being read, at most `maximumReadyLine` bytes of it matched.
  var readyRegex: UnsafeMutablePointer<regex_t>?
  var readyPattern = ""
  var readyLine: [UInt8] = []
  /// `job.ready exec:COMMAND` running as this process group (0: none), reaped through the signalfd.
  var readinessExec: pid_t = 0
  /// When the readiness check in flight began (monotonic).
  var readinessCheckBegan: Double = 0
  /// `job.ready notify`: the pipe whose write end each run gets as USVC_READY_FD
  /// (made once, kept across runs; -1 until needed).
  var readyPipeRead: Int32 = -1
  var readyPipeWrite: Int32 = -1
  /// `job.ready notify`: the sd_notify socket each run gets as NOTIFY_SOCKET
  /// (made once, kept across runs, removed when the runner exits; nil until
  /// needed), and whether making it failed (said once, not tried again).
  var notifySocket: NotifySocket?
  var notifySocketFailed = false
  /// The health check in flight: a tcp/http connection, or an `exec:` process group (0: none).
  var healthCheck: ProbeConnection?
  var healthExec: pid_t = 0
  /// Whether the heap's and the stack's free pages are given back before the
  /// next wait: after setting up and after each change of state. What those
  /// allocated and freed (reading the spec, building the launch, formatting),
  /// and how deep the stack went doing it the first time, stay private memory
  /// of an idle runner unless given back; other wake-ups (output, probes) are
  /// too frequent to pay for it.
  var memoryToGiveBack = true

  /// Sets up everything, or prints why it cannot and returns nil.
  public init?(home: String, name: String) {
    paths = JobPaths(home: home, name: name)
    // 1. Signals first, so nothing that arrives during set-up is lost or fatal.
    let handled = SignalSet([.child, .terminate, .interrupt, .hangup, .windowChanged, .pipe,
                              Signal(rawValue: SIGQUIT), Signal(rawValue: SIGTSTP), Signal(rawValue: SIGUSR1)])
    handled.block()
    resetSignalDispositions()
    guard let signals = try? SignalDescriptor(handled) else {
      Runner.say("usvc-runner \(name): fatal: unable to read signals: \(Errno.current)")
      return nil
    }
    self.signals = signals
    umask(0o077)

    // 2. One runner per job: the lock is also how the CLI tells the runner is alive.
    guard paths.lockAsRunner() else {
      Runner.say("usvc-runner \(name): another runner holds \(paths.lock)")
      return nil
    }
    watches = FileWatches(ownState: name + ".state")
    watches.watchSpec(paths.spec)
    guard let info = fileStatus(paths.spec), let bytes = readFile(paths.spec),
      let spec = JobSpec(decoding: bytes)
    else {
      Runner.say("usvc-runner \(name): fatal: unable to read \(paths.spec)")
      return nil
    }
    self.spec = spec
    watches.watchStates(in: home + "/run", !spec.after.isEmpty)
    specIdentity = Runner.identity(info)

    // 3. What an earlier runner of this job left: counters, and perhaps processes
    //    (it was killed): those go, so a job never runs twice.
    if let previous = paths.readState() {
      published = previous
      if published.pid > 0 { paths.killLeftovers(of: published) }
    }
    guard let stateFile = try? FileDescriptor.open(paths.state, O_WRONLY | O_CREAT) else {
      Runner.say("usvc-runner \(name): fatal: unable to open \(paths.state): \(Errno.current)")
      return nil
    }
    self.stateFile = stateFile
    machine = RunnerMachine(spec: spec, quickDeaths: 0)
    published.runner = getpid()
    published.reason = ""
    becomeChildSubreaper()

    // 4. The job's own terminal, shaped like the pane but without output
    //    processing (OPOST, so ONLCR too): the log gets the bytes the job wrote,
    //    and each write the job makes costs the kernel less (~15% less system
    //    time for a job printing line by line, measured); the pane's own ONLCR
    //    still applies.
    var attributes = termios()
    var size = winsize(ws_row: 24, ws_col: 80, ws_xpixel: 0, ws_ypixel: 0)
    let paneIsTerminal = isatty(0) == 1
    if paneIsTerminal {
      tcgetattr(0, &attributes)
      size = windowSize(of: 0) ?? size
      var pane = attributes
      // Keys typed in the pane go to the job as bytes; the job's terminal makes signals of them.
      pane.c_lflag &= ~tcflag_t(ICANON | ECHO | ISIG | IEXTEN)
      pane.c_iflag &= ~tcflag_t(IXON | ICRNL | INLCR | IGNCR)
      tcsetattr(0, TCSANOW, &pane)
    }
    let terminal: (master: FileDescriptor, slave: FileDescriptor, path: String)
    do {
      terminal = try openPseudoTerminal(attributes: paneIsTerminal ? attributes : nil, size: size)
    } catch {
      Runner.say("usvc-runner \(paths.name): fatal: unable to open a terminal: \(error)")
      return nil
    }
    var jobAttributes = termios()
    tcgetattr(terminal.slave.rawValue, &jobAttributes)
    jobAttributes.c_oflag &= ~tcflag_t(OPOST | ONLCR)
    tcsetattr(terminal.slave.rawValue, TCSANOW, &jobAttributes)
    (master, slave, slavePath) = terminal
    master.setNonBlocking()
    log = LogFile(path: paths.log, maxBytes: spec.logMaxBytes, keep: spec.logKeep)
  }

  /// Runs until the job is stopped, exits for good, or its terminal is gone.
  public mutating func run() -> Never {
    perform([.spawn])
    while true {
      if case .finished = machine.state { finish() }
      waitForSomething()
    }
  }

  /// One `poll` on the signals, the job's output and the pane's input, until
  /// the machine's next deadline.
  mutating func waitForSomething() {
    let now = monotonicClock()
    let paneWaitsForRoom = paneOpen && pane.waitsForRoom(now: now)
    var fds = [
      pollfd(fd: signals.fd.rawValue, events: Int16(POLLIN), revents: 0),
      pollfd(fd: master.rawValue, events: Int16(POLLIN), revents: 0),
      pollfd(fd: paneOpen ? 0 : -1, events: Int16(POLLIN), revents: 0),
      pollfd(fd: paneWaitsForRoom ? pane.fd : -1, events: Int16(POLLOUT), revents: 0),
      pollfd(fd: watches.inotify, events: Int16(POLLIN), revents: 0),
      pollfd(fd: watches.timer, events: Int16(POLLIN), revents: 0),
      pollfd(fd: readinessCheck?.fd ?? -1, events: readinessCheck?.events ?? 0, revents: 0),
      pollfd(fd: healthCheck?.fd ?? -1, events: healthCheck?.events ?? 0, revents: 0),
      pollfd(fd: readyPipeRead, events: Int16(POLLIN), revents: 0),
      pollfd(fd: notifySocket?.fd ?? -1, events: Int16(POLLIN), revents: 0),
    ]
    var timeout: Int32 = -1
    if let deadline = machine.deadline {
      timeout = Int32(max(0, min(3_600_000, ((deadline - now) * 1000).rounded(.up))))
    }
    if paneOpen && pane.isSkipping && !paneWaitsForRoom {
      let due = Int32(max(0, ((pane.resumeAt - now) * 1000).rounded(.up)))
      timeout = timeout < 0 ? due : min(timeout, due)
    }
    // Here, when all of the last wake-up's work is done and the poll set built.
    if memoryToGiveBack {
      trimHeap()
      trimStack()
      memoryToGiveBack = false
    }
    let ready = poll(&fds, nfds_t(fds.count), timeout)
    if ready < 0 && errno != EINTR {
      Runner.say("usvc-runner \(paths.name): fatal: poll: \(Errno.current)")
      notifySocket?.close()
      exit(1)
    }
    if fds[1].revents != 0 { pumpOutput() }
    if fds[3].revents != 0 { pane.resume() }
    if fds[2].revents != 0 { forwardInput() }
    // Before the signals: a spec replaced before the job died applies to its next run.
    let statesChanged = fds[4].revents != 0 || fds[5].revents != 0 ? watches.drain(buffer) : false
    if fds[0].revents != 0 { handleSignals() }
    if fds[6].revents != 0 { advanceReadinessCheck() }
    if fds[7].revents != 0 { advanceHealthCheck() }
    if fds[8].revents != 0 { readReadyPipe() }
    if fds[9].revents != 0 { readNotifySocket() }
    if let deadline = machine.deadline, monotonicClock() >= deadline {
      perform(machine.handle(.deadline, now: monotonicClock()))
    }
    if statesChanged {
      perform(machine.handle(.dependenciesChanged, now: monotonicClock()))
      checkDependencies()
    }
  }

  mutating func handleSignals() {
    var childEnded = false
    while let number = signals.next() {
      if number == SIGCHLD { childEnded = true } else { handle(signal: number) }
    }
    if childEnded { reapChildren() }
  }

  /// Every signal but SIGCHLD (see `reapChildren`).
  mutating func handle(signal number: Int32) {
    switch number {
    case SIGTERM, SIGINT, SIGQUIT: perform(machine.handle(.stopRequested, now: monotonicClock()))
    case SIGHUP:
      paneOpen = false
      perform(machine.handle(.hangup, now: monotonicClock()))
    case SIGUSR1: rewriteStateFile()
    case SIGWINCH:
      if let size = windowSize(of: 0) { setWindowSize(size, of: master.rawValue) }
    default: break  // SIGPIPE, SIGTSTP: nothing to do, blocked so they do no harm.
    }
  }

  /// SIGCHLD coalesces: reap until nothing is left to reap.
  mutating func reapChildren() {
    while let (pid, status) = reapAnyChild() {
      if let hook = hookName(pid) {
        if !status.isSuccess { say("hook \(hook) ended with \(status)\(hook == "pre" ? "; starting anyway" : "")") }
        perform(machine.handle(.hookEnded(pid: pid), now: monotonicClock()))
        continue
      }
      if pid == healthExec {
        healthExec = 0
        perform(machine.handle(status.isSuccess ? .healthPassed : .healthFailed, now: monotonicClock()))
        continue
      }
      if pid == readinessExec {
        readinessExec = 0
        if status.isSuccess { perform(machine.handle(.ready, now: monotonicClock())) }
        continue
      }
      guard pid == mainPid else { continue }  // A straggler of the job.
      // Output the job wrote before it ended comes before the line saying so
      // (all of it: the job's terminal holds at most about 68 KiB).
      pumpOutput(chunks: 64)
      let ranFor = monotonicClock() - runBegan
      published.pid = 0
      // A run usvc is ending (`unready`, …) is recorded as that once all is gone (`recordEnd`), not as an exit.
      var endedByUsvc = false
      if case .ending = machine.state { endedByUsvc = true }
      perform(
        machine.handle(.childExited(status, ranFor: ranFor), now: monotonicClock()),
        ended: endedByUsvc ? nil : (status, ranFor))
      // After the machine acted (its SIGKILL to stragglers must not hit them).
      let facts = hookFacts(status, ranFor: ranFor)
      if !spec.post.isEmpty { startHook("post", spec.post, facts) }
      if !status.isSuccess && !spec.onFailure.isEmpty { startHook("on-failure", spec.onFailure, facts) }
    }
    if machine.jobState == .stopping, !hasChildren() {
      perform(machine.handle(.allGone, now: monotonicClock()))
    }
  }

  /// Which hook `pid` is, while the machine waits for it; nil for any other
  /// process (a hook killed when overdue is reaped as a straggler).
  func hookName(_ pid: pid_t) -> String? {
    if case .preStart(let hook, _) = machine.state, hook == pid { return "pre" }
    return machine.hooks[pid]?.name
  }

  var mainPid: pid_t {
    switch machine.state {
    case .running(let pid, _), .awaitingReady(let pid, _, _, _), .unhealthy(let pid, _, _): return pid
    case .stopping(let pid, _, _), .ending(let pid, _, _, _): return pid
    case .starting, .preStart, .waiting, .finished: return 0
    }
  }

  /// Runs the machine's actions. `ended` is the run whose exit led to them.
  mutating func perform(
    _ actions: [RunnerMachine.Action], ended: (status: TerminationStatus, ranFor: Double)? = nil
  ) {
    // 1. The respawn path first: clear what the last run left (before the new
    //    run exists, so it is not among them), then start the next run. Nothing
    //    else comes before the spawn, not even formatting a line: a job dies
    //    rarely, and whatever runs first then runs from cold caches.
    if actions.contains(.killJob) { signalJob([.kill]) }
    // A hook killed on purpose is reaped as a straggler, without a line saying it ended.
    for case .killHook(let pid) in actions { try? Signal.kill.send(toGroup: pid) }
    var next: RunnerMachine.Event?
    if actions.contains(.spawn) {
      next = launchProgram()
    } else if actions.contains(.spawnProgram) {
      next = spawnProgram()
    }
    // 2. Then record and say what happened, in the machine's order: the exit before the start.
    if let ended { recordExit(ended.status, ranFor: ended.ranFor) }
    for action in actions {
      switch action {
      case .log(let text): say(text)
      case .logExit(let status, let ranFor): say(RunnerMachine.exitLine(status, ranFor: ranFor))
      case .signalJob(let signal): signalJob([signal, .continue])
      case .record(let name, let detail): event(name, detail)
      case .recordEnd(let cause, let ranFor): recordEnd(cause, ranFor: ranFor)
      case .probeReadiness: probeReadiness()
      case .checkHealth: checkHealth()
      case .abandonHealthCheck: dropHealthCheck()
      case .measureMemory:
        // The whole tree, as `status` sums it: the job's group and every other descendant.
        let bytes = ProcStat.descendants(of: getpid()).reduce(UInt64(0)) {
          $0 + $1.residentPages * UInt64(sysconf(Int32(_SC_PAGESIZE)))
        }
        next = next ?? .memoryMeasured(bytes)
      case .spawn, .spawnProgram, .killJob, .killHook: break
      }
    }
    // 3. Then what the start came to.
    guard let next else { return publish() }
    perform(machine.handle(next, now: monotonicClock()))
  }

  /// The figures of a run usvc ended (SPEC: Health): a failed run whose last exit is the cause.
  mutating func recordEnd(_ cause: RunnerMachine.EndCause, ranFor: Double) {
    published.runs += 1
    published.failures += 1
    published.lastExit = cause.rawValue
    published.lastRunSeconds = ranFor
    published.totalRunSeconds += ranFor
  }

  /// The health figures and the event of a run that ended.
  mutating func recordExit(_ status: TerminationStatus, ranFor: Double) {
    published.runs += 1
    if !status.isSuccess { published.failures += 1 }
    published.lastExit = status.description
    published.lastRunSeconds = ranFor
    published.totalRunSeconds += ranFor
    event("exited", "\(status) after \(format(ranFor))")
  }

  /// Signals the job's process group and every other descendant of the runner
  /// (a double-forked child that left the group is reparented to us: subreaper).
  func signalJob(_ signals: [Signal]) {
    // No child at all (the usual case once a run ended): no descendant either,
    // and the respawn path skips reading the kernel's children lists.
    let descendants = hasChildren() ? ProcStat.descendants(of: getpid()).map(\.pid) : []
    for signal in signals {
      if published.pid > 1 { try? signal.send(toGroup: published.pid) }
      for pid in descendants { try? signal.send(to: pid) }
    }
  }
}
