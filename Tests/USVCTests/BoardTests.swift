import Foundation
import Testing

@testable import USVCCore
import USVCSys

/// A user's terminal: a separate tmux server whose one pane runs a command,
/// read with `capture-pane` (what a person sees) and typed into with `send-keys`.
final class TestTerminal {
  let socket: String
  let environment: [String: String]

  /// Runs `argv` in a 140 × 40 pane; when it ends the pane says `board exited STATUS`
  /// and stays (so what is left on the screen can be read).
  init(_ t: TestHome, _ argv: [String], width: Int = 140, height: Int = 40) throws {
    // A socket of its own: a server just killed may still hold the previous one.
    socket = t.root + "/term-" + UUID().uuidString.prefix(8) + ".sock"
    environment = t.environment
    let shell = ["sh", "-c", "\"$@\"; echo \"board exited $?\"; exec sleep 100000", "sh"]
    let started = try TestHome.run(
      ["tmux", "-S", socket, "-f", "/dev/null", "new-session", "-d", "-x", String(width), "-y", String(height), "--"]
        + shell + argv, environment: environment)
    #expect(started.status == 0, "\(started.stderr)")
  }

  deinit { _ = try? tmux("kill-server") }

  @discardableResult
  func tmux(_ arguments: String...) throws -> Outcome {
    try TestHome.run(["tmux", "-S", socket] + arguments, environment: environment)
  }

  /// What the pane shows now, one string per row.
  func screen() throws -> [String] { try tmux("capture-pane", "-p").stdout.components(separatedBy: "\n") }

  func send(_ keys: String...) throws { _ = try TestHome.run(["tmux", "-S", socket, "send-keys"] + keys, environment: environment) }

  /// Whether the pane is on the alternate screen (the board's).
  func alternateScreen() throws -> Bool { try tmux("display", "-p", "#{alternate_on}").stdout.hasPrefix("1") }

  /// The fields of job `name`'s row (the cursor's `>` dropped), if it is on the screen.
  func row(_ name: String) throws -> [String]? {
    for line in try screen() {
      var fields = line.split(separator: " ").map(String.init)
      guard let first = fields.first else { continue }
      fields[0] = first.hasPrefix(">") ? String(first.dropFirst()) : first
      if fields[0] == name { return fields }
    }
    return nil
  }

  /// The job the cursor is on.
  func cursor() throws -> String? {
    try screen().first { $0.hasPrefix(">") }.map { String($0.dropFirst().split(separator: " ").first ?? "") }
  }

  /// The board's process: the child of the pane's shell.
  func boardPid() throws -> pid_t? {
    guard let shell = pid_t(try tmux("display", "-p", "#{pane_pid}").stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    else { return nil }
    return ProcStat.all().first { $0.parent == shell && $0.state != "Z" }?.pid
  }
}

@Suite("the board (usvc top)", .serialized)
struct BoardTests {
  @Test("without a terminal, top says so in one usvc: line and exits 1")
  func notATerminal() throws {
    let t = try TestHome()
    let outcome = try t.usvc("top")
    #expect(outcome.status == 1)
    #expect(outcome.stderr == "usvc: top needs a terminal: standard input and output are not one\n")
    #expect(outcome.stdout.isEmpty)
  }

  @Test("in a terminal, a bad selector or refresh interval is one usvc: line and exit 1, the screen untouched")
  func badInput() throws {
    let t = try TestHome()
    try t.ok("start", "web", "sleep", "100000")
    for (arguments, message) in [(["nope"], "usvc: no job or group named 'nope'"), (["-d", "0"], "usvc: bad value for -d: '0.0': expected 0.1 to 3600 seconds")] {
      let terminal = try TestTerminal(t, [usvcBinary, "top"] + arguments)
      #expect(try eventually { try terminal.screen().contains("board exited 1") })
      #expect(try terminal.screen().filter { !$0.isEmpty } == [message, "board exited 1"])
      _ = try terminal.tmux("kill-server")
    }
  }

