import ArgumentParser
import USVCCore
import USVCContract
import USVCSys

extension USVC {
  struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "show", abstract: "Every conf key and every health figure of one job, one 'key: value' per line.")
    @Argument(help: "The job.")
    var job: String

    @OptionGroup var fleet: FleetOptions
    func run() throws {
      if fleet.isActive { return try fleet.run(.reading) }
      let supervisor = try USVC.supervisor(forWriting: false)
      guard supervisor.store.exists(job) else { throw UsvcError.noSuchJob(job) }
      let conf = try supervisor.store.loadAsGitReads(job)
      let status = supervisor.status([job])
      // Escaped (`visible`): a value with a newline must not print a line of its own.
      var lines = conf.entries.map { "\($0.key): \($0.value.visible)" }
      if let figures = status.jobs.first {
        let run = figures.run
        lines += [
          "state: \(figures.state.rawValue)", "pid: \(figures.pid.map(String.init) ?? "-")",
          "runner: \(figures.state == .lost || run.runner == 0 ? "-" : String(run.runner))",
          "started: \(run.started > 0 ? isoTime(run.started) : "-")",
          "since: \(run.since > 0 ? isoTime(run.since) : "-")",
          "restarts: \(run.restarts)", "runs: \(run.runs)", "failures: \(run.failures)",
          "last-exit: \(run.lastExit)", "last-run: \(StatusFormat.decimal(run.lastRunSeconds, places: 3))s",
          "average-run: \(StatusFormat.decimal(run.averageRunSeconds, places: 3))s",
          "quick-deaths: \(run.quickDeaths)",
          "ready: \(figures.state == .running || figures.state == .unhealthy)",
          "health: \(StatusFormat.health(figures) ?? "-")", "health-failures: \(run.healthFailures)",
          "retry-at: \(figures.state == .waiting && run.retryAt > 0 ? isoTime(run.retryAt) : "-")",
          "reason: \(run.reason.isEmpty ? "-" : run.reason.visible)",
          "cpu: \(StatusFormat.decimal(figures.cpuPercent))%",
          "mem: \(figures.pid == nil ? "-" : StatusFormat.bytes(figures.residentBytes))",
          "changed: \(figures.changed)", "log: \(supervisor.home.paths(job).log.visible)",
        ]
      }
      output(lines.joined(separator: "\n"))
    }
  }
}
