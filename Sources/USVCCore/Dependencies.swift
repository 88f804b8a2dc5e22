import USVCSys

/// `job.after` between jobs: the order to start and stop them in, and cycles.
extension Supervisor {
  /// Job name → the jobs it is after (groups resolved to their jobs), from the specs.
  public func dependencyGraph() -> [String: [String]] {
    let names = store.names()
    var graph: [String: [String]] = [:]
    for name in names {
      let after = view(name).spec?.after ?? []
      graph[name] = names.filter { other in
        other != name && after.contains { home.paths(other).isNamed(by: $0) }
      }
    }
    return graph
  }

  /// A cycle of `job.after` (first name repeated at the end), or nil.
  public func findCycle() -> [String]? { firstCycle(in: dependencyGraph()) }

  /// `names` with every job after the jobs it depends on (natural order otherwise).
  public func dependencyOrder(_ names: [String]) -> [String] {
    let graph = dependencyGraph()
    let chosen = Set(names)
    var done = Set<String>()
    var order: [String] = []
    func visit(_ name: String, depth: Int) {
      guard !done.contains(name), depth < 10_000 else { return }
      done.insert(name)
      for dependency in graph[name] ?? [] where chosen.contains(dependency) { visit(dependency, depth: depth + 1) }
      order.append(name)
    }
    for name in names { visit(name, depth: 0) }
    return order
  }

  /// Starts every job whose `desired` is running but which has no live runner
  /// (after a reboot or a dead tmux server), in dependency order. Jobs that
  /// run, or ended as exited or failed, are left alone.
  public func resurrect(started: (String) -> Void) throws(UsvcError) {
    let candidates = store.names().filter { name in
      let job = view(name)
      // Stopped by `shutdown` (desired still running) or lost; not exited or failed.
      return job.runner == nil && job.spec?.desiredRunning != false && job.state != .exited
        && job.state != .failed
    }
    let order = dependencyOrder(candidates)
    guard !order.isEmpty else { return }
    for name in order {
      let job = view(name)
      if job.run.pid > 0 { home.paths(name).killLeftovers(of: job.run) }
      Events.append(home: home.path, job: name, event: "resurrected", detail: "")
    }
    try launch(order, started: started)
  }

  /// Stops every job, dependents before what they depend on, then ends the tmux
  /// server. `desired` stays as it was, so `resurrect` brings back the same set.
  public func shutdown() throws(UsvcError) {
    var remaining = dependencyOrder(store.names())
    // Layer by layer: first the jobs nothing else running depends on.
    let graph = dependencyGraph()
    while !remaining.isEmpty {
      let needed = Set(remaining.flatMap { graph[$0] ?? [] })
      var layer = remaining.filter { !needed.contains($0) }
      if layer.isEmpty { layer = remaining }  // A cycle: stop the rest together.
      try stop(layer, keepDesired: true)
      remaining.removeAll { layer.contains($0) }
    }
    if let tmux = try? tmux() { tmux.killServer() }
  }
}
