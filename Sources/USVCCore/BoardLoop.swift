import Dispatch
import Glibc
import Synchronization
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

/// What actions beside the board report back (from other threads), and the
/// pipe whose bytes wake the loop's poll when there is something.
final class BoardInbox: Sendable {
  enum Update: Sendable {
    /// The line above the keys.
    case message(String)
    /// A job's last log lines (already visible), for `l`.
    case logLines(host: String, job: String, [String])
  }

  let wake: (read: FileDescriptor, write: FileDescriptor)
  private let updates = Mutex<[Update]>([])

  init() throws(UsvcError) {
    do { wake = try FileDescriptor.pipe() } catch { throw .system("cannot make a pipe", error) }
    wake.read.setNonBlocking()
    wake.write.setNonBlocking()
  }

  func post(_ update: Update) {
    updates.withLock { $0.append(update) }
    // A full pipe already wakes the loop: a byte lost then loses nothing.
    _ = try? wake.write.writeAll([1])
  }

  /// Everything posted so far, oldest first.
  func take() -> [Update] {
    var buffer = [UInt8](repeating: 0, count: 256)
    while let count = try? buffer.withUnsafeMutableBytes({ try wake.read.read(into: $0) }), count > 0 {}
    return updates.withLock { updates in
      defer { updates.removeAll() }
      return updates
    }
  }
}

/// `usvc top`: the board's event loop. One `poll` waits for keys, signals (a
/// signalfd: resize, TERM, HUP, INT, QUIT), what actions report (the inbox's
/// pipe) and, across hosts, every host's ssh pipes, until the next refresh.
/// Actions (restart, stop, start; on another host a one-shot fleet call) run
/// on another thread, so a job that takes its stop-timeout to stop, or a slow
/// host, never freezes the screen.
public struct BoardLoop {
  /// This machine's jobs: their Supervisor; nil across hosts.
  var supervisor: Supervisor?
  /// Across hosts: the fleet whose transport the one-shot calls of keys reuse.
  var fleet: Fleet?
  let environment: [String]
  var source: any BoardSource
  let interval: Double
  let terminal: BoardTerminal
  var board: Board
  var screen = ScreenDiff()
  var size = (rows: 24, columns: 80)
  var nextRefresh = 0.0
  /// Whether the screen may differ from the last frame written.
  var needsDraw = true
  let inbox: BoardInbox
  /// A remote log fetch (`l`) is on its way: at most one at a time.
  var logRequested = false
  let signals: SignalDescriptor
  /// The signals blocked for `signals` (unblocked again before exec).
  let blocked: SignalSet
  /// Whether the board runs in usvc's own tmux session (window 0).
  var inUsvcSession = false

  /// The board of this machine's jobs. Checks the terminal and the selectors
  /// (before the screen changes).
  public init(supervisor: Supervisor, selectors: [String], interval: Double) throws(UsvcError) {
    let terminal = try BoardTerminal(environment: supervisor.environment)
    _ = try supervisor.select(selectors)
    try self.init(terminal: terminal, interval: interval, environment: supervisor.environment) { inbox in
      var supervisor = supervisor
      // Warnings of the core would go to stderr, under the board: they become its message.
      supervisor.warn = { line in inbox.post(.message(line.visible)) }
      return (supervisor, nil, LocalBoardSource(supervisor: supervisor, selectors: selectors))
    }
  }

  /// The board of other hosts' jobs: `fleet` holds the hosts and the words of
  /// the remote feed (`HostsBoardSource.feedWords`). Selectors are the hosts'
  /// business: one that matches nothing there is said on that host's row.
  public init(hosts fleet: Fleet, interval: Double) throws(UsvcError) {
    let terminal = try BoardTerminal(environment: fleet.environment)
    try self.init(terminal: terminal, interval: interval, environment: fleet.environment) { _ in
      (nil, fleet, HostsBoardSource(fleet: fleet, interval: interval))
    }
  }

