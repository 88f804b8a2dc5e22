import Foundation
import Testing

@testable import USVCCore
import USVCContract
import USVCSys

// Unit tests of the pure parts the integration tests reach only through the
// binary: git-config syntax, conf key validation, reading a log's tail, the
// dependency graph and finding a job's program. Files they read are real files
// in a temporary folder; git itself is the reference for the syntax.

@Suite("git-config syntax: where git would refuse a conf")
struct GitConfigSyntaxTests {
  /// A file, and the line and reason git refuses it for (nil: git reads it).
  static let cases: [(text: String, refusal: (line: Int, why: String)?)] = [
    ("", nil),
    ("[job]\n\tname = a-1\n\tcmd = /bin/sleep\n", nil),
    ("\u{FEFF}[job]\n\tname = a-1\n", nil),  // A UTF-8 BOM is skipped.
    ("[job]\r\n\tname = a-1\r\n", nil),  // CR LF reads as LF.
    ("# comment\n; comment\n[job] # after a header\n\targs = \"a ; b\" ; comment\n", nil),
    ("[job]\n\targs = one \\\n two\n", nil),  // A value continued on the next line.
    ("[job]\n\targs = \"q\\\"uote\\\\ \\t \\n \\b\"\n", nil),
    ("[job]\n\tpropagate\n", nil),  // A key without a value.
    ("[group \"web\"]\n\tcmd = /bin/sleep\n", nil),
    ("[group \"w\\\"eb\"]\n\tcmd = /bin/sleep\n", nil),
    ("[job]\n\tname = a-1\n\tcmd = \"/bin/sleep\n", (3, "unterminated quote")),
    ("[job]\n\targs = a\\qb\n", (2, "invalid escape")),
    ("[job\n\tname = a-1\n", (1, "incomplete section header")),
    // git names the line after the one it read to its end, here and below.
    ("[job", (2, "missing ']' in section header")),
    ("[", (2, "missing ']' in section header")),
    ("[jo_b]\n", (1, "invalid character in section name")),
    ("[group web]\n", (1, "expected a quoted subsection name")),
    ("[group \"web]\n", (1, "missing closing quotation mark in section header")),
    ("[group \"web\" ]\n", (1, "missing ']' in section header")),
    ("[group \"web\"\n", (2, "missing ']' in section header")),
    ("[group \"web\"", (2, "missing ']' in section header")),
    ("[group \"web", (1, "missing closing quotation mark in section header")),
    ("[job]\n\tname = \"a", (2, "unterminated quote")),
    ("[job]\n\targs = a\\", nil),
    ("[job]\n\tname", nil),
    ("[group\n\"web\"]\n", (1, "incomplete section header")),
    ("[job]\n\t1name = a\n", (2, "invalid character where a key should start")),
    ("[job]\n\tna_me = a\n", (2, "invalid key")),
    ("[job]\n\tname a\n", (2, "invalid key")),
    ("[job]\n\tname = a\n\u{1}\n", (3, "invalid character where a key should start")),
  ]

  @Test("refusal names the line and reason git refuses a file for, and nil for a file git reads", arguments: cases.indices)
  func refusal(index: Int) throws {
    let (text, expected) = Self.cases[index]
    let found = GitConfigSyntax.refusal(Array(text.utf8))
    #expect(found?.line == expected?.line && found?.why == expected?.why, "\(text.debugDescription): \(String(describing: found))")
    // git itself agrees: it reads the file, or refuses it at the same line.
    let t = try TestHome()
    let path = t.file("c.conf")
    #expect(FileManager.default.createFile(atPath: path, contents: Data(text.utf8)))
    let git = try TestHome.run(["git", "config", "-f", path, "--list"], environment: t.environment)
    if let expected {
      #expect(git.status != 0 && git.stderr.contains("line \(expected.line) in file \(path)"), "git: \(git.stderr)")
    } else {
      #expect(git.status == 0, "git: \(git.stderr)")
    }
  }

