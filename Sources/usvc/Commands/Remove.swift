import ArgumentParser
import USVCCore

extension USVC {
  struct Remove: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "rm", abstract: "Stop jobs and remove them (windows, confs, state); their logs stay.")
    @OptionGroup var selection: RequiredSelectors<Remove>

    @OptionGroup var fleet: FleetOptions
    func run() throws {
      if fleet.isActive { return try fleet.run(.acting) }
      let supervisor = try USVC.supervisor()
      let names = try supervisor.select(selection.selectors)
      try supervisor.remove(names)
      for name in names { output("removed \(name)") }
    }
  }
}

extension USVC.Remove: SelectorsRequired {
  static let missingSelectors = "name the jobs to remove (a job, a group or all)"
}
