import ArgumentParser
import USVCCore

extension USVC {
  struct Save: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "save", abstract: "Save all groups to one git-config file.",
      discussion: "One [group \"NAME\"] section per group: count, cmd, args, cwd, env, restart, after, … from its lowest-numbered job. 'usvc load FILE' recreates them.")
    @Argument(help: "The file to write (replaced atomically, mode 0600).")
    var file: String

    func run() throws {
      let groups = try USVC.supervisor().save(to: file)
      output("saved \(groups) group\(groups == 1 ? "" : "s") to \(file)")
    }
  }

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
