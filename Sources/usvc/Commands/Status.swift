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
        With --hosts or --hosts-file, runs 'usvc status' (same selectors and flags) on each host through \
        ssh, in parallel, and prints their lines in the order given; an unreachable host gets one line \
        'HOST  unreachable  REASON' and the exit code is 2. USVC_SSH names the ssh program (default ssh), \
        USVC_REMOTE_COMMAND the remote usvc (default usvc).
        """)
    @Flag(help: "One JSON object per host per line (JSON Lines), with every health figure.")
    var json = false
    @Flag(name: .short, help: "The system line only.")
    var systemOnly = false
    // .unconditional: '--hosts -oProxyCommand=…' must reach the host check, which
    // says what is wrong, instead of being read as a missing value.
    @Option(parsing: .unconditional, help: "Ask these hosts instead, through ssh, in parallel (comma-separated).")
    var hosts: String?
    @Option(parsing: .unconditional, help: "Ask the hosts in FILE instead: one per line, # comments.")
    var hostsFile: String?
    @OptionGroup var selection: SelectorArguments

    func run() throws {
      if hosts != nil || hostsFile != nil { return try runRemote() }
      let supervisor = try USVC.supervisor(forWriting: false)
      let names = try supervisor.select(selection.selectors)
      let status = supervisor.status(names, processFigures: !systemOnly)
      // A broken conf is said, but never fails the others' status (SPEC: Broken confs).
      for job in status.jobs { if let problem = job.confProblem { printError("usvc: " + problem.visible) } }
      if json {
        output(StatusFormat.json(status, systemOnly: systemOnly))
      } else {
        output(StatusFormat.text(status, systemOnly: systemOnly, color: colorWanted()))
      }
    }

    /// Every host's lines in the order given; exit 2 if any host did not answer cleanly.
    func runRemote() throws {
      let remote = try RemoteStatus(
        hosts: RemoteStatus.hostNames(list: hosts, file: hostsFile), selectors: selection.selectors,
        json: json, systemOnly: systemOnly, environment: processEnvironment())
      var allAnswered = true
      remote.run { report in
        let rendered = report.rendered(json: json)
        if !rendered.text.isEmpty { output(rendered.text) }
        if !rendered.clean { allAnswered = false }
      }
      if !allAnswered { throw ExitCode(2) }
    }
  }
}
