import ArgumentParser
import USVCCore

extension USVC {
  struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "events", abstract: "Show the event stream: TIME, JOB, EVENT, DETAIL, tab-separated.")
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
}
