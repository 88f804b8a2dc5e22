import Foundation
import Testing

@testable import USVCCore
import USVCSys

extension TestHome {
  /// Runs usvc under an address-space limit of 1 GiB and a 120 s timeout, so
  /// a command that grows without bound fails instead of eating the machine
  /// (conf writes once cost 2 GB for 1,000 values).
  func usvcUnderLimits(_ arguments: [String], environment: [String]? = nil, runAs: [String] = []) throws -> Outcome {
    let argv = runAs + ["/usr/bin/timeout", "-s", "KILL", "120", "/bin/sh", "-c", "ulimit -v 1048576 && exec \"$@\"", "sh", usvcBinary] + arguments
    let result = try runCapturing(argv, environment: environment ?? self.environment.map { "\($0.key)=\($0.value)" })
    let status: Int32
    switch result.status {
    case .exited(let code): status = code
    case .signaled(let signal): status = 128 + signal.rawValue
    }
    return Outcome(status: status, stdout: result.output, stderr: result.errorOutput)
  }

  /// The bytes of a file (nil when missing).
  func bytes(_ path: String) -> [UInt8]? { readFile(path) }

  /// The NUL-separated fields of a file, as bytes.
  func fields(_ path: String) -> [[UInt8]]? {
    bytes(path).map { $0.split(separator: 0, omittingEmptySubsequences: false).dropLast().map(Array.init) }
  }

  /// What `git config -z -f CONF --get-all KEY` prints, as bytes (through a
  /// file: captured output is decoded as UTF-8).
  func gitValues(_ conf: String, _ key: String) throws -> [[UInt8]] {
    let out = file("git.out")
    let outcome = try TestHome.run(["/bin/sh", "-c", "git config -z -f \"$0\" --get-all \"$1\" > \"$2\"", conf, key, out], environment: environment)
    #expect(outcome.status == 0, "\(outcome.stderr)")
    return fields(out) ?? []
  }
}

/// Inputs too big, for the hostile-input tables.
enum TooMany {
  static let cap = ConfKeys.maximumValues
  /// One word more than a list key may hold.
  static let words: [String] = Array(repeating: "x", count: cap + 1)
  static let wordsButTwo: [String] = Array(repeating: "x", count: cap - 1)
  static func message(_ key: String) -> String { "usvc: too many values for \(key): \(cap + 1) (at most \(cap) per key)" }
  /// 1,100 `-e A=1`: more words than usvc parses besides a program's arguments.
  static let options: [String] = Array(Array(repeating: ["-e", "A=1"], count: 1100).joined())
  static let optionsMessage = "usvc: too many words: 2203 (at most 2048 besides a program's arguments or a conf key's values)"
}

/// Conf values: how many a conf may hold (issue 9, item 1), their bytes
/// (items 6 and 10), how they are shown (item 18) and saved (item 17).
@Suite("conf values: sizes, bytes, control characters, show, save and load")
struct ConfValuesTests {
  static let cap = ConfKeys.maximumValues

  /// A job that writes its arguments and environment, NUL-separated, to
  /// OUT.args and OUT.env, then sleeps.
  func dumper(_ t: TestHome) throws -> String {
    try t.script("dump", """
      for a in "$@"; do printf '%s\\0' "$a"; done > "$OUT.args.tmp"; mv "$OUT.args.tmp" "$OUT.args"
      env -0 > "$OUT.env.tmp"; mv "$OUT.env.tmp" "$OUT.env"
      exec sleep 1000
      """)
  }

  @Test("start with one value more than the cap is refused up front, nothing written; with the cap it runs", .timeLimit(.minutes(3)))
  func capOfValues() throws {
    let t = try TestHome()
    // `-c` and the script are values of job.args too.
    let over = try t.usvcUnderLimits(["start", "big", "sh", "-c", "exit 0"] + (1...(Self.cap - 1)).map(String.init))
    #expect(over.status == 1)
    #expect(over.stdout == "")
    #expect(over.stderr == "usvc: too many values for job.args: \(Self.cap + 1) (at most \(Self.cap) per key)\n")
    #expect((try? FileManager.default.contentsOfDirectory(atPath: t.home + "/jobs"))?.filter { !$0.hasPrefix(".") } ?? [] == [])
    #expect(!FileManager.default.fileExists(atPath: t.home + "/tmux.sock"))

    let count = t.file("count")
    let atCap = try t.usvcUnderLimits(
      ["start", "big", "sh", "-c", "echo $# > \(count).tmp; mv \(count).tmp \(count); exec sleep 1000"] + (1...(Self.cap - 2)).map(String.init))
    #expect(atCap.status == 0, "\(atCap.stderr)")
    #expect(atCap.stdout == "started big-1\n")
    // sh's $0 is the first word after the script: the job got every other one.
    #expect(eventually { t.read(count) == "\(Self.cap - 3)\n" })
    #expect(try t.gitValues(t.home + "/jobs/big-1.conf", "job.args").count == Self.cap)

    // conf: one more than the cap is refused and changes nothing; the cap is written.
    let before = t.bytes(t.home + "/jobs/big-1.conf")
    let conf = try t.usvcUnderLimits(["conf", "big-1", "env"] + (0...Self.cap).map { "V\($0)=\($0)" })
    #expect(conf.status == 1)
    #expect(conf.stderr == "usvc: too many values for job.env: \(Self.cap + 1) (at most \(Self.cap) per key)\n")
    #expect(t.bytes(t.home + "/jobs/big-1.conf") == before)
    let set = try t.usvcUnderLimits(["conf", "big-1", "env"] + (1...Self.cap).map { "V\($0)=\($0)" })
    #expect(set.status == 0, "\(set.stderr)")
    #expect(try t.gitValues(t.home + "/jobs/big-1.conf", "job.env").count == Self.cap)
  }

