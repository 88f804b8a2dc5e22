import ArgumentParser
import USVCCore
import USVCSys

/// `-s HUP`, `-s SIGHUP`, `-s 1`: checked by the parser. A refusal reads
/// `unknown signal 'X'` (see `USVC.typedValueRefusal`).
extension Signal: ExpressibleByArgument {
  public init?(argument: String) { self.init(parsing: argument) }
  public var defaultValueDescription: String { description }
}

extension USVC {
  struct Kill: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "kill", abstract: "Send a signal to each running job's process group; the restart policy then applies.")
    @Option(name: .short, help: ArgumentHelp("Signal name (HUP, SIGHUP) or number.", valueName: "signal"))
    var signal: Signal = .terminate
    @OptionGroup var selection: RequiredSelectors<Kill>

    @OptionGroup var fleet: FleetOptions
    func run() throws {
      if fleet.isActive { return try fleet.run(.acting) }
      let supervisor = try USVC.supervisor(forWriting: false)
      let names = try supervisor.select(selection.selectors)
      let signalled = Set(supervisor.kill(signal, names))
      for name in names {
        if signalled.contains(name) { output("sent \(signal) to \(name)") } else { printError("usvc: \(name) is not running") }
      }
      if signalled.isEmpty { throw ExitCode.failure }
    }
  }
}

extension USVC.Kill: SelectorsRequired {
  static let missingSelectors = "name the jobs to signal"
}
