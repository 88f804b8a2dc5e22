import CShims
import Glibc
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
  let signals: FileDescriptor
  /// `run/NAME.state`, kept open and rewritten in place.
  let stateFile: FileDescriptor
  var stateLength = Int.max
  let master: FileDescriptor
  /// Kept open so the terminal survives between runs; also the path each run opens.
  let slave: FileDescriptor
  let slavePath: String
  var paneOpen = true
  /// Monotonic time the current run began.
  var runBegan: Double = 0
  /// Whether the last byte written to the log was the end of a line.
  var atLineStart = true
  var buffer = [UInt8](repeating: 0, count: 8192)
  /// What the job waits for before it may start (`job.after`); nil when nothing.
  var blockedReason: String?
  var blockedReasonIsNew = false
  /// The main pids of the jobs this one is after, when it last started (for `job.propagate`).
  var dependencyPids: [String: pid_t] = [:]
  var nextDependencyCheck: Double = 0
  /// Inode, modification time and size of the spec last read.
  var specIdentity: [UInt64] = []
  /// The job's argv, environment and descriptor steps as C data, for this
  /// version of the spec: a respawn builds nothing.
  var preparedLaunch: PreparedSpawn?
  /// Hooks still running: pid → (which, when it is killed).
  var hooks: [pid_t: (name: String, killAt: Double)] = [:]

  /// Sets up everything, or prints why it cannot and returns nil.
  public init?(home: String, name: String) {
    paths = JobPaths(home: home, name: name)
    // 1. Signals first, so nothing that arrives during set-up is lost or fatal.
    let handled = SignalSet([.child, .terminate, .interrupt, .hangup, .windowChanged, .pipe,
                              Signal(rawValue: SIGQUIT), Signal(rawValue: SIGTSTP)])
    handled.block()
    resetSignalDispositions()
    var mask = handled.raw
    signals = FileDescriptor(rawValue: usvc_signalfd(&mask))
    umask(0o077)

    // 2. One runner per job: the lock is also how the CLI tells the runner is alive.
    guard paths.lockAsRunner() else {
      Runner.say("usvc-runner \(name): another runner holds \(paths.lock)")
      return nil
    }
    guard let info = fileStatus(paths.spec), let bytes = readFile(paths.spec),
      let spec = JobSpec(decoding: bytes)
    else {
      Runner.say("usvc-runner \(name): fatal: unable to read \(paths.spec)")
      return nil
    }
    self.spec = spec
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
    _ = usvc_set_child_subreaper()

    // 4. The job's own terminal, shaped like the pane but without ONLCR, so the
    //    log gets the bytes the job wrote; the pane's own ONLCR still applies.
    var attributes = termios()
    var size = winsize(ws_row: 24, ws_col: 80, ws_xpixel: 0, ws_ypixel: 0)
    let paneIsTerminal = isatty(0) == 1
    if paneIsTerminal {
      tcgetattr(0, &attributes)
      _ = usvc_get_winsize(0, &size)
      var pane = attributes
      // Keys typed in the pane go to the job as bytes; the job's terminal makes signals of them.
      pane.c_lflag &= ~tcflag_t(ICANON | ECHO | ISIG | IEXTEN)
      pane.c_iflag &= ~tcflag_t(IXON | ICRNL | INLCR | IGNCR)
      tcsetattr(0, TCSANOW, &pane)
    }
    var masterFD: Int32 = -1
    var slaveFD: Int32 = -1
    var name = [CChar](repeating: 0, count: 128)
    let opened = paneIsTerminal
      ? withUnsafePointer(to: &attributes) { usvc_openpty(&masterFD, &slaveFD, &name, 128, $0, &size) }
      : usvc_openpty(&masterFD, &slaveFD, &name, 128, nil, &size)
    guard opened == 0 else {
      Runner.say("usvc-runner \(paths.name): fatal: unable to open a terminal: \(Errno.current)")
      return nil
    }
    var jobAttributes = termios()
    tcgetattr(slaveFD, &jobAttributes)
    jobAttributes.c_oflag &= ~tcflag_t(ONLCR)
    tcsetattr(slaveFD, TCSANOW, &jobAttributes)
    master = FileDescriptor(rawValue: masterFD)
    slave = FileDescriptor(rawValue: slaveFD)
    slavePath = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    master.setNonBlocking()
    log = LogFile(path: paths.log, maxBytes: spec.logMaxBytes, keep: spec.logKeep)
  }

  /// Runs until the job is stopped, exits for good, or its terminal is gone.
  public mutating func run() -> Never {
    perform([.spawn])
    while true {
      if case .finished(let final) = machine.state { finish(final) }
      waitForSomething()
    }
  }

  /// One `poll` on the signals, the job's output and the pane's input, until
  /// the machine's next deadline.
  mutating func waitForSomething() {
    var fds = [
      pollfd(fd: signals.rawValue, events: Int16(POLLIN), revents: 0),
      pollfd(fd: master.rawValue, events: Int16(POLLIN), revents: 0),
      pollfd(fd: paneOpen ? 0 : -1, events: Int16(POLLIN), revents: 0),
    ]
    var timeout: Int32 = -1
    if let deadline = machine.deadline {
      timeout = Int32(max(0, min(3_600_000, ((deadline - monotonicClock()) * 1000).rounded(.up))))
    }
    if spec.propagate && !spec.after.isEmpty, case .running = machine.state {
      timeout = timeout < 0 ? 250 : min(timeout, 250)
    }
    if let hookDeadline = hooks.values.map(\.killAt).min(), hookDeadline.isFinite {
      let due = Int32(max(0, min(3_600_000, ((hookDeadline - monotonicClock()) * 1000).rounded(.up))))
      timeout = timeout < 0 ? due : min(timeout, due)
    }
    let ready = poll(&fds, 3, timeout)
    if ready < 0 && errno != EINTR {
      Runner.say("usvc-runner \(paths.name): fatal: poll: \(Errno.current)")
      exit(1)
    }
    if fds[1].revents != 0 { pumpOutput() }
    if fds[2].revents != 0 { forwardInput() }
    if fds[0].revents != 0 { handleSignals() }
    if let deadline = machine.deadline, monotonicClock() >= deadline {
      perform(machine.handle(.deadline, now: monotonicClock()))
    }
    checkDependencies()
    if !hooks.isEmpty { killOverdueHooks() }
  }

  mutating func handleSignals() {
    var childEnded = false
    while true {
      let number = usvc_signalfd_read(signals.rawValue)
      if number == 0 { break }
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
    case SIGWINCH:
      var size = winsize()
      if usvc_get_winsize(0, &size) == 0 { _ = usvc_set_winsize(master.rawValue, &size) }
    default: break  // SIGPIPE, SIGTSTP: nothing to do, blocked so they do no harm.
    }
  }

  /// SIGCHLD coalesces: reap until nothing is left to reap.
  mutating func reapChildren() {
    while let (pid, status) = reapAnyChild() {
      if let hook = hooks.removeValue(forKey: pid) {
        if !status.isSuccess { say("hook \(hook.name) ended with \(status)") }
        continue
      }
      guard pid == mainPid else { continue }  // A straggler of the job.
      // Output the job wrote before it ended comes before the line saying so.
      pumpOutput()
      let ranFor = monotonicClock() - runBegan
      published.pid = 0
      perform(machine.handle(.childExited(status, ranFor: ranFor), now: monotonicClock()), ended: (status, ranFor))
      // After the machine acted (its SIGKILL to stragglers must not hit them).
      let facts = hookFacts(status, ranFor: ranFor)
      if !spec.post.isEmpty { startHook("post", spec.post, facts) }
      if !status.isSuccess && !spec.onFailure.isEmpty { startHook("on-failure", spec.onFailure, facts) }
    }
    if case .stopping = machine.state, !hasChildren() {
      perform(machine.handle(.allGone, now: monotonicClock()))
    }
  }

  var mainPid: pid_t {
    switch machine.state {
    case .running(let pid, _): return pid
    case .stopping(let pid, _, _): return pid
    case .starting, .waiting, .finished: return 0
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
    let launched = actions.contains(.spawn) ? launchProgram() : nil
    // 2. Then record and say what happened, in the machine's order: the exit before the start.
    if let ended { recordExit(ended.status, ranFor: ended.ranFor) }
    for action in actions {
      switch action {
      case .log(let text): say(text)
      case .logExit(let status, let ranFor): say(RunnerMachine.exitLine(status, ranFor: ranFor))
      case .signalJob(let signal): signalJob([signal, .continue])
      case .spawn, .killJob: break
      }
    }
    // 3. Then what the start came to.
    guard let launched else { return publish() }
    if case .blocked = launched, let blockedReason, blockedReasonIsNew { say("waiting for \(blockedReason)") }
    perform(machine.handle(launched, now: monotonicClock()))
  }

  /// The health figures and the event of a run that ended.
  mutating func recordExit(_ status: TerminationStatus, ranFor: Double) {
    published.runs += 1
    if !status.isSuccess { published.failures += 1 }
    published.lastExit = status.description
    published.lastRunSeconds = ranFor
    published.totalRunSeconds += ranFor
    Events.append(home: paths.home, job: paths.name, event: "exited", detail: "\(status) after \(format(ranFor))")
  }

  /// Signals the job's process group and every other descendant of the runner
  /// (a double-forked child that left the group is reparented to us: subreaper).
  func signalJob(_ signals: [Signal]) {
    // No child at all (the usual case once a run ended): no descendant either,
    // and the respawn path skips reading the kernel's children lists.
    let descendants = hasChildren() ? ProcStat.descendantPids(of: getpid(), singleThreaded: true) : []
    for signal in signals {
      if published.pid > 1 { try? signal.send(toGroup: published.pid) }
      for pid in descendants { try? signal.send(to: pid) }
    }
  }

  /// Starts the program (after what it is `after` and its pre hook) and says
  /// what came of it as the machine's event; nil when a signal interrupted the
  /// pre hook (the main loop then handles that signal).
  mutating func launchProgram() -> RunnerMachine.Event? {
    refreshSpec()
    let now = monotonicClock()
    if let unmet = unmetDependency() {
      blockedReasonIsNew = blockedReason != unmet
      blockedReason = unmet
      return .blocked
    }
    blockedReason = nil
    if spec.propagate { dependencyPids = dependencyMainPids() }
    if !spec.pre.isEmpty {
      let facts = hookFacts(nil, ranFor: 0)
      guard let pid = startHook("pre", spec.pre, facts), waitForPreHook(pid) else { return nil }
    }
    if published.started > 0 { published.restarts += 1 }
    published.started = wallClock()
    if let info = fileStatus(spec.command) {
      published.programDevice = UInt64(info.st_dev)
      published.programInode = UInt64(info.st_ino)
      published.programModified = Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
    }
    machine.configure(spec)
    log.maxBytes = spec.logMaxBytes
    log.keep = spec.logKeep
    let previousMask = umask(spec.umask)
    defer { umask(previousMask) }
    // This runner installs no signal handler (resetSignalDispositions at its start).
    let launch = preparedLaunch ?? PreparedSpawn(
      spec.argv, environment: spec.environment, directory: spec.directory, newSession: true,
      actions: [.open(slavePath, as: 0, flags: O_RDWR), .duplicate(0, as: 1), .duplicate(0, as: 2), .closeFrom(3)])
    preparedLaunch = launch
    do {
      var attempts = 0
      var pid: pid_t = 0
      while true {
        do {
          pid = try launch.start()
          break
        } catch where error == Errno(ETXTBSY) && attempts < 100 {
          // The program file is still open for writing somewhere (just written,
          // or a writer's fd leaked into a forked child): give it a moment.
          attempts += 1
          usleep(10_000)
        }
      }
      runBegan = now
      published.pid = pid
      published.pidStart = ProcStat.read(pid)?.startTicks ?? 0
      return .spawned(pid: pid)
    } catch {
      published.reason = "\(spec.command): \(error)"
      return .spawnFailed(reason: published.reason)
    }
  }

  /// Reads `run/NAME.spec` again if the CLI rewrote it (a changed conf applies
  /// from the next start on); a stat, not a read, when it did not change.
  mutating func refreshSpec() {
    guard let info = fileStatus(paths.spec) else { return }
    let identity = Runner.identity(info)
    guard identity != specIdentity else { return }
    if let bytes = readFile(paths.spec), let fresh = JobSpec(decoding: bytes) {
      spec = fresh
      specIdentity = identity
      preparedLaunch = nil
    }
  }

  /// What tells one version of a file from the next: inode, modification time, size.
  static func identity(_ info: stat) -> [UInt64] {
    [UInt64(info.st_ino), UInt64(info.st_mtim.tv_sec), UInt64(info.st_mtim.tv_nsec), UInt64(info.st_size)]
  }

  /// The jobs (as `JobPaths`) that `job.after` names, without this one.
  func dependencies() -> [(selector: String, jobs: [JobPaths])] {
    if spec.after.isEmpty { return [] }
    let names = JobPaths.jobNames(home: paths.home)
    return spec.after.map { selector in
      (selector, names.filter { $0 != paths.name }.map { JobPaths(home: paths.home, name: $0) }
        .filter { $0.isNamed(by: selector) })
    }
  }

  /// What keeps the job from starting: a job it is after that does not run
  /// (long enough, with `job.after-delay`); nil when it may start.
  func unmetDependency() -> String? {
    for (selector, jobs) in dependencies() {
      if jobs.isEmpty { return "\(selector) (no such job or group)" }
      for job in jobs {
        guard let live = job.liveState(), live.state == .running else { return "\(job.name) to run" }
        let ranFor = wallClock() - live.started
        if ranFor < spec.afterDelay { return "\(job.name) to run for \(format(spec.afterDelay))" }
      }
    }
    return nil
  }

  func dependencyMainPids() -> [String: pid_t] {
    var pids: [String: pid_t] = [:]
    for (_, jobs) in dependencies() {
      for job in jobs { pids[job.name] = job.liveState()?.pid ?? 0 }
    }
    return pids
  }

  /// With `job.propagate`, restarts the job when a job it is after has a new main pid.
  mutating func checkDependencies() {
    guard spec.propagate, !spec.after.isEmpty, case .running = machine.state else { return }
    let now = monotonicClock()
    guard now >= nextDependencyCheck else { return }
    nextDependencyCheck = now + 0.25
    let current = dependencyMainPids()
    let restarted = current.contains { name, pid in
      let before = dependencyPids[name] ?? 0
      return pid > 0 && before > 0 && pid != before
    }
    for (name, pid) in current where pid > 0 { dependencyPids[name] = pid }
    if restarted { perform(machine.handle(.dependencyRestarted, now: now)) }
  }

  /// What a hook learns besides the job's environment.
  func hookFacts(_ status: TerminationStatus?, ranFor: Double) -> [String] {
    ["USVC_EXIT=\(status?.description ?? "")", "USVC_RUN_SECONDS=\(format(ranFor).dropLast())",
     "USVC_RESTARTS=\(published.restarts)"]
  }

  /// Starts a hook in a session of its own, its output on the job's terminal
  /// (so in the pane and the log), killed if it runs past `job.hook-timeout`.
  @discardableResult
  mutating func startHook(_ name: String, _ argv: [String], _ facts: [String]) -> pid_t? {
    do {
      let pid = try spawn(
        argv, environment: spec.environment + facts, directory: spec.directory, newSession: true,
        actions: [.open(slavePath, as: 0, flags: O_RDWR | O_NOCTTY), .duplicate(0, as: 1), .duplicate(0, as: 2),
                  .closeFrom(3)])
      hooks[pid] = (name, monotonicClock() + spec.hookTimeout)
      return pid
    } catch {
      say("hook \(name) cannot run: \(argv[0]): \(error)")
      return nil
    }
  }

  /// Waits for the pre hook before a start, but never past its timeout and
  /// never through a stop: false when a signal came first (the start is then
  /// abandoned and the main loop handles the signal).
  mutating func waitForPreHook(_ pid: pid_t) -> Bool {
    while hooks[pid] != nil {
      var status: Int32 = 0
      if waitpid(pid, &status, WNOHANG) == pid {
        hooks[pid] = nil
        let ended = TerminationStatus(waitStatus: status)
        if !ended.isSuccess { say("hook pre ended with \(ended); starting anyway") }
        return true
      }
      if killOverdueHooks() { return true }
      var fds = [pollfd(fd: signals.rawValue, events: Int16(POLLIN), revents: 0),
                 pollfd(fd: master.rawValue, events: Int16(POLLIN), revents: 0)]
      _ = poll(&fds, 2, 10)
      if fds[1].revents != 0 { pumpOutput() }
      // SIGCHLD is the hook (waitpid above sees it); any other signal ends the wait.
      var others: [Int32] = []
      while case let number = usvc_signalfd_read(signals.rawValue), number != 0 {
        if number != SIGCHLD { others.append(number) }
      }
      if !others.isEmpty {
        try? Signal.kill.send(toGroup: pid)
        for number in others { handle(signal: number) }
        return false
      }
    }
    return true
  }

  /// Kills hooks past their time; true when any was.
  @discardableResult
  mutating func killOverdueHooks() -> Bool {
    let now = monotonicClock()
    var killed = false
    for (pid, hook) in hooks where now >= hook.killAt && hook.killAt.isFinite {
      try? Signal.kill.send(toGroup: pid)
      say("hook \(hook.name) still running after \(format(spec.hookTimeout)): killed")
      hooks[pid] = (hook.name, .infinity)
      killed = true
    }
    return killed
  }

  /// Copies what the job printed to the pane and the log.
  mutating func pumpOutput() {
    while true {
      let count = buffer.withUnsafeMutableBytes { Glibc.read(master.rawValue, $0.baseAddress, $0.count) }
      guard count > 0 else { return }
      buffer.withUnsafeBytes { raw in
        let bytes = UnsafeRawBufferPointer(rebasing: raw[0..<count])
        if paneOpen { try? FileDescriptor.standardOutput.writeAll(bytes) }
        if let error = log.append(bytes) {
          toPane("\n[usvc] cannot write \(paths.log): \(error); the job goes on, shown here only\n")
        }
      }
      atLineStart = buffer[count - 1] == UInt8(ascii: "\n")
    }
  }

  /// Keys typed in the pane (through `usvc attach`) go to the job's terminal.
  mutating func forwardInput() {
    let count = buffer.withUnsafeMutableBytes { Glibc.read(0, $0.baseAddress, $0.count) }
    if count <= 0 {
      if count == 0 || (errno != EINTR && errno != EAGAIN) { paneOpen = false }
      return
    }
    buffer.withUnsafeBytes { raw in
      try? master.writeAll(UnsafeRawBufferPointer(rebasing: raw[0..<count]))
    }
  }

  /// One `[usvc] …` line, to the pane and the log, starting on a line of its own.
  mutating func say(_ text: String) {
    let line = (atLineStart ? "" : "\n") + "[usvc] " + text + "\n"
    atLineStart = true
    toPane(line)
    var bytes = line.losslessBytes
    if let error = bytes.withUnsafeBytes({ log.append($0) }) {
      toPane("[usvc] cannot write \(paths.log): \(error); the job goes on, shown here only\n")
    }
    _ = bytes.removeLast()
  }

  func toPane(_ text: String) {
    if paneOpen { try? FileDescriptor.standardOutput.writeAll(text) }
  }

  static func say(_ line: String) { printError(line) }

  mutating func publish() {
    let state = machine.jobState
    var next = published
    next.state = state
    next.quickDeaths = machine.quickDeaths
    next.killAt = 0
    if case .stopping(_, let killAt, _) = machine.state, killAt.isFinite {
      next.killAt = wallClock() + (killAt - monotonicClock())
    }
    if case .waiting = machine.state, let blockedReason {
      next.retryAt = 0
      next.reason = "waiting for " + blockedReason
    } else if case .waiting(let until) = machine.state {
      next.retryAt = wallClock() + (until - monotonicClock())
      next.reason = "back-off after \(machine.quickDeaths) quick death\(machine.quickDeaths == 1 ? "" : "s")"
    } else if state != .failed {
      next.retryAt = 0
      if state != .lost { next.reason = "" }
    }
    if state == .lost { next.reason = "the terminal (tmux window or server) went away" }
    if next.state != written?.state || next.since == 0 { next.since = wallClock() }
    published = next
    if next == written { return }
    if next.state != written?.state || next.pid != written?.pid { announce(next) }
    written = next
    // In place, see RunState: one pwrite (then a trim if it got shorter).
    let bytes = Array(published.encoded().utf8)
    let written = bytes.withUnsafeBytes { pwrite(stateFile.rawValue, $0.baseAddress, $0.count, 0) }
    if written == bytes.count && bytes.count < stateLength { ftruncate(stateFile.rawValue, off_t(bytes.count)) }
    stateLength = bytes.count
  }

  /// Appends the event for a new state to `events.log`.
  func announce(_ next: RunState) {
    let detail: String
    switch next.state {
    case .running: detail = "pid \(next.pid)"
    case .waiting:
      detail = blockedReason != nil ? next.reason
        : "restart in \(format(machine.backoff(forQuickDeath: next.quickDeaths))) (\(next.reason))"
    case .failed, .lost: detail = next.reason
    case .stopped: detail = "last exit \(next.lastExit)"
    case .starting, .stopping, .exited: return
    }
    Events.append(home: paths.home, job: paths.name, event: next.state == .running ? "started" : next.state.rawValue, detail: detail)
  }

  /// Publishes the final state once no process of the job is left, then exits.
  func finish(_ final: JobState) -> Never {
    // Whatever was killed on the way out is reaped here, so nothing is left a zombie.
    while hasChildren() {
      var status: Int32 = 0
      if waitpid(-1, &status, 0) < 0 && errno != EINTR { break }
    }
    exit(0)
  }
}
