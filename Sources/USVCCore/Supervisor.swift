import Glibc
import USVCContract
import USVCSys

/// What `usvc start` was asked for.
public struct StartRequest: Sendable {
  public var group: String
  public var count = 1
  public var command: String
  public var arguments: [String] = []
  public var restart: RestartPolicy = .always
  public var directory: String?
  public var environment: [String] = []
  public var after: [String] = []
  public var notify: String?
  /// More conf keys written at creation, after (so over) the ones above (`load`).
  public var extra: [ConfChange] = []
  /// More conf keys for each job (the K-th at index K-1), written after
  /// everything else (`load`: the keys a job does not share with its group);
  /// a `job.env` here is that job's whole saved environment.
  public var perJob: [[ConfChange]] = []
  /// The jobs' environment is `environment` alone, not the caller's plus it
  /// (`load`: a saved environment); usvc's own variables are still set.
  public var replaceEnvironment = false
  /// Refuse when the group has jobs already (`load` creates, it does not
  /// merge); checked under the writers' lock, so two loads cannot both pass.
  public var groupMustBeNew = false
  public init(group: String, command: String) {
    self.group = group
    self.command = command
  }
}

/// Whether a job's conf can be used (SPEC: Broken confs).
public enum ConfCondition: Sendable, Equatable {
  case ok
  /// `jobs/NAME.conf` is gone while the job's runner lives.
  case missing
  /// libgit2 cannot parse it, or a key or value is invalid: the reason, with the file.
  case broken(String)
}

/// One job as the CLI sees it: its spec, its runner's last word, whether that
/// runner still lives, and whether its conf can be used.
public struct JobView: Sendable {
  public var name: String
  public var spec: JobSpec?
  public var run: RunState
  public var runner: pid_t?
  /// Whether `run/NAME.state` was there to read (a job never started has none).
  public var hasState = true
  public var conf: ConfCondition = .ok

  /// The state SPEC names: `broken` when its conf cannot be used; else the
  /// runner's own word while it lives; once it is gone, `lost` if the job
  /// should be running, else what it ended as.
  public var state: JobState {
    if case .broken = conf { return .broken }
    if runner != nil { return run.state }
    switch run.state {
    case .stopped, .exited, .failed: return run.state
    case .starting, .running, .unhealthy, .waiting, .stopping, .lost, .broken:
      return spec?.desiredRunning == false ? .stopped : .lost
    }
  }
  /// Whether the job has a process (SPEC: `live` = starting, running, unhealthy, stopping),
  /// by its runner's word, also when its conf is broken.
  public var isLive: Bool {
    guard runner != nil else { return false }
    switch run.state {
    case .starting, .running, .unhealthy, .stopping: return true
    case .waiting, .stopped, .exited, .failed, .lost, .broken: return false
    }
  }
  /// The main pid while the job runs, else nil.
  public var pid: pid_t? { runner != nil && run.pid > 0 ? run.pid : nil }
  /// Why its conf cannot be used, or nil.
  public var confProblem: String? {
    if case .broken(let why) = conf { return why }
    return nil
  }
}

/// How a started job came out: its program ran, or it waits for what it is `after`.
public enum Launched: Sendable, Equatable, CustomStringConvertible {
  case started(String)
  case waiting(String, for: String)

  public var name: String {
    switch self {
    case .started(let name), .waiting(let name, _): return name
    }
  }

  /// The line `start`, `restart`, `load` and `resurrect` print (SPEC: start).
  public var description: String {
    switch self {
    case .started(let name): return "started \(name)"
    case .waiting(let name, let selector): return "waiting \(name) for \(selector.visible)"
    }
  }
}

/// The library the CLI is a thin layer over: every command's work.
public struct Supervisor: Sendable {
  public let home: Home
  public let store: ConfStore
  public let environment: [String]
  public let runnerPath: String
  /// The caller's umask, given to its jobs; usvc itself creates files with 077.
  public let callerUmask: mode_t
  /// Where warnings go (something usvc could not do, while the command goes on):
  /// stderr, as `usvc: …` lines.
  public var warn: @Sendable (String) -> Void = { printError("usvc: " + $0) }

