import ArgumentParser
import USVCCore

extension USVC {
  struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the event stream: TIME, JOB, EVENT, DETAIL, tab-separated.")
    @Option(name: .short, help: "How many of the last events.")
    var n: Int = 10
    @Flag(name: .short, help: "Keep following new events until interrupted.")
    var follow = false

    func run() throws {
      let supervisor = try USVC.supervisor()
      let path = supervisor.home.eventsLog
      for line in LogReader.tail(path, lines: n) { output(line) }
      guard follow else { return }
      LogReader.follow([("", path)]) { _, line in
        output(line)
        return true
      }
    }
  }

  struct Save: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Save all groups to one git-config file.")
    @Argument var file: String
    func run() throws { throw UsvcError.conflict("save is not implemented yet") }
  }

  struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Recreate the groups saved in FILE.")
    @Argument var file: String
    func run() throws { throw UsvcError.conflict("load is not implemented yet") }
  }

  struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate every conf; print each problem, exit 1 if any.")
    func run() throws { throw UsvcError.conflict("check is not implemented yet") }
  }

  struct Resurrect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Start every job that should run but has no live runner.")
    func run() throws { throw UsvcError.conflict("resurrect is not implemented yet") }
  }

  struct Shutdown: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stop every job, then the tmux server; resurrect undoes it.")
    func run() throws { throw UsvcError.conflict("shutdown is not implemented yet") }
  }
}
