import Foundation
import Testing

@testable import USVCCore
import USVCSys

/// `usvc save`, `usvc load` and `usvc check`, driving the real binary in a
/// temporary USVC_HOME.
@Suite("save, load and check")
struct SaveLoadCheckTests {
  static let hostileArguments = [
    "plain", "two words", "", " padded ", "\"double\"", "'single'", "back\\slash", "ends with;", ";",
    "#hash", "a # b", "new\nline", "tab\there", "-leading-dash", "--", "ünïcødé ✓", "a=b", "\\n", "[group \"x\"]",
  ]
  static let hostileValue = "q\"uote back\\slash semi;colon #hash\nnew line ✓ "

  /// Every key of a conf with its values in order; env as a set (its order
  /// follows the caller's environment).
  static func shape(_ conf: JobConf) -> [String: [String]] {
    var result = Dictionary(grouping: conf.entries, by: \.key).mapValues { $0.map(\.value) }
    result["job.env"] = result["job.env"]?.sorted()
    return result
  }

  /// Edits a conf behind usvc's back, with git itself.
  static func gitConfig(_ t: TestHome, _ arguments: String..., sourceLocation: SourceLocation = #_sourceLocation) throws {
    let outcome = try TestHome.run(["git", "config"] + arguments, environment: t.environment)
    #expect(outcome.status == 0, "git config \(arguments): \(outcome.stderr)", sourceLocation: sourceLocation)
  }

  static func nulSeparated(_ path: String) -> [String]? {
    guard let data = FileManager.default.contents(atPath: path) else { return nil }
    return data.split(separator: 0, omittingEmptySubsequences: false).dropLast().map { String(decoding: $0, as: UTF8.self) }
  }