  @Test("a refusal reads as one sentence; libgit2's message gets git's line when it has none")
  func describeAndPlace() throws {
    #expect(GitConfigSyntax.describe((3, "unterminated quote")) == "line 3: unterminated quote (git config cannot read this file)")
    let t = try TestHome()
    let path = t.file("c.conf")
    #expect(FileManager.default.createFile(atPath: path, contents: Data("[job]\n\targs = a\\qb\n".utf8)))
    #expect(GitConfigSyntax.placed("invalid escape at position 9", path: path) == "invalid escape at position 9 (line 2)")
    // Already placed by libgit2, or a file git reads: left as it was.
    #expect(GitConfigSyntax.placed("bad (in \(path):2)", path: path) == "bad (in \(path):2)")
    #expect(FileManager.default.createFile(atPath: path, contents: Data("[job]\n".utf8)))
    #expect(GitConfigSyntax.placed("something", path: path) == "something")
  }
}

@Suite("conf keys: names and values")
struct ConfKeyValidationTests {
  /// The sentence `validate` throws for `value`, or nil when it accepts it.
  func refusal(_ key: String, _ value: String) -> String? {
    do {
      try ConfKeys.validate(key, value)
      return nil
    } catch {
      return error.description
    }
  }

  @Test("keys are known with or without job., in any case; list keys are the multivars")
  func names() {
    #expect(ConfKeys.normalize("stop-timeout") == "job.stop-timeout")
    #expect(ConfKeys.normalize("Job.Stop-Timeout") == "job.stop-timeout")
    #expect(ConfKeys.normalize("job.args") == "job.args")
    #expect(ConfKeys.normalize("colour") == nil)
    #expect(ConfKeys.normalize("job.") == nil)
    #expect(["args", "env", "after", "pre", "post", "on-failure"].allSatisfy { ConfKeys.isMultivar("job." + $0) })
    #expect(!["cmd", "cwd", "restart", "stop-timeout", "umask"].contains { ConfKeys.isMultivar("job." + $0) })
    #expect(refusal("job.colour", "red") == "unknown conf key 'job.colour'")
  }

  static let valueCases: [(key: String, value: String, refusal: String?)] = [
    ("job.args", "two words", nil), ("job.args", "", nil), ("job.args", "new\nline\ttab", nil),
    ("job.args", "a\rb", nil),  // Any byte but NUL: a quoted value round-trips CR.
    ("job.env", "A=\u{7f}", nil),
    ("job.cmd", "/bin/sh", nil),
    ("job.cmd", "sh", "bad value for job.cmd: 'sh': an absolute path is needed"),
    ("job.cmd", "/etc/passwd", "/etc/passwd: Permission denied (not executable)"),
    ("job.cmd", "/nonexistent", "/nonexistent: No such file or directory"),
    ("job.cwd", "/nonexistent", "/nonexistent: No such file or directory"),  // A folder that is not there is refused at once.
    ("job.cwd", "relative", "bad value for job.cwd: 'relative': an absolute path is needed"),
    ("job.restart", "on-failure", nil),
    ("job.restart", "sometimes", "bad value for job.restart: 'sometimes': expected always, on-failure or never"),
    ("job.stop-signal", "HUP", nil), ("job.stop-signal", "SIGINT", nil), ("job.stop-signal", "9", nil),
    ("job.stop-signal", "NOPE", "bad value for job.stop-signal: 'NOPE': not a signal name or number"),
    ("job.stop-timeout", "0", nil), ("job.stop-timeout", "2.5", nil), ("job.stop-timeout", "31536000", nil),
    ("job.stop-timeout", "-5", "bad value for job.stop-timeout: '-5': expected a number of seconds, 0 or more"),
    ("job.stop-timeout", "31536001", "bad value for job.stop-timeout: '31536001': expected a number of seconds, 0 or more"),
    ("job.backoff-max", "inf", "bad value for job.backoff-max: 'inf': expected a number of seconds, 0 or more"),
    ("job.after-delay", "nan", "bad value for job.after-delay: 'nan': expected a number of seconds, 0 or more"),
    ("job.propagate", "yes", nil), ("job.propagate", "0", nil), ("job.propagate", "", nil),
    ("job.propagate", "maybe", "bad value for job.propagate: 'maybe': expected true or false"),
    ("job.desired", "stopped", nil),
    ("job.desired", "paused", "bad value for job.desired: 'paused': expected running or stopped"),
    ("job.log-keep", "0", nil),
    ("job.log-keep", "-1", "bad value for job.log-keep: '-1': expected a whole number, 0 or more"),
    ("job.log-max-bytes", "1.5", "bad value for job.log-max-bytes: '1.5': expected a whole number, 0 or more"),
    ("job.umask", "027", nil), ("job.umask", "777", nil),
    ("job.umask", "999", "bad value for job.umask: '999': expected an octal mode like 022"),
    ("job.umask", "1000", "bad value for job.umask: '1000': expected an octal mode like 022"),
    ("job.env", "A=", nil), ("job.env", "A=b=c", nil),
    ("job.env", "=x", "bad value for job.env: '=x': expected KEY=VALUE"),
    ("job.env", "NOEQUALS", "bad value for job.env: 'NOEQUALS': expected KEY=VALUE"),
  ]

