import Glibc
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

/// One job as the CLI sees it: its spec, its runner's last word, and whether
/// that runner still lives.
public struct JobView: Sendable {
  public var name: String
  public var spec: JobSpec?
  public var run: RunState
  public var runner: pid_t?

  /// The state SPEC names: the runner's own word while it lives; once it is
  /// gone, `lost` if the job should be running, else what it ended as.
  public var state: JobState {
    if runner != nil { return run.state }
    switch run.state {
    case .stopped, .exited, .failed: return run.state
    case .starting, .running, .waiting, .stopping, .lost:
      return spec?.desiredRunning == false ? .stopped : .lost
    }
  }
  public var isRunning: Bool { state == .running }
  /// The main pid while the job runs, else nil.
  public var pid: pid_t? { runner != nil && run.pid > 0 ? run.pid : nil }
}

/// The library the CLI is a thin layer over: every command's work.
public struct Supervisor: Sendable {
  public let home: Home
  public let store: ConfStore
  public let environment: [String]
  public let runnerPath: String
  /// The caller's umask, given to its jobs; usvc itself creates files with 077.
  public let callerUmask: mode_t

  /// Opens `USVC_HOME` for the caller. `executable` is usvc's own path: the
  /// runner is the `usvc-runner` beside it.
  public init(environment: [String], executable: String) throws(UsvcError) {
    callerUmask = umask(0o077)
    var variables: [String: String] = [:]
    for entry in environment {
      if let equals = entry.firstIndex(of: "=") {
        variables[String(entry[..<equals])] = String(entry[entry.index(after: equals)...])
      }
    }
    home = try Home.open(environment: variables)
    store = ConfStore(home: home)
    self.environment = environment
    let folder = executable.lastIndex(of: "/").map { String(executable[..<$0]) } ?? "."
    runnerPath = folder + "/usvc-runner"
  }

  public func tmux() throws(UsvcError) -> Tmux {
    try Tmux(home: home, runner: runnerPath, environment: environment)
  }

  func variable(_ key: String) -> String? {
    for entry in environment where entry.hasPrefix(key + "=") { return String(entry.dropFirst(key.count + 1)) }
    return nil
  }

  // MARK: Views

  public func view(_ name: String) -> JobView {
    let paths = home.paths(name)
    let spec = readFile(paths.spec).flatMap { JobSpec(decoding: $0, includingEnvironment: false) }
    let run = paths.readState() ?? RunState()
    return JobView(name: name, spec: spec, run: run, runner: paths.runnerPid())
  }

