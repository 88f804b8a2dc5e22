import Glibc
import USVCSys

/// Window 0 of usvc's tmux session (`usvc-runner --console [USVC]`): keeps the
/// session alive (it needs one window that is not a job, or it would end with
/// the last job), runs the board (`USVC top`) in it, starting it again when it
/// ends (`q`, a crash), and nudges tmux every second.
///
/// The nudge lives here, in the pane's own process, not in the board: it must
/// go on whether or not the board runs, and whatever a person presses.
public func runConsole(board: String?) -> Never {
  let signals = SignalSet([.terminate, .interrupt, .hangup, .child])
  signals.block()
  try? FileDescriptor.standardOutput.writeAll(
    "usvc: this tmux server runs your jobs, one window each.\n"
      + "Switch windows with C-b n / C-b p / C-b w; detach with C-b d.\n"
      + "Ctrl-C is not sent to jobs here: stop one with 'usvc stop NAME'.\n")
  var set = signals.raw
  let server = getppid()
  var board = board.flatMap { access($0, X_OK) == 0 ? $0 : nil }
  var child: pid_t = 0
  var startAt = 0.0
  var nextNudge = monotonicClock() + 1
  while true {
    let now = monotonicClock()
    if let program = board, child == 0, now >= startAt {
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
    var wake = nextNudge
    if board != nil && child == 0 { wake = min(wake, startAt) }
    let wait = max(0, wake - monotonicClock())
    var timeout = timespec(tv_sec: Int(wait), tv_nsec: Int((wait - wait.rounded(.down)) * 1e9))
    let number = sigtimedwait(&set, nil, &timeout)
    if number == SIGCHLD {
      while let reaped = reapAnyChild() { if reaped.pid == child { child = 0 } }
    } else if number > 0 {
      // The server is going away (or we are told to): the board goes with us.
      if child > 0 { kill(child, SIGHUP) }
      exit(0)
    }
  }
}
