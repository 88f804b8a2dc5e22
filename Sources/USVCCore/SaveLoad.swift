import Glibc
import USVCSys

/// `usvc save FILE` and `usvc load FILE` (SPEC: Commands): every group as one
/// git-config file, one section per group:
///
/// ```
/// [group "web"]
///     count = 2
///     cmd = /srv/app/server
///     args = --port
///     args = 8080
///     env = PATH=/usr/bin:/bin
/// ```
///
/// The keys after `count` are a job's conf keys (without `name`, `group` and
/// `desired`), taken from the group's lowest-numbered job: the jobs of a group
/// share their definition.
extension Supervisor {
  /// The job keys a saved group holds, in the order they are written: every
  /// known key but those usvc sets per job, so a key added later is saved too.
  public static let savedKeys: [String] = {
    let first = [
      "cmd", "args", "cwd", "env", "restart", "after", "after-delay", "propagate", "stop-signal",
      "stop-timeout", "stable-after", "backoff-max", "pre", "post", "on-failure",
    ]
    let perJob: Set<String> = ["name", "group", "desired"]
    return first + ConfKeys.known.keys.filter { !first.contains($0) && !perJob.contains($0) }.sorted()
  }()

  /// Variables usvc sets for each job itself: not part of a saved definition.
  static let ownVariables = ["USVC_JOB=", "USVC_GROUP=", "USVC_HOME="]

  // MARK: save

  /// Writes every group to `file` through libgit2's config API and returns
  /// how many groups it wrote. The file is built under a temporary name beside
  /// `file` (mode 0600) and renamed over it, so `file` is complete or untouched.
  public func save(to file: String) throws(UsvcError) -> Int {
    // 1. Group the jobs; natural order puts each group's lowest-numbered job first.
    var groups: [(name: String, first: String, count: Int)] = []
    for name in store.names() {
      guard let group = Names.split(job: name)?.group else { continue }
      if let index = groups.firstIndex(where: { $0.name == group }) {
        groups[index].count += 1
      } else {
        groups.append((group, name, 1))
      }
    }
    // 2. One section per group, from its first job's conf.
    var changes: [ConfChange] = []
    for group in groups {
      let conf = try store.load(group.first)
      let section = "group.\(group.name)."
      changes.append(.set(section + "count", [String(group.count)]))
      for key in Self.savedKeys {
        var values = ConfKeys.isMultivar(key) ? conf.values("job." + key) : conf.value("job." + key).map { [$0] } ?? []
        if key == "env" {
          values.removeAll { value in Self.ownVariables.contains { value.hasPrefix($0) } }
        }
        if !values.isEmpty { changes.append(.set(section + key, values)) }
      }
    }
    // 3. Write a fresh file under a temporary name, then rename it into place.
    let slash = file.lastIndex(of: "/")
    let folder = slash.map { String(file[..<$0]) } ?? "."
    let base = slash.map { String(file[file.index(after: $0)...]) } ?? file
    let temporary = (folder.isEmpty ? "" : folder) + "/.\(base).\(getpid()).new"
    try ConfStore.write(changes, to: file, temporary: temporary, startingEmpty: true)
    return groups.count
  }

  // MARK: load

  /// Recreates the groups saved in `file`: each is checked first (known keys,
  /// valid values, commands executable here, `after` naming something, no
  /// cycle, no group that exists already), then created and started through
  /// `start`, a group after the groups it is `after`. A saved `env` is the
  /// jobs' whole environment. When a start fails, the groups this load created
  /// are removed again, so a load happens completely or not at all.
  public func load(from file: String, started: (String) -> Void) throws(UsvcError) {
    let requests = try loadPlan(file)
    var created: [String] = []
    do {
      for request in requests {
        try start(request) { name in
          created.append(name)
          started(name)
        }
      }
    } catch {
      let left = created.filter { store.exists($0) }
      if !left.isEmpty { try? remove(left) }
      throw error
    }
  }

