import Glibc
import USVCContract
import USVCSys

/// `usvc save FILE` and `usvc load FILE` (SPEC: Commands): every group as one
/// git-config file, one section per group, and one per job whose keys differ
/// from the other jobs of its group:
///
/// ```
/// [group "web"]
///     count = 2
///     cmd = /srv/app/server
///     args = --port
///     args = 8080
///     env = PATH=/usr/bin:/bin
/// [job "web-2"]
///     stop-timeout = 7
/// ```
///
/// The keys after `count` are a job's conf keys (without `name`, `group` and
/// `desired`): a group section holds those every job of the group has alike,
/// and `[job "GROUP-K"]` the others of its K-th job in natural order (the
/// name `load` gives it). A key that only some jobs have is in their sections
/// alone, so the others get its default again.
extension Supervisor {
  /// The job keys a saved group holds, in the order they are written (the
  /// table's): every key but those usvc sets per job, so a key added later is saved too.
  public static let savedKeys: [String] = JobKeys.all.filter(\.saved).map(\.name)

  /// Variables usvc sets for each job itself: not part of a saved definition.
  static let ownVariables = ["USVC_JOB=", "USVC_GROUP=", "USVC_HOME="]

  // MARK: save

  /// What a saved file holds of `key` (short) for a job with `conf`.
  static func savedValues(_ key: String, of conf: JobConf) -> [String] {
    var values = ConfKeys.isMultivar(key) ? conf.values("job." + key) : conf.value("job." + key).map { [$0] } ?? []
    if key == "env" {
      values.removeAll { value in ownVariables.contains { value.hasPrefix($0) } }
    }
    return values
  }

  /// Writes every group to `file` through libgit2's config API and returns
  /// how many groups it wrote. The file is built under a temporary name beside
  /// `file` (mode 0600) and renamed over it, so `file` is complete or untouched.
  ///
  /// A job whose conf cannot be used is left out and said (a warning each),
  /// never the others' loss (SPEC: Broken confs); `unsaved` names them.
  public func save(to file: String) throws(UsvcError) -> (groups: Int, unsaved: [String]) {
    // 1. Group the jobs, each group's in natural order.
    var groups: [(name: String, jobs: [String])] = []
    var confs: [String: JobConf] = [:]
    var unsaved: [String] = []
    for name in store.names() {
      guard let group = Names.split(job: name)?.group else { continue }
      if let problem = store.problem(name) {
        warn("cannot save \(name): \(problem.visible)")
        unsaved.append(name)
        continue
      }
      confs[name] = try store.load(name)
      if let index = groups.firstIndex(where: { $0.name == group }) {
        groups[index].jobs.append(name)
      } else {
        groups.append((group, [name]))
      }
    }
    // 2. One section per group with what its jobs share, one per job with the rest.
    var changes: [ConfChange] = []
    for group in groups {
      let confs = group.jobs.map { confs[$0]! }
      let section = "group.\(group.name)."
      changes.append(.set(section + "count", [String(group.jobs.count)]))
      var own: [[ConfChange]] = Array(repeating: [], count: confs.count)
      for key in Self.savedKeys {
        let values = confs.map { Self.savedValues(key, of: $0) }
        if values.allSatisfy({ $0 == values[0] }) {
          if !values[0].isEmpty { changes.append(.set(section + key, values[0])) }
        } else {
          for (index, jobValues) in values.enumerated() where !jobValues.isEmpty {
            own[index].append(.set("job.\(group.name)-\(index + 1).\(key)", jobValues))
          }
        }
      }
      changes += own.joined()
    }
    // 3. Write a fresh file under a temporary name, then rename it into place.
    let slash = file.lastIndex(of: "/")
    let folder = slash.map { String(file[..<$0]) } ?? "."
    let base = slash.map { String(file[file.index(after: $0)...]) } ?? file
    let temporary = (folder.isEmpty ? "" : folder) + "/.\(base).\(getpid()).new"
    try ConfStore.write(changes, to: file, temporary: temporary, startingEmpty: true)
    return (groups.count, unsaved)
  }

  // MARK: load