  /// Opens `USVC_HOME` for the caller. `executable` is usvc's own path: the
  /// runner is the `usvc-runner` beside it. Commands that only read (and
  /// `stop`, which must work when the disk is full or read-only) pass
  /// `forWriting: false` (SPEC: Broken confs).
  public init(environment: [String], executable: String, forWriting: Bool = true) throws(UsvcError) {
    callerUmask = umask(0o077)
    home = try Home.open(environment: environment, forWriting: forWriting)
    store = ConfStore(home: home)
    self.environment = environment
    let folder = executable.lastIndex(of: "/").map { String(executable[..<$0]) } ?? "."
    runnerPath = folder + "/usvc-runner"
  }

  public func tmux() throws(UsvcError) -> Tmux {
    try Tmux(home: home, runner: runnerPath, environment: environment)
  }

  func variable(_ key: String) -> String? { value(of: key, in: environment) }

  // MARK: Views

  /// Every job: each conf under `jobs/`, and each job whose conf is gone
  /// while its runner lives (SPEC: Broken confs), in natural order.
  public func jobNames() -> [String] {
    let defined = store.names()
    let known = Set(defined)
    let orphans = directoryEntries(home.path + "/run").compactMap { entry -> String? in
      guard entry.hasSuffix(".spec"), !entry.hasPrefix(".") else { return nil }
      let name = String(entry.dropLast(5))
      return known.contains(name) || home.paths(name).runnerPid() == nil ? nil : name
    }
    return orphans.isEmpty ? defined : (defined + orphans).sorted(by: Names.naturalLess)
  }

  public func view(_ name: String) -> JobView {
    let paths = home.paths(name)
    let spec = readFile(paths.spec, shortReadEnds: true).flatMap { JobSpec(decoding: $0, includingEnvironment: false) }
    let runner = paths.runnerPid()
    var run = paths.readState()
    if run == nil, let runner { run = askForState(runner, paths) }
    var job = JobView(name: name, spec: spec, run: run ?? RunState(), runner: runner, hasState: run != nil)
    job.conf = confCondition(name, spec: spec)
    return job
  }

  /// A live runner whose state file is gone (removed by hand) writes it again
  /// when asked with SIGUSR1; waits up to half a second for it.
  func askForState(_ runner: pid_t, _ paths: JobPaths) -> RunState? {
    guard (try? Signal(rawValue: SIGUSR1).send(to: runner)) != nil else { return nil }
    let deadline = monotonicClock() + 0.5
    while monotonicClock() < deadline {
      if let run = paths.readState() { return run }
      usleep(2000)
    }
    return nil
  }

  /// Whether the conf of `name` can be used. usvc writes the spec right
  /// after each conf write and records the conf's identity in it, so one
  /// `stat` tells a conf usvc wrote from one changed by hand; only the latter
  /// is read (through libgit2) and checked.
  func confCondition(_ name: String, spec: JobSpec?) -> ConfCondition {
    guard let info = fileStatus(store.path(name)) else { return .missing }
    if let spec, !spec.confIdentity.isEmpty, spec.confIdentity == fileIdentity(info) { return .ok }
    return store.problem(name).map(ConfCondition.broken) ?? .ok
  }

  /// The jobs `selectors` name, as a union in natural order (SPEC: Names and selectors).
  public func select(_ selectors: [String]) throws(UsvcError) -> [String] {
    let names = jobNames()
    if selectors.isEmpty { return names }
    var chosen = Set<String>()
    for selector in selectors {
      let matches: [String]
      switch selector {
      case "all": matches = names
      case "live": matches = names.filter { view($0).isLive }
      case "dead": matches = names.filter { !view($0).isLive }
      default:
        matches = names.filter { home.paths($0).isNamed(by: selector) }
        guard !matches.isEmpty else { throw .noSuchSelector(selector) }
      }
      chosen.formUnion(matches)
    }
    return names.filter { chosen.contains($0) }
  }

  // MARK: start

