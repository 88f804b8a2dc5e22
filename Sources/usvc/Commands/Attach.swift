import ArgumentParser
import Glibc
import USVCCore

extension USVC {
  struct Attach: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "attach", abstract: "Attach this terminal to a job's window (or to the session).",
      discussion: "Ctrl-C is not sent to the job there; detach with C-b d.")
    @Argument(help: "The job to show.")
    var job: String?
    // .unconditional: '--host -oProxyCommand=…' must reach the host check.
    @Option(parsing: .unconditional, help: "Attach to the job's window on HOST instead, through 'ssh -t'.")
    var host: String?

    func run() throws {
      if let host { try FleetOptions.attach(host: host, job: job) }
      guard isatty(0) == 1 else { throw UsvcError.notATerminal(command: "attach", what: "standard input is not one") }
      let supervisor = try USVC.supervisor(forWriting: false)
      if let job, !supervisor.store.exists(job) { throw UsvcError.noSuchJob(job) }
      try supervisor.tmux().attach(job)
    }
  }
}