  @Test("save then rm all then load gives the same jobs (args, env, policy, after), and they run")
  func roundTrip() throws {
    let t = try TestHome()
    let out = t.file("out")
    let dump = try t.script("dump", """
      for a in "$@"; do printf '%s\\0' "$a"; done > "$OUT.$USVC_JOB.args.tmp"; mv "$OUT.$USVC_JOB.args.tmp" "$OUT.$USVC_JOB.args"
      env -0 > "$OUT.$USVC_JOB.env.tmp"; mv "$OUT.$USVC_JOB.env.tmp" "$OUT.$USVC_JOB.env"
      exec sleep 1000
      """)
    t.environment["FROM_SAVER"] = "saver value"
    try t.ok("start", "zdb", "sleep", "1000")
    let started = try t.usvc(
      ["start", "-n", "2", "--restart", "on-failure", "-C", t.root, "-e", "OUT=\(out)", "-e", "HOSTILE=\(Self.hostileValue)",
       "--after", "zdb", "--notify", "echo failed", "web", dump] + Self.hostileArguments)
    #expect(started.status == 0, "\(started.stderr)")
    for (key, value) in [("stop-timeout", "3"), ("stop-signal", "INT"), ("stable-after", "2"), ("backoff-max", "60"),
                         ("after-delay", "0.5"), ("propagate", "true"), ("log-keep", "3")] {
      for job in ["web-1", "web-2"] { try t.ok("conf", job, key, value) }
    }
    let saver = try t.supervisor
    var before: [String: [String: [String]]] = [:]
    for name in ["web-1", "web-2", "zdb-1"] { before[name] = Self.shape(try saver.store.load(name)) }

    let file = t.file("saved.conf")
    #expect(try t.ok("save", file).stdout == "saved 2 groups to \(file)\n")
    #expect(try #require(fileStatus(file)).st_mode & 0o777 == 0o600)
    let list = try TestHome.run(["git", "config", "-f", file, "--list"], environment: t.environment)
    #expect(list.status == 0, "\(list.stderr)")
    let git = try TestHome.run(["git", "config", "-z", "-f", file, "--get-all", "group.web.args"], environment: t.environment)
    #expect(git.stdout.split(separator: "\0", omittingEmptySubsequences: false).dropLast().map(String.init) == Self.hostileArguments)
    let env = try TestHome.run(["git", "config", "-z", "-f", file, "--get-all", "group.web.env"], environment: t.environment)
    let saved = env.stdout.split(separator: "\0", omittingEmptySubsequences: false).dropLast().map(String.init)
    #expect(saved.contains("HOSTILE=\(Self.hostileValue)") && saved.contains("FROM_SAVER=saver value"))
    #expect(!saved.contains { $0.hasPrefix("USVC_JOB=") || $0.hasPrefix("USVC_GROUP=") || $0.hasPrefix("USVC_HOME=") })
    for (key, value) in [("group.web.count", "2"), ("group.web.restart", "on-failure"), ("group.web.after", "zdb"),
                         ("group.web.stop-timeout", "3"), ("group.zdb.count", "1"), ("group.web.cwd", t.root)] {
      #expect(try TestHome.run(["git", "config", "-f", file, key], environment: t.environment).stdout == value + "\n")
    }

    try t.ok("rm", "all")
    #expect(try t.ok("jobs").stdout == "")
    for job in ["web-1", "web-2"] { unlink("\(out).\(job).args"); unlink("\(out).\(job).env") }
    // The loader's own environment must not leak into the loaded jobs.
    t.environment["FROM_SAVER"] = nil
    t.environment["FROM_LOADER"] = "loader value"
    // zdb first: web is after it, although the file lists web first; web waits
    // until zdb has run for its after-delay (0.5 s).
    #expect(try t.ok("load", file).lines == ["started zdb-1", "waiting web-1 for zdb", "waiting web-2 for zdb"])
    #expect(try t.ok("jobs").lines == ["web-1", "web-2", "zdb-1"])
    let loader = try t.supervisor
    for name in ["web-1", "web-2", "zdb-1"] { #expect(Self.shape(try loader.store.load(name)) == before[name]) }
    for name in ["web-1", "web-2", "zdb-1"] { #expect(try eventually { try t.state(name) == .running }) }
    for job in ["web-1", "web-2"] {
      #expect(eventually { FileManager.default.fileExists(atPath: "\(out).\(job).env") })
      #expect(Self.nulSeparated("\(out).\(job).args") == Self.hostileArguments)
      let environment = Self.nulSeparated("\(out).\(job).env") ?? []
      #expect(environment.contains("HOSTILE=\(Self.hostileValue)"))
      #expect(environment.contains("FROM_SAVER=saver value"))
      #expect(!environment.contains { $0.hasPrefix("FROM_LOADER=") })
      #expect(environment.contains("USVC_JOB=\(job)") && environment.contains("USVC_GROUP=web") && environment.contains("USVC_HOME=\(t.home)"))
      let pid = try #require(try t.pid(job))
      #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd") == t.root)
    }
    // What load wrote, git reads and check accepts.
    #expect(try t.ok("check").stdout == "ok: 3 jobs checked\n")
  }

  static let good = "[group \"fine\"]\n\tcmd = /bin/sleep\n\targs = 1000\n"

  @Test("load refuses a bad file with one clear line and creates nothing", arguments: [
    ("[group \"web\"]\n\tcmd = /bin/sleep\n\tcolour = red\n", "unknown key 'group.web.colour'"),
    ("[group \"Web\"]\n\tcmd = /bin/sleep\n", "bad group name 'Web': it must start with a letter a-z"),
    ("[group \"all\"]\n\tcmd = /bin/sleep\n", "bad group name 'all': it is reserved"),
    ("[group \"web\"]\n\tcmd = /etc/passwd\n", "group.web.cmd: /etc/passwd: Permission denied (not executable)"),
    ("[group \"web\"]\n\tcmd = /nonexistent/prog\n", "group.web.cmd: /nonexistent/prog: No such file or directory"),
    ("[group \"web\"]\n\targs = x\n", "group.web.cmd is missing"),
    ("[group \"web\"]\n\tcmd = /bin/sleep\n\tstop-timeout = -5\n", "bad value for group.web.stop-timeout: '-5': expected a number of seconds, 0 or more"),
    ("[group \"web\"]\n\tcmd = /bin/sleep\n\tcount = 0\n", "bad value for group.web.count: '0': expected 1 to 1000 jobs"),
    ("[group \"web\"]\n\tcmd = /bin/sleep\n\tcount = 1001\n", "bad value for group.web.count: '1001': expected 1 to 1000 jobs"),
    ("[group \"web\"]\n\tcmd = /bin/sleep\n\trestart = sometimes\n", "bad value for group.web.restart: 'sometimes': expected always, on-failure or never"),
    ("[group \"web\"]\n\tcmd = /bin/sleep\n\tcwd = /nonexistent\n", "group.web.cwd: /nonexistent: No such file or directory"),
    ("[group \"web\"]\n\tcmd = /bin/sleep\n\tafter = nothing\n", "group.web.after: 'nothing' names no job or group"),
    ("[group \"a\"]\n\tcmd = /bin/sleep\n\tafter = b\n[group \"b\"]\n\tcmd = /bin/sleep\n\tafter = a-1\n", "dependency cycle: a-1 -> b-1 -> a-1"),
    ("[group \"web\"]\n\tcmd = /bin/sleep\n\tcmd = /bin/true\n", "group.web.cmd takes one value"),
    ("[job]\n\tcmd = /bin/sleep\n", "'job.cmd': a job section needs a name: [job \"NAME-N\"]"),
    ("[jobs \"x\"]\n\tcmd = /bin/sleep\n", "'jobs.x.cmd': unknown section 'jobs': expected [group \"NAME\"] or [job \"NAME-N\"]"),
    ("[group]\n\tcmd = /bin/sleep\n", "'group.cmd': a group section needs a name: [group \"NAME\"]"),
  ])
  func loadRefusesBadFiles(text: String, message: String) throws {
    let t = try TestHome()
    let file = t.file("bad.conf")
    try (Self.good + text).write(toFile: file, atomically: true, encoding: .utf8)
    let outcome = try t.usvc("load", file)
    #expect(outcome.status == 1)
    #expect(outcome.stdout == "")
    #expect(outcome.stderr == "usvc: \(file): \(message)\n")
    #expect(try t.ok("jobs").stdout == "")
    #expect(!FileManager.default.fileExists(atPath: t.home + "/tmux.sock"))
  }

  @Test("load refuses a file git cannot parse, naming its line")
  func loadRefusesUnparsable() throws {
    let t = try TestHome()
    let file = t.file("broken.conf")
    try (Self.good + "[group \"web\"]\n\tcmd = \"/bin/sleep\n").write(toFile: file, atomically: true, encoding: .utf8)
    let outcome = try t.usvc("load", file)
    #expect(outcome.status == 1)
    #expect(outcome.stderr.hasPrefix("usvc: \(file): ") && outcome.stderr.contains("line 5"), "\(outcome.stderr)")
    #expect(try t.ok("jobs").stdout == "")
    // What libgit2 refuses itself: its message names the file and line.
    try (Self.good + "[group \"web\"\n\tcmd = /bin/sleep\n").write(toFile: file, atomically: true, encoding: .utf8)
    let header = try t.usvc("load", file)
    #expect(header.status == 1)
    #expect(header.stderr == "usvc: \(file): failed to parse config file: missing ']' in section header (in \(file):4)\n")
    let missing = try t.usvc("load", t.file("nope.conf"))
    #expect(missing.status == 1 && missing.stderr == "usvc: \(t.file("nope.conf")): No such file or directory\n")
  }

  @Test("load refuses a group that exists already and leaves everything as it was")
  func loadRefusesConflict() throws {
    let t = try TestHome()
    try t.ok("start", "web", "sleep", "1000")
    let pid = try t.pid("web-1")
    let file = t.file("web.conf")
    try (Self.good + "[group \"web\"]\n\tcmd = /bin/sleep\n\targs = 1000\n").write(toFile: file, atomically: true, encoding: .utf8)
    let outcome = try t.usvc("load", file)
    #expect(outcome.status == 1)
    #expect(outcome.stdout == "")
    #expect(outcome.stderr == "usvc: group 'web' already exists: rm it first\n")
    #expect(try t.ok("jobs").lines == ["web-1"])
    #expect(try t.pid("web-1") == pid)
  }

  @Test("4 concurrent loads of one file: one creates the group, the others are refused, nothing doubled")
  func concurrentLoads() throws {
    let t = try TestHome()
    let file = t.file("three.conf")
    try "[group \"trio\"]\n\tcount = 3\n\tcmd = /bin/sleep\n\targs = 1000\n".write(toFile: file, atomically: true, encoding: .utf8)
    let outcomes = Locked<[Outcome]>([])
    concurrently(4) { _ in
      let outcome = (try? t.usvc("load", file)) ?? Outcome(status: -1, stdout: "", stderr: "cannot run")
      outcomes.withValue { $0.append(outcome) }
    }
    let all = outcomes.value
    #expect(all.filter { $0.status == 0 }.map(\.lines) == [["started trio-1", "started trio-2", "started trio-3"]])
    #expect(all.filter { $0.status != 0 }.map(\.stderr) == Array(repeating: "usvc: group 'trio' already exists: rm it first\n", count: 3))
    #expect(try t.ok("jobs").lines == ["trio-1", "trio-2", "trio-3"])
  }

  @Test("a load whose later group cannot start removes the groups it already started")
  func loadIsAllOrNothing() throws {
    let t = try TestHome()
    // Executable, but not a program: exec itself fails, after every check passed.
    let junk = t.file("junk")
    _ = FileManager.default.createFile(atPath: junk, contents: Data("\u{7f}ELF not really".utf8), attributes: [.posixPermissions: 0o755])
    let file = t.file("two.conf")
    try (Self.good + "[group \"second\"]\n\tcmd = \(junk)\n").write(toFile: file, atomically: true, encoding: .utf8)
    let outcome = try t.usvc("load", file)
    #expect(outcome.status == 1)
    #expect(outcome.lines == ["started fine-1"])
    #expect(outcome.stderr.hasPrefix("usvc: cannot start second-1: "), "\(outcome.stderr)")
    #expect(try t.ok("jobs").stdout == "")
    #expect(t.processes(of: "fine-1").isEmpty)
  }

  @Test("save of an empty home writes an empty file that loads to nothing")
  func emptySave() throws {
    let t = try TestHome()
    let file = t.file("empty.conf")
    #expect(try t.ok("save", file).stdout == "saved 0 groups to \(file)\n")
    #expect(t.read(file) == "")
    #expect(try t.ok("load", file).stdout == "")
  }

  @Test("check passes on a good home, and finds hand-broken confs: one line each, exit 1")
  func checkFindsProblems() throws {
    let t = try TestHome()
    let doomed = try t.script("doomed", "exec sleep 1000")
    try t.ok("start", "a", "sleep", "1000")
    try t.ok("start", "b", "sleep", "1000")
    try t.ok("start", "c", "sleep", "1000")
    try t.ok("start", "--after", "a", "d", doomed)
    #expect(try t.ok("check").stdout == "ok: 4 jobs checked\n")

    let conf = { (name: String) in t.home + "/jobs/\(name).conf" }
    // a-1: an unterminated quote on line 3.
    try "[job]\n\tname = a-1\n\tcmd = \"/bin/sleep\n".write(toFile: conf("a-1"), atomically: true, encoding: .utf8)
    try Self.gitConfig(t, "-f", conf("b-1"), "--add", "job.colour", "red")
    try Self.gitConfig(t, "-f", conf("c-1"), "--", "job.stop-timeout", "-5")
    unlink(doomed)

    let outcome = try t.usvc("check")
    #expect(outcome.status == 1)
    let lines = outcome.lines
    #expect(lines.count == 4, "\(outcome.stdout)")
    #expect(lines.first?.hasPrefix(conf("a-1") + ": ") == true && lines.first?.contains("line 3") == true, "\(lines)")
    #expect(Array(lines.dropFirst()) == [
      "\(conf("b-1")): job.colour: unknown key",
      "\(conf("c-1")): bad value for job.stop-timeout: '-5': expected a number of seconds, 0 or more",
      "\(conf("d-1")): job.cmd: \(doomed): No such file or directory",
    ])
    #expect(outcome.stderr == "usvc: 4 problems in 4 of 4 confs\n")
  }

