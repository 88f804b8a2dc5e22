import ArgumentParser
import Glibc
import USVCCore
import USVCSys

extension USVC {
  struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "status", abstract: "One system line, then one line per job; every line begins with the host name.",
      discussion: """
        Plain text made to be concatenated across hosts: 'ssh a usvc status; ssh b usvc status'. \
        With --hosts, --hosts-file or --hosts @NAME, runs 'usvc status' (same selectors and flags) on \
        each host through ssh, in parallel, and prints their lines in the order given, each beginning \
        with the host as given; an unreachable host gets one line 'HOST  unreachable  REASON' and the \
        exit code is 2. USVC_SSH names the ssh program (default ssh), USVC_REMOTE_COMMAND the remote \
        usvc (default usvc); USVC_SSH_MUX=no turns connection sharing off.
        """)
    @Flag(help: "One JSON object per host per line (JSON Lines), with every health figure.")
    var json = false
    @Flag(name: .short, help: "The system line only.")
    var systemOnly = false
    @Flag(help: "Only what needs a look: jobs waiting, failed, lost, broken or exited with an error (after their host's system line), unreachable hosts; exit 3 when anything is printed.")
    var problems = false
    @Option(help: ArgumentHelp("One JSON line every SECONDS until the reader goes away (what 'top --hosts' runs on each host).", valueName: "seconds", visibility: .hidden))
    var feed: Double?
    @OptionGroup var fleet: FleetOptions
    @OptionGroup var selection: SelectorArguments

    func validate() throws {
      if let feed, !(feed >= 0.1 && feed <= 3600) {
        throw UsvcError.badValue(key: "--feed", value: String(feed), why: "expected 0.1 to 3600 seconds")
      }
      if feed != nil && fleet.isActive { throw UsvcError.conflict("--feed is what 'top --hosts' runs on each host, not with --hosts") }
    }

    func run() throws {
      if let feed {
        let supervisor = try USVC.supervisor(forWriting: false)
        supervisor.feed(selection.selectors, every: feed) { line in (try? FileDescriptor.standardOutput.writeAll(line)) != nil }
        return
      }
      if fleet.isActive {
        let mode = Fleet.Mode(shape: json ? .json : .status, bounded: true, answered: problems ? [0, 3] : [0])
        return try fleet.run(mode, problems: problems)
      }
      let supervisor = try USVC.supervisor(forWriting: false)
      let names = try supervisor.select(selection.selectors)
      let status = supervisor.status(names, processFigures: !systemOnly)
      // A broken conf is said, but never fails the others' status (SPEC: Broken confs).
      for job in status.jobs { if let problem = job.confProblem { printError("usvc: " + problem.visible) } }
      // --problems: nothing at all when no job needs a look; else the system line and those jobs.
      let shown: (JobStatus) -> Bool = problems ? { $0.needsALook } : { _ in true }
      if problems && !status.jobs.contains(where: shown) { return }
      if json {
        output(StatusFormat.json(status, systemOnly: systemOnly, shown: shown))
      } else {
        output(StatusFormat.text(status, systemOnly: systemOnly, color: colorWanted(), shown: shown))
      }
      if problems { throw ExitCode(3) }
    }
  }
}
