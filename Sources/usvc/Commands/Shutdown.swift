import ArgumentParser
import USVCCore

extension USVC {
  struct Shutdown: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "shutdown", abstract: "Stop every job (dependents first), then the tmux server; 'usvc resurrect' undoes it.")

    @OptionGroup var fleet: FleetOptions
    func run() throws {
      if fleet.isActive { return try fleet.run(.acting) }
      let supervisor = try USVC.supervisor()
      try supervisor.shutdown()
    }
  }
}
