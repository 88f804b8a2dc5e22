import Glibc
import USVCContract
import USVCSys

/// One problem `usvc check` found in a conf: `PATH: KEY: PROBLEM`, or
/// `PATH: PROBLEM` when no single key is at fault.
public struct ConfProblem: Sendable, Equatable, CustomStringConvertible {
  public var path: String
  public var key: String?
  public var problem: String

  public init(path: String, key: String?, problem: String) {
    self.path = path
    self.key = key
    self.problem = problem
  }

  public var description: String { [path, key, problem].compactMap { $0 }.joined(separator: ": ") }
}

/// What `usvc check` found: how many confs it read, and every problem in them.
public struct CheckReport: Sendable {
  public var jobs: Int
  public var problems: [ConfProblem]
}

extension Supervisor {
  /// Checks every conf under `jobs/` (SPEC: `usvc check`): that libgit2 can
  /// parse it, that its `job.*` keys are known and their values valid, that
  /// `job.cmd` is still executable and `job.cwd` still a directory, that
  /// `job.name` and `job.group` match the file name, that every `job.after`
  /// names another job, and that no `after` chain is a cycle. Other sections
  /// are allowed (SPEC: Files). Reads only; never throws on a broken file.
  public func check() -> CheckReport {
    let names = store.names()
    var problems: [ConfProblem] = []
    var afters: [String: [String]] = [:]
    for name in names {
      let path = store.path(name)
      func problem(_ key: String?, _ text: String) {
        problems.append(ConfProblem(path: path, key: key, problem: text))
      }
      let conf: JobConf
      do {
        conf = try store.load(name)
      } catch {
        // libgit2's own message names the file and line: keep it whole.
        switch error {
        case .badConf(_, let why): problem(nil, GitConfigSyntax.placed(why, path: path))
        case .badFile(_, let why): problem(nil, why)
        default: problem(nil, error.description)
        }
        continue
      }
      if let refusal = readFile(path).flatMap(GitConfigSyntax.refusal) {
        problem(nil, GitConfigSyntax.describe(refusal))
      }
      let split = Names.split(job: name)
      if split == nil { problem(nil, "the file name is not a job name (GROUP-N.conf)") }

      var seen: [String: Int] = [:]
      for (key, value) in conf.entries where key.hasPrefix("job.") {
        let short = String(key.dropFirst(4))
        guard let known = JobKeys.named[short] else {
          problem(key, "unknown key")
          continue
        }
        seen[key, default: 0] += 1
        if seen[key] == 2 && !known.multivar { problem(key, "set more than once (git uses the last value)") }
        do {
          try ConfKeys.validate(key, value)
        } catch {
          problem(nil, error.about(key).description)
          continue
        }
      }

      if conf.value("job.cmd") == nil { problem("job.cmd", "missing") }
      if let given = conf.value("job.name") {
        if given != name { problem("job.name", "'\(given.visible)' does not match the file name '\(name)'") }
      } else {
        problem("job.name", "missing")
      }
      if let given = conf.value("job.group"), let split, given != split.group {
        problem("job.group", "'\(given.visible)' does not match the job name '\(name)'")
      }
      let after = conf.values("job.after")
      afters[name] = after
      for value in after where !names.contains(where: { $0 != name && home.paths($0).isNamed(by: value) }) {
        problem("job.after", "'\(value.visible)' names no other job or group")
      }
    }

    // A cycle, from the confs themselves (the runners' specs follow them at each start).
    if let cycle = DependencyGraph(jobs: names, after: { afters[$0] ?? [] }).firstCycle {
      problems.append(ConfProblem(
        path: store.path(cycle[0]), key: "job.after", problem: UsvcError.dependencyCycle(cycle).description))
    }
    return CheckReport(jobs: names.count, problems: problems)
  }
}
