import ArgumentParser
import USVCCore
import USVCSys

extension USVC {
  struct Jobs: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "jobs", abstract: "List job names, one per line.")
    @OptionGroup var selection: SelectorArguments

    @OptionGroup var fleet: FleetOptions
    func run() throws {
      if fleet.isActive { return try fleet.run(.reading) }
      let names = try USVC.supervisor(forWriting: false).select(selection.selectors)
      if !names.isEmpty { output(names.joined(separator: "\n")) }
    }
  }
}
