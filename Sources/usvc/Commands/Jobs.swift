import ArgumentParser
import USVCCore
import USVCSys

extension USVC {
  struct Jobs: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "jobs", abstract: "List job names, one per line.")
    @OptionGroup var selection: SelectorArguments

    func run() throws {
      let names = try USVC.supervisor(forWriting: false).select(selection.selectors)
      if !names.isEmpty { output(names.joined(separator: "\n")) }
    }
  }
}
