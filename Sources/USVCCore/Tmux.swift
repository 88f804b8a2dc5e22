import Glibc
import USVCSys

/// usvc's private tmux server: session `usvc`, one window per job (SPEC: Files).
///
/// Nothing a user typed reaches a shell or tmux's command parser: programs are
/// started with `--` and at least two words (one word goes through `sh -c`),
/// an argument ending in `;` is escaped, `#` in window names is doubled, and
/// windows are targeted by id, never by a name tmux could prefix-match
/// (PLATFORM-NOTES: tmux 3.3a from a program).
public struct Tmux: Sendable {
  public let home: Home
  public let socket: String
  /// usvc-runner, installed next to usvc.
  public let runner: String
  let environment: [String]

  public init(home: Home, runner: String, environment: [String]) throws(UsvcError) {
    self.home = home
    self.runner = runner
    // Inside tmux, TMUX would make tmux talk to the user's own server.
    // USVC_JOB and USVC_GROUP of a caller that is itself a job must not mark the runners.
    self.environment = environment.filter {
      !$0.hasPrefix("TMUX=") && !$0.hasPrefix("TMUX_PANE=") && !$0.hasPrefix("USVC_JOB=") && !$0.hasPrefix("USVC_GROUP=")
    }
    self.socket = try Tmux.socketPath(for: home)
  }

  /// `USVC_HOME/tmux.sock`, or, when that is longer than a Unix socket path may
  /// be (107 bytes), a private one in `/tmp/usvc-UID/` named by a hash of the home.
  static func socketPath(for home: Home) throws(UsvcError) -> String {
    let preferred = home.path + "/tmux.sock"
    if preferred.utf8.count <= maximumSocketPathLength { return preferred }
    let folder = shortSocketDirectory
    do { try makeDirectory(folder) } catch {
      throw .badHome("cannot create \(folder) for the tmux socket: \(error)")
    }
    guard isPrivateDirectory(folder) else {
      throw .badHome("\(folder) (for the tmux socket, as \(preferred) is too long) is not a private directory of yours")
    }
    // FNV-1a of the home path: stable, and distinct homes get distinct sockets.
    let hash = fnv1a(home.path.utf8)
    return folder + "/" + String(hash, radix: 16) + ".sock"
  }

  /// The file usvc's server is started with, so the user's ~/.tmux.conf never applies.
  var configPath: String { home.path + "/tmux.conf" }

  /// Runs one tmux command against usvc's server.
  @discardableResult
  func run(_ arguments: [String]) throws(UsvcError) -> CapturedRun {
    do {
      return try runCapturing(["tmux", "-S", socket, "-f", configPath] + arguments, environment: environment)
    } catch {
      throw .tmux("cannot run tmux: \(error) (is tmux installed?)")
    }
  }

  /// Whether the server runs and has usvc's session.
  public func isRunning() -> Bool {
    (try? run(["has-session", "-t", "=usvc"]))?.status.isSuccess ?? false
  }

  /// usvc itself, installed next to usvc-runner: window 0 runs its board.
  var cli: String {
    (runner.lastIndex(of: "/").map { String(runner[..<$0]) } ?? ".") + "/usvc"
  }

  /// Starts the server, unless it runs already, with window 0 (`usvc`): the
  /// console, which shows the board (`usvc top`) while a client is attached,
  /// and keeps nudging tmux to notice dead runners, board or not.
  public func ensureServer() throws(UsvcError) {
    if isRunning() { return }
    do {
      try writeFileAtomically(configPath, Array(TmuxConfig.text.utf8))
    } catch {
      throw .tmux("cannot write \(configPath): \(error)")
    }
    let result = try run(["new-session", "-d", "-s", "usvc", "-n", "usvc", "-x", "200", "-y", "50", "--", Tmux.escaped(runner), "--console", Tmux.escaped(cli)])
    // Another usvc may have started it in the meantime: that is fine too.
    if !result.status.isSuccess && !isRunning() {
      throw .tmux("cannot start the server: \(result.errorOutput.trimmed)")
    }
  }

