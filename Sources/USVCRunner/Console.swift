import Glibc
import USVCSys

/// The `usvc` window: says what this tmux server is and waits until it ends.
/// The session needs one window that is not a job, or it would end with the last job.
public func runConsole() -> Never {
  let signals = SignalSet([.terminate, .interrupt, .hangup])
  signals.block()
  try? FileDescriptor.standardOutput.writeAll(
    "usvc: this tmux server runs your jobs, one window each.\n"
      + "Switch windows with C-b n / C-b p / C-b w; detach with C-b d.\n"
      + "Ctrl-C is not sent to jobs here: stop one with 'usvc stop NAME'.\n")
  var set = signals.raw
  var second = timespec(tv_sec: 1, tv_nsec: 0)
  let server = getppid()
  // tmux built with libutempter (Debian's) misses a SIGCHLD that arrives while
  // utempter's own handler is in place (tmux issue #311): a runner killed then
  // stays an unreaped zombie, its pane never counts as died, and the pane-died
  // hook never starts a new runner. A SIGCHLD every second makes tmux reap it.
  while sigtimedwait(&set, nil, &second) < 0 {
    if server > 1 && getppid() == server { kill(server, SIGCHLD) }
  }
  exit(0)
}
