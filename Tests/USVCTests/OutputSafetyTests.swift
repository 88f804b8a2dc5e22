import Foundation
import Testing

@testable import USVCCore
import USVCContract
import USVCSys

/// What a job prints that a terminal would act on, and bytes that are not UTF-8:
/// `caf\351`, a window title (OSC 0 and 2), a clipboard write (OSC 52), clear
/// screen, a tab, a CR, and colours left set at the end of a line. Each line
/// names what it holds after the sequence.
let hostileOutput = #"caf\351\n\033]0;PWNED\007title\n\033]2;PWNED\033\\title2\n\033]52;c;SGVsbG8=\007clip\n\033[2J\033[Hclear\ttab\r\n\033[1;31mred\n"#

/// `usvc logs` and `usvc events`: verbatim through a pipe, made visible on a
/// terminal. The terminal is a tmux server of the test's own (not usvc's).
@Suite("output safety: logs and events, piped and on a terminal")
struct OutputSafetyTests {
  /// Starts `count` jobs of GROUP that print `hostileOutput`, wait for the file
  /// `GROUP.go`, print it again and `done`, then sleep; returns once every log
  /// holds the first part.
  func startHostile(_ t: TestHome, _ group: String, count: Int) throws {
    let job = try t.script("\(group).sh", """
      printf '\(hostileOutput)'
      while [ ! -e "\(t.file("\(group).go"))" ]; do sleep 0.01; done
      printf 'after go\\n\(hostileOutput)done\\n'
      exec sleep 1000
      """)
    try t.ok("start", "-n", String(count), group, job)
    for index in 1...count {
      #expect(eventually { (readFile(t.home + "/logs/\(group)-\(index).log") ?? []).count > 80 })
    }
  }

