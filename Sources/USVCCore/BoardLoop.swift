import Dispatch
import Glibc
import USVCContract
import USVCSys

/// A key the board understands, decoded from the terminal's bytes.
public enum BoardKey: Equatable, Sendable {
  case up, down, pageUp, pageDown, home, end, enter, escape, backspace, interrupt
  /// Focus reports (`ESC [ I`, `ESC [ O`): usvc's tmux types them into window 0
  /// when the first client attaches and when the last one detaches.
  case focusIn, focusOut
  case character(Character)

  /// Decodes what one read returned. Arrows come as `ESC [ A` or, in the
  /// terminal's application mode, `ESC O A`; an ESC with nothing after it in
  /// the same read is the Escape key; bytes that are not UTF-8 are dropped.
  public static func parse(_ bytes: [UInt8]) -> [BoardKey] {
    var keys: [BoardKey] = []
    var index = 0
    while index < bytes.count {
      let byte = bytes[index]
      index += 1
      switch byte {
      case 0x1b:
        guard index < bytes.count, bytes[index] == 0x5b || bytes[index] == 0x4f else {
          keys.append(.escape)
          continue
        }
        // CSI or SS3: parameters (digits, ';') then one final byte.
        var end = index + 1
        while end < bytes.count, (0x30...0x3f).contains(bytes[end]) { end += 1 }
        guard end < bytes.count else {
          index = bytes.count
          continue
        }
        let parameters = String(decoding: bytes[(index + 1)..<end], as: UTF8.self)
        switch (bytes[end], parameters) {
        case (0x41, _): keys.append(.up)
        case (0x42, _): keys.append(.down)
        case (0x48, _), (0x7e, "1"), (0x7e, "7"): keys.append(.home)
        case (0x46, _), (0x7e, "4"), (0x7e, "8"): keys.append(.end)
        case (0x7e, "5"): keys.append(.pageUp)
        case (0x7e, "6"): keys.append(.pageDown)
        case (0x49, ""): keys.append(.focusIn)
        case (0x4f, ""): keys.append(.focusOut)
        default: break
        }
        index = end + 1
      case 0x0d, 0x0a: keys.append(.enter)
      case 0x7f, 0x08: keys.append(.backspace)
      case 0x03: keys.append(.interrupt)
      case 0x00..<0x20: break
      default:
        // One UTF-8 character: the lead byte says how many bytes follow.
        let length = byte < 0x80 ? 1 : byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : 2
        let end = min(bytes.count, index - 1 + length)
        if let scalar = String(validating: bytes[(index - 1)..<end], as: UTF8.self)?.unicodeScalars.first {
          keys.append(.character(Character(scalar)))
        }
        index = end
      }
    }
    return keys
  }
}

/// `usvc top`: the board's event loop. One `poll` waits for keys, signals (a
/// signalfd: resize, TERM, HUP, INT, QUIT) and what actions report (a pipe),
/// until the next refresh. Actions (restart, stop, start) run on another
/// thread through the same Supervisor calls as the commands, so a job that
/// takes its stop-timeout to stop never freezes the screen.
public struct BoardLoop {
  var supervisor: Supervisor
  var source: any BoardSource
  let interval: Double
  let terminal: BoardTerminal
  var board: Board
  var screen = ScreenDiff()
  var size = (rows: 24, columns: 80)
  var nextRefresh = 0.0
  /// Actions write their one-line outcome here; the loop shows it.
  let messages: (read: FileDescriptor, write: FileDescriptor)
  var pendingMessage: [UInt8] = []
  let signals: SignalDescriptor
  /// The signals blocked for `signals` (unblocked again before exec).
  let blocked: SignalSet
  /// Whether the board runs in usvc's own tmux session (window 0).
  var inUsvcSession = false

