import USVCContract
import USVCSys

/// `job.after` between jobs, resolved: each job → the jobs it is after (a
/// selector names a job, or every job of a group: `JobPaths.isNamed`). One
/// type for `start` and `conf` (a change checked before it is written),
/// `check` (the confs as written), `load` (the jobs a file would create), and
/// `resurrect` and `shutdown` (the order to start and stop in).
public struct DependencyGraph: Sendable, Equatable {
  /// Job → the jobs it is after, in natural order. A job after itself, or
  /// after its own group, has an edge to itself: it would wait for itself.
  public let edges: [String: [String]]

  public init(edges: [String: [String]]) { self.edges = edges }

  /// Every job of `jobs` is a node; `after` gives each job's selectors.
  public init(jobs: [String], after: (String) -> [String]) {
    var edges: [String: [String]] = [:]
    for name in jobs {
      let selectors = after(name)
      edges[name] = selectors.isEmpty ? [] : jobs.filter { other in
        let job = JobPaths(home: "", name: other)
        return selectors.contains { job.isNamed(by: $0) }
      }.sorted(by: Names.naturalLess)
    }
    self.edges = edges
  }

  /// A cycle (its first job repeated at the end), looked for from each job in
  /// natural order; nil when there is none. An edge to itself is one.
  public var firstCycle: [String]? {
    var state: [String: Int] = [:]  // 1 = on the current path, 2 = done.
    var path: [String] = []
    func visit(_ node: String) -> [String]? {
      if state[node] == 2 { return nil }
      if state[node] == 1 { return Array(path[(path.firstIndex(of: node) ?? 0)...]) + [node] }
      state[node] = 1
      path.append(node)
      for next in edges[node] ?? [] {
        if let cycle = visit(next) { return cycle }
      }
      path.removeLast()
      state[node] = 2
      return nil
    }
    for node in edges.keys.sorted(by: Names.naturalLess) {
      if let cycle = visit(node) { return cycle }
    }
    return nil
  }

  /// `names` in layers: each job in a layer after every job of `names` it is
  /// after (in the order given within a layer); a cycle's jobs share the last.
  public func layers(_ names: [String]) -> [[String]] {
    var remaining = names
    var layers: [[String]] = []
    while !remaining.isEmpty {
      let pending = Set(remaining)
      var layer = remaining.filter { name in (edges[name] ?? []).allSatisfy { !pending.contains($0) } }
      if layer.isEmpty { layer = remaining }
      layers.append(layer)
      remaining.removeAll { layer.contains($0) }
    }
    return layers
  }
}
