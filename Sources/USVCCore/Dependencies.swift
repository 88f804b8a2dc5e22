import USVCSys

/// `job.after` between jobs: the order to start and stop them in, and cycles.
extension Supervisor {
  /// Job name → the jobs it is after (groups resolved to their jobs), from the
  /// specs; `proposed` replaces or adds the `after` selectors of some jobs, so
  /// a change is checked before anything is written.
  public func dependencyGraph(proposed: [String: [String]] = [:]) -> [String: [String]] {
    let names = Array(Set(store.names()).union(proposed.keys))
    var graph: [String: [String]] = [:]
    for name in names {
      let after = proposed[name] ?? view(name).spec?.after ?? []
      // A job after itself (or its own group) waits for itself: a cycle of one.
      graph[name] = names.filter { other in after.contains { home.paths(other).isNamed(by: $0) } }
        .sorted(by: Names.naturalLess)
    }
    return graph
  }

  /// A cycle of `job.after` (first name repeated at the end), or nil.
  public func findCycle(proposed: [String: [String]] = [:]) -> [String]? {
    firstCycle(in: dependencyGraph(proposed: proposed))
  }

  /// `names` in layers: each job comes in a layer after every job of `names`
  /// it depends on (in the order given within a layer). A cycle's jobs share the
  /// last layer.
  public func dependencyLayers(_ names: [String]) -> [[String]] {
    let graph = dependencyGraph()
    var remaining = names
    var layers: [[String]] = []
    while !remaining.isEmpty {
      let pending = Set(remaining)
      var layer = remaining.filter { name in (graph[name] ?? []).allSatisfy { !pending.contains($0) } }
      if layer.isEmpty { layer = remaining }
      layers.append(layer)
      remaining.removeAll { layer.contains($0) }
    }
    return layers
  }

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
