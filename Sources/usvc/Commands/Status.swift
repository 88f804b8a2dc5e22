import ArgumentParser
import Glibc
import USVCCore

extension USVC {
  struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "One system line, then one line per job; every line begins with the host name.",
      discussion: "Plain text made to be concatenated across hosts: 'ssh a usvc status; ssh b usvc status'.")
    @Flag(help: "One JSON object per host per line (JSON Lines), with every health figure.")
    var json = false
    @Flag(name: .short, help: "The system line only.")
    var systemOnly = false
    @Option(help: "Ask these hosts too, through ssh, in parallel (comma-separated).")
    var hosts: String?
    @Option(help: "Read host names from FILE, one per line.")
    var hostsFile: String?
    @OptionGroup var selection: SelectorArguments

    func run() throws {
      let supervisor = try USVC.supervisor()
      let names = try supervisor.select(selection.selectors)
      let status = supervisor.status(names)
      if json {
        output(StatusFormat.json(status, systemOnly: systemOnly))
      } else {
        let color = isatty(1) == 1 && supervisor.environment.allSatisfy { !$0.hasPrefix("NO_COLOR=") }
        output(StatusFormat.text(status, systemOnly: systemOnly, color: color))
      }
    }
  }
}
