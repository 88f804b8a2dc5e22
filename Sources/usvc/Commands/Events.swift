import ArgumentParser
import USVCCore

extension USVC {
  struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "events", abstract: "Show the event stream: TIME, JOB, EVENT, DETAIL, tab-separated.")
    // .unconditional: `-n -1` is a bad count, not a missing value.
    @Option(name: .short, parsing: .unconditional, help: "How many of the last events.")
    var n: Int = 10
    @Flag(name: .short, help: "Keep following new events until interrupted.")
    var follow = false

    @OptionGroup var fleet: FleetOptions
    func validate() throws {
      if n < 0 { throw UsvcError.badValue(key: "-n", value: String(n), why: "expected a number of events, 0 or more") }
    }

    func run() throws {
      if fleet.isActive { return try fleet.run(Fleet.Mode(shape: .events, bounded: false, streaming: follow)) }
      let supervisor = try USVC.supervisor(forWriting: false)
      let path = supervisor.home.eventsLog
      // Details can hold what a job or user wrote (a path, an exec error): escaped on a terminal.
      var lines = LineOutput()
      for line in LogReader.tail(path, lines: n) { lines.add(line) }
      lines.flush()
      guard follow else { return }
      LogReader.follow([("", path)]) { _, line in
        lines.add(line)
        lines.flush()
      }
    }
  }
}