  @Test("check finds after naming nothing, after cycles, and names that do not match")
  func checkDependencies() throws {
    let t = try TestHome()
    try t.ok("start", "x", "sleep", "1000")
    try t.ok("start", "y", "sleep", "1000")
    let conf = { (name: String) in t.home + "/jobs/\(name).conf" }
    // usvc conf refuses these, so they are written behind its back.
    try Self.gitConfig(t, "-f", conf("x-1"), "--add", "job.after", "y")
    try Self.gitConfig(t, "-f", conf("y-1"), "--add", "job.after", "x-1")
    try Self.gitConfig(t, "-f", conf("y-1"), "--add", "job.after", "ghost")
    try Self.gitConfig(t, "-f", conf("y-1"), "job.name", "z-1")
    let outcome = try t.usvc("check")
    #expect(outcome.status == 1)
    #expect(outcome.lines == [
      "\(conf("y-1")): job.name: 'z-1' does not match the file name 'y-1'",
      "\(conf("y-1")): job.after: 'ghost' names no other job or group",
      "\(conf("x-1")): job.after: dependency cycle: x-1 -> y-1 -> x-1",
    ])
  }

  @Test("check never crashes on a hand-corrupted conf", arguments: [
    Array("garbage \u{1}\u{2}\u{ff} [[[ ===\n".utf8) + [0xff, 0xfe, 0x80, 0x0a],
    Array("[job]\n\tname = bad-1\n\tcmd = \"/bin/sleep\n".utf8),
    Array("[job]\n".utf8),
    Array("[job]\n\tname = bad-1\n\tcmd = /bin/sl".utf8) + [0] + Array("eep\n".utf8),
    Array("[job \"sub\"]\n\tcmd = /bin/sleep\n[other]\n\tkey = 1\n".utf8),
    Array("[job]\n\tname = bad-1\n\tcmd = /bin/sleep\n\targs = \"unterminated\\\n".utf8),
    [UInt8](repeating: 0, count: 64),
    [UInt8](),
  ])
  func checkSurvivesCorruption(bytes: [UInt8]) throws {
    let t = try TestHome()
    try t.ok("start", "good", "sleep", "1000")
    let path = t.home + "/jobs/bad-1.conf"
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes), attributes: [.posixPermissions: 0o600])
    let outcome = try t.usvc("check")
    #expect(outcome.status == 1, "\(outcome.stdout)\(outcome.stderr)")
    #expect(!outcome.lines.isEmpty && outcome.lines.allSatisfy { $0.hasPrefix(path + ": ") }, "\(outcome.stdout)")
    #expect(outcome.stderr.hasPrefix("usvc: ") && outcome.stderr.hasSuffix(" of 2 confs\n"))
    // The other commands still work beside it.
    #expect(try t.ok("jobs", "good").lines == ["good-1"])
  }
}