  @Test("load of a group with more values than the cap is refused, nothing created", .timeLimit(.minutes(2)))
  func loadCap() throws {
    let t = try TestHome()
    let file = t.file("many.conf")
    let text = "[group \"many\"]\n\tcmd = /bin/sleep\n" + (0...Self.cap).map { "\targs = \($0)\n" }.joined()
    try text.write(toFile: file, atomically: true, encoding: .utf8)
    let outcome = try t.usvcUnderLimits(["load", file])
    #expect(outcome.status == 1)
    #expect(outcome.stderr == "usvc: \(file): group.many: too many values for job.args: \(Self.cap + 1) (at most \(Self.cap) per key)\n")
    #expect(try t.ok("jobs").stdout == "")
    #expect(!FileManager.default.fileExists(atPath: t.home + "/tmux.sock"))
  }

  @Test("arguments and environment that are not UTF-8 reach the job byte for byte, and the conf, spec and git hold the same bytes")
  func bytesThatAreNotUTF8() throws {
    let t = try TestHome()
    let out = t.file("out")
    let dump = try dumper(t)
    let odd: [[UInt8]] = [[0xFF, 0xFE], [0xC3, 0x28], [0xF4, 0x8F, 0xBF, 0xBF], [0xED, 0xA0, 0x80], Array("plain ✓".utf8)]
    var environment = t.environment.map { "\($0.key)=\($0.value)" }
    environment += ["OUT=\(out)", String(lossless: Array("BADENV=".utf8) + [0xFF])]
    let started = try t.usvcUnderLimits(["start", "hx", dump] + odd.map { String(lossless: $0) }, environment: environment)
    #expect(started.status == 0, "\(started.stderr)")
    #expect(eventually { FileManager.default.fileExists(atPath: out + ".env") })
    #expect(t.fields(out + ".args") == odd)
    #expect(t.fields(out + ".env")?.contains(Array("BADENV=".utf8) + [0xFF]) == true)
    let conf = t.home + "/jobs/hx-1.conf"
    #expect(try t.gitValues(conf, "job.args") == odd)
    #expect(try t.gitValues(conf, "job.env").contains(Array("BADENV=".utf8) + [0xFF]))
    let spec = try #require(t.bytes(t.home + "/run/hx-1.spec"))
    for value in odd { #expect(spec.split(separator: 0).contains { Array($0) == value }) }
    // show and conf print each byte that is not UTF-8 as \xNN, on the value's own line.
    let show = try t.ok("show", "hx-1").lines
    #expect(show.filter { $0.hasPrefix("job.args: ") } == [
      "job.args: \\xff\\xfe", "job.args: \\xc3(", "job.args: \\xf4\\x8f\\xbf\\xbf", "job.args: \\xed\\xa0\\x80", "job.args: plain ✓",
    ])
    #expect(show.contains("job.env: BADENV=\\xff"))
    #expect(try t.ok("conf", "hx-1", "args").lines == ["\\xff\\xfe", "\\xc3(", "\\xf4\\x8f\\xbf\\xbf", "\\xed\\xa0\\x80", "plain ✓"])
    // conf writes them back as given; restart runs the job with them again.
    try t.ok("conf", "hx-1", "args", String(lossless: [0x80]), String(lossless: [0x61, 0xFF, 0x62]))
    unlink(out + ".env")
    try t.ok("restart", "hx-1")
    #expect(eventually { FileManager.default.fileExists(atPath: out + ".env") })
    #expect(t.fields(out + ".args") == [[0x80], [0x61, 0xFF, 0x62]])
  }

  @Test("control characters (ESC, CR, …) in arguments, -e and caller variables are kept, and shown escaped")
  func controlCharacters() throws {
    let t = try TestHome()
    let out = t.file("out")
    let dump = try dumper(t)
    t.environment["LESS_TERMCAP_md"] = "\u{1b}[01;31m"
    t.environment["ENDS_IN_CR"] = "value\r"
    let arguments = ["a\rb", "\r", "ends\r", "\r\nboth", "\u{1b}]52;c;aGk=\u{7}", "\u{7f}del", "\u{1}\u{2}\u{1f}", "tab\tnew\nline"]
    let started = try t.usvcUnderLimits(["start", "-e", "OUT=\(out)", "-e", "DASH_E=x\ry\u{1b}", "cc", dump] + arguments)
    #expect(started.status == 0, "\(started.stderr)")
    #expect(started.stderr == "")
    #expect(eventually { FileManager.default.fileExists(atPath: out + ".env") })
    #expect(t.fields(out + ".args") == arguments.map { Array($0.utf8) })
    let environment = t.fields(out + ".env") ?? []
    for variable in ["LESS_TERMCAP_md=\u{1b}[01;31m", "ENDS_IN_CR=value\r", "DASH_E=x\ry\u{1b}"] {
      #expect(environment.contains(Array(variable.utf8)), "\(variable.debugDescription)")
    }
    let conf = t.home + "/jobs/cc-1.conf"
    #expect(try t.gitValues(conf, "job.args") == arguments.map { Array($0.utf8) })
    #expect(try t.gitValues(conf, "job.env").contains(Array("ENDS_IN_CR=value\r".utf8)))
    // Printed escaped: no raw control character reaches the terminal.
    let show = try t.ok("show", "cc-1").stdout
    #expect(!show.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" || $0.value == 0x7f })
    #expect(show.contains("job.env: LESS_TERMCAP_md=\\x1b[01;31m\n"))
    #expect(show.contains("job.args: a\\x0db\n"))
    let listing = try t.ok("conf", "cc-1").stdout
    #expect(listing.contains("job.env=ENDS_IN_CR=value\\x0d\n"))
    #expect(!listing.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" })
    #expect(try t.ok("conf", "cc-1", "args").lines.count == arguments.count)
  }

  @Test("a caller variable that is not KEY=VALUE gets a one-line warning naming it; the start goes on")
  func unkeptVariable() throws {
    let t = try TestHome()
    // Straight from here: a shell in between would drop such an entry itself.
    let environment = t.environment.map { "\($0.key)=\($0.value)" } + ["NOEQUALS\u{1b}"]
    let outcome = try runCapturing([usvcBinary, "start", "wv", "sleep", "1000"], environment: environment)
    #expect(outcome.status == .exited(0))
    #expect(outcome.output == "started wv-1\n")
    #expect(outcome.errorOutput == "usvc: warning: the jobs do not get 'NOEQUALS\\x1b' from your environment: it is not KEY=VALUE\n")
  }

  @Test("show prints an argument holding a newline on its own line, escaped: no fake key line")
  func showEscapesNewlines() throws {
    let t = try TestHome()
    try t.ok("start", "nl", "sh", "-c", "exec sleep 1000", "x\njob.cmd: /bin/evil", "tab\there")
    let lines = try t.ok("show", "nl-1").lines
    #expect(lines.filter { $0.hasPrefix("job.cmd: ") } == ["job.cmd: /usr/bin/sh"] || lines.filter { $0.hasPrefix("job.cmd: ") } == ["job.cmd: /bin/sh"])
    #expect(lines.contains("job.args: x\\njob.cmd: /bin/evil"))
    #expect(lines.contains("job.args: tab\\there"))
    #expect(try t.ok("conf", "nl-1", "args").lines == ["-c", "exec sleep 1000", "x\\njob.cmd: /bin/evil", "tab\\there"])
    #expect(try t.ok("conf", "nl-1").lines.filter { $0.hasPrefix("job.cmd=") }.count == 1)
  }

  @Test("save then load gives each job of a group its own settings, not the first job's")
  func saveLoadPerJob() throws {
    let t = try TestHome()
    try t.ok("start", "-n", "3", "sv", "sleep", "1000")
    try t.ok("conf", "sv-1", "stop-timeout", "7")
    try t.ok("conf", "sv-3", "args", "2000")
    try t.ok("conf", "sv-2", "pre", "/bin/true", "two")
    let saver = try t.supervisor
    var before: [String: [String: [String]]] = [:]
    for name in ["sv-1", "sv-2", "sv-3"] { before[name] = SaveLoadCheckTests.shape(try saver.store.load(name)) }
    let file = t.file("saved.conf")
    try t.ok("save", file)
    #expect(try TestHome.run(["git", "config", "-f", file, "--list"], environment: t.environment).status == 0)
    try t.ok("rm", "all")
    #expect(try t.ok("load", file).lines == ["started sv-1", "started sv-2", "started sv-3"])
    let loader = try t.supervisor
    for name in ["sv-1", "sv-2", "sv-3"] {
      #expect(SaveLoadCheckTests.shape(try loader.store.load(name)) == before[name], "\(name)")
    }
    #expect(try t.ok("conf", "sv-1", "stop-timeout").stdout == "7\n")
    #expect(try t.ok("conf", "sv-2", "stop-timeout").stdout == "")
    #expect(try t.ok("conf", "sv-3", "args").stdout == "2000\n")
    #expect(try t.ok("conf", "sv-2", "pre").lines == ["/bin/true", "two"])
    #expect(try t.ok("conf", "sv-1", "pre").stdout == "")
    for name in ["sv-1", "sv-2", "sv-3"] { #expect(try eventually { try t.state(name) == .running }) }
  }

  @Test("load refuses a job section that names no job of the file")
  func loadRefusesStrayJobSections() throws {
    let t = try TestHome()
    for (text, message) in [
      ("[group \"a\"]\n\tcmd = /bin/sleep\n\tcount = 2\n[job \"a-3\"]\n\targs = 1\n", "[job \"a-3\"]: group a has 2 jobs"),
      ("[group \"a\"]\n\tcmd = /bin/sleep\n[job \"b-1\"]\n\targs = 1\n", "'job.b-1.args': [job \"b-1\"] names no job of a group of this file"),
      ("[group \"a\"]\n\tcount = 2\n[job \"a-1\"]\n\tcmd = /bin/sleep\n", "group.a.cmd is missing"),
      ("[group \"a\"]\n\tcmd = /bin/sleep\n[job \"a-1\"]\n\tcolour = red\n", "unknown key 'job.a-1.colour'"),
    ] {
      let file = t.file("bad.conf")
      try text.write(toFile: file, atomically: true, encoding: .utf8)
      let outcome = try t.usvc("load", file)
      #expect(outcome.status == 1)
      #expect(outcome.stderr == "usvc: \(file): \(message)\n")
      #expect(try t.ok("jobs").stdout == "")
    }
  }
}

