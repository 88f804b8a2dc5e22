import ArgumentParser
import Glibc
import USVCCore

extension USVC {
  struct Logs: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "logs", abstract: "Show the last lines of jobs' logs; with several jobs each line is prefixed 'NAME | '.",
      discussion: """
        Through a pipe or into a file the log's bytes are passed on unchanged. On a terminal, control \
        characters and bytes that are not UTF-8 are shown as \\x1b, \\xe9, … (tabs kept; colours kept \
        unless NO_COLOR has a value), so a job's output cannot retitle, clear or reprogram the terminal.

        -t puts the time each line was written before it (after 'NAME | '), in UTC to the second, \
        or '-' for a line written before usvc kept times. The times are kept beside the log \
        (NAME.log.idx), which stays verbatim.
        """)
    // .unconditional: `-n -1` is a bad count, not a missing value.
    @Option(name: .short, parsing: .unconditional, help: "How many lines of each log (default 10; with --since, all of them).")
    var n: Int?
    @Flag(name: .short, help: "Keep following the logs, across rotation, until interrupted.")
    var follow = false
    @Flag(name: [.short, .customLong("timestamps")], help: "Prefix each line with the time it was written (2026-12-02T15:04:05Z).")
    var timestamps = false
    @Option(
      parsing: .unconditional,
      help: ArgumentHelp(
        "Only lines written since then: a duration back (90s, 10m, 2h, 1d, 1h30m) or a time (2026-12-01T10:00, UTC unless it ends in Z or an offset like +01:00).",
        valueName: "DURATION|TIME"))
    var since: String?
    @OptionGroup var selection: SelectorArguments

    @OptionGroup var fleet: FleetOptions
    func validate() throws {
      if let n, n < 0 { throw UsvcError.badValue(key: "-n", value: String(n), why: "expected a number of lines, 0 or more") }
      if let since, LogReader.sinceTime(since, now: Int64(time(nil))) == nil { throw Self.badSince(since) }
    }

    static func badSince(_ value: String) -> UsvcError {
      .badValue(
        key: "--since", value: value,
        why: "expected a duration like 90s, 10m, 2h or 1d, or a time like 2026-12-01T10:00 (UTC, or with Z or +01:00)")
    }

    func run() throws {
      if fleet.isActive { return try fleet.run(Fleet.Mode(shape: .plain, bounded: false, streaming: follow)) }
      let supervisor = try USVC.supervisor(forWriting: false)
      let names = try supervisor.select(selection.selectors)
      let sinceTime = try since.map { text throws(UsvcError) in
        guard let moment = LogReader.sinceTime(text, now: Int64(time(nil))) else { throw Self.badSince(text) }
        return moment
      }
      let count = n ?? (sinceTime == nil ? 10 : Int.max)
      let prefixed = names.count > 1
      var lines = LineOutput()
      func add(_ name: String, _ line: LogReader.Line) {
        var prefix = prefixed ? "\(name) | " : ""
        if timestamps { prefix += (line.time.map(LogReader.timeStamp) ?? "-") + " " }
        lines.add(line.bytes, prefix: prefix)
      }
      for name in names {
        for line in LogReader.tail(supervisor.home.paths(name).log, lines: count, since: sinceTime, timed: timestamps) {
          add(name, line)
        }
      }
      lines.flush()
      guard follow else { return }
      LogReader.follow(names.map { ($0, supervisor.home.paths($0).log) }, timed: timestamps) { name, line in
        add(name, line)
        lines.flush()
      }
    }
  }
}