  /// Creates and starts `request.count` jobs; calls `started` with each name
  /// once its program really ran. Everything is checked before anything is
  /// written, so a refused start leaves nothing behind.
  public func start(_ request: StartRequest, started: (Launched) -> Void) throws(UsvcError) {
    try Names.validateGroup(request.group)
    guard request.count >= 1 && request.count <= 1000 else {
      throw .badValue(key: "-n", value: String(request.count), why: "expected 1 to 1000 jobs")
    }
    let callerDirectory = currentDirectory()
    var directory = callerDirectory
    if let given = request.directory {
      directory = Commands.absolute(given, in: callerDirectory)
      guard let info = fileStatus(directory), info.st_mode & S_IFMT == S_IFDIR else {
        throw .badDirectory(given, why: "not a directory")
      }
      guard directory.withLosslessCString({ access($0, X_OK) }) == 0 else { throw .badDirectory(given, why: "\(Errno.current)") }
    }
    let command = try Commands.resolve(request.command, searchPath: variable("PATH") ?? "/usr/bin:/bin", directory: directory)
    // Sizes first, before any value is looked at: the cap bounds all the rest.
    var counts = [
      "job.args": request.arguments.count, "job.after": request.after.count,
      "job.on-failure": request.notify == nil ? 0 : 3,
      "job.env": jobEnvironment(
        name: request.group + "-1", group: request.group, extra: request.environment, inherit: !request.replaceEnvironment
      ).count,
    ]
    for case .set(let key, let values) in request.extra { counts[key] = values.count }
    try ConfKeys.checkValueCounts(counts)
    for own in request.perJob {
      var jobCounts = counts
      for case .set(let key, let values) in own {
        jobCounts[key] = key == "job.env" ? values.count + 3 : values.count
      }
      try ConfKeys.checkValueCounts(jobCounts)
    }
    for argument in request.arguments { try ConfKeys.validate("job.args", argument) }
    for setting in request.environment {
      guard let equals = setting.firstIndex(of: "="), equals != setting.startIndex else {
        throw .badEnvironment(setting)
      }
      try ConfKeys.validate("job.env", setting)
    }
    _ = try select(request.after)
    for case .set(let key, let values) in request.extra + request.perJob.joined() {
      guard !ConfKeys.fixed.contains(key) else { throw .badValue(key: key, value: values.joined(separator: " "), why: "set by usvc") }
      for value in values { try ConfKeys.validate(key, value) }
    }

    let template: [ConfChange] = [
      .set("job.group", [request.group]), .set("job.cmd", [command]),
      .set("job.args", request.arguments), .set("job.cwd", [directory]),
      .set("job.restart", [request.restart.rawValue]), .set("job.desired", ["running"]),
      .set("job.umask", [String(callerUmask, radix: 8)]),
      .set("job.start-limit", ResourceLimit.ofThisProcess().map(\.text)), .set("job.nice", [String(currentNice())]),
    ] + (request.after.isEmpty ? [] : [.set("job.after", request.after)])
      + (request.notify.map { [.set("job.on-failure", ["/bin/sh", "-c", $0])] } ?? []) + request.extra
    // Every value as `usvc conf` checks it.
    for case .set(let key, let values) in template { for value in values { try ConfKeys.validate(key, value) } }

    let names = try store.withWriteLock { () throws(UsvcError) -> [String] in
      // Names of jobs whose conf is gone but whose runner lives are taken too.
      let taken = jobNames()
      if request.groupMustBeNew && taken.contains(where: { Names.split(job: $0)?.group == request.group }) {
        throw .groupExists(request.group)
      }
      let names = Names.freeNames(group: request.group, count: request.count, taken: taken)
      // Checked before anything is written: a refused start leaves nothing behind.
      var proposed: [String: [String]] = [:]
      for (index, name) in names.enumerated() {
        var after = request.after
        for case .set("job.after", let values) in index < request.perJob.count ? request.perJob[index] : [] { after = values }
        if !after.isEmpty { proposed[name] = after }
      }
      if !proposed.isEmpty, let cycle = findCycle(proposed: proposed) { throw .dependencyCycle(cycle) }
      for (index, name) in names.enumerated() {
        var own = index < request.perJob.count ? request.perJob[index] : []
        var settings = request.environment
        var inherit = !request.replaceEnvironment
        if let saved = own.lastIndex(where: { if case .set("job.env", _) = $0 { true } else { false } }),
          case .set(_, let values) = own[saved]
        {
          settings = values
          inherit = false
          own.remove(at: saved)
        }
        let environment = jobEnvironment(name: name, group: request.group, extra: settings, inherit: inherit)
        try store.create(name, [.set("job.name", [name])] + template + [.set("job.env", environment)] + own)
        try writeSpec(name)
      }
      return names
    }
    do {
      try launch(names, started: started)
    } catch {
      rollBack(names)
      throw error
    }
  }

