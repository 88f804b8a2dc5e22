import ArgumentParser
import USVCCore

extension USVC {
  struct Top: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "top", abstract: "A live board of the jobs, problems first, redrawn every second.",
      discussion: """
        Keys: arrows or j/k move, r restart, s stop, S start again, K kill with SIGKILL (asks first), \
        l the last log lines of the job, Enter attaches to its window, / filters, q quits. \
        Colours by state unless NO_COLOR is set. Window 0 of usvc's tmux session runs it.
        """)
    @Option(name: .short, help: ArgumentHelp("Seconds between refreshes.", valueName: "seconds"))
    var d: Double = 1
    @OptionGroup var selection: SelectorArguments

    func run() throws {
      var loop = try BoardLoop(supervisor: try USVC.supervisor(forWriting: false), selectors: selection.selectors, interval: d)
      try loop.run()
    }
  }
}
