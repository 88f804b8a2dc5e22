import Glibc
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
          switch error {
          case .badValue(_, let value, let why): problem(key, "bad value '\(value)': \(why)")
          case .commandNotExecutable(let path, let why): problem(key, "\(path): \(why)")
          default: problem(key, error.description)
          }
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
    let graph = afters.mapValues { after in
      names.filter { other in after.contains { home.paths(other).isNamed(by: $0) } }
    }
    if let cycle = firstCycle(in: graph) {
      problems.append(ConfProblem(
        path: store.path(cycle[0]), key: "job.after", problem: UsvcError.dependencyCycle(cycle).description))
    }
    return CheckReport(jobs: names.count, problems: problems)
  }
}

/// Git's own config parser, reduced to finding where it refuses a file.
///
/// libgit2 1.5.1 is more lenient than git: it reads a value whose quote is
/// never closed to the end of its line, and stops at a NUL byte outside a
/// value, where git (config.c, `git_parse_source`) refuses the file. SPEC
/// wants `git config -f` to read every conf, so `check` and `load` refuse
/// what git refuses, by following git's parser step by step.
public enum GitConfigSyntax {
  /// The line and reason where git would refuse `bytes`, or nil when git reads it.
  public static func refusal(_ bytes: [UInt8]) -> (line: Int, why: String)? {
    var index = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0  // git skips a UTF-8 BOM.
    var line = 1
    var atEnd = false
    // git's get_next_char: CR LF reads as LF, and the end of the file as one more LF.
    func next() -> (byte: UInt8, line: Int) {
      guard index < bytes.count else {
        atEnd = true
        return (newline, line)
      }
      var byte = bytes[index]
      index += 1
      if byte == 13 && index < bytes.count && bytes[index] == newline {
        byte = newline
        index += 1
      }
      let at = line
      if byte == newline { line += 1 }
      return (byte, at)
    }

    // git's get_base_var and get_extended_base_var, after the `[`. Where git
    // reads a newline or the end of the file without stepping back, it names
    // the next line: so do these refusals.
    func sectionHeader() -> (line: Int, why: String)? {
      while true {
        let (byte, at) = next()
        if atEnd { return (at + 1, "missing ']' in section header") }
        if byte == UInt8(ascii: "]") { return nil }
        if byte == newline { return (at, "incomplete section header") }
        if isSpace(byte) { break }
        if !isKeyCharacter(byte) && byte != UInt8(ascii: ".") { return (at, "invalid character in section name") }
      }
      var (byte, at) = next()
      while isSpace(byte) {
        if byte == newline { return (at, "incomplete section header") }
        (byte, at) = next()
      }
      guard byte == UInt8(ascii: "\"") else { return (at, "expected a quoted subsection name") }
      while true {
        (byte, at) = next()
        if byte == newline { return (at, "missing closing quotation mark in section header") }
        if byte == UInt8(ascii: "\"") { break }
        if byte == UInt8(ascii: "\\") {
          (byte, at) = next()
          if byte == newline { return (at, "missing closing quotation mark in section header") }
        }
      }
      (byte, at) = next()
      return byte == UInt8(ascii: "]") ? nil : (byte == newline ? at + 1 : at, "missing ']' in section header")
    }

    // git's parse_value, after the `=`.
    func value() -> (line: Int, why: String)? {
      var quoted = false
      var comment = false
      while true {
        let (byte, at) = next()
        if byte == newline { return quoted ? (at, "unterminated quote") : nil }
        if comment || (isSpace(byte) && !quoted) { continue }
        if !quoted && (byte == UInt8(ascii: ";") || byte == UInt8(ascii: "#")) {
          comment = true
          continue
        }
        if byte == UInt8(ascii: "\\") {
          let (escaped, at) = next()
          guard escaped == newline || Array("tbn\"\\".utf8).contains(escaped) else { return (at, "invalid escape") }
          continue
        }
        if byte == UInt8(ascii: "\"") { quoted.toggle() }
      }
    }

    var comment = false
    while true {
      let (byte, at) = next()
      if byte == newline {
        if atEnd { return nil }
        comment = false
        continue
      }
      if comment || isSpace(byte) { continue }
      if byte == UInt8(ascii: "#") || byte == UInt8(ascii: ";") {
        comment = true
        continue
      }
      if byte == UInt8(ascii: "[") {
        if let refusal = sectionHeader() { return refusal }
        continue
      }
      guard isAlpha(byte) else { return (at, "invalid character where a key should start") }
      // git's get_value: the key, blanks, then `=` and a value, or the end of the line.
      var (after, afterLine) = next()
      while !atEnd && isKeyCharacter(after) { (after, afterLine) = next() }
      while after == UInt8(ascii: " ") || after == UInt8(ascii: "\t") { (after, afterLine) = next() }
      if after != newline {
        guard after == UInt8(ascii: "=") else { return (afterLine, "invalid key") }
        if let refusal = value() { return refusal }
      }
    }
  }

  /// `line 3: unterminated quote (git config cannot read this file)`.
  public static func describe(_ refusal: (line: Int, why: String)) -> String {
    "line \(refusal.line): \(refusal.why) (git config cannot read this file)"
  }

  /// libgit2's parse error for the file at `path`, with git's line added when
  /// libgit2 does not say where (`invalid escape at …`).
  public static func placed(_ why: String, path: String) -> String {
    guard !why.contains(path + ":"), let refusal = readFile(path).flatMap(refusal) else { return why }
    return why + " (line \(refusal.line))"
  }

  static let newline = UInt8(ascii: "\n")
  /// git's sane_ctype: ASCII only.
  static func isSpace(_ byte: UInt8) -> Bool { byte == 32 || byte == 9 || byte == 10 || byte == 13 }
  static func isAlpha(_ byte: UInt8) -> Bool { (byte | 0x20) >= 97 && (byte | 0x20) <= 122 }
  static func isKeyCharacter(_ byte: UInt8) -> Bool { isAlpha(byte) || (byte >= 48 && byte <= 57) || byte == 45 }
}