  /// The caller's environment (unless not `inherit`), then `-e` settings, then
  /// usvc's own; a later setting of a key replaces an earlier one. Every byte
  /// of every variable is kept (control characters, bytes that are not UTF-8);
  /// only entries with no `KEY=` are left out (`unkeptVariables` names them),
  /// and the tmux variables of the caller's own session.
  func jobEnvironment(name: String, group: String, extra: [String], inherit: Bool = true) -> [String] {
    let own = ["USVC_JOB=\(name)", "USVC_GROUP=\(group)", "USVC_HOME=\(home.path)"]
    var order: [[UInt8]] = []
    var values: [[UInt8]: String] = [:]
    for entry in (inherit ? environment : []) + extra + own {
      guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex else { continue }
      let key = String(entry[..<equals])
      if key == "TMUX" || key == "TMUX_PANE" { continue }
      // Keys compared as bytes: Swift's == would take two spellings of é for one.
      let bytes = key.losslessBytes
      if values[bytes] == nil { order.append(bytes) }
      values[bytes] = entry
    }
    return order.map { values[$0]! }
  }

  /// The caller's variables a job cannot get: entries of the process
  /// environment with no `KEY=` (only a program that builds its own
  /// environment makes those).
  public func unkeptVariables() -> [String] {
    environment.filter { entry in entry.firstIndex(of: "=").map { $0 == entry.startIndex } ?? true }
  }

  /// Rewrites `run/NAME.spec` from the conf (call under `withWriteLock`): the
  /// runner reads only that. The spec records which version of the conf it
  /// was made from (`confCondition`).
  func writeSpec(_ name: String) throws(UsvcError) {
    let identity = fileStatus(store.path(name)).map(fileIdentity) ?? ""
    var spec = ConfKeys.spec(from: try store.load(name), name: name)
    spec.confIdentity = identity
    let path = home.paths(name).spec
    do {
      try writeFileAtomically(path, spec.encoded())
    } catch {
      throw .confWrite(path: path, why: error.description)
    }
  }

  /// Opens a window for each job and waits until each program really ran
  /// (or waits for what it is `after`). Every job is launched and reported
  /// before the first failure is thrown.
  func launch(_ names: [String], started: (Launched) -> Void) throws(UsvcError) {
    let tmux = try tmux()
    try tmux.ensureServer()
    let scrollbacks = names.map { name in
      readFile(home.paths(name).spec).flatMap { JobSpec(decoding: $0, includingEnvironment: false) }?.scrollback
        ?? JobSpec.defaultScrollback
    }
    let runners = zip(names, try tmux.openWindows(Array(zip(names, scrollbacks))))
    var failures: [UsvcError] = []
    // Jobs that run with less than their limits (SPEC: Health): one warning line for them all.
    var short: [String] = []
    var unmet: [String] = []
    for (name, runner) in runners {
      do {
        started(try waitUntilStarted(name, runner: runner))
        let limits = (home.paths(name).readState()?.unmetLimits ?? "").split(separator: ",").map { String($0).trimmed }
        if limits.isEmpty { continue }
        short.append(name)
        for limit in limits where !unmet.contains(limit) { unmet.append(limit) }
      } catch {
        failures.append(error)
      }
    }
    if !short.isEmpty {
      let jobs = short.count == 1 ? short[0] : "\(short.count) jobs"
      warn(
        "warning: \(jobs) cannot have this shell's \(unmet.joined(separator: ", ")): usvc's tmux server was started "
          + "under lower ones and cannot raise them; to get rid of this, run 'usvc shutdown', then start again from a "
          + "shell without those limits")
    }
    if let first = failures.first { throw first }
  }