  @Test("each kind of value: what is accepted, and the sentence for what is not", arguments: valueCases.indices)
  func values(index: Int) {
    let (key, value, expected) = Self.valueCases[index]
    #expect(refusal(key, value) == expected, "\(key) \(value.debugDescription)")
  }

  @Test("git's booleans")
  func booleans() {
    #expect(["true", "YES", "on", "1"].allSatisfy { parseGitBool($0) == true })
    #expect(["false", "No", "off", "0", ""].allSatisfy { parseGitBool($0) == false })
    #expect(parseGitBool("2") == nil)
  }
}

@Suite("log tail")
struct LogTailTests {
  /// The tail of `log` as text.
  func tail(_ log: String, lines: Int) -> [String] {
    LogReader.tail(log, lines: lines).map { String(decoding: $0, as: UTF8.self) }
  }

  /// Writes `files` (name → text) into a new folder; returns the folder's log path.
  func logs(_ t: TestHome, _ files: [String: String]) -> String {
    for (name, text) in files { _ = FileManager.default.createFile(atPath: t.file(name), contents: Data(text.utf8)) }
    return t.file("j.log")
  }

  @Test("the last N lines of a log; all of them when it has fewer; none for 0 or no file")
  func lastLines() throws {
    let t = try TestHome()
    let log = logs(t, ["j.log": "a\nb\n\nc\n"])
    #expect(tail(log, lines: 2) == ["", "c"])
    #expect(tail(log, lines: 10) == ["a", "b", "", "c"])
    #expect(tail(log, lines: 0) == [])
    #expect(tail(t.file("none.log"), lines: 5) == [])
  }

  @Test("a last line still being written is shown as far as it goes")
  func partialLine() throws {
    let t = try TestHome()
    let log = logs(t, ["j.log": "a\nb\nhalf"])
    #expect(tail(log, lines: 2) == ["b", "half"])
  }

  @Test("lines go on into the rotated copies, the highest number the newest; other names are not copies")
  func rotatedCopies() throws {
    let t = try TestHome()
    let log = logs(t, ["j.log": "5\n6\n", "j.log.2": "3\n4\n", "j.log.1": "1\n2\n", "j.log.x": "never\n", "j.log.01": "never\n"])
    #expect(tail(log, lines: 3) == ["4", "5", "6"])
    #expect(tail(log, lines: 100) == ["1", "2", "3", "4", "5", "6"])
  }

  @Test("right after a rotation the log may not exist yet: the copies still give the tail")
  func justRotated() throws {
    let t = try TestHome()
    let log = logs(t, ["j.log.1": "1\n2\n3\n"])
    #expect(tail(log, lines: 2) == ["2", "3"])
  }

  @Test("a log larger than one read: the tail across read boundaries, and a long line whole")
  func largeLog() throws {
    let t = try TestHome()
    let long = String(repeating: "x", count: 100_000)
    let text = (1...20_000).map { "line \($0)" }.joined(separator: "\n") + "\n" + long + "\nlast\n"
    let log = logs(t, ["j.log": text])
    #expect(tail(log, lines: 3) == ["line 20000", long, "last"])
    #expect(tail(log, lines: 20_002).first == "line 1")
  }
}

