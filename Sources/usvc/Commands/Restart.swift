import ArgumentParser
import USVCCore

extension USVC {
  struct Restart: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "restart", abstract: "Stop jobs (if running), then start them again with a fresh back-off.")
    @OptionGroup var selection: RequiredSelectors<Restart>
    @Flag(help: "One job at a time, each ready (running) before the next; with --hosts, host after host.")
    var rolling = false
    @OptionGroup var fleet: FleetOptions

    func run() throws {
      if fleet.isActive { return try fleet.run(.acting, rolling: rolling) }
      let supervisor = try USVC.supervisor()
      let names = try supervisor.select(selection.selectors)
      if rolling {
        try supervisor.restartRolling(names) { output($0.description) }
      } else {
        try supervisor.restart(names) { output($0.description) }
      }
    }
  }
}

extension USVC.Restart: SelectorsRequired {
  static let missingSelectors = "name the jobs to restart (a job, a group, all, live or dead)"
}
