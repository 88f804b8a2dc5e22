// usvc-runner HOME NAME: keeps one job running in its tmux pane.
// usvc-runner --console: the placeholder window that keeps usvc's tmux session alive.
import Glibc
import USVCRunner
import USVCSys

let arguments = CommandLine.arguments
if arguments.count == 2 && arguments[1] == "--console" {
  runConsole()
} else if arguments.count == 3 {
  guard var runner = Runner(home: arguments[1], name: arguments[2]) else { exit(1) }
  runner.run()
} else {
  printError("usage: usvc-runner HOME NAME | usvc-runner --console")
  exit(2)
}
