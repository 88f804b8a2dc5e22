import USVCSys

/// `job.after` between jobs: the order to start and stop them in, and cycles.
extension Supervisor {
  /// The `job.after` graph of every job, from the specs (what the runners
  /// run); `proposed` replaces or adds the selectors of some jobs, so a
  /// change is checked before anything is written.
  public func dependencyGraph(proposed: [String: [String]] = [:]) -> DependencyGraph {
    DependencyGraph(jobs: Array(Set(store.names()).union(proposed.keys))) { name in
      proposed[name] ?? view(name).spec?.after ?? []
    }
  }

  /// A cycle of `job.after` (first name repeated at the end), or nil.
  public func findCycle(proposed: [String: [String]] = [:]) -> [String]? {
    dependencyGraph(proposed: proposed).firstCycle
  }

  /// `names` in the order to start them: layer after layer (`DependencyGraph.layers`).
  public func dependencyLayers(_ names: [String]) -> [[String]] { dependencyGraph().layers(names) }

  /// Starts every job whose `desired` is running but which has no live runner
  /// (after a reboot or a dead tmux server), in dependency order. Jobs that
  /// run, or ended as exited or failed, are left alone; a job whose conf
  /// cannot be used is reported once the others started (SPEC: Broken confs).
  public func resurrect(started: (Launched) -> Void) throws(UsvcError) {
    let candidates = store.names().map(view).filter { job in
      // Stopped by `shutdown` (desired still running) or lost; not exited or failed.
      job.runner == nil && job.spec?.desiredRunning != false && job.run.state != .exited
        && job.run.state != .failed
    }
    let usable = candidates.filter { $0.conf == .ok }.map(\.name)
    try withControlLocks(usable) { () throws(UsvcError) in
      // Looked at again under the locks: a resurrect running meanwhile may have started some.
      let dead = usable.map(view).filter { $0.runner == nil }
      for job in dead {
        if job.run.pid > 0 { home.paths(job.name).killLeftovers(of: job.run) }
        event(job.name, "resurrected", "")
      }
      // Layer by layer, so what a job is after has started before it looks.
      var failure: UsvcError?
      for layer in dependencyLayers(dead.map(\.name)) {
        do throws(UsvcError) { try launch(layer, started: started) } catch { failure = failure ?? error }
      }
      if let failure { throw failure }
    }
    if let unusable = candidates.first(where: { $0.conf != .ok }) { throw Self.cannotStart(unusable) }
  }

  /// Stops every job, dependents before what they depend on, then ends the tmux
  /// server. `desired` stays as it was, so `resurrect` brings back the same set.
  public func shutdown() throws(UsvcError) {
    // Layer by layer, the last first: first the jobs nothing else depends on.
    for layer in dependencyLayers(store.names()).reversed() { try stop(layer, keepDesired: true) }
    if let tmux = try? tmux() { tmux.killServer() }
  }
}
