// usvc-runner HOME NAME: keeps one job running in its tmux pane.
// usvc-runner --console [USVC]: window 0, which keeps usvc's tmux session alive and shows `USVC top`.
import Glibc
import USVCRunner
import USVCSys

let arguments = CommandLine.arguments
if (arguments.count == 2 || arguments.count == 3) && arguments[1] == "--console" {
  runConsole(board: arguments.count == 3 ? arguments[2] : nil)
} else if arguments.count == 3 {
  guard var runner = Runner(home: arguments[1], name: arguments[2]) else { exit(1) }
  runner.run()
} else {
  printError("usage: usvc-runner HOME NAME | usvc-runner --console [USVC]")
  exit(2)
}
