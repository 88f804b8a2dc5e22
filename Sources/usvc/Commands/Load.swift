import ArgumentParser
import USVCCore

extension USVC {
  struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "load", abstract: "Recreate the groups saved in FILE.",
      discussion: "Everything is checked first; a group that exists already is refused. Groups start after the groups they are 'after'; a saved env is the jobs' whole environment.")
    @Argument(help: "A file written by 'usvc save'.")
    var file: String

    func run() throws {
      try USVC.supervisor().load(from: file) { output($0.description) }
    }
  }
}