@Suite("dependency graph")
struct DependencyGraphTests {
  @Test("a selector names a job, or its group's jobs by GROUP-N, and nothing else")
  func selectors() {
    let web1 = JobPaths(home: "/h", name: "web-1")
    #expect(web1.isNamed(by: "web") && web1.isNamed(by: "web-1"))
    #expect(!web1.isNamed(by: "we") && !web1.isNamed(by: "web-"))
    #expect(!JobPaths(home: "/h", name: "web-10").isNamed(by: "web-1"))
    #expect(!JobPaths(home: "/h", name: "web-01").isNamed(by: "web"))
    #expect(!JobPaths(home: "/h", name: "web-x-2").isNamed(by: "web"))
    #expect(JobPaths(home: "/h", name: "my-app-12").isNamed(by: "my-app"))
    #expect(!JobPaths(home: "/h", name: "my-app-12").isNamed(by: "my"))
  }

  @Test("cycles: none in a tree, the first in natural order from where it closes, a self-loop is one")
  func cycles() {
    #expect(DependencyGraph(edges: ["a": ["b", "c"], "b": ["c"], "c": []]).firstCycle == nil)
    #expect(DependencyGraph(edges: ["a": ["b"], "b": ["c"], "c": ["a"]]).firstCycle == ["a", "b", "c", "a"])
    #expect(DependencyGraph(edges: ["a": ["b"], "b": ["c"], "c": ["b"]]).firstCycle == ["b", "c", "b"])
    #expect(DependencyGraph(edges: ["x-2": ["x-10"], "x-10": ["x-2"]]).firstCycle == ["x-2", "x-10", "x-2"])
    #expect(DependencyGraph(edges: ["a": ["a"]]).firstCycle == ["a", "a"])
    #expect(DependencyGraph(edges: ["a": ["b", "a"], "b": []]).firstCycle == ["a", "a"])
  }

  /// A home holding `jobs` (name → its after list) as confs and specs, as
  /// `start` leaves them, without starting anything.
  func home(_ t: TestHome, _ jobs: [(name: String, after: [String])]) throws -> Supervisor {
    let supervisor = try t.supervisor
    for job in jobs {
      var changes: [ConfChange] = [.set("job.cmd", ["/bin/true"])]
      if !job.after.isEmpty { changes.append(.set("job.after", job.after)) }
      try supervisor.store.withWriteLock { () throws(UsvcError) in try supervisor.store.create(job.name, changes) }
      try supervisor.writeSpec(job.name)
    }
    return supervisor
  }

  @Test("after a group means after each of its jobs; jobs start after what they need and stop before it")
  func order() throws {
    let t = try TestHome()
    let supervisor = try home(t, [
      ("api-1", ["db", "cache-1"]), ("cache-1", []), ("db-1", []), ("db-2", []), ("web-1", ["api-1"]), ("solo-1", []),
    ])
    let graph = supervisor.dependencyGraph().edges
    #expect(graph["api-1"] == ["cache-1", "db-1", "db-2"])
    #expect(graph["web-1"] == ["api-1"] && graph["db-1"] == [] && graph["solo-1"] == [])
    #expect(supervisor.findCycle() == nil)
    let layers = supervisor.dependencyLayers(["web-1", "solo-1", "api-1", "db-2", "db-1", "cache-1"])
    #expect(layers == [["solo-1", "db-2", "db-1", "cache-1"], ["api-1"], ["web-1"]])
    let order = layers.flatMap { $0 }
    for (job, needs) in graph {
      for need in needs { #expect(order.firstIndex(of: need)! < order.firstIndex(of: job)!, "\(need) before \(job): \(order)") }
    }
    // Only the jobs asked for, though they need others.
    #expect(supervisor.dependencyLayers(["web-1", "db-1"]) == [["web-1", "db-1"]])
  }

  @Test("a cycle through a group is found, with its path")
  func cycleInHome() throws {
    let t = try TestHome()
    let supervisor = try home(t, [("a-1", ["b"]), ("b-1", ["c-1"]), ("c-1", ["a-1"]), ("d-1", [])])
    #expect(supervisor.findCycle() == ["a-1", "b-1", "c-1", "a-1"])
    // Each job of the cycle still comes once, the cycle's jobs together last.
    #expect(supervisor.dependencyLayers(["a-1", "b-1", "c-1", "d-1"]) == [["d-1"], ["a-1", "b-1", "c-1"]])
  }
}

@Suite("finding a job's program")
struct ProgramPathTests {
  /// The sentence `resolve` throws, or the path it finds.
  func resolved(_ command: String, path: String, in directory: String) -> String {
    do { return try Commands.resolve(command, searchPath: path, directory: directory) } catch { return "error: \(error)" }
  }