  /// Recreates the groups saved in `file`: each is checked first (known keys,
  /// valid values, commands executable here, `after` naming something, no
  /// cycle, no group that exists already), then created and started through
  /// `start`, a group after the groups it is `after`. A saved `env` is the
  /// jobs' whole environment. When a start fails, the groups this load created
  /// are removed again, so a load happens completely or not at all.
  public func load(from file: String, started: (Launched) -> Void) throws(UsvcError) {
    let requests = try loadPlan(file)
    var created: [String] = []
    do {
      for request in requests {
        try start(request) { launched in
          created.append(launched.name)
          started(launched)
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

    // 1. Sort the entries into groups (file order) and jobs, refusing what is
    //    not a group or job key.
    var order: [String] = []
    var groups: [String: [String: [String]]] = [:]
    var jobSections: [(name: String, key: String)] = []
    var jobKeys: [String: [String: [String]]] = [:]  // GROUP-K → its own keys.
    for (key, value) in conf.entries {
      guard let firstDot = key.firstIndex(of: "."), let lastDot = key.lastIndex(of: ".") else {
        throw bad("'\(key)': expected [group \"NAME\"] sections")  // Can't happen: git keys have a section.
      }
      let section = String(key[..<firstDot])
      guard section == "group" || section == "job" else {
        throw bad("'\(key)': unknown section '\(section)': expected [group \"NAME\"] or [job \"NAME-N\"]")
      }
      guard firstDot < lastDot else {
        throw bad("'\(key)': a \(section) section needs a name: [\(section) \"\(section == "group" ? "NAME" : "NAME-N")\"]")
      }
      let name = String(key[key.index(after: firstDot)..<lastDot])
      let short = String(key[key.index(after: lastDot)...])
      if section == "job" {
        guard Self.savedKeys.contains(short) else { throw bad("unknown key '\(key)'") }
        if jobKeys[name] == nil { jobSections.append((name, key)) }
        jobKeys[name, default: [:]][short, default: []].append(value)
        continue
      }
      do { try Names.validateGroup(name) } catch { throw bad(error.description) }
      guard short == "count" || Self.savedKeys.contains(short) else { throw bad("unknown key '\(key)'") }
      if groups[name] == nil {
        order.append(name)
        groups[name] = [:]
      }
      groups[name]![short, default: []].append(value)
    }
    // Each job section names the K-th job of a group of the file.
    var jobsOf: [String: [Int: [String: [String]]]] = [:]
    for (name, key) in jobSections {
      guard let (group, number) = Names.split(job: name), groups[group] != nil else {
        throw bad("'\(key)': [job \"\(name.visible)\"] names no job of a group of this file")
      }
      jobsOf[group, default: [:]][number] = jobKeys[name]!
    }

    // 2. Every value checked as `usvc conf` would, and what `start` needs.
    func check(_ keys: [String: [String]], section: String) throws(UsvcError) {
      for (short, values) in keys where short != "count" {
        let key = "\(section).\(short)"
        if values.count > 1 && !ConfKeys.isMultivar(short) { throw bad("\(key) takes one value") }
        for value in values {
          do {
            try ConfKeys.validate("job." + short, value)
          } catch {
            throw bad(error.about(key).description)
          }
        }
      }
    }
    var counts: [String: Int] = [:]
    /// The keys of the `number`-th job of `group`: the group's, then its own.
    func keysOf(_ group: String, _ number: Int) -> [String: [String]] {
      groups[group]!.filter { $0.key != "count" }.merging(jobsOf[group]?[number] ?? [:]) { $1 }
    }
    for group in order {
      let keys = groups[group]!
      if let values = keys["count"] {
        let key = "group.\(group).count"
        guard values.count == 1, let count = Int(values[0]), count >= 1 && count <= 1000 else {
          throw bad(UsvcError.badValue(key: key, value: values.last!.visible, why: "expected 1 to 1000 jobs").description)
        }
        counts[group] = count
      }
      let count = counts[group] ?? 1
      if let number = jobsOf[group]?.keys.filter({ $0 > count }).min() {
        throw bad("[job \"\(group)-\(number)\"]: group \(group) has \(count) job\(count == 1 ? "" : "s")")
      }
      try check(keys, section: "group.\(group)")
      for (number, own) in jobsOf[group] ?? [:] { try check(own, section: "job.\(group)-\(number)") }
      for number in 1...count {
        let merged = keysOf(group, number)
        let section = jobsOf[group]?[number]?["cmd"] == nil ? "group.\(group)" : "job.\(group)-\(number)"
        // The lists of each job's conf, usvc's own three variables included.
        var lists = merged.mapValues(\.count)
        lists["env"] = (merged["env"]?.count ?? environment.count) + Self.ownVariables.count
        do {
          try ConfKeys.checkValueCounts(Dictionary(uniqueKeysWithValues: lists.map { ("job." + $0.key, $0.value) }))
        } catch {
          throw bad("\(count == 1 ? "group.\(group)" : "job.\(group)-\(number)"): \(error)")
        }
        guard merged["cmd"] != nil else { throw bad("\(section).cmd is missing") }
        if let directory = merged["cwd"]?.last {
          let place = jobsOf[group]?[number]?["cwd"] == nil ? "group.\(group)" : "job.\(group)-\(number)"
          guard let info = fileStatus(directory) else { throw bad("\(place).cwd: \(directory): No such file or directory") }
          guard info.st_mode & S_IFMT == S_IFDIR else { throw bad("\(place).cwd: \(directory): not a directory") }
        }
      }
    }

    // 3. `after` names existing jobs or the jobs this file creates, without a cycle.
    let existing = store.names()
    var graph: [String: [String]] = [:]
    for name in existing { graph[name] = (try? store.load(name))?.values("job.after") ?? [] }
    var groupAfter: [String: [String]] = [:]  // What any job of the group is after.
    for group in order {
      for number in 1...(counts[group] ?? 1) {
        let after = keysOf(group, number)["after"] ?? []
        graph["\(group)-\(number)"] = after
        groupAfter[group, default: []] += after.filter { !(groupAfter[group] ?? []).contains($0) }
      }
    }
    let candidates = Array(graph.keys)
    for group in order {
      for value in groupAfter[group] ?? [] where !candidates.contains(where: { home.paths($0).isNamed(by: value) }) {
        throw bad("group.\(group).after: '\(value.visible)' names no job or group")
      }
    }
    if let cycle = DependencyGraph(jobs: candidates, after: { graph[$0] ?? [] }).firstCycle {
      throw bad(UsvcError.dependencyCycle(cycle).description)
    }
    // Groups after groups: A is after B when it names B or one of B's jobs.
    var groupGraph: [String: [String]] = [:]
    for group in order {
      let after = groupAfter[group] ?? []
      groupGraph[group] = order.filter { other in
        other != group && after.contains { value in
          value == other || (1...(counts[other] ?? 1)).contains { home.paths("\(other)-\($0)").isNamed(by: value) }
        }
      }
    }
    if let cycle = DependencyGraph(edges: groupGraph).firstCycle {
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
      let count = counts[group] ?? 1
      var request = StartRequest(group: group, command: (keys["cmd"] ?? keysOf(group, 1)["cmd"]!).last!)
      request.count = count
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
      request.perJob = (1...count).map { number in
        Self.savedKeys.compactMap { short in (jobsOf[group]?[number]?[short]).map { .set("job." + short, $0) } }
      }
      return request
    }
  }
}
