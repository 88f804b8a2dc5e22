import ArgumentParser
import USVCCore

extension USVC {
  struct Stop: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "stop", abstract: "Stop jobs: stop-signal to the whole process tree, SIGKILL after stop-timeout.",
      discussion: "Returns once every process of the jobs is gone. The jobs stay defined, state stopped.")
    @OptionGroup var selection: RequiredSelectors<Stop>

    @OptionGroup var fleet: FleetOptions
    func run() throws {
      if fleet.isActive { return try fleet.run(.acting) }
      let supervisor = try USVC.supervisor(forWriting: false)
      let names = try supervisor.select(selection.selectors)
      try supervisor.stop(names)
      for name in names { output("stopped \(name)") }
    }
  }
}

extension USVC.Stop: SelectorsRequired {
  static let missingSelectors = "name the jobs to stop (a job, a group, all, live or dead)"
}