  /// The jobs `selectors` name, as a union in natural order (SPEC: Names and selectors).
  public func select(_ selectors: [String]) throws(UsvcError) -> [String] {
    let names = store.names()
    if selectors.isEmpty { return names }
    var chosen = Set<String>()
    for selector in selectors {
      let matches: [String]
      switch selector {
      case "all": matches = names
      case "live": matches = names.filter { view($0).isRunning }
      case "dead": matches = names.filter { !view($0).isRunning }
      default:
        matches = names.filter { $0 == selector || Names.split(job: $0)?.group == selector }
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
  public func start(_ request: StartRequest, started: (String) -> Void) throws(UsvcError) {
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
    ] + (request.after.isEmpty ? [] : [.set("job.after", request.after)])
      + (request.notify.map { [.set("job.on-failure", ["/bin/sh", "-c", $0])] } ?? []) + request.extra
    // Every value as `usvc conf` checks it.
    for case .set(let key, let values) in template { for value in values { try ConfKeys.validate(key, value) } }

    let names = try store.withWriteLock { () throws(UsvcError) -> [String] in
      let taken = store.names()
      if request.groupMustBeNew && taken.contains(where: { Names.split(job: $0)?.group == request.group }) {
        throw .groupExists(request.group)
      }
      let names = Names.freeNames(group: request.group, count: request.count, taken: taken)
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
      let ownAfter = request.perJob.joined().contains { if case .set("job.after", _) = $0 { true } else { false } }
      if !request.after.isEmpty || ownAfter, let cycle = findCycle() {
        for name in names {
          let paths = home.paths(name)
          for path in [paths.conf, paths.spec] { unlink(path) }
        }
        throw .dependencyCycle(cycle)
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

  /// Rewrites `run/NAME.spec` from the conf: the runner reads only that.
  func writeSpec(_ name: String) throws(UsvcError) {
    let conf = try store.load(name)
    let path = home.paths(name).spec
    do {
      try writeFileAtomically(path, ConfKeys.spec(from: conf, name: name).encoded())
    } catch {
      throw .confWrite(path: path, why: error.description)
    }
  }

  /// Opens a window for each job and waits until each program really ran.
  func launch(_ names: [String], started: (String) -> Void) throws(UsvcError) {
    let tmux = try tmux()
    try tmux.ensureServer()
    let runners = zip(names, try tmux.openWindows(names))
    var failures: [UsvcError] = []
    for (name, runner) in runners {
      do {
        try waitUntilStarted(name, runner: runner)
        started(name)
      } catch {
        failures.append(error)
      }
    }
    if let first = failures.first { throw first }
  }

  /// Polls the job's state until its runner `runner` reports the program ran
  /// (or could not), to a deadline.
  func waitUntilStarted(_ name: String, runner: pid_t) throws(UsvcError) {
    let paths = home.paths(name)
    let deadline = monotonicClock() + 10
    while monotonicClock() < deadline {
      if let run = paths.readState() {
        if run.runner == runner && run.state != .starting {
          if run.state == .failed { throw .cannotStart(job: name, why: run.reason) }
          if run.runs > 0 || run.pid > 0 || run.state != .stopped { return }
        }
      }
      if ProcStat.read(runner) == nil && paths.runnerPid() == nil {
        let run = paths.readState()
        if run?.runner == runner, run?.state == .failed { throw .cannotStart(job: name, why: run!.reason) }
        throw .cannotStart(job: name, why: "its runner exited (see its window or \(paths.log))")
      }
      usleep(2000)
    }
    throw .cannotStart(job: name, why: "the program did not start within 10 s")
  }

  // MARK: stop, restart, rm, kill

  /// Stops the jobs (whole process trees, TERM then KILL) and returns once
  /// every process of them is gone. `desired` becomes `stopped` unless
  /// `keepDesired` (shutdown keeps it, so resurrect can undo it).
  public func stop(_ names: [String], keepDesired: Bool = false) throws(UsvcError) {
    if !keepDesired {
      try store.withWriteLock { () throws(UsvcError) in
        for name in names {
          try store.update(name, [.set("job.desired", ["stopped"])])
          try writeSpec(name)
        }
      }
    }
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
    Events.append(home: home.path, job: name, event: "stopped", detail: "its runner was already gone")
  }

  /// Stop, then start again with a fresh back-off.
  public func restart(_ names: [String], started: (String) -> Void) throws(UsvcError) {
    try stop(names, keepDesired: true)
    try store.withWriteLock { () throws(UsvcError) in
      for name in names {
        try store.update(name, [.set("job.desired", ["running"])])
        try writeSpec(name)
      }
    }
    try launch(names, started: started)
  }

  /// Undoes a `start` whose program could not be run at all: nothing is left
  /// behind (SPEC: start), not even the tmux server if no other job uses it.
  func rollBack(_ names: [String]) {
    try? stop(names, keepDesired: true)
    try? store.withWriteLock { () throws(UsvcError) in
      for name in names {
        let paths = home.paths(name)
        for path in [paths.conf, paths.spec, paths.state, paths.lock, paths.log] { unlink(path) }
      }
    }
    if store.names().isEmpty, let tmux = try? tmux() {
      tmux.killServer()
      unlink(tmux.socket)
    }
  }

  /// Stops the jobs and removes their windows, confs and state; logs stay.
  public func remove(_ names: [String]) throws(UsvcError) {
    try stop(names)
    try store.withWriteLock { () throws(UsvcError) in
      for name in names {
        let paths = home.paths(name)
        for path in [paths.conf, paths.spec, paths.state, paths.lock] { unlink(path) }
        Events.append(home: home.path, job: name, event: "removed", detail: "")
      }
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
      let before = try store.load(name).values("job.after")
      try store.update(name, changes)
      try writeSpec(name)
      if let cycle = findCycle() {
        try store.update(name, [before.isEmpty ? .unset("job.after") : .set("job.after", before)])
        try writeSpec(name)
        throw .dependencyCycle(cycle)
      }
    }
  }
}
