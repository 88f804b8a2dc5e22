import ArgumentParser
import USVCCore

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

  struct Pidof: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "pidof", abstract: "Print the main pid of each running job, one per line.")
    @OptionGroup var selection: SelectorArguments

    func validate() throws {
      if selection.selectors.isEmpty { throw ValidationError("name the jobs (a job, a group, all, live or dead)") }
    }

    func run() throws {
      let supervisor = try USVC.supervisor(forWriting: false)
      let pids = try supervisor.select(selection.selectors).compactMap { supervisor.view($0).pid }
      if !pids.isEmpty { output(pids.map(String.init).joined(separator: "\n")) }
    }
  }
}
