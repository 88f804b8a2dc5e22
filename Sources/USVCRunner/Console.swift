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
  var received: Int32 = 0
  sigwait(&set, &received)
  exit(0)
}
