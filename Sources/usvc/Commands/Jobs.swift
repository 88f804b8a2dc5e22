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

  struct Pidof: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "pidof",
      abstract: "Print the main pid of each running job, one per line; a job that is not running is named on stderr.")
    @OptionGroup var selection: SelectorArguments

    func validate() throws {
      if selection.selectors.isEmpty { throw ValidationError("name the jobs (a job, a group, all, live or dead)") }
    }

    func run() throws {
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