  /// Blocks the signals the loop reads (before any thread exists, so every
  /// thread inherits the mask and they all queue for the signalfd).
  init(
    terminal: BoardTerminal, interval: Double, environment: [String],
    _ makeSource: (BoardInbox) -> (Supervisor?, Fleet?, any BoardSource)
  ) throws(UsvcError) {
    guard interval >= 0.1, interval <= 3600 else {
      throw .badValue(key: "-d", value: StatusFormat.decimal(interval), why: "expected 0.1 to 3600 seconds")
    }
    self.terminal = terminal
    self.interval = interval
    self.environment = environment
    // Display widths by wcwidth need a UTF-8 character type, whatever the locale.
    if setlocale(LC_CTYPE, "C.UTF-8") == nil { setlocale(LC_CTYPE, "") }
    inbox = try BoardInbox()
    (supervisor, fleet, source) = makeSource(inbox)
    board = Board(color: (value(of: "NO_COLOR", in: environment) ?? "").isEmpty)
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
    inUsvcSession = (try? supervisor?.tmux()).flatMap { $0 }.map(isInside) ?? false
    while true {
      var now = monotonicClock()
      source.service(ready: [], now: now)
      if now >= nextRefresh {
        refresh()
        nextRefresh = max(nextRefresh + interval, now + interval / 2)
      }
      if needsDraw {
        terminal.write(screen.update(to: board.frame(width: size.columns, height: size.rows)))
        needsDraw = false
      }
      let hostFds = source.descriptors
      var fds = [
        pollfd(fd: terminal.input.rawValue, events: Int16(POLLIN), revents: 0),
        pollfd(fd: signals.fd.rawValue, events: Int16(POLLIN), revents: 0),
        pollfd(fd: inbox.wake.read.rawValue, events: Int16(POLLIN), revents: 0),
      ] + hostFds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
      now = monotonicClock()
      let wake = min(nextRefresh, source.nextDeadline(now: now))
      let timeout = Int32(max(0, min(3_600_000, (wake - now) * 1000)).rounded(.up))
      guard poll(&fds, nfds_t(fds.count), timeout) >= 0 || errno == EINTR else { finish(1) }
      if fds[1].revents != 0 { handleSignals() }
      if fds[2].revents != 0 { readInbox() }
      if fds[0].revents != 0 { readKeys() }
      let ready = Set(fds.dropFirst(3).filter { $0.revents != 0 }.map(\.fd))
      if !ready.isEmpty { source.service(ready: ready, now: monotonicClock()) }
    }
  }

  /// The one way out: the sessions ended, the terminal given back, then exit.
  func finish(_ code: Int32) -> Never {
    source.close()
    terminal.restore()
    exit(code)
  }

  mutating func refresh() {
    board.sections = source.refresh()
    needsDraw = true
    if case .log(let host, let job) = board.mode { fetchLog(host: host, job: job) }
  }

  /// The last lines of a job's log for `l`: read here for this machine's job;
  /// for another host's, asked for beside the board (`logs -n`, one fleet call).
  mutating func fetchLog(host: String, job: String) {
    let lines = max(1, size.rows - 3)
    if let supervisor {
      board.logLines = LogReader.tail(supervisor.home.paths(job).log, lines: lines).map {
        String(decoding: Visible.escaped($0, keepingTabs: false), as: UTF8.self)
      }
      return
    }
    guard let fleet, !logRequested else { return }
    logRequested = true
    let inbox = self.inbox
    let environment = self.environment
    DispatchQueue.global().async {
      var shown: [String] = []
      do {
        var call = try Fleet(hosts: [host], words: ["logs", "-n", String(lines), "--", job], mode: .reading, environment: environment)
        call.timeout = fleet.timeout
        call.exchange { report in
          var output = Array(report.output.utf8).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
          if output.last?.isEmpty == true { output.removeLast() }
          shown = output.map { String(decoding: Visible.escaped($0, keepingTabs: false), as: UTF8.self) }
          switch report.outcome {
          case .answered: break
          case .failed(let message): shown.append("(\(host): \(message.visible))")
          case .unreachable(let reason): shown.append("(\(host) unreachable: \(reason.visible))")
          }
        }
      } catch {
        shown = ["(" + ((error as? UsvcError)?.description ?? "\(error)").visible + ")"]
      }
      inbox.post(.logLines(host: host, job: job, shown))
    }
  }

  mutating func handleSignals() {
    while let number = signals.next() {
      if number == SIGWINCH {
        size = terminal.size()
        screen.reset(width: size.columns, height: size.rows)
        terminal.write("\u{1b}[0m\u{1b}[H\u{1b}[2J")
        needsDraw = true
      } else {
        finish(128 + number)
      }
    }
  }

  mutating func readInbox() {
    for update in inbox.take() {
      switch update {
      case .message(let text):
        board.message = text
        // An action finished: show its effect now, not at the next tick.
        nextRefresh = 0
      case .logLines(let host, let job, let lines):
        logRequested = false
        if case .log(host, job) = board.mode { board.logLines = lines }
      }
    }
    needsDraw = true
  }

  mutating func readKeys() {
    var buffer = [UInt8](repeating: 0, count: 1024)
    let count = buffer.withUnsafeMutableBytes { Glibc.read(terminal.input.rawValue, $0.baseAddress, $0.count) }
    if count == 0 || (count < 0 && errno != EINTR && errno != EAGAIN) { finish(1) }
    guard count > 0 else { return }
    for key in BoardKey.parse(Array(buffer[0..<count])) { handle(key) }
    needsDraw = true
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
    case .confirmKill(let host, let job):
      board.mode = .browse
      if key == .character("y") || key == .character("Y") {
        kill(job, on: host)
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
      guard let (host, job) = board.selected else { return }
      restart(job.name, on: host, saying: "restarting")
    case .character("s"):
      guard let (host, job) = board.selected else { return }
      stop(job.name, on: host)
    case .character("S"):
      guard let (host, selected) = board.selected else { return }
      let job = selected.name
      if selected.state == .running || selected.state == .starting || selected.state == .stopping {
        board.message = "\(job) is \(selected.state.rawValue): r restarts it"
        return
      }
      restart(job, on: host, saying: "starting")
    case .character("K"):
      guard let (host, job) = board.selected else { return }
      board.mode = .confirmKill(host: host, job: job.name)
    case .character("l"):
      guard let (host, job) = board.selected else { return }
      board.mode = .log(host: host, job: job.name)
      board.logLines = []
      logRequested = false
      fetchLog(host: host, job: job.name)
    case .enter:
      guard let (host, job) = board.selected else { return }
      attach(job.name, on: host)
    case .escape, .backspace, .character, .focusIn, .focusOut: break
    }
  }