/// The write path and lossless text, without processes.
@Suite("conf writes and lossless text")
struct ConfWriteUnitTests {
  @Test("lossless text gives back every byte string it decoded, UTF-8 or not")
  func losslessRoundTrip() {
    var samples: [[UInt8]] = [[], Array("plain".utf8), Array("ünï ✓ 🎉".utf8), [0xFF], [0xC3, 0x28], [0xE2, 0x82], [0xF4, 0x8F, 0xBE, 0x80],
                              [0xF4, 0x90, 0x80, 0x80], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0x61, 0xF4, 0x8F, 0xBF]]
    for byte in 0x80...0xFF { samples.append([UInt8(byte), 0x41]) }
    for bytes in samples {
      let text = String(lossless: bytes)
      #expect(text.losslessBytes == bytes, "\(bytes)")
    }
    #expect(String(lossless: Array("é".utf8)) == "é")
    #expect(String(lossless: [0xFF]) != String(lossless: [0xFE]))
  }

  @Test("one block per key: every byte but NUL at the start, middle and end of a value reads back the same through libgit2 and git")
  func everyByteRoundTrips() throws {
    let t = try TestHome()
    var values: [String] = []
    for byte in 1...255 {
      for shape in [[UInt8(byte)], [0x61, UInt8(byte), 0x62], [0x61, 0x62, UInt8(byte)]] { values.append(String(lossless: shape)) }
    }
    values += ["", " ", " pad ", "semi;", "#", "\"", "\\", "\r\n", "a\\nb"]
    let path = t.file("every.conf")
    try ConfStore.write([.set("job.args", values), .set("job.cmd", ["/bin/true"])], to: path, temporary: path + ".new", startingEmpty: true)
    #expect(try ConfStore.read(path).values("job.args") == values)
    #expect(try t.gitValues(path, "job.args") == values.map(\.losslessBytes))
    // A second write replaces the list, and leaves the other key alone.
    try ConfStore.write([.set("job.args", ["x;", "y"])], to: path, temporary: path + ".new", startingEmpty: false)
    #expect(try t.gitValues(path, "job.args") == [Array("x;".utf8), Array("y".utf8)])
    #expect(try ConfStore.read(path).value("job.cmd") == "/bin/true")
  }
}