  /// Runs usvc with its standard output going to the file `out`; returns what it wrote there.
  func usvcToFile(_ t: TestHome, _ out: String, _ arguments: String...) throws -> [UInt8] {
    let outcome = try TestHome.run(
      ["/bin/sh", "-c", #"out=$1; shift; exec "$@" > "$out""#, "sh", out, usvcBinary] + arguments, environment: t.environment)
    #expect(outcome.status == 0, "\(arguments): \(outcome.stderr)")
    return readFile(out) ?? []
  }

  /// The lines of `bytes`, without their newlines.
  func lines(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
    var lines = bytes.split(separator: 10, omittingEmptySubsequences: false)
    if lines.last?.isEmpty == true { lines.removeLast() }
    return lines
  }

  /// `lines`, each prefixed `NAME | ` and ended by a newline.
  func prefixed(_ name: String, _ lines: [ArraySlice<UInt8>]) -> [UInt8] {
    lines.flatMap { Array("\(name) | ".utf8) + $0 + [10] }
  }

  @Test("logs -n through a pipe is the log byte for byte: invalid UTF-8 and escape sequences included, one job or several with NAME | ")
  func pipedTail() throws {
    let t = try TestHome()
    try startHostile(t, "hx", count: 2)
    let log1 = try #require(readFile(t.home + "/logs/hx-1.log"))
    let log2 = try #require(readFile(t.home + "/logs/hx-2.log"))
    #expect(log1.contains(0xe9) && log1.contains(0x1b))

    // cmp, as a user would check it.
    let out = t.file("one")
    _ = try usvcToFile(t, out, "logs", "-n", "1000", "hx-1")
    #expect(try TestHome.run(["cmp", out, t.home + "/logs/hx-1.log"], environment: t.environment).status == 0)
    #expect(try usvcToFile(t, out, "logs", "-n", "2", "hx-1") == Array(lines(log1).suffix(2).joined(separator: [10])) + [10])

    let both = try usvcToFile(t, t.file("both"), "logs", "-n", "1000", "hx")
    #expect(both == prefixed("hx-1", lines(log1)) + prefixed("hx-2", lines(log2)))
    let lastTwo = try usvcToFile(t, t.file("both"), "logs", "-n", "2", "hx")
    #expect(lastTwo == prefixed("hx-1", Array(lines(log1).suffix(2))) + prefixed("hx-2", Array(lines(log2).suffix(2))))
  }

  @Test("logs -f through a pipe passes on every byte appended, one job or several with NAME | ")
  func pipedFollow() throws {
    let t = try TestHome()
    try startHostile(t, "fx", count: 2)
    let logs = [1, 2].map { t.home + "/logs/fx-\($0).log" }
    // Followers write to files made beforehand (a spawn's open creates files mode 0).
    let outs = ["one", "both"].map(t.file)
    for out in outs { #expect(FileManager.default.createFile(atPath: out, contents: nil)) }
    let followers = try [["fx-1"], ["fx"]].enumerated().map { index, selectors in
      try spawn(
        [usvcBinary, "logs", "-n", "0", "-f"] + selectors, environment: t.environment.map { "\($0.key)=\($0.value)" },
        actions: [.open("/dev/null", as: 0, flags: O_RDONLY), .open(outs[index], as: 1, flags: O_WRONLY | O_TRUNC)])
    }
    defer {
      for pid in followers {
        kill(pid, SIGKILL)
        _ = try? waitForExit(of: pid)
      }
    }
    // Each follower has every log it follows open, at its end: what comes next is what it must pass on.
    func opened(_ pid: pid_t) -> Set<String> {
      Set(directoryEntries("/proc/\(pid)/fd").compactMap { fd in
        var target = [CChar](repeating: 0, count: Int(PATH_MAX))
        let length = readlink("/proc/\(pid)/fd/\(fd)", &target, target.count)
        return length > 0 ? String(decoding: target[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
      })
    }
    #expect(eventually { opened(followers[0]).contains(logs[0]) && opened(followers[1]).isSuperset(of: logs) })
    let sizes = logs.map { readFile($0)?.count ?? 0 }
    _ = FileManager.default.createFile(atPath: t.file("fx.go"), contents: nil)
    let done = Array("done\n".utf8)
    #expect(eventually(within: 20) { logs.allSatisfy { (readFile($0) ?? []).ends(with: done) } })
    let appended = logs.enumerated().map { Array((readFile($1) ?? []).dropFirst(sizes[$0])) }
    #expect(appended[0].count > 80)
    #expect(eventually(within: 20) { readFile(outs[0]) == appended[0] })
    #expect(eventually(within: 20) {
      let both = lines(readFile(outs[1]) ?? [])
      // Lines of two jobs interleave as they come; each job's own are in order.
      return [1, 2].allSatisfy { index in
        let prefix = Array("fx-\(index) | ".utf8)
        let own = both.filter { $0.starts(with: prefix) }.map { $0.dropFirst(prefix.count) }
        return own.flatMap { Array($0) + [10] } == appended[index - 1]
      } && both.count == lines(appended[0]).count + lines(appended[1]).count
    })
  }

  @Test("logs and events on a terminal: control sequences and invalid UTF-8 made visible, the title, clipboard and screen untouched")
  func terminal() throws {
    let t = try TestHome()
    try startHostile(t, "tx", count: 2)
    // An event whose detail holds what a user typed (appended as usvc would write it).
    let events = try FileDescriptor.open(t.home + "/events.log", O_WRONLY | O_APPEND)
    try events.closeAfter { try $0.writeAll("2026-12-02T00:00:00.000Z\ttx-1\tfailed\t/srv/\u{1b}]0;PWNED\u{07}prog\tmore\n") }

    let terminal = try UserTerminal(t)
    let screen = try terminal.run("logs -n 100 tx-1; usvc logs -n 100 tx; usvc events -n 1")
    #expect(screen.contains(#"caf\xe9"#))
    #expect(screen.contains(#"\x1b]0;PWNED\x07title"#))
    #expect(screen.contains(#"\x1b]2;PWNED\x1b\title2"#))
    #expect(screen.contains(#"\x1b]52;c;SGVsbG8=\x07clip"#))
    #expect(screen.contains(#"\x1b[2J\x1b[Hclear"#) && screen.contains(#"tab\x0d"#))
    #expect(screen.contains(#"tx-2 | \x1b]0;PWNED\x07title"#))
    #expect(screen.contains(#"/srv/\x1b]0;PWNED\x07prog"#))
    #expect(screen.hasPrefix("[usvc] started pid "), "\(screen.prefix(200))")
    #expect(try terminal.tmux("display", "-p", "#{pane_title}").stdout == terminal.title)
    #expect(try terminal.tmux("list-buffers").stdout == "", "OSC 52 set tmux's clipboard")
    // NO_COLOR=1 (as the harness sets it): colours are escaped like the rest.
    #expect(screen.contains(#"\x1b[1;31mred"#))
  }

  @Test("logs on a terminal keep a job's colours (SGR only, reset at the end of each line) unless NO_COLOR")
  func terminalColors() throws {
    let t = try TestHome()
    try startHostile(t, "co", count: 1)
    t.environment["NO_COLOR"] = nil
    let terminal = try UserTerminal(t)
    let screen = try terminal.run("logs -n 100 co-1; echo after-logs", escapes: true)
    // Red as the job asked, then back to plain before the next line.
    #expect(screen.contains("\u{1b}[1;31mred\u{1b}[39m") || screen.contains("\u{1b}[1m\u{1b}[31mred"), "\(screen)")
    // capture-pane -e writes attributes only where they change: the red ends
    // between "red" and the next line (tmux writes it as 0, 39 and 49).
    let between = screen.components(separatedBy: "red").last?.components(separatedBy: "after-logs").first ?? ""
    #expect(between.contains("\u{1b}[39m") || between.contains("\u{1b}[0m"), "the colour outlasted the line: \(between.debugDescription)")
    // Everything else is still escaped.
    #expect(screen.contains(#"\x1b]0;PWNED\x07title"#) && screen.contains(#"\x1b[2J\x1b[Hclear"#))
    #expect(try terminal.tmux("display", "-p", "#{pane_title}").stdout == terminal.title)
  }

  @Test("NO_COLOR set but empty leaves status coloured on a terminal; any value turns colour off")
  func noColorEmpty() throws {
    let t = try TestHome()
    try t.ok("start", "cl", "sleep", "1000")
    t.environment["NO_COLOR"] = ""
    let coloured = try UserTerminal(t).run("status", escapes: true)
    #expect(coloured.contains("\u{1b}[32mrunning"), "\(coloured)")
    t.environment["NO_COLOR"] = "1"
    let plain = try UserTerminal(t).run("status", escapes: true)
    #expect(!plain.contains("\u{1b}[32m") && plain.contains("running"), "\(plain)")
  }
}

/// A terminal for usvc to print to: a tmux server of the test's own, one pane
/// 140 by 40, with tmux's clipboard open to programs (`set-clipboard on`), so
/// that an OSC 52 that got through would show in `list-buffers`.
final class UserTerminal: @unchecked Sendable {  // Used from one test at a time.
  let home: TestHome
  let socket: String
  /// The pane's title before usvc ran.
  private(set) var title = ""

  init(_ home: TestHome) throws {
    self.home = home
    socket = home.root + "/term-\(UInt32.random(in: 0...UInt32.max)).sock"
  }

  deinit { _ = try? tmux("kill-server") }

  func tmux(_ arguments: String...) throws -> Outcome {
    try TestHome.run(["tmux", "-S", socket] + arguments, environment: home.environment)
  }

  /// Runs `usvc WORDS` (a shell line after `usvc`: the test's own words) in the
  /// pane once the clipboard option is set, and returns the screen and history
  /// (with colour escapes when `escapes`) once it ended.
  func run(_ words: String, escapes: Bool = false) throws -> String {
    let go = socket + ".go"
    let end = "END-OF-USVC-OUTPUT"
    // usvc is found as `usvc` on PATH for the ; chains in WORDS.
    let directory = URL(fileURLWithPath: usvcBinary).deletingLastPathComponent().path
    let command = "while [ ! -e '\(go)' ]; do sleep 0.02; done; PATH='\(directory)':$PATH; usvc \(words); echo \(end); exec sleep 600"
    let started = try tmux("-f", "/dev/null", "new-session", "-d", "-x", "140", "-y", "40", command)
    guard started.status == 0 else { throw FixtureError(what: "tmux new-session", output: started.stderr) }
    _ = try tmux("set-option", "-g", "set-clipboard", "on")
    _ = try tmux("set-option", "-g", "history-limit", "10000")
    title = try tmux("display", "-p", "#{pane_title}").stdout
    _ = FileManager.default.createFile(atPath: go, contents: nil)
    var screen = ""
    let ended = try eventually(within: 20) {
      screen = try tmux(["capture-pane", "-p", "-J", "-S", "-"] + (escapes ? ["-e"] : [])).stdout
      return screen.contains("\n" + end)
    }
    guard ended else { throw FixtureError(what: "usvc \(words) in a terminal", output: screen) }
    return String(screen[..<screen.range(of: "\n" + end)!.lowerBound])
  }

  private func tmux(_ arguments: [String]) throws -> Outcome {
    try TestHome.run(["tmux", "-S", socket] + arguments, environment: home.environment)
  }
}

@Suite("rotation bounds, signals, not-running jobs, help topics")
struct BoundsAndNitsTests {
  @Test("at the largest log-keep and the smallest log-max-bytes, 12 MB of output costs the runner little CPU, keeps 1000 copies, and stop succeeds")
  func cheapRotation() throws {
    let t = try TestHome()
    let job = try t.script("burst", """
      while [ ! -e "\(t.file("go"))" ]; do sleep 0.01; done
      head -c 12000000 /dev/zero | tr '\\0' 'x' | fold -w 99
      echo; echo burst done
      exec sleep 1000
      """)
    try t.ok("start", "bu", job)
    try t.ok("conf", "bu-1", "log-keep", String(LogRotation.keepRange.upperBound))
    try t.ok("conf", "bu-1", "log-max-bytes", String(LogRotation.maxBytesRange.lowerBound))
    try t.ok("restart", "bu-1")
    let runner = try #require(try t.view("bu-1").runner)
    let before = try #require(ProcStat.read(runner)).cpuTicks
    _ = FileManager.default.createFile(atPath: t.file("go"), contents: nil)
    #expect(try eventually(within: 120) { try t.usvc("logs", "-n", "1", "bu-1").stdout == "burst done\n" })
    let ticks = try #require(ProcStat.read(runner)).cpuTicks - before
    let seconds = Double(ticks) / Double(sysconf(Int32(_SC_CLK_TCK)))
    // 1,500 rotations at least (the runner reads 8 KiB at most at a time, and
    // rotates after a write that reaches log-max-bytes). Shifting up to 1,000
    // copies on each is over a million renames; a rotation of a constant few
    // calls leaves the runner the copying of 12 MB to the pane and the log
    // (0.2-0.5 s of CPU in a debug build here).
    print("cheap rotation: runner CPU \(seconds) s for 12 MB at log-max-bytes 4096, log-keep 1000; copies \(t.rotatedLogs(of: "bu-1").count), newest \(t.rotatedLogs(of: "bu-1").last ?? 0)")
    #expect(seconds < 2, "the runner used \(seconds) s of CPU")
    let copies = t.rotatedLogs(of: "bu-1")
    #expect(copies.count == 1000 && copies == Array((copies.first ?? 0)...(copies.last ?? 0)), "\(copies.count) copies")
    #expect((copies.first ?? 0) > 1, "the oldest copies were removed")
    // What the copies kept hold is whole and in order (the oldest may begin mid-line).
    let lines = try t.ok("logs", "-n", "200000", "bu-1").lines
    #expect(lines.count > 40_000 && lines.dropFirst().dropLast(2).allSatisfy { $0 == String(repeating: "x", count: 99) })
    #expect(try t.ok("stop", "bu-1").stdout == "stopped bu-1\n")
  }

  @Test("a hand-edited spec with log-keep or log-max-bytes out of bounds is clamped by the runner")
  func clampedByRunner() throws {
    let t = try TestHome()
    // One line at a time (the runner rotates at most once per write it copies), about 6.5 KB.
    let job = try t.script("chatty", "i=0; while [ $i -lt 60 ]; do i=$((i + 1)); echo \"line $i \(String(repeating: ".", count: 100))\"; sleep 0.01; done; exec sleep 1000")
    try t.ok("start", "cr", job)
    // As if the conf had been edited by hand: the runner reads the spec.
    let spec = t.home + "/run/cr-1.spec"
    var fields = (readFile(spec) ?? []).split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    for index in stride(from: 0, to: fields.count - 1, by: 2) where fields[index] == "log-max-bytes" { fields[index + 1] = "100" }
    for index in stride(from: 0, to: fields.count - 1, by: 2) where fields[index] == "log-keep" { fields[index + 1] = "100000" }
    try writeFileAtomically(spec, Array(fields.joined(separator: "\0").utf8))
    let pid = try #require(try t.pid("cr-1"))
    try t.ok("kill", "cr-1")
    #expect(try eventually { try t.pid("cr-1").map { $0 != pid } ?? false })
    #expect(try eventually(within: 20) { try t.usvc("logs", "-n", "1", "cr-1").stdout.hasPrefix("line 60 ") })
    // The second run, under the edited spec: one copy or two at 4096 bytes, not one per line at 100.
    let copies = t.rotatedLogs(of: "cr-1")
    #expect((1...3).contains(copies.count), "\(copies)")
  }

  @Test("kill and pidof name each job that is not running on stderr; exit 1 only when none runs")
  func notRunning() throws {
    let t = try TestHome()
    try t.ok("start", "-n", "2", "nr", "sleep", "1000")
    try t.ok("stop", "nr-2")
    let pid = try #require(try t.pid("nr-1"))
    let pidof = try t.usvc("pidof", "nr")
    #expect(pidof.status == 0 && pidof.stdout == "\(pid)\n" && pidof.stderr == "usvc: nr-2 is not running\n")
    let pidofNone = try t.usvc("pidof", "nr-2")
    #expect(pidofNone.status == 1 && pidofNone.stdout == "" && pidofNone.stderr == "usvc: nr-2 is not running\n")
    let kill = try t.usvc("kill", "-s", "CONT", "nr")
    #expect(kill.status == 0 && kill.stdout == "sent SIGCONT to nr-1\n" && kill.stderr == "usvc: nr-2 is not running\n")
    let killNone = try t.usvc("kill", "nr-2")
    #expect(killNone.status == 1 && killNone.stdout == "" && killNone.stderr == "usvc: nr-2 is not running\n")
    #expect(try t.pid("nr-1") == pid)
  }

  @Test("kill -s takes real-time signals by name: RTMIN, SIGRTMIN+3, RTMAX-2 reach the job")
  func realTimeSignals() throws {
    let t = try TestHome()
    let low = __libc_current_sigrtmin()
    let high = __libc_current_sigrtmax()
    let numbers = [low, low + 3, high - 2]
    let traps = numbers.map { "trap 'echo got \($0)' \($0)" }.joined(separator: "; ")
    let job = try t.script("rt", "\(traps); echo ready; while :; do sleep 0.05 & wait $!; done")
    try t.ok("start", "rt", job)
    #expect(try eventually { try t.usvc("logs", "rt-1").lines.contains("ready") })
    for (name, number) in zip(["RTMIN", "SIGRTMIN+3", "rtmax-2"], numbers) {
      let sent = try t.ok("kill", "-s", name, "rt-1")
      #expect(sent.stdout == "sent \(Signal(rawValue: number)) to rt-1\n")
      #expect(try eventually { try t.usvc("logs", "rt-1").lines.contains("got \(number)") }, "\(name)")
    }
    #expect(try t.ok("kill", "-s", "SIGRTMIN+3", "rt-1").stdout == "sent SIGRTMIN+3 to rt-1\n")
  }

  @Test("signal names: the kernel's 31, real-time ones as kill(1) and bash write them, numbers 1 to 64")
  func signalNames() {
    let low = __libc_current_sigrtmin()
    let high = __libc_current_sigrtmax()
    #expect(Signal(parsing: "RTMIN")?.rawValue == low)
    #expect(Signal(parsing: "SIGRTMIN+3")?.rawValue == low + 3)
    #expect(Signal(parsing: "rtmin+0")?.rawValue == low)
    #expect(Signal(parsing: "RTMAX")?.rawValue == high)
    #expect(Signal(parsing: "SIGRTMAX-2")?.rawValue == high - 2)
    #expect(Signal(parsing: "RTMAX-\(high - low)")?.rawValue == low)
    for bad in ["RTMIN+\(high - low + 1)", "RTMAX-\(high - low + 1)", "RTMIN-1", "RTMAX+1", "RTMIN+", "RTMIN+x", "RTMIN+ 1", "RTMIN+100", "RTMINX", "RT"] {
      #expect(Signal(parsing: bad) == nil, "\(bad)")
    }
    #expect(Signal(rawValue: low).description == "SIGRTMIN")
    #expect(Signal(rawValue: low + 3).description == "SIGRTMIN+3")
    #expect(Signal(rawValue: high - 2).description == "SIGRTMAX-2")
    #expect(Signal(rawValue: high).description == "SIGRTMAX")
    #expect(Signal(rawValue: 32).description == "SIG32")
    for number in Int32(1)...64 where number != 32 && number != 33 {
      #expect(Signal(parsing: Signal(rawValue: number).description)?.rawValue == number)
    }
  }

  @Test("Visible.escaped: controls as \\xHH, newline as \\n, tabs kept or not, invalid UTF-8 byte by byte, printable UTF-8 as it is")
  func visibleBytes() {
    func shown(_ bytes: [UInt8], tabs: Bool = true) -> String { String(decoding: Visible.escaped(bytes, keepingTabs: tabs), as: UTF8.self) }
    #expect(shown(Array("café ✓ 日本 😀".utf8)) == "café ✓ 日本 😀")
    #expect(shown([0x63, 0x61, 0x66, 0xe9]) == #"caf\xe9"#)
    #expect(shown([0xff, 0xfe, 0xc3, 0x28]) == #"\xff\xfe\xc3("#)
    #expect(shown([0xe2, 0x82]) == #"\xe2\x82"#)  // Cut short.
    #expect(shown([0xed, 0xa0, 0x80]) == #"\xed\xa0\x80"#)  // A surrogate.
    #expect(shown(Array("\u{1b}]0;t\u{07}\r\u{7f}\u{9b}a\tb\nc".utf8)) == #"\x1b]0;t\x07\x0d\x7f\x9ba"# + "\tb" + #"\nc"#)
    #expect(shown(Array("a\tb".utf8), tabs: false) == #"a\tb"#)
    #expect("x\ny\u{1b}".visible == #"x\ny\x1b"#)
    // Colours (SGR) only, when asked, with a reset at the end.
    func colored(_ text: String) -> String { String(decoding: Visible.escaped(Array(text.utf8), keepingTabs: true, keepingColors: true), as: UTF8.self) }
    #expect(colored("\u{1b}[1;31mred\u{1b}[38;5;196m!") == "\u{1b}[1;31mred\u{1b}[38;5;196m!\u{1b}[0m")
    #expect(colored("\u{1b}[2J\u{1b}[Hx\u{1b}]0;t\u{07}") == #"\x1b[2J\x1b[Hx\x1b]0;t\x07"#)
    #expect(colored("\u{1b}[1;31") == #"\x1b[1;31"#)
    #expect(colored("\u{1b}[" + String(repeating: "1", count: 40) + "m") == #"\x1b["# + String(repeating: "1", count: 40) + "m")
    #expect(colored("plain") == "plain")
    #expect(shown(Array("\u{1b}[31mred".utf8)) == #"\x1b[31mred"#)
  }
}

extension Array where Element == UInt8 {
  func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}