  /// Opens a window per job, each running the job's runner with `scrollback`
  /// lines of history, and returns the runners' pids in order. Windows a job
  /// already has (a dead pane left by a runner that failed) are closed first.
  /// Up to 40 windows go in one tmux call (commands separated by a lone `;`
  /// argument), which stays under tmux's message size and saves a client
  /// start per job.
  public func openWindows(_ jobs: [(name: String, scrollback: Int)]) throws(UsvcError) -> [pid_t] {
    let names = jobs.map(\.name)
    let existing = windows()
    let stale = names.compactMap { existing[$0] }
    if !stale.isEmpty { _ = try? run(stale.flatMap { ["kill-window", "-t", $0, ";"] }.dropLast()) }
    var pids: [pid_t] = []
    var start = 0
    while start < names.count {
      let chunk = jobs[start..<min(start + 40, jobs.count)]
      let commands = chunk.flatMap { (name, scrollback) in
        [
          // tmux 3.3a sizes a pane's history when it is made, from its session's
          // history-limit: so set that just before. One client's commands run
          // in a row, so no other window is made in between.
          "set-option", "-t", "=usvc:", "history-limit", String(min(scrollback, Int(Int32.max))), ";",
          "new-window", "-d", "-t", "=usvc:", "-n", name.replacing("#", with: "##"), "-P", "-F", "#{pane_pid}",
          "--", Tmux.escaped(runner), Tmux.escaped(home.path), Tmux.escaped(name), ";",
        ]
      } + ["set-option", "-u", "-t", "=usvc:", "history-limit"]  // Back to the config's default for other windows.
      let result = try run(Array(commands))
      let opened = result.output.split(separator: "\n").compactMap { pid_t($0) }
      guard result.status.isSuccess, opened.count == chunk.count else {
        throw .tmux("cannot open windows for \(chunk.map(\.name).joined(separator: ", ")): \(result.errorOutput.trimmed)")
      }
      pids += opened
      start += chunk.count
    }
    return pids
  }

  /// Window id by window name, for every window of the session.
  public func windows() -> [String: String] {
    guard let result = try? run(["list-windows", "-t", "=usvc", "-F", "#{window_id} #{window_name}"]),
      result.status.isSuccess
    else { return [:] }
    var windows: [String: String] = [:]
    for line in result.output.split(separator: "\n") {
      guard let space = line.firstIndex(of: " ") else { continue }
      windows[String(line[line.index(after: space)...])] = String(line[..<space])
    }
    return windows
  }

  /// Closes the window of job `name`, if it has one.
  public func closeWindow(_ name: String) {
    if let id = windows()[name] { _ = try? run(["kill-window", "-t", id]) }
  }

  /// Ends the server and with it every window.
  public func killServer() {
    _ = try? run(["kill-server"])
  }

  /// Replaces this process with `tmux attach`, on job `name`'s window or the session.
  public func attach(_ name: String?) throws(UsvcError) -> Never {
    guard isRunning() else { throw .tmux("no usvc tmux server is running (start a job first)") }
    if let name {
      guard let id = windows()[name] else { throw .tmux("\(name) has no window (is it running?)") }
      try run(["select-window", "-t", id])
    }
    let searchPath = value(of: "PATH", in: environment) ?? "/usr/bin:/bin"
    let program = try Commands.resolve("tmux", searchPath: searchPath, directory: "/")
    let argv = [program, "-S", socket, "-f", configPath, "attach-session", "-t", "=usvc"]
    do {
      try replaceProcess(argv, environment: environment)
    } catch {
      throw .system("cannot run tmux", error)
    }
  }

  /// An argument safe after `--`: tmux ends a command at an unescaped trailing `;`.
  static func escaped(_ argument: String) -> String {
    argument.hasSuffix(";") ? String(argument.dropLast()) + "\\;" : argument
  }
}