  /// Polls the job's state until its runner `runner` reports the program was
  /// executed (SPEC: start: `started` means exec'd), or that the job waits for
  /// what it is `after`, or that it could not run. 10 s, plus the `pre`
  /// hook's timeout when it has one.
  func waitUntilStarted(_ name: String, runner: pid_t) throws(UsvcError) -> Launched {
    let paths = home.paths(name)
    let spec = readFile(paths.spec).flatMap { JobSpec(decoding: $0, includingEnvironment: false) }
    let limit = 10 + (spec?.pre.isEmpty == false ? spec?.hookTimeout ?? 0 : 0)
    let deadline = monotonicClock() + limit
    while monotonicClock() < deadline {
      if let run = paths.readState(), run.runner == runner {
        switch run.state {
        case .failed: throw .cannotStart(job: name, why: run.reason)
        case .waiting where !run.waitingFor.isEmpty: return .waiting(name, for: run.waitingFor)
        case .starting:
          // Exec'd and waiting to be ready (`job.ready`): started all the same (SPEC: start).
          if run.pid > 0 { return .started(name) }
        case .running, .unhealthy, .waiting, .stopping, .stopped, .exited, .lost, .broken:
          // Exec'd at least once: running now, or it ran and ended already.
          if run.pid > 0 || run.runs > 0 { return .started(name) }
        }
      }
      if ProcStat.read(runner) == nil && paths.runnerPid() == nil {
        let run = paths.readState()
        if run?.runner == runner, run?.state == .failed { throw .cannotStart(job: name, why: run!.reason) }
        throw .cannotStart(job: name, why: "its runner exited (see its window or \(paths.log))")
      }
      usleep(2000)
    }
    throw .cannotStart(job: name, why: "the program did not start within \(Int(limit)) s")
  }

  // MARK: stop, restart, rm, kill

  /// Runs `body` holding the control lock of each job (`run/NAME.control`, an
  /// flock), taken in natural order so that two commands never hold one each
  /// and wait for the other: commands that stop or start the same job take
  /// turns instead of killing each other's runners and windows.
  func withControlLocks<R>(_ names: [String], _ body: () throws(UsvcError) -> R) throws(UsvcError) -> R {
    var held: [FileDescriptor] = []
    defer { for fd in held { fd.close() } }
    for name in names.sorted(by: Names.naturalLess) {
      // O_RDONLY: an flock needs no write access, so this works on a read-only
      // home too (where the file exists; where it cannot be created, nobody
      // else can start the job either).
      guard let fd = try? FileDescriptor.open(home.paths(name).control, O_RDONLY | O_CREAT) else { continue }
      held.append(fd)
      _ = try? fd.lockExclusive(wait: true)
    }
    return try body()
  }

  /// Stops the jobs (whole process trees, TERM then KILL) and returns once
  /// every process of them is gone. `desired` becomes `stopped` unless
  /// `keepDesired` (shutdown keeps it, so resurrect can undo it).
  ///
  /// A job whose conf is broken or gone is stopped from its last spec (what
  /// its runner runs), and a conf that cannot be written (a full or
  /// read-only disk) does not keep a job running: that is said, as a warning.
  public func stop(_ names: [String], keepDesired: Bool = false) throws(UsvcError) {
    try withControlLocks(names) { () throws(UsvcError) in
      if !keepDesired {
        do throws(UsvcError) {
          try recordDesired("stopped", names.filter { view($0).conf == .ok })
        } catch {
          warn("\(error.description); stopping all the same, but 'usvc resurrect' would start them again")
        }
      }
      try stopRunners(names)
    }
  }