  /// Checks the terminal and the selectors (before the screen changes), blocks
  /// the signals the loop reads (before any thread exists, so every thread
  /// inherits the mask and they all queue for the signalfd).
  public init(supervisor: Supervisor, selectors: [String], interval: Double) throws(UsvcError) {
    terminal = try BoardTerminal(environment: supervisor.environment)
    _ = try supervisor.select(selectors)
    guard interval >= 0.1, interval <= 3600 else {
      throw .badValue(key: "-d", value: StatusFormat.decimal(interval), why: "expected 0.1 to 3600 seconds")
    }
    self.interval = interval
    // Display widths by wcwidth need a UTF-8 character type, whatever the locale.
    if setlocale(LC_CTYPE, "C.UTF-8") == nil { setlocale(LC_CTYPE, "") }
    var supervisor = supervisor
    do { messages = try FileDescriptor.pipe() } catch { throw .system("cannot make a pipe", error) }
    messages.read.setNonBlocking()
    // Warnings of the core would go to stderr, under the board: they become its message.
    let writeEnd = messages.write
    supervisor.warn = { line in _ = try? writeEnd.writeAll(line.visible + "\n") }
    self.supervisor = supervisor
    source = LocalBoardSource(supervisor: supervisor, selectors: selectors)
    let color = (value(of: "NO_COLOR", in: supervisor.environment) ?? "").isEmpty
    board = Board(color: color)
    let set = SignalSet([.windowChanged, .terminate, .hangup, .interrupt, Signal(rawValue: SIGQUIT)])
    set.block()
    blocked = set
    do { signals = try SignalDescriptor(set) } catch { throw .system("cannot read signals", error) }
  }

  /// Runs until `q` (exit 0), a signal (128 + its number) or the terminal going away (1).
  public mutating func run() throws(UsvcError) -> Never {
    try terminal.enter()
    size = terminal.size()
    screen.reset(width: size.columns, height: size.rows)
    inUsvcSession = (try? supervisor.tmux()).map(isInside) ?? false
    while true {
      let now = monotonicClock()
      if now >= nextRefresh {
        refresh()
        nextRefresh = max(nextRefresh + interval, now + interval / 2)
      }
      terminal.write(screen.update(to: board.frame(width: size.columns, height: size.rows)))
      var fds = [
        pollfd(fd: terminal.input.rawValue, events: Int16(POLLIN), revents: 0),
        pollfd(fd: signals.fd.rawValue, events: Int16(POLLIN), revents: 0),
        pollfd(fd: messages.read.rawValue, events: Int16(POLLIN), revents: 0),
      ]
      let timeout = Int32(max(0, min(3_600_000, (nextRefresh - monotonicClock()) * 1000)).rounded(.up))
      guard poll(&fds, nfds_t(fds.count), timeout) >= 0 || errno == EINTR else { finish(1) }
      if fds[1].revents != 0 { handleSignals() }
      if fds[2].revents != 0 { readMessages() }
      if fds[0].revents != 0 { readKeys() }
    }
  }

  /// The one way out: the terminal given back, then exit.
  func finish(_ code: Int32) -> Never {
    terminal.restore()
    exit(code)
  }

  mutating func refresh() {
    board.sections = source.refresh()
    if case .log(_, let job) = board.mode {
      board.logLines = LogReader.tail(supervisor.home.paths(job).log, lines: max(1, size.rows - 3)).map { String(decoding: Visible.escaped($0, keepingTabs: false), as: UTF8.self) }
    }
  }

  mutating func handleSignals() {
    while let number = signals.next() {
      if number == SIGWINCH {
        size = terminal.size()
        screen.reset(width: size.columns, height: size.rows)
        terminal.write("\u{1b}[0m\u{1b}[H\u{1b}[2J")
      } else {
        finish(128 + number)
      }
    }
  }

  mutating func readMessages() {
    var buffer = [UInt8](repeating: 0, count: 4096)
    while let count = try? buffer.withUnsafeMutableBytes({ try messages.read.read(into: $0) }), count > 0 {
      pendingMessage += buffer[0..<count]
    }
    while let newline = pendingMessage.firstIndex(of: 10) {
      board.message = String(decoding: pendingMessage[..<newline], as: UTF8.self)
      pendingMessage.removeSubrange(...newline)
      // An action finished: show its effect now, not at the next tick.
      nextRefresh = 0
    }
  }

  mutating func readKeys() {
    var buffer = [UInt8](repeating: 0, count: 1024)
    let count = buffer.withUnsafeMutableBytes { Glibc.read(terminal.input.rawValue, $0.baseAddress, $0.count) }
    if count == 0 || (count < 0 && errno != EINTR && errno != EAGAIN) { finish(1) }
    guard count > 0 else { return }
    for key in BoardKey.parse(Array(buffer[0..<count])) { handle(key) }
  }

