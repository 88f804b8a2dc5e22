import ArgumentParser
import USVCCore
import USVCSys

extension USVC {
  struct Kill: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "kill", abstract: "Send a signal to each running job's process group; the restart policy then applies.")
    @Option(name: .short, help: "Signal name (HUP, SIGHUP) or number.")
    var signal: String = "TERM"
    @OptionGroup var selection: SelectorArguments

    func validate() throws {
      if Signal(parsing: signal) == nil { throw UsvcError.badSignal(signal) }
      if selection.selectors.isEmpty { throw ValidationError("name the jobs to signal") }
    }

    func run() throws {
      let supervisor = try USVC.supervisor(forWriting: false)
      let names = try supervisor.select(selection.selectors)
      let sent = Signal(parsing: signal)!
      let signalled = Set(supervisor.kill(sent, names))
      for name in names {
        if signalled.contains(name) { output("sent \(sent) to \(name)") } else { printError("usvc: \(name) is not running") }
      }
      if signalled.isEmpty { throw ExitCode.failure }
    }
  }
}
