import ArgumentParser
import USVCCore

extension USVC {
  struct Restart: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "restart", abstract: "Stop jobs (if running), then start them again with a fresh back-off.")
    @OptionGroup var selection: RequiredSelectors<Restart>

    @OptionGroup var fleet: FleetOptions
    func run() throws {
      if fleet.isActive { return try fleet.run(.acting) }
      let supervisor = try USVC.supervisor()
      try supervisor.restart(try supervisor.select(selection.selectors)) { output($0.description) }
    }
  }
}

extension USVC.Restart: SelectorsRequired {
  static let missingSelectors = "name the jobs to restart (a job, a group, all, live or dead)"
}
