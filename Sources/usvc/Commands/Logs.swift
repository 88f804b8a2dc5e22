import ArgumentParser
import USVCCore

extension USVC {
  struct Logs: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "logs", abstract: "Show the last lines of jobs' logs; with several jobs each line is prefixed 'NAME | '.",
      discussion: """
        Through a pipe or into a file the log's bytes are passed on unchanged. On a terminal, control \
        characters and bytes that are not UTF-8 are shown as \\x1b, \\xe9, … (tabs kept; colours kept \
        unless NO_COLOR has a value), so a job's output cannot retitle, clear or reprogram the terminal.
        """)
    // .unconditional: `-n -1` is a bad count, not a missing value.
    @Option(name: .short, parsing: .unconditional, help: "How many lines of each log.")
    var n: Int = 10
    @Flag(name: .short, help: "Keep following the logs, across rotation, until interrupted.")
    var follow = false
    @OptionGroup var selection: SelectorArguments

    @OptionGroup var fleet: FleetOptions
    func validate() throws {
      if n < 0 { throw UsvcError.badValue(key: "-n", value: String(n), why: "expected a number of lines, 0 or more") }
    }

    func run() throws {
      if fleet.isActive { return try fleet.run(Fleet.Mode(shape: .plain, bounded: false, streaming: follow)) }
      let supervisor = try USVC.supervisor(forWriting: false)
      let names = try supervisor.select(selection.selectors)
      let prefixed = names.count > 1
      var lines = LineOutput()
      for name in names {
        for line in LogReader.tail(supervisor.home.paths(name).log, lines: n) {
          lines.add(line, prefix: prefixed ? "\(name) | " : "")
        }
      }
      lines.flush()
      guard follow else { return }
      LogReader.follow(names.map { ($0, supervisor.home.paths($0).log) }) { name, line in
        lines.add(line, prefix: prefixed ? "\(name) | " : "")
        lines.flush()
      }
    }
  }
}