  @Test("in a real terminal: problems first, a job turning waiting shows within 2 refreshes, r s S K l / move and q leaves a clean screen")
  func drivenThroughTmux() throws {
    let t = try TestHome()
    try t.ok("start", "-n", "2", "web", "sleep", "100000")
    // Runs until the flag exists, then dies at once on every start: waiting, with a growing back-off.
    let flag = t.file("flag")
    let flaky = try t.script("flaky", "[ -e '\(flag)' ] && exit 1; exec sleep 100000")
    try t.ok("start", "flaky", flaky)
    let refresh = 0.5
    let terminal = try TestTerminal(t, [usvcBinary, "top", "-d", String(refresh)])
    #expect(try eventually { try terminal.row("web-2")?[1] == "running" && terminal.row("flaky-1")?[1] == "running" })
    #expect(try terminal.alternateScreen())
    #expect(try terminal.screen().last { !$0.isEmpty }?.hasPrefix("arrows/j k move  r restart  s stop  S start  K kill") == true)

    // running -> waiting: on the screen within 2 refreshes of the state file saying so
    // (plus time for tmux to draw and answer under load), and sorted above the running jobs.
    #expect(FileManager.default.createFile(atPath: flag, contents: nil))
    try t.ok("kill", "flaky-1")
    #expect(eventually(within: 10) { (try? t.state("flaky-1")) == .waiting })
    #expect(try eventually(within: 2 * refresh + 2) { try terminal.row("flaky-1")?[1] == "waiting" })
    let order = try terminal.screen().compactMap { line -> String? in
      let name = line.dropFirst().split(separator: " ").first.map(String.init)
      return ["flaky-1", "web-1", "web-2"].contains(name ?? "") ? name : nil
    }
    #expect(order == ["flaky-1", "web-1", "web-2"])

    // Move: down to web-1, web-2, and back up.
    try terminal.send("Home")
    #expect(try eventually { try terminal.cursor() == "flaky-1" })
    try terminal.send("j")
    #expect(try eventually { try terminal.cursor() == "web-1" })
    try terminal.send("Down")
    #expect(try eventually { try terminal.cursor() == "web-2" })
    try terminal.send("k")
    #expect(try eventually { try terminal.cursor() == "web-1" })
    try terminal.send("j")
    #expect(try eventually { try terminal.cursor() == "web-2" })

    // r restarts the job under the cursor: a new pid, shown.
    let before = try #require(try t.pid("web-2"))
    try terminal.send("r")
    #expect(try eventually(within: 20) {
      guard let pid = try t.pid("web-2"), pid != before else { return false }
      return try terminal.row("web-2")?[2] == String(pid)
    })
    #expect(try t.pid("web-1") != nil)

    // s stops it, S starts it again.
    try terminal.send("s")
    #expect(try eventually(within: 20) { try terminal.row("web-2")?[1] == "stopped" && t.state("web-2") == .stopped })
    try terminal.send("S")
    #expect(try eventually(within: 20) { try terminal.row("web-2")?[1] == "running" && t.state("web-2") == .running })