  /// The start requests `file` describes, checked and in creation order.
  func loadPlan(_ file: String) throws(UsvcError) -> [StartRequest] {
    func bad(_ why: String) -> UsvcError { .badFile(path: file, why: why) }
    let conf: JobConf
    do {
      conf = try ConfStore.read(file)
    } catch {
      guard case .badConf(_, let why) = error else { throw error }
      throw bad(GitConfigSyntax.placed(why, path: file))
    }
    if let refusal = readFile(file).flatMap(GitConfigSyntax.refusal) { throw bad(GitConfigSyntax.describe(refusal)) }

    // 1. Sort the entries into groups (file order), refusing what is not a group key.
    var order: [String] = []
    var groups: [String: [String: [String]]] = [:]
    for (key, value) in conf.entries {
      guard let firstDot = key.firstIndex(of: "."), let lastDot = key.lastIndex(of: ".") else {
        throw bad("'\(key)': expected [group \"NAME\"] sections")  // Can't happen: git keys have a section.
      }
      let section = String(key[..<firstDot])
      guard section == "group" else { throw bad("'\(key)': unknown section '\(section)': expected [group \"NAME\"]") }
      guard firstDot < lastDot else { throw bad("'\(key)': a group section needs a name: [group \"NAME\"]") }
      let group = String(key[key.index(after: firstDot)..<lastDot])
      let short = String(key[key.index(after: lastDot)...])
      do { try Names.validateGroup(group) } catch { throw bad(error.description) }
      guard short == "count" || Self.savedKeys.contains(short) else { throw bad("unknown key '\(key)'") }
      if groups[group] == nil {
        order.append(group)
        groups[group] = [:]
      }
      groups[group]![short, default: []].append(value)
    }

    // 2. Every value checked as `usvc conf` would, and what `start` needs.
    var counts: [String: Int] = [:]
    for group in order {
      let keys = groups[group]!
      for (short, values) in keys {
        let key = "group.\(group).\(short)"
        if values.count > 1 && short != "count" && !ConfKeys.isMultivar(short) { throw bad("\(key) takes one value") }
        if short == "count" {
          guard values.count == 1, let count = Int(values[0]), count >= 1 && count <= 1000 else {
            throw bad(UsvcError.badValue(key: key, value: values.last!.visible, why: "expected 1 to 1000 jobs").description)
          }
          counts[group] = count
          continue
        }
        for value in values {
          do {
            try ConfKeys.validate("job." + short, value)
          } catch {
            switch error {
            case .badValue(_, let value, let why): throw bad(UsvcError.badValue(key: key, value: value, why: why).description)
            case .commandNotExecutable(let path, let why): throw bad("\(key): \(path): \(why)")
            default: throw bad("\(key): \(error)")
            }
          }
        }
      }
      // The lists of each job's conf, usvc's own three variables included.
      var counts = keys.mapValues(\.count)
      counts["env"] = (keys["env"]?.count ?? environment.count) + Self.ownVariables.count
      do {
        try ConfKeys.checkValueCounts(Dictionary(uniqueKeysWithValues: counts.map { ("job." + $0.key, $0.value) }))
      } catch {
        throw bad("group.\(group): \(error)")
      }
      guard keys["cmd"] != nil else { throw bad("group.\(group).cmd is missing") }
      if let directory = keys["cwd"]?.last {
        guard let info = fileStatus(directory) else { throw bad("group.\(group).cwd: \(directory): No such file or directory") }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw bad("group.\(group).cwd: \(directory): not a directory") }
      }
    }

    // 3. `after` names existing jobs or the jobs this file creates, without a cycle.
    let existing = store.names()
    var graph: [String: [String]] = [:]
    for name in existing { graph[name] = (try? store.load(name))?.values("job.after") ?? [] }
    for group in order {
      for index in 1...(counts[group] ?? 1) { graph["\(group)-\(index)"] = groups[group]!["after"] ?? [] }
    }
    let candidates = Array(graph.keys)
    for group in order {
      for value in groups[group]!["after"] ?? [] where !candidates.contains(where: { home.paths($0).isNamed(by: value) }) {
        throw bad("group.\(group).after: '\(value.visible)' names no job or group")
      }
    }
    let edges = graph.mapValues { after in candidates.filter { other in after.contains { home.paths(other).isNamed(by: $0) } } }
    if let cycle = firstCycle(in: edges, excludingSelf: true) {
      throw bad(UsvcError.dependencyCycle(cycle).description)
    }
    // Groups after groups: A is after B when it names B or one of B's jobs.
    var groupGraph: [String: [String]] = [:]
    for group in order {
      let after = groups[group]!["after"] ?? []
      groupGraph[group] = order.filter { other in
        other != group && after.contains { value in
          value == other || (1...(counts[other] ?? 1)).contains { home.paths("\(other)-\($0)").isNamed(by: value) }
        }
      }
    }
    if let cycle = firstCycle(in: groupGraph, excludingSelf: true) {
      throw bad(UsvcError.dependencyCycle(cycle).description)
    }

    // 4. No group may exist already: load creates, it does not merge.
    for group in order where existing.contains(where: { Names.split(job: $0)?.group == group }) {
      throw .groupExists(group)
    }

    // 5. One request per group, each after the groups it depends on.
    var created = Set<String>()
    var sorted: [String] = []
    func visit(_ group: String) {
      guard created.insert(group).inserted else { return }
      for dependency in groupGraph[group] ?? [] { visit(dependency) }
      sorted.append(group)
    }
    for group in order { visit(group) }
    return sorted.map { group in
      let keys = groups[group]!
      var request = StartRequest(group: group, command: keys["cmd"]!.last!)
      request.count = counts[group] ?? 1
      request.arguments = keys["args"] ?? []
      request.directory = keys["cwd"]?.last
      if let restart = keys["restart"]?.last.flatMap(RestartPolicy.init(rawValue:)) { request.restart = restart }
      if let environment = keys["env"] {
        request.environment = environment
        request.replaceEnvironment = true
      }
      request.after = keys["after"] ?? []
      request.groupMustBeNew = true
      let handled: Set<String> = ["count", "cmd", "args", "cwd", "restart", "env", "after"]
      request.extra = Self.savedKeys.compactMap { short in
        guard !handled.contains(short), let values = keys[short] else { return nil }
        return .set("job." + short, values)
      }
      return request
    }
  }
}

/// A cycle in `graph` (node → the nodes it depends on), the first node
/// repeated at the end; nil when there is none. With `excludingSelf`, an edge
/// from a node to itself does not count.
func firstCycle(in graph: [String: [String]], excludingSelf: Bool = false) -> [String]? {
  var state: [String: Int] = [:]  // 1 = on the current path, 2 = done.
  var path: [String] = []
  func visit(_ node: String) -> [String]? {
    if state[node] == 2 { return nil }
    if state[node] == 1 { return Array(path[(path.firstIndex(of: node) ?? 0)...]) + [node] }
    state[node] = 1
    path.append(node)
    for next in graph[node] ?? [] where !(excludingSelf && next == node) {
      if let cycle = visit(next) { return cycle }
    }
    path.removeLast()
    state[node] = 2
    return nil
  }
  for node in graph.keys.sorted(by: Names.naturalLess) {
    if let cycle = visit(node) { return cycle }
  }
  return nil
}
