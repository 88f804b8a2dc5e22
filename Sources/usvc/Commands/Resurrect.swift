import ArgumentParser
import USVCCore

extension USVC {
  struct Resurrect: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "resurrect", abstract: "Start every job that should run but has no live runner (after a reboot or a dead tmux server).",
      discussion: "Running jobs are left alone, so it is safe to run at any time, e.g. from an @reboot crontab line.")

    @OptionGroup var fleet: FleetOptions
    func run() throws {
      if fleet.isActive { return try fleet.run(.acting) }
      try USVC.supervisor().resurrect { output($0.description) }
    }
  }
}
