import ArgumentParser
import USVCCore

extension USVC {
  struct Top: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "top", abstract: "A live board of the jobs, problems first, redrawn every second.",
      discussion: """
        Keys: arrows or j/k move, r restart, s stop, S start again, K kill with SIGKILL (asks first), \
        l the last log lines of the job, Enter attaches to its window, / filters, q quits. \
        Colours by state unless NO_COLOR is set. Window 0 of usvc's tmux session runs it. \
        With --hosts, --hosts-file or --hosts @NAME, the jobs of those hosts, each through one ssh \
        session held for the board's lifetime (the remote usvc sends a line per refresh); a host \
        that cannot be reached or stops answering is a row of its own and is connected again; \
        keys act on the job's own host, Enter attaches through 'ssh -t'.
        """)
    @Option(name: .short, help: ArgumentHelp("Seconds between refreshes.", valueName: "seconds"))
    var d: Double = 1
    @OptionGroup var fleet: FleetOptions
    @OptionGroup var selection: SelectorArguments

    func run() throws {
      if fleet.isActive {
        let words = HostsBoardSource.feedWords(selectors: selection.selectors, interval: d)
        var loop = try BoardLoop(hosts: try fleet.fleet(words: words, mode: .acting), interval: d)
        try loop.run()
      }
      var loop = try BoardLoop(supervisor: try USVC.supervisor(forWriting: false), selectors: selection.selectors, interval: d)
      try loop.run()
    }
  }
}