  /// Writes `desired` into each job's conf and spec.
  func recordDesired(_ desired: String, _ names: [String]) throws(UsvcError) {
    guard !names.isEmpty else { return }
    try store.withWriteLock { () throws(UsvcError) in
      for name in names {
        try store.update(name, [.set("job.desired", [desired])])
        try writeSpec(name)
      }
    }
  }

  /// Ends each job's runner (which stops its job) and waits until it is gone;
  /// cleans up after runners that died; closes the windows.
  func stopRunners(_ names: [String]) throws(UsvcError) {
    var waiting: [String] = []
    for name in names {
      let job = view(name)
      if let runner = job.runner {
        try? Signal.terminate.send(to: runner)
        waiting.append(name)
      } else if job.run.pid > 0 {
        // Its runner died: nobody else will clean up what it left.
        home.paths(name).killLeftovers(of: job.run)
        markStopped(name, job.run)
      } else if job.state == .lost {
        markStopped(name, job.run)
      }
    }
    // Each runner says when its SIGKILL goes out; past that, 5 s more for the
    // kernel to end what was killed.
    var timedOut: [String] = []
    for name in waiting {
      let paths = home.paths(name)
      var deadline = wallClock() + 15
      while paths.runnerPid() != nil {
        let killAt = paths.readState()?.killAt ?? 0
        deadline = max(deadline, killAt + 5)
        if wallClock() > deadline {
          timedOut.append(name)
          break
        }
        usleep(2000)
      }
    }
    if let tmux = try? tmux(), tmux.isRunning() {
      let windows = tmux.windows()
      for name in names where windows[name] != nil { tmux.closeWindow(name) }
    }
    if let name = timedOut.first { throw .stopTimedOut(job: name) }
  }

  /// Writes `stopped` for a job whose runner is gone, so it does not show as lost.
  func markStopped(_ name: String, _ run: RunState) {
    var stopped = run
    stopped.state = .stopped
    stopped.pid = 0
    stopped.since = wallClock()
    try? writeFileAtomically(home.paths(name).state, Array(stopped.encoded().utf8))
    event(name, "stopped", "its runner was already gone")
  }

  /// Stop, then start again with a fresh back-off. A job whose conf cannot
  /// be used is not started: every other one is restarted first, then the
  /// first such job is reported (SPEC: Broken confs).
  public func restart(_ names: [String], started: (Launched) -> Void) throws(UsvcError) {
    try withControlLocks(names) { () throws(UsvcError) in
      let views = names.map(view)
      let usable = views.filter { $0.conf == .ok }.map(\.name)
      // Recorded first: a disk that cannot take it fails the restart before anything stopped.
      try recordDesired("running", usable)
      try stopRunners(names)
      try launch(usable, started: started)
      if let unusable = views.first(where: { $0.conf != .ok }) { throw Self.cannotStart(unusable) }
    }
  }

  /// `restart --rolling` (SPEC: restart): one job at a time in the order
  /// given (natural order), each `running` (ready) before the next is
  /// touched. A job not ready within its `ready-timeout` (plus 2 s for the
  /// restart itself) stops the roll there; the rest keep running untouched.
  public func restartRolling(_ names: [String], started: (Launched) -> Void) throws(UsvcError) {
    for (index, name) in names.enumerated() {
      try restart([name], started: started)
      let spec = readFile(home.paths(name).spec).flatMap { JobSpec(decoding: $0, includingEnvironment: false) }
      let limit = (spec?.readyTimeout ?? 60) + 2
      let deadline = monotonicClock() + limit
      var ready = false
      while monotonicClock() < deadline {
        let job = view(name)
        if job.runner != nil && job.run.state == .running { ready = true; break }
        if [.waiting, .exited, .failed, .stopped, .lost].contains(job.run.state) && job.run.runs > 0 { break }
        usleep(5000)
      }
      if !ready {
        let rest = names.dropFirst(index + 1)
        let untouched = rest.isEmpty ? "" : "; not restarted: " + rest.joined(separator: " ")
        throw .cannotStart(job: name, why: "not ready within \(StatusFormat.decimal(spec?.readyTimeout ?? 60, places: 1))s: rolling restart stopped there\(untouched)")
      }
    }
  }

