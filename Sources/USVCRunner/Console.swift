import Glibc
import USVCContract
import USVCSys

/// Window 0 of usvc's tmux session (`usvc-runner --console [USVC]`). It keeps
/// the session alive (the session needs one window that is not a job, or it
/// would end with the last job), shows the board (`USVC top`) while a client is
/// attached, starting it again when it ends (`q`, a crash), and nudges tmux
/// every second.
///
/// 1. The nudge lives here, in the pane's own process, not in the board: it
///    goes on whether or not the board runs, whatever a person presses.
/// 2. The board reads every job each second and weighs megabytes: it runs only
///    while someone can see it. usvc's tmux config types a focus report into
///    this pane when the first client attaches (`ESC [ I`) and when the last
///    detaches (`ESC [ O`, which ends the board with `boardUnwatchedStatus`).
///    Between boards the console reads the pane itself: a focus-in, or any key,
///    starts the board.
public func runConsole(board: String?) -> Never {
  let signals = SignalSet([.terminate, .interrupt, .hangup, .child])
  signals.block()
  guard let signalFD = try? SignalDescriptor(signals) else { exit(1) }
  try? FileDescriptor.standardOutput.writeAll(
    "usvc: this tmux server runs your jobs, one window each.\n"
      + "Switch windows with C-b n / C-b p / C-b w; detach with C-b d.\n"
      + "Ctrl-C is not sent to jobs here: stop one with 'usvc stop NAME'.\n"
      + (board == nil ? "" : "The board (usvc top) shows here while a client is attached; any key shows it.\n"))
  var cooked = termios()
  let isTerminal = tcgetattr(0, &cooked) == 0
  let server = getppid()
  var board = board.flatMap { access($0, X_OK) == 0 ? $0 : nil }
  var child: pid_t = 0
  // The server starts detached (usvc start): nobody watches until a client attaches.
  // A console started again later (its pane respawned) asks tmux once.
  var watched = board != nil && hasClients()
  var startAt = 0.0
  var nextNudge = monotonicClock() + 1
  var buffer = [UInt8](repeating: 0, count: 256)
  while true {
    let now = monotonicClock()
    if let program = board, child == 0, watched, now >= startAt {
      // The board finds the pane as a shell would leave it (it restores what it finds).
      if isTerminal { tcsetattr(0, TCSADRAIN, &cooked) }
      do {
        child = try spawn([program, "top"], environment: processEnvironment())
        // A board that ends at once (a broken install) is started again at most once a second.
        startAt = now + 1
      } catch {
        try? FileDescriptor.standardOutput.writeAll("usvc: cannot run \(program) top: \(error)\n")
        board = nil
      }
    }
    if now >= nextNudge {
      // tmux built with libutempter (Debian's) misses a SIGCHLD that arrives while
      // utempter's own handler is in place (tmux issue #311): a runner killed then
      // stays an unreaped zombie, its pane never counts as died, and the pane-died
      // hook never starts a new runner. A SIGCHLD every second makes tmux reap it.
      if server > 1 && getppid() == server { kill(server, SIGCHLD) }
      nextNudge = now + 1
    }
    // Between boards, the pane's keys come here, byte by byte (raw, no echo).
    let readsKeys = board != nil && child == 0 && isTerminal
    if readsKeys {
      var raw = cooked
      raw.c_lflag &= ~tcflag_t(ECHO | ICANON | ISIG | IEXTEN)
      tcsetattr(0, TCSADRAIN, &raw)
    }
    var wake = nextNudge
    if board != nil && child == 0 && watched { wake = min(wake, startAt) }
    var fds = [
      pollfd(fd: signalFD.fd.rawValue, events: Int16(POLLIN), revents: 0),
      pollfd(fd: readsKeys ? 0 : -1, events: Int16(POLLIN), revents: 0),
    ]
    _ = poll(&fds, 2, Int32(max(0, (wake - monotonicClock()) * 1000).rounded(.up)))
    if fds[1].revents & Int16(POLLIN) != 0 {
      let count = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
      if count > 0 { watched = watchedAfter(buffer[0..<count], watched: watched) }
    } else if fds[1].revents != 0 {
      exit(0)  // The pane's terminal is gone.
    }
    while let number = signalFD.next() {
      if number == SIGCHLD {
        while let reaped = reapAnyChild() {
          guard reaped.pid == child else { continue }
          child = 0
          if reaped.status == .exited(boardUnwatchedStatus) { watched = false }
        }
      } else {
        // The server is going away (or we are told to): the board goes with us.
        if child > 0 { kill(child, SIGHUP) }
        if isTerminal { tcsetattr(0, TCSANOW, &cooked) }
        exit(0)
      }
    }
  }
}

/// Whether usvc's tmux server (the one in `TMUX`) has a client attached now.
func hasClients() -> Bool {
  let environment = processEnvironment()
  guard let socket = tmuxSocket(environment: environment),
    let result = try? runCapturing(["tmux", "-S", socket, "list-clients", "-F", "#{client_name}"], environment: environment)
  else { return false }
  return result.status.isSuccess && !result.output.isEmpty
}

/// Whether a client watches, after these bytes typed into the pane: the last
/// focus report says; any other byte is a key, so someone is there.
func watchedAfter(_ bytes: ArraySlice<UInt8>, watched: Bool) -> Bool {
  var result = watched
  let text = Array(bytes)
  var index = 0
  while index < text.count {
    if text[index] == 0x1b, index + 2 < text.count, text[index + 1] == 0x5b, text[index + 2] == 0x49 || text[index + 2] == 0x4f {
      result = text[index + 2] == 0x49
      index += 3
    } else {
      result = true
      index += 1
    }
  }
  return result
}
