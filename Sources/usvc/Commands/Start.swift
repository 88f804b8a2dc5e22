import ArgumentParser
import USVCCore
import USVCContract
import USVCSys

extension RestartPolicy: ExpressibleByArgument {}

extension USVC {
  struct Start: PassthroughCommand {
    static let configuration = CommandConfiguration(
      commandName: "start", abstract: "Create jobs running COMMAND and start each in its own tmux window.",
      discussion: "Jobs are named GROUP-1, GROUP-2, … Everything after GROUP reaches the program exactly as given: no shell.")

    // .unconditional: "-n -1" is a bad count to report, not a missing value.
    @Option(name: .short, parsing: .unconditional, help: "How many jobs to create.")
    var n: Int = 1
    @Option(help: "When to restart: always, on-failure or never.")
    var restart: RestartPolicy?
    @Flag(help: "Run once: the same as --restart never.")
    var once = false
    @Option(name: .customShort("C"), help: "Working directory of the jobs (default: the current one).")
    var directory: String?
    @Option(name: .short, help: "Add KEY=VALUE to the jobs' environment (repeatable).")
    var environment: [String] = []
    @Option(help: "Start only once these jobs or groups run (repeatable).")
    var after: [String] = []
    @Option(help: "Run CMD (through sh -c) after a failed run, e.g. to send mail.")
    var notify: String?
    @Option(help: "When a run counts as ready: tcp:PORT, tcp:HOST:PORT, http://HOST:PORT/PATH, exec:CMD, log:REGEX or notify.")
    var ready: String?
    @Option(help: "Check liveness while ready: tcp:PORT, tcp:HOST:PORT, http://HOST:PORT/PATH or exec:CMD.")
    var health: String?
    @Argument(help: "Group name: 1-32 of a-z 0-9 -, starting with a letter.")
    var group: String
    @Argument(parsing: .captureForPassthrough, help: "The program and its arguments.")
    var command: [String] = []

    var passthrough: [String] {
      get { command }
      set { command = newValue }
    }

    @OptionGroup var fleet: FleetOptions
    func validate() throws {
      if once && restart != nil && restart != .never { throw ValidationError("--once and --restart \(restart!.rawValue) contradict each other") }
      if (command.first == "--" ? command.dropFirst() : command[...]).isEmpty {
        throw ValidationError("missing COMMAND: usvc start GROUP COMMAND [ARG…]")
      }
    }

    func run() throws {
      if fleet.isActive { return try fleet.run(.acting, passthrough: command.count) }
      let argv = command.first == "--" ? Array(command.dropFirst()) : command
      var request = StartRequest(group: group, command: argv[0])
      request.arguments = Array(argv.dropFirst())
      request.count = n
      request.restart = once ? .never : restart ?? .always
      request.directory = directory
      request.environment = environment
      request.after = after
      request.notify = notify
      if let ready { request.extra.append(.set("job.ready", [ready])) }
      if let health { request.extra.append(.set("job.health", [health])) }
      let supervisor = try USVC.supervisor()
      for entry in supervisor.unkeptVariables() {
        printError("usvc: warning: the jobs do not get '\(entry.visible)' from your environment: it is not KEY=VALUE")
      }
      try supervisor.start(request) { output($0.description) }
    }
  }
}
