import Glibc
import USVCSys

/// The `pre`, `post` and `on-failure` hooks (the machine keeps their deadlines).
extension Runner {
  /// What a hook learns besides the job's environment.
  func hookFacts(_ status: TerminationStatus?, ranFor: Double) -> [String] {
    ["USVC_EXIT=\(status?.description ?? "")", "USVC_RUN_SECONDS=\(format(ranFor).dropLast())",
     "USVC_RESTARTS=\(published.restarts)"]
  }

  /// Starts a hook in a session of its own, its output on the job's terminal
  /// (so in the pane and the log). The machine kills it if it runs past
  /// `job.hook-timeout`: a `post` or `on-failure` hook is told to it here,
  /// the `pre` hook comes to it as the event of the start (`preStart`).
  @discardableResult
  mutating func startHook(_ name: String, _ argv: [String], _ facts: [String]) -> pid_t? {
    do {
      let pid = try spawn(
        argv, environment: spec.environment + facts, directory: spec.directory, newSession: true,
        actions: [.open(slavePath, as: 0, flags: O_RDWR | O_NOCTTY), .duplicate(0, as: 1), .duplicate(0, as: 2),
                  .closeFrom(3)])
      if name != "pre" {
        let now = monotonicClock()
        perform(machine.handle(.hookStarted(pid: pid, name: name, killAt: now + spec.hookTimeout), now: now))
      }
      return pid
    } catch {
      say("hook \(name) cannot run: \(argv[0]): \(error)")
      return nil
    }
  }
}
