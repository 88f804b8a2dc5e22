import ArgumentParser
import USVCCore
import USVCSys

extension USVC {
  struct Pidof: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "pidof",
      abstract: "Print the main pid of each running job, one per line; a job that is not running is named on stderr.")
    @OptionGroup var selection: RequiredSelectors<Pidof>

    @OptionGroup var fleet: FleetOptions
    func run() throws {
      if fleet.isActive { return try fleet.run(.reading) }
      let supervisor = try USVC.supervisor(forWriting: false)
      var found = false
      for name in try supervisor.select(selection.selectors) {
        if let pid = supervisor.view(name).pid {
          output(String(pid))
          found = true
        } else {
          printError("usvc: \(name) is not running")
        }
      }
      if !found { throw ExitCode.failure }
    }
  }
}

extension USVC.Pidof: SelectorsRequired {
  static let missingSelectors = "name the jobs (a job, a group, all, live or dead)"
}
