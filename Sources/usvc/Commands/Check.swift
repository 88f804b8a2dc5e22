import ArgumentParser
import USVCCore
import USVCSys

extension USVC {
  struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "check", abstract: "Validate every conf; print each problem, exit 1 if any.",
      discussion: "Checks keys, values, commands still executable, job names and 'after' (names something, no cycle). One 'PATH: KEY: PROBLEM' line per problem.")

    @OptionGroup var fleet: FleetOptions
    func run() throws {
      if fleet.isActive { return try fleet.run(.reading) }
      let report = try USVC.supervisor(forWriting: false).check()
      for problem in report.problems { output(problem.description) }
      guard report.problems.isEmpty else {
        let files = Set(report.problems.map(\.path)).count
        printError("usvc: \(report.problems.count) problem\(report.problems.count == 1 ? "" : "s") in \(files) of \(report.jobs) confs")
        throw ExitCode(1)
      }
      output("ok: \(report.jobs) jobs checked")
    }
  }
}