  /// Why a job whose conf cannot be used is not started.
  static func cannotStart(_ job: JobView) -> UsvcError {
    switch job.conf {
    case .broken(let why): return .cannotStart(job: job.name, why: why)
    case .missing, .ok: return .cannotStart(job: job.name, why: "its conf \(job.name).conf is gone")
    }
  }

  /// Undoes a `start` whose program could not be run at all: nothing is left
  /// behind (SPEC: start), not even the tmux server if no other job uses it.
  func rollBack(_ names: [String]) {
    try? stop(names, keepDesired: true)
    try? store.withWriteLock { () throws(UsvcError) in
      for name in names {
        let paths = home.paths(name)
        for path in [
          paths.conf, paths.spec, paths.state, paths.lock, paths.control, paths.log, LogIndex.path(of: paths.log),
          paths.notifySocket,
        ] { unlink(path) }
      }
    }
    if store.names().isEmpty, let tmux = try? tmux() {
      tmux.killServer()
      unlink(tmux.socket)
    }
  }

  /// Stops the jobs and removes their windows, confs and state; logs stay.
  /// Works on jobs whose conf is broken or gone too.
  public func remove(_ names: [String]) throws(UsvcError) {
    try withControlLocks(names) { () throws(UsvcError) in
      try stopRunners(names)
      try store.withWriteLock { () throws(UsvcError) in
        for name in names {
          let paths = home.paths(name)
          // The notify socket too: its runner removes it, unless it was killed outright.
          for path in [paths.conf, paths.spec, paths.state, paths.lock, paths.notifySocket] { unlink(path) }
          event(name, "removed", "")
        }
      }
    }
  }

  /// Appends to `events.log`; an event that cannot be written is said, not lost silently.
  func event(_ name: String, _ event: String, _ detail: String) {
    if let error = Events.append(home: home.path, job: name, event: event, detail: detail) {
      warn("cannot write \(home.eventsLog): \(error); event '\(event)' of \(name) is lost")
    }
  }

  /// Sends `signal` to each running job's process group; returns the jobs signalled.
  public func kill(_ signal: Signal, _ names: [String]) -> [String] {
    var signalled: [String] = []
    for name in names {
      guard let pid = view(name).pid else { continue }
      if (try? signal.send(toGroup: pid)) != nil { signalled.append(name) }
    }
    return signalled
  }

  // MARK: conf

  /// Sets or removes conf keys of one job, checked first; takes effect at its next start.
  public func changeConf(_ name: String, _ changes: [ConfChange]) throws(UsvcError) {
    guard store.exists(name) else { throw .noSuchJob(name) }
    for change in changes {
      switch change {
      case .set(let key, let values):
        guard !ConfKeys.fixed.contains(key) else { throw .badValue(key: key, value: values.joined(separator: " "), why: "set by usvc") }
        if values.count != 1 && !ConfKeys.isMultivar(key) { throw .notMultivar(key) }
      case .unset(let key):
        guard !ConfKeys.fixed.contains(key) && key != "job.cmd" else {
          throw .badValue(key: key, value: "", why: "cannot be removed")
        }
      }
    }
    // Sizes first (the conf as it would be), then each value.
    var counts: [String: Int] = [:]
    for entry in try store.load(name).entries { counts[entry.key, default: 0] += 1 }
    for change in changes {
      switch change {
      case .set(let key, let values): counts[key] = values.count
      case .unset(let key): counts[key] = 0
      }
    }
    try ConfKeys.checkValueCounts(counts)
    for case .set(let key, let values) in changes {
      for value in values { try ConfKeys.validate(key, value) }
      if key == "job.after" { _ = try select(values) }
    }
    try store.withWriteLock { () throws(UsvcError) in
      // Checked before anything is written: a refused change leaves the conf as it was.
      for case .set("job.after", let after) in changes {
        if let cycle = findCycle(proposed: [name: after]) { throw .dependencyCycle(cycle) }
      }
      try store.update(name, changes)
      try writeSpec(name)
    }
  }
}
