import ArgumentParser
import USVCCore

extension USVC {
  struct Stop: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "stop", abstract: "Stop jobs: stop-signal to the whole process tree, SIGKILL after stop-timeout.",
      discussion: "Returns once every process of the jobs is gone. The jobs stay defined, state stopped.")
    @OptionGroup var selection: SelectorArguments

    func validate() throws {
      if selection.selectors.isEmpty { throw ValidationError("name the jobs to stop (a job, a group, all, live or dead)") }
    }

    func run() throws {
      let supervisor = try USVC.supervisor(forWriting: false)
      let names = try supervisor.select(selection.selectors)
      try supervisor.stop(names)
      for name in names { output("stopped \(name)") }
    }
  }

  struct Restart: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "restart", abstract: "Stop jobs (if running), then start them again with a fresh back-off.")
    @OptionGroup var selection: SelectorArguments
    @Flag(help: "One job at a time, each ready (running) before the next.")
    var rolling = false

    func validate() throws {
      if selection.selectors.isEmpty { throw ValidationError("name the jobs to restart (a job, a group, all, live or dead)") }
    }

    func run() throws {
      let supervisor = try USVC.supervisor()
      let names = try supervisor.select(selection.selectors)
      if rolling {
        try supervisor.restartRolling(names) { output($0.description) }
      } else {
        try supervisor.restart(names) { output($0.description) }
      }
    }
  }

  struct Remove: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "rm", abstract: "Stop jobs and remove them (windows, confs, state); their logs stay.")
    @OptionGroup var selection: SelectorArguments

    func validate() throws {
      if selection.selectors.isEmpty { throw ValidationError("name the jobs to remove (a job, a group or all)") }
    }

    func run() throws {
      let supervisor = try USVC.supervisor()
      let names = try supervisor.select(selection.selectors)
      try supervisor.remove(names)
      for name in names { output("removed \(name)") }
    }
  }
}
