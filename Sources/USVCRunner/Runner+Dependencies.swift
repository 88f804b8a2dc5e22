import Glibc
import USVCContract
import USVCSys

/// `job.after` and `job.propagate`: the other jobs this one waits for and follows.
extension Runner {
  /// The jobs (as `JobPaths`) that `job.after` names, without this one.
  func dependencies() -> [(selector: String, jobs: [JobPaths])] {
    if spec.after.isEmpty { return [] }
    let names = JobPaths.jobNames(home: paths.home)
    return spec.after.map { selector in
      (selector, names.filter { $0 != paths.name }.map { JobPaths(home: paths.home, name: $0) }
        .filter { $0.isNamed(by: selector) })
    }
  }

  /// What keeps the job from starting: the selector of `job.after` whose job
  /// does not run (long enough, with `job.after-delay`), which job that is,
  /// and when to look again (its after-delay passed; else `.infinity`: when
  /// a state changes, `FileWatches`); nil when it may start.
  func unmetDependency() -> (selector: String, detail: String, retryAt: Double)? {
    for (selector, jobs) in dependencies() {
      if jobs.isEmpty { return (selector, "\(selector) (no such job or group)", .infinity) }
      for job in jobs {
        guard let live = job.liveState(), live.state == .running else { return (selector, "\(job.name) to run", .infinity) }
        let ranFor = wallClock() - live.started
        if ranFor < spec.afterDelay {
          return (selector, "\(job.name) to run for \(format(spec.afterDelay))", monotonicClock() + spec.afterDelay - ranFor)
        }
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

  /// With `job.propagate`, restarts the job when a job it is after has a new
  /// main pid (called when a state under `run/` changed).
  mutating func checkDependencies() {
    guard spec.propagate, !spec.after.isEmpty, case .running = machine.state else { return }
    let now = monotonicClock()
    let current = dependencyMainPids()
    let restarted = current.contains { name, pid in
      let before = dependencyPids[name] ?? 0
      return pid > 0 && before > 0 && pid != before
    }
    for (name, pid) in current where pid > 0 { dependencyPids[name] = pid }
    if restarted { perform(machine.handle(.dependencyRestarted, now: now)) }
  }
}
