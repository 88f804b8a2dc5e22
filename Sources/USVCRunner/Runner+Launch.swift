import Glibc
import USVCContract
import USVCSys

/// Starting a run: the spec as the CLI last wrote it, what the job is
/// `after`, the `pre` hook, then the program itself.
extension Runner {
  /// Begins a run: what the job is `after` must be running, then the `pre`
  /// hook runs (the machine waits for it in `preStart`), or else the program
  /// starts at once. Says what came of it as the machine's event.
  mutating func launchProgram() -> RunnerMachine.Event {
    refreshSpec()
    if let unmet = unmetDependency() {
      return .blocked(selector: unmet.selector, detail: unmet.detail, retryAt: unmet.retryAt)
    }
    if spec.propagate { dependencyPids = dependencyMainPids() }
    if !spec.pre.isEmpty, let pid = startHook("pre", spec.pre, hookFacts(nil, ranFor: 0)) {
      return .preHookStarted(pid: pid, killAt: monotonicClock() + spec.hookTimeout)
    }
    return spawnProgram()
  }

  /// Starts the program and says what came of it as the machine's event.
  mutating func spawnProgram() -> RunnerMachine.Event {
    let now = monotonicClock()
    if published.started > 0 { published.restarts += 1 }
    published.started = wallClock()
    machine.configure(spec)
    log.maxBytes = spec.logMaxBytes
    log.keep = spec.logKeep
    let previousMask = umask(spec.umask)
    defer { umask(previousMask) }
    // This runner installs no signal handler (resetSignalDispositions at its start).
    // `job.ready notify`: the write end of the ready pipe is the job's fd 3, named in
    // USVC_READY_FD (s6 style), and the datagram socket is named in NOTIFY_SOCKET (sd_notify).
    let notifyFD = spec.ready == "notify" ? openReadyPipe() : nil
    let notifyPath = spec.ready == "notify" ? openNotifySocket() : nil
    drainReadyPipe()
    if spec.ready != "notify" { closeNotifySocket() } else { notifySocket?.discardPending() }
    let launch = preparedLaunch ?? PreparedSpawn(
      spec.argv, environment: Runner.notifyEnvironment(spec.environment, readyFD: notifyFD != nil, socket: notifyPath),
      directory: spec.directory, newSession: true,
      actions: [.open(slavePath, as: 0, flags: O_RDWR), .duplicate(0, as: 1), .duplicate(0, as: 2)]
        + (notifyFD.map { [.duplicate($0, as: 3), .closeFrom(4)] } ?? [.closeFrom(3)]),
      // The caller's limits and nice value, then job.limit over them. Only those the runner does
      // not have already (the child inherits the runner's): usually none, no syscall, no memory.
      limits: spec.startLimits.filter { !$0.isInEffect } + spec.limits.compactMap { ResourceLimit(parsing: $0) },
      nice: Int32(spec.nice).flatMap { $0 == currentNice() ? nil : $0 })
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
      published.unmetLimits = ResourceLimit.names(inShortfall: launch.shortfall).joined(separator: ", ")
      published.pidStart = ProcStat.read(pid)?.startTicks ?? 0
      // After the spawn, not on the respawn path: the program file as this run found it
      // (for `changed` in status).
      if let info = fileStatus(spec.command) {
        published.programDevice = UInt64(info.st_dev)
        published.programInode = UInt64(info.st_ino)
        published.programModified = Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
      }
      return .spawned(pid: pid)
    } catch {
      // The child's chdir and exec report the same way: name the directory
      // when it is what failed, not the program (looked at only on failure).
      if access(spec.directory, X_OK) != 0 {
        published.reason = "working directory \(spec.directory): \(Errno.current)"
      } else {
        published.reason = "\(spec.command): \(error)"
      }
      return .spawnFailed(reason: published.reason)
    }
  }

  /// Reads `run/NAME.spec` again if the CLI rewrote it (a changed conf applies
  /// from the next start on). Nothing at all unless the watch saw the file
  /// change (or there is no watch); then a stat, and a read if it differs.
  mutating func refreshSpec() {
    guard watches.specMayHaveChanged else { return }
    watches.watchSpec(paths.spec)
    guard let info = fileStatus(paths.spec) else { return }
    let identity = Runner.identity(info)
    guard identity != specIdentity else { return }
    if let bytes = readFile(paths.spec), let fresh = JobSpec(decoding: bytes) {
      spec = fresh
      specIdentity = identity
      preparedLaunch = nil
      watches.watchStates(in: paths.home + "/run", !spec.after.isEmpty)
    }
  }

  /// What tells one version of a file from the next: inode, modification time, size.
  static func identity(_ info: stat) -> [UInt64] {
    [UInt64(info.st_ino), UInt64(info.st_mtim.tv_sec), UInt64(info.st_mtim.tv_nsec), UInt64(info.st_size)]
  }
}
