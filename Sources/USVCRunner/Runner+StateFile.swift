import Glibc
import USVCContract
import USVCSys

/// `run/NAME.state` and `events.log`: what the runner tells the CLI.
extension Runner {
  mutating func publish() {
    let state = machine.jobState
    var next = published
    next.state = state
    next.quickDeaths = machine.quickDeaths
    next.checksHealth = machine.checksHealth
    next.healthFailures = machine.healthFailures
    next.killAt = 0
    if case .stopping(_, let killAt, _) = machine.state, killAt.isFinite {
      next.killAt = wallClock() + (killAt - monotonicClock())
    } else if case .ending(_, let killAt, _, _) = machine.state, killAt.isFinite {
      next.killAt = wallClock() + (killAt - monotonicClock())
    }
    next.waitingFor = ""
    if case .waiting(_, .dependency(let selector, let detail)) = machine.state {
      next.retryAt = 0
      next.reason = "waiting for " + detail
      next.waitingFor = selector
    } else if case .waiting(let until, .backoff) = machine.state {
      next.retryAt = wallClock() + (until - monotonicClock())
      next.reason = "back-off after \(machine.quickDeaths) quick death\(machine.quickDeaths == 1 ? "" : "s")"
    } else if case .preStart = machine.state {
      next.retryAt = 0
      next.reason = "running its pre hook"
    } else if state != .failed {
      next.retryAt = 0
      if state != .lost { next.reason = "" }
    }
    if state == .lost { next.reason = "the terminal (tmux window or server) went away" }
    if next.state != written?.state || next.since == 0 { next.since = wallClock() }
    published = next
    if next == written { return }
    if next.state != written?.state || next.pid != written?.pid { announce(next, after: written) }
    written = next
    // In place, see RunState: one pwrite (then a trim if it got shorter).
    let bytes = Array(published.encoded().utf8)
    let written = bytes.withUnsafeBytes { pwrite(stateFile.rawValue, $0.baseAddress, $0.count, 0) }
    if written == bytes.count && bytes.count < stateLength { ftruncate(stateFile.rawValue, off_t(bytes.count)) }
    stateLength = bytes.count
    memoryToGiveBack = true
  }

  /// `usvc` asks with SIGUSR1 when `run/NAME.state` is gone (removed by
  /// hand): the file is created again and written whole.
  mutating func rewriteStateFile() {
    guard let reopened = try? FileDescriptor.open(paths.state, O_WRONLY | O_CREAT) else { return }
    stateFile.close()
    stateFile = reopened
    stateLength = Int.max
    written = nil
    publish()
  }

  /// Appends an event to `events.log`. One that cannot be written is counted
  /// and said in the pane; the count goes out with the next that can.
  mutating func event(_ event: String, _ detail: String) {
    if lostEvents > 0,
      Events.append(home: paths.home, job: paths.name, event: "events-lost", detail: "\(lostEvents) events could not be written") == nil
    {
      lostEvents = 0
    }
    if let error = Events.append(home: paths.home, job: paths.name, event: event, detail: detail) {
      lostEvents += 1
      toPane("[usvc] cannot write \(paths.home)/events.log: \(error); \(lostEvents) event\(lostEvents == 1 ? "" : "s") lost so far\n")
    }
  }

  /// Appends the event for a new state to `events.log`. `started` marks a new
  /// program, once: when it was exec'd, so a run with readiness says `started`
  /// and then `ready`, and one whose health came back says nothing.
  mutating func announce(_ next: RunState, after previous: RunState?) {
    let detail: String
    switch next.state {
    case .starting, .running:
      let sameRun = next.pid == previous?.pid && [.starting, .running, .unhealthy].contains(previous?.state)
      guard next.pid > 0, !sameRun else { return }
      detail = "pid \(next.pid)"
    case .unhealthy: return  // Its `unhealthy` event comes from the machine, at health-retries.
    case .waiting:
      detail = !next.waitingFor.isEmpty ? next.reason
        : "restart in \(format(machine.backoff(forQuickDeath: next.quickDeaths))) (\(next.reason))"
    case .failed, .lost: detail = next.reason
    case .stopped: detail = "last exit \(next.lastExit)"
    case .stopping, .exited, .broken: return
    }
    event(next.state == .running || next.state == .starting ? "started" : next.state.rawValue, detail)
  }

  /// Reaps what is left (hooks, stragglers), then exits. The final state was
  /// published by the `perform` whose transition reached it.
  func finish() -> Never {
    // Whatever was killed on the way out is reaped here, so nothing is left a zombie.
    while hasChildren() {
      var status: Int32 = 0
      if waitpid(-1, &status, 0) < 0 && errno != EINTR { break }
    }
    notifySocket?.close()  // Its file goes with it: nothing is left per run or per runner.
    exit(0)
  }
}