  mutating func handle(_ key: BoardKey) {
    let page = max(1, size.rows - 4)
    switch key {
    case .focusOut:
      // The last client left usvc's session: nobody can see window 0, so the
      // board ends and its console starts it again when a client attaches.
      if inUsvcSession { finish(boardUnwatchedStatus) }
      return
    case .focusIn: return
    default: break
    }
    switch board.mode {
    case .filtering(let previous):
      switch key {
      case .enter: board.mode = .browse
      case .escape, .interrupt:
        board.filter = previous
        board.mode = .browse
      case .backspace: if !board.filter.isEmpty { board.filter.removeLast() }
      case .character(let character): board.filter.append(character)
      case .up, .down, .pageUp, .pageDown, .home, .end, .focusIn, .focusOut: break
      }
      board.scroll = 0
      return
    case .confirmKill(_, let job):
      board.mode = .browse
      if key == .character("y") || key == .character("Y") {
        let sent = supervisor.kill(.kill, [job])
        board.message = sent.isEmpty ? "\(job) is not running: nothing to kill" : "sent SIGKILL to \(job)"
        nextRefresh = 0
      } else {
        board.message = "\(job) not killed"
      }
      return
    case .log:
      board.mode = .browse
      return
    case .browse: break
    }
    switch key {
    case .up, .character("k"): board.move(by: -1)
    case .down, .character("j"): board.move(by: 1)
    case .pageUp: board.move(by: -page)
    case .pageDown: board.move(by: page)
    case .home, .character("g"): board.move(by: -1_000_000)
    case .end, .character("G"): board.move(by: 1_000_000)
    case .character("q"), .interrupt: finish(0)
    case .character("/"): board.mode = .filtering(previous: board.filter)
    case .character("r"):
      guard let job = board.selected?.job.name else { return }
      restart(job, saying: "restarting")
    case .character("s"):
      guard let job = board.selected?.job.name else { return }
      perform("stopping \(job)") { supervisor in
        try supervisor.stop([job])
        return "stopped \(job)"
      }
    case .character("S"):
      guard let selected = board.selected?.job else { return }
      let job = selected.name
      if selected.state == .running || selected.state == .starting || selected.state == .stopping {
        board.message = "\(job) is \(selected.state.rawValue): r restarts it"
        return
      }
      restart(job, saying: "starting")
    case .character("K"):
      guard let (host, job) = board.selected else { return }
      board.mode = .confirmKill(host: host, job: job.name)
    case .character("l"):
      guard let (host, job) = board.selected else { return }
      board.mode = .log(host: host, job: job.name)
      board.logLines = LogReader.tail(supervisor.home.paths(job.name).log, lines: max(1, size.rows - 3)).map { String(decoding: Visible.escaped($0, keepingTabs: false), as: UTF8.self) }
    case .enter:
      guard let job = board.selected?.job.name else { return }
      attach(job)
    case .escape, .backspace, .character, .focusIn, .focusOut: break
    }
  }

  /// `usvc restart JOB` (which also starts a job that is not running), beside the board.
  mutating func restart(_ job: String, saying what: String) {
    perform("\(what) \(job)") { supervisor in
      var lines: [String] = []
      try supervisor.restart([job]) { lines.append($0.description) }
      return lines.joined(separator: "; ")
    }
  }

  /// Runs `work` on another thread; its outcome (or error) becomes the message.
  mutating func perform(_ what: String, _ work: @escaping @Sendable (Supervisor) throws -> String) {
    board.message = what + "…"
    let supervisor = self.supervisor
    let writeEnd = messages.write
    DispatchQueue.global().async {
      var text: String
      do {
        text = try work(supervisor)
      } catch {
        text = (error as? UsvcError)?.description ?? "\(error)"
      }
      _ = try? writeEnd.writeAll(text.visible + "\n")
    }
  }

  /// Enter: inside usvc's own tmux session, switch its window to the job's;
  /// elsewhere, give the terminal back and become `usvc attach JOB`.
  mutating func attach(_ job: String) {
    guard let tmux = try? supervisor.tmux(), let window = tmux.windows()[job] else {
      board.message = "\(job) has no window (it is not running)"
      return
    }
    if isInside(tmux) {
      let result = try? tmux.run(["select-window", "-t", window])
      board.message = result?.status.isSuccess == true ? "" : "cannot switch to \(job)'s window"
      return
    }
    terminal.restore()
    // exec keeps the signal mask: tmux must get SIGWINCH and the others again.
    var mask = blocked.raw
    sigprocmask(SIG_UNBLOCK, &mask, nil)
    do {
      try tmux.attach(job)
    } catch {
      printError("usvc: " + error.description)
      exit(1)
    }
  }

  /// Whether the board runs in a pane of usvc's own tmux server.
  func isInside(_ tmux: Tmux) -> Bool {
    guard let socket = tmuxSocket(environment: supervisor.environment) else { return false }
    if socket == tmux.socket { return true }
    guard let mine = realpath(tmux.socket, nil), let theirs = realpath(socket, nil) else { return false }
    defer { free(mine); free(theirs) }
    return strcmp(mine, theirs) == 0
  }
}
