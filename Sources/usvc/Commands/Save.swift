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
      let (groups, unsaved) = try USVC.supervisor().save(to: file)
      output("saved \(groups) group\(groups == 1 ? "" : "s") to \(file)")
      // Each job left out was said on stderr; the file holds the others.
      if !unsaved.isEmpty { throw ExitCode.failure }
    }
  }
}