  // MARK: - Actions, on this machine or through a one-shot fleet call to the job's host

  /// `usvc restart JOB` (which also starts a job that is not running), beside the board.
  mutating func restart(_ job: String, on host: String, saying what: String) {
    guard let supervisor else { return remote(["restart", "--", job], on: host, saying: "\(what) \(job) on \(host)") }
    perform("\(what) \(job)") {
      var lines: [String] = []
      try supervisor.restart([job]) { lines.append($0.description) }
      return lines.joined(separator: "; ")
    }
  }

  mutating func stop(_ job: String, on host: String) {
    guard let supervisor else { return remote(["stop", "--", job], on: host, saying: "stopping \(job) on \(host)") }
    perform("stopping \(job)") {
      try supervisor.stop([job])
      return "stopped \(job)"
    }
  }

  mutating func kill(_ job: String, on host: String) {
    guard let supervisor else { return remote(["kill", "-s", "KILL", "--", job], on: host, saying: "killing \(job) on \(host)") }
    let sent = supervisor.kill(.kill, [job])
    board.message = sent.isEmpty ? "\(job) is not running: nothing to kill" : "sent SIGKILL to \(job)"
    nextRefresh = 0
  }

  /// `usvc WORDS…` on `host` through the fleet's transport (its control
  /// master: no new login), beside the board; its lines become the message.
  mutating func remote(_ words: [String], on host: String, saying what: String) {
    guard let fleet else { return }
    let environment = self.environment
    perform(what) {
      var call = try Fleet(hosts: [host], words: words, mode: .acting, environment: environment)
      call.timeout = fleet.timeout
      var lines: [String] = []
      _ = call.run { text in lines += text.split(separator: "\n").map(String.init) }
      return lines.joined(separator: "; ")
    }
  }

  /// Runs `work` on another thread; its outcome (or error) becomes the message.
  mutating func perform(_ what: String, _ work: @escaping @Sendable () throws -> String) {
    board.message = what + "…"
    let inbox = self.inbox
    DispatchQueue.global().async {
      var text: String
      do {
        text = try work()
      } catch {
        text = (error as? UsvcError)?.description ?? "\(error)"
      }
      inbox.post(.message(text.visible))
    }
  }

  /// Enter: another host's job through `ssh -t` (`usvc attach --host HOST
  /// JOB`); here, inside usvc's own tmux session, switch its window to the
  /// job's; elsewhere, give the terminal back and become `usvc attach JOB`.
  mutating func attach(_ job: String, on host: String) {
    guard let supervisor else {
      guard let fleet else { return }
      let argv: [String]
      do { argv = try fleet.attachArguments(host: host, job: job) } catch {
        board.message = error.description.visible
        return
      }
      leaveForExec()
      do { try replaceProcess(argv, environment: environment) } catch {
        printError("usvc: cannot run \(fleet.ssh): \(error)")
        exit(1)
      }
    }
    guard let tmux = try? supervisor.tmux(), let window = tmux.windows()[job] else {
      board.message = "\(job) has no window (it is not running)"
      return
    }
    if isInside(tmux) {
      let result = try? tmux.run(["select-window", "-t", window])
      board.message = result?.status.isSuccess == true ? "" : "cannot switch to \(job)'s window"
      return
    }
    leaveForExec()
    do {
      try tmux.attach(job)
    } catch {
      printError("usvc: " + error.description)
      exit(1)
    }
  }

  /// Before this process becomes another program: the sessions ended, the
  /// terminal given back, and the signals unblocked (exec keeps the mask, and
  /// tmux or ssh must get SIGWINCH and the others again).
  func leaveForExec() {
    source.close()
    terminal.restore()
    var mask = blocked.raw
    sigprocmask(SIG_UNBLOCK, &mask, nil)
  }

  /// Whether the board runs in a pane of usvc's own tmux server.
  func isInside(_ tmux: Tmux) -> Bool {
    guard let socket = tmuxSocket(environment: environment) else { return false }
    if socket == tmux.socket { return true }
    guard let mine = realpath(tmux.socket, nil), let theirs = realpath(socket, nil) else { return false }
    defer { free(mine); free(theirs) }
    return strcmp(mine, theirs) == 0
  }
}