    // K asks first: n keeps it, y kills it with SIGKILL (and its policy restarts it).
    let running = try #require(try t.pid("web-2"))
    try terminal.send("K")
    #expect(try eventually { try terminal.screen().contains { $0.hasPrefix("kill web-2 with SIGKILL? (y/n)") } })
    try terminal.send("n")
    #expect(try eventually { try terminal.screen().contains { $0.hasPrefix("web-2 not killed") } })
    #expect(try t.pid("web-2") == running)
    try terminal.send("K")
    #expect(try eventually { try terminal.screen().contains { $0.hasPrefix("kill web-2 with SIGKILL?") } })
    try terminal.send("y")
    #expect(try eventually(within: 20) {
      guard let pid = try t.pid("web-2"), pid != running else { return false }
      // name, state, pid, "up", age, restarts, exit
      return try terminal.row("web-2")?[6] == "SIGKILL"
    })

    // l shows the last lines of its log; any key goes back.
    try terminal.send("l")
    #expect(try eventually { try terminal.screen().contains { $0.contains("log of web-2") } && terminal.screen().contains { $0.hasPrefix("[usvc] started pid") } })
    try terminal.send("x")
    #expect(try eventually { try terminal.row("web-1") != nil })

    // / filters as it is typed; Enter keeps it; an empty filter shows all again.
    try terminal.send("/", "w", "e", "b", "-", "1", "Enter")
    #expect(try eventually { try terminal.row("web-1") != nil && terminal.row("web-2") == nil && terminal.row("flaky-1") == nil })
    #expect(try terminal.screen().contains { $0.hasPrefix("filter: web-1") })
    try terminal.send("/", "BSpace", "BSpace", "BSpace", "BSpace", "BSpace", "Enter")
    #expect(try eventually { try terminal.row("web-2") != nil && terminal.row("flaky-1") != nil })

    // The terminal's size is followed.
    try terminal.tmux("resize-window", "-x", "70", "-y", "12")
    #expect(try eventually {
      let screen = try terminal.screen()
      return screen.count >= 12 && screen[11].hasPrefix("arrows/j k move") && screen.allSatisfy { $0.count <= 70 }
    })

    // q: the main screen is back, with nothing of the board on it.
    try terminal.send("q")
    #expect(try eventually { try terminal.screen().contains("board exited 0") })
    #expect(try !terminal.alternateScreen())
    #expect(try terminal.screen().filter { !$0.isEmpty } == ["board exited 0"])
  }

  @Test("Enter outside usvc's session: the board gives the terminal back and becomes usvc attach JOB")
  func enterAttaches() throws {
    let t = try TestHome()
    try t.ok("start", "-n", "2", "web", "sleep", "100000")
    let terminal = try TestTerminal(t, [usvcBinary, "top"])
    #expect(try eventually { try terminal.row("web-2") != nil })
    try terminal.send("End", "Enter")
    #expect(try eventually { try t.tmux("list-clients", "-F", "#{client_session}").stdout.contains("usvc") })
    #expect(try t.tmux("list-windows", "-t", "=usvc", "-F", "#{window_active} #{window_name}").stdout.contains("1 web-2"))
    // The client is tmux itself now (exec'd), and it follows the terminal's size: SIGWINCH is not blocked.
    try terminal.tmux("resize-window", "-x", "90", "-y", "20")
    #expect(try eventually { try t.tmux("list-clients", "-F", "#{client_width}x#{client_height}").stdout.hasPrefix("90x20") })
  }

  @Test("a crash, a signal or Ctrl-C gives the terminal back too")
  func restoredOnSignals() throws {
    let t = try TestHome()
    try t.ok("start", "web", "sleep", "100000")
    for (signal, status) in [(SIGSEGV, 128 + SIGSEGV), (SIGTERM, 128 + SIGTERM), (SIGHUP, 128 + SIGHUP)] {
      let terminal = try TestTerminal(t, [usvcBinary, "top"])
      #expect(try eventually { try terminal.row("web-1") != nil && terminal.alternateScreen() })
      let board = try #require(try terminal.boardPid())
      kill(board, signal)
      #expect(try eventually { try terminal.screen().contains("board exited \(status)") }, "signal \(signal)")
      #expect(try !terminal.alternateScreen(), "signal \(signal)")
      #expect(try terminal.tmux("display", "-p", "#{cursor_flag}").stdout.hasPrefix("1"), "cursor hidden after signal \(signal)")
      _ = try terminal.tmux("kill-server")
    }
    // Ctrl-C is a key like q (the board reads keys raw): a clean exit.
    let terminal = try TestTerminal(t, [usvcBinary, "top"])
    #expect(try eventually { try terminal.row("web-1") != nil })
    try terminal.send("C-c")
    #expect(try eventually { try terminal.screen().contains("board exited 0") })
    #expect(try !terminal.alternateScreen())
  }

  @Test("user data is shown escaped, colour follows the state, none with NO_COLOR")
  func escapingAndColour() throws {
    let t = try TestHome()
    try t.ok("start", "tabs", "sh", "-c", "exec sleep 100000", "a\tb", "漢字")
    let plain = try TestTerminal(t, [usvcBinary, "top"])
    #expect(try eventually { try plain.row("tabs-1") != nil })
    let line = try #require(try plain.screen().first { $0.contains("tabs-1") })
    #expect(line.hasSuffix("-c 'exec sleep 100000' 'a\\tb' 漢字"), "\(line)")
    let noColour = try plain.tmux("capture-pane", "-p", "-e").stdout
    #expect(!noColour.contains("\u{1b}[32m") && !noColour.contains("\u{1b}[31m"))
    _ = try plain.tmux("kill-server")

    let coloured = try TestTerminal(t, ["env", "-u", "NO_COLOR", usvcBinary, "top"])
    #expect(try eventually { try coloured.row("tabs-1") != nil })
    let escapes = try coloured.tmux("capture-pane", "-p", "-e").stdout
    let row = try #require(escapes.components(separatedBy: "\n").first { $0.contains("tabs-1") })
    #expect(row.contains("32mrunning"), "\(row.debugDescription)")
  }

  @Test("a 100-job board: problems first on the first screen, every row reachable by scrolling")
  func hundredJobs() throws {
    let t = try TestHome()
    try t.ok("start", "-n", "100", "many", "sleep", "100000")
    try t.ok("start", "bad", "false")
    let terminal = try TestTerminal(t, [usvcBinary, "top"], width: 140, height: 40)
    #expect(try eventually(within: 20) { try terminal.row("bad-1") != nil && terminal.row("many-1") != nil })
    let first = try terminal.screen()
    // Header, system line, then the problem above all 100 running jobs.
    #expect(first[0].hasPrefix(" NAME"))
    #expect(first[1].contains("system") && first[1].contains("jobs 101"))
    #expect(first[2].hasPrefix(">bad-1"))
    #expect(first[3].hasPrefix(" many-1 "))
    #expect(first[39].hasPrefix("arrows/j k move"))
    var seen = Set<String>()
    func collect() throws {
      for line in try terminal.screen() where line.hasPrefix(" many-") || line.hasPrefix(">many-") {
        seen.insert(String(line.dropFirst().split(separator: " ")[0]))
      }
    }
    try collect()
    for _ in 0..<5 {
      try terminal.send("PageDown")
      let cursorBefore = try terminal.cursor()
      _ = eventually(within: 3) { (try? terminal.cursor()) != cursorBefore }
      try collect()
    }
    try terminal.send("End")
    #expect(try eventually { try terminal.cursor() == "many-100" })
    try collect()
    #expect(seen.count == 100, "rows never shown: \((1...100).map { "many-\($0)" }.filter { !seen.contains($0) })")
  }

  @Test("window 0 of usvc's session shows the board while a client is attached; q there starts it again; the console stays")
  func windowZero() throws {
    let t = try TestHome()
    try t.ok("start", "web", "sleep", "100000")
    func console() throws -> pid_t? {
      pid_t(try t.tmux("list-panes", "-t", "=usvc:0", "-F", "#{pane_pid}").stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }
    /// The console's child running `usvc top` (not a `tmux` it runs for a moment to ask about clients).
    func board(of console: pid_t) -> pid_t? {
      ProcStat.all().first { process in
        guard process.parent == console, process.state != "Z",
          let cmdline = try? String(contentsOfFile: "/proc/\(process.pid)/cmdline", encoding: .utf8)
        else { return false }
        return cmdline.split(separator: "\0").contains("top")
      }?.pid
    }
    func windowZero() throws -> String { try t.tmux("capture-pane", "-p", "-t", "=usvc:0").stdout }
    let consolePid = try #require(try console())

    // Nobody attached: no board runs (nothing reads the jobs every second); the console says what shows there.
    #expect(try eventually(within: 15) { try windowZero().contains("The board (usvc top) shows here while a client is attached") })
    #expect(!eventually(within: 3) { board(of: consolePid) != nil })
    try t.ok("start", "late", "sleep", "100000")

    // A client attaches (usvc attach in a terminal): the board starts, and that is what the client sees.
    let terminal = try TestTerminal(t, [usvcBinary, "attach"])
    #expect(try eventually(within: 15) { try windowZero().contains("late-1") })
    #expect(try eventually { try terminal.row("late-1") != nil })

    // q there: the console starts a new board at once (a client is still attached).
    let first = try #require(board(of: consolePid))
    _ = try t.tmux("send-keys", "-t", "=usvc:0", "q")
    #expect(eventually(within: 15) { board(of: consolePid).map { $0 != first } ?? false })
    #expect(try eventually(within: 15) { try windowZero().contains("web-1") })
    // A board killed outright is started again too, by the same console.
    let second = try #require(board(of: consolePid))
    kill(second, SIGKILL)
    #expect(eventually(within: 15) { board(of: consolePid).map { $0 != second } ?? false })
    #expect(try console() == consolePid)

    // A console killed outright is started again in its pane by tmux, and with a
    // client attached it shows the board at once.
    kill(consolePid, SIGKILL)
    #expect(try eventually(within: 15) { try console().map { $0 != consolePid && board(of: $0) != nil } ?? false })
    let respawned = try #require(try console())

    // Enter in window 0 switches the session to the job's window.
    func activeWindow() throws -> String? {
      try t.tmux("list-windows", "-t", "=usvc", "-F", "#{window_active} #{window_name}").stdout
        .split(separator: "\n").first { $0.hasPrefix("1 ") }.map { String($0.dropFirst(2)) }
    }
    #expect(try eventually(within: 15) { try windowZero().contains("late-1") })
    #expect(try activeWindow() == "usvc")
    _ = try t.tmux("send-keys", "-t", "=usvc:0", "Home", "Enter")
    #expect(try eventually { try activeWindow() == "late-1" })

    // The last client detaches: the board ends, the console (and its nudge) stays.
    _ = try terminal.tmux("kill-server")
    #expect(eventually(within: 15) { board(of: respawned) == nil })
    #expect(try console() == respawned)
  }

  // MARK: Pure parts

  @Test("keys: arrows in both modes, paging, Enter, a lone Escape, UTF-8")
  func keyParsing() {
    #expect(BoardKey.parse(Array("\u{1b}[A\u{1b}OB\u{1b}[5~\u{1b}[6~\u{1b}[H\u{1b}[4~".utf8)) == [.up, .down, .pageUp, .pageDown, .home, .end])
    #expect(BoardKey.parse([13, 0x1b, 0x7f, 3]) == [.enter, .escape, .backspace, .interrupt])
    #expect(BoardKey.parse(Array("\u{1b}[I\u{1b}[O".utf8)) == [.focusIn, .focusOut])
    #expect(BoardKey.parse(Array("jé漢".utf8)) == [.character("j"), .character("é"), .character("漢")])
  }

  @Test("the screen diff writes nothing for an unchanged frame and only the changed span otherwise")
  func screenDiff() {
    var screen = ScreenDiff()
    screen.reset(width: 10, height: 2)
    let frame = [layOut([Segment("abc")], width: 10), layOut([Segment("xyz", CellStyle(color: 32))], width: 10)]
    #expect(screen.update(to: frame) == "\u{1b}[1;1H\u{1b}[0mabc\u{1b}[2;1H\u{1b}[0;32mxyz\u{1b}[0m")
    #expect(screen.update(to: frame) == "")
    let changed = [layOut([Segment("abd")], width: 10), frame[1]]
    #expect(screen.update(to: changed) == "\u{1b}[1;3H\u{1b}[0md")
    // Two changes far apart are two short writes, not the span between them.
    var wide = ScreenDiff()
    wide.reset(width: 40, height: 1)
    _ = wide.update(to: [layOut([Segment("load 1.00 and a long stretch mem 2.0")], width: 40)])
    #expect(wide.update(to: [layOut([Segment("load 1.05 and a long stretch mem 2.1")], width: 40)])
      == "\u{1b}[1;9H\u{1b}[0m5\u{1b}[1;36H1")
  }

  @Test("wide characters take two cells and are never split at the edge")
  func wideCharacters() {
    setlocale(LC_CTYPE, "C.UTF-8")
    #expect(displayWidth("漢字") == 4)
    #expect(displayWidth("e\u{301}") == 1)
    let row = layOut([Segment("a漢字")], width: 4)
    #expect(row.map(\.text) == ["a", "漢", "", " "])
    var screen = ScreenDiff()
    screen.reset(width: 4, height: 1)
    _ = screen.update(to: [row])
    // Changing the second half of a wide character rewrites the whole character.
    #expect(screen.update(to: [layOut([Segment("a字")], width: 4)]) == "\u{1b}[1;2H\u{1b}[0m字")
  }
}