  @Test("a name without / is looked up on PATH in order, skipping folders and files that cannot run")
  func onPath() throws {
    let t = try TestHome()
    for folder in ["first", "second", "third", "bin"] {
      try FileManager.default.createDirectory(atPath: t.file(folder), withIntermediateDirectories: true)
    }
    try FileManager.default.createDirectory(atPath: t.file("first/prog"), withIntermediateDirectories: true)
    _ = FileManager.default.createFile(atPath: t.file("second/prog"), contents: Data("#!/bin/sh\n".utf8), attributes: [.posixPermissions: 0o644])
    _ = try t.script("third/prog", "exit 0")
    _ = try t.script("bin/tool", "exit 0")
    _ = try t.script("here", "exit 0")
    let path = [t.file("first"), t.file("second"), "/nonexistent", t.file("third")].joined(separator: ":")
    #expect(resolved("prog", path: path, in: "/") == t.file("third/prog"))
    #expect(resolved("sh", path: "/nonexistent:/bin", in: "/") == "/bin/sh")
    // An empty PATH entry is the directory; a relative one is taken from it.
    #expect(resolved("here", path: "/nonexistent::/usr/bin", in: t.root) == t.file("here"))
    #expect(resolved("tool", path: "bin", in: t.root) == t.file("bin/tool"))
    #expect(resolved("nothing-like-this", path: path, in: "/") == "error: nothing-like-this: command not found")
    #expect(resolved("", path: path, in: "/") == "error: '': command not found")
  }

  @Test("a name with / is taken from the directory, made absolute, and must be an executable file")
  func withSlash() throws {
    let t = try TestHome()
    _ = try t.script("prog", "exit 0")
    _ = FileManager.default.createFile(atPath: t.file("plain"), contents: Data("#!/bin/sh\n".utf8), attributes: [.posixPermissions: 0o644])
    #expect(mkfifo(t.file("fifo"), 0o755) == 0)
    #expect(resolved("./prog", path: "", in: t.root) == t.file("prog"))
    #expect(resolved(t.file("prog"), path: "", in: "/") == t.file("prog"))
    #expect(resolved("./plain", path: "", in: t.root) == "error: \(t.file("plain")): Permission denied (not executable)")
    #expect(resolved("./fifo", path: "", in: t.root) == "error: \(t.file("fifo")): not a regular file")
    #expect(resolved("/tmp/", path: "", in: "/") == "error: /tmp: is a directory")
    #expect(resolved("./missing", path: "", in: t.root) == "error: \(t.file("missing")): No such file or directory")
  }

  @Test("absolute paths: . and doubled slashes go, .. stays (through a link it means something else)")
  func absolutePaths() {
    #expect(Commands.absolute("bin/x", in: "/srv") == "/srv/bin/x")
    #expect(Commands.absolute("./a//b/./c", in: "/srv/") == "/srv/a/b/c")
    #expect(Commands.absolute("../x", in: "/srv/app") == "/srv/app/../x")
    #expect(Commands.absolute("/abs//x/.", in: "/srv") == "/abs/x")
    #expect(Commands.absolute(".", in: "/") == "/")
  }
}
