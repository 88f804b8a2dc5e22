import Glibc
import USVCSys

/// The states of SPEC.md, as published in `run/NAME.state`.
public enum JobState: String, Sendable, CaseIterable {
  case starting, running, waiting, stopping, stopped, exited, failed, lost
  /// Running, but failing its health check fewer than `health-retries` times in a row (SPEC: Health).
  case unhealthy
  /// Its conf cannot be read (SPEC: Broken confs); the CLI says so, never a runner.
  case broken
}

/// The live state of one job, written by its runner to `run/NAME.state` after
/// every change and read by the CLI.
///
/// Format: `key=value` lines; values never hold a newline; the last line is
/// `end=1`. The runner rewrites the file in place (creating and renaming a file
/// per change costs about a millisecond on ext4, on the restart path), so a
/// reader that finds no `end` line caught a write half-way and reads again.
public struct RunState: Equatable, Sendable {
  /// The runner's pid (also the tmux pane's pid).
  public var runner: pid_t = 0
  public var state: JobState = .starting
  /// The job's main pid, which is also its process group and session; 0 when none.
  public var pid: pid_t = 0
  /// The main process's start time after boot in clock ticks (from /proc), which
  /// tells it from a later process that got the same pid.
  public var pidStart: UInt64 = 0
  /// Wall-clock time of the last state change.
  public var since: Double = 0
  /// Wall-clock time the current (or last) run began.
  public var started: Double = 0
  /// How many times the program was started again after its first start.
  public var restarts: Int = 0
  /// Completed runs, and how many of them ended with a non-zero code or a signal.
  public var runs: Int = 0
  public var failures: Int = 0
  /// `0`, `1`, `SIGKILL`, or `-` before the first exit.
  public var lastExit: String = "-"
  public var lastRunSeconds: Double = 0
  public var totalRunSeconds: Double = 0
  public var quickDeaths: Int = 0
  /// While waiting: when the next start is due (wall clock).
  public var retryAt: Double = 0
  /// While stopping: when SIGKILL goes out (wall clock), so `usvc stop` knows how long to wait.
  public var killAt: Double = 0
  /// Why the job is waiting, failed or lost; empty otherwise.
  public var reason: String = ""
  /// While waiting for what it is `after`: that `job.after` selector; empty otherwise.
  public var waitingFor: String = ""
  /// Identity of the program file when the current run began, to report `changed`.
  public var programDevice: UInt64 = 0
  public var programInode: UInt64 = 0
  public var programModified: Double = 0
  /// Whether runs are checked for health (`job.health`), and how many checks
  /// of this run failed in a row (SPEC: Health).
  public var checksHealth = false
  public var healthFailures: Int = 0
  /// The limits (and `nice value`) the current run could not have as its spec
  /// asks, comma-separated: the runner may not raise them (`start` warns).
  public var unmetLimits: String = ""

  public init() {}

  public var averageRunSeconds: Double { runs > 0 ? totalRunSeconds / Double(runs) : 0 }

  public func encoded() -> String {
    """
    runner=\(runner)
    state=\(state.rawValue)
    pid=\(pid)
    pid-start=\(pidStart)
    since=\(since)
    started=\(started)
    restarts=\(restarts)
    runs=\(runs)
    failures=\(failures)
    last-exit=\(lastExit)
    last-run=\(lastRunSeconds)
    total-run=\(totalRunSeconds)
    quick-deaths=\(quickDeaths)
    retry-at=\(retryAt)
    kill-at=\(killAt)
    reason=\(reason.split(whereSeparator: \.isNewline).joined(separator: " "))
    waiting-for=\(waitingFor.split(whereSeparator: \.isNewline).joined(separator: " "))
    program-dev=\(programDevice)
    program-ino=\(programInode)
    program-mtime=\(programModified)
    checks-health=\(checksHealth ? 1 : 0)
    health-failures=\(healthFailures)
    unmet-limits=\(unmetLimits)
    end=1

    """
  }

  public init(decoding text: String) { self.init(decoding: Array(text.utf8)) }

  /// Decodes `encoded()` from the state file's bytes. Byte by byte, not through
  /// `String`'s character view: `status` decodes every job's state on each call.
  public init(decoding bytes: [UInt8]) {
    var lineStart = 0
    while lineStart < bytes.count {
      let lineEnd = bytes[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
      defer { lineStart = lineEnd + 1 }
      guard let equals = bytes[lineStart..<lineEnd].firstIndex(of: UInt8(ascii: "=")) else { continue }
      let key = String(decoding: bytes[lineStart..<equals], as: UTF8.self)
      let value = String(decoding: bytes[(equals + 1)..<lineEnd], as: UTF8.self)
      switch key {
      case "end": return  // What follows is left from a longer earlier write.
      case "runner": runner = pid_t(value) ?? 0
      case "state": state = JobState(rawValue: value) ?? .lost
      case "pid": pid = pid_t(value) ?? 0
      case "pid-start": pidStart = UInt64(value) ?? 0
      case "since": since = Double(value) ?? 0
      case "started": started = Double(value) ?? 0
      case "restarts": restarts = Int(value) ?? 0
      case "runs": runs = Int(value) ?? 0
      case "failures": failures = Int(value) ?? 0
      case "last-exit": lastExit = value
      case "last-run": lastRunSeconds = Double(value) ?? 0
      case "total-run": totalRunSeconds = Double(value) ?? 0
      case "quick-deaths": quickDeaths = Int(value) ?? 0
      case "retry-at": retryAt = Double(value) ?? 0
      case "kill-at": killAt = Double(value) ?? 0
      case "reason": reason = value
      case "waiting-for": waitingFor = value
      case "program-dev": programDevice = UInt64(value) ?? 0
      case "program-ino": programInode = UInt64(value) ?? 0
      case "program-mtime": programModified = Double(value) ?? 0
      case "checks-health": checksHealth = value == "1"
      case "health-failures": healthFailures = Int(value) ?? 0
      case "unmet-limits": unmetLimits = value
      default: break
      }
    }
  }
}

/// Where a job's files live under `USVC_HOME`. Shared by the CLI and the runner
/// so both always agree.
public struct JobPaths: Sendable {
  public var home: String
  public var name: String
  public init(home: String, name: String) {
    self.home = home
    self.name = name
  }
  public var conf: String { "\(home)/jobs/\(name).conf" }
  public var spec: String { "\(home)/run/\(name).spec" }
  public var state: String { "\(home)/run/\(name).state" }
  /// Held (flock) by the live runner: a free lock means the runner is gone.
  public var lock: String { "\(home)/run/\(name).lock" }
  public var log: String { "\(home)/logs/\(name).log" }
  /// Held (flock) by a usvc command while it stops or starts the job, so two
  /// such commands take turns (`Supervisor.withControlLocks`).
  public var control: String { "\(home)/run/\(name).control" }
  /// The datagram socket of a `job.ready notify` job (`NOTIFY_SOCKET`), made
  /// by its runner, when this path fits a Unix socket (the runner says where else).
  public var notifySocket: String { "\(home)/run/\(name).notify" }
}

extension JobPaths {
  /// Every job name defined under `home` (from `jobs/*.conf`), unsorted.
  public static func jobNames(home: String) -> [String] {
    directoryEntries(home + "/jobs").compactMap { entry in
      entry.hasSuffix(".conf") && !entry.hasPrefix(".") ? String(entry.dropLast(5)) : nil
    }
  }

  /// Whether this job is what `selector` names: itself, or its group (`GROUP-N`).
  public func isNamed(by selector: String) -> Bool {
    if name == selector { return true }
    guard name.hasPrefix(selector + "-") else { return false }
    let index = name.dropFirst(selector.count + 1)
    return !index.isEmpty && index.allSatisfy(\.isNumber) && index.first != "0"
  }

  /// The job's state file, read whole: a read that caught the runner half-way
  /// through a write (no `end=1` line) is done again. Nil when there is none.
  public func readState() -> RunState? {
    var bytes: [UInt8]?
    for _ in 0..<50 {
      bytes = readFile(state, shortReadEnds: true)
      guard let read = bytes else { return nil }
      if read.withUnsafeBytes({ hasLine("end=1", in: $0) }) { break }
      usleep(200)
    }
    return bytes.map(RunState.init(decoding:))
  }

  /// The live state of this job as others see it: its runner's record, or nil
  /// when no runner holds its lock.
  public func liveState() -> RunState? {
    guard runnerPid() != nil else { return nil }
    return readState()
  }

  /// The pid of the live runner of this job, or nil when none holds its lock.
  /// Asks without taking the lock (F_GETLK), so it never gets in a runner's way.
  public func runnerPid() -> pid_t? {
    guard let fd = try? FileDescriptor.open(lock, O_RDONLY) else { return nil }
    defer { fd.close() }
    return fd.lockHolder()
  }

  /// Becomes this job's one runner: false when another holds the lock.
  /// The descriptor stays open for the process's life (closing it would drop the lock).
  public func lockAsRunner() -> Bool {
    guard let fd = try? FileDescriptor.open(lock, O_RDWR | O_CREAT) else { return false }
    return fd.lockForLife()
  }

  /// Kills every process left of this job after its runner died: those in the
  /// main process's session or group (a pid is not reused while a session or
  /// group of that number lives, so only a live leader with another start time
  /// means the number now belongs to someone else), and those that left both
  /// (setsid) but still carry the job's `USVC_HOME` and `USVC_JOB`.
  public func killLeftovers(of state: RunState) {
    let processes = ProcStat.all()
    var session = state.pid
    if let leader = processes.first(where: { $0.pid == session }), leader.startTicks != state.pidStart {
      session = 0
    }
    let marks: Set<String> = ["USVC_HOME=\(home)", "USVC_JOB=\(name)"]
    let me = getpid()
    for process in processes where process.pid != me && process.pid > 1 {
      let inJobSession = session > 1 && (process.session == session || process.processGroup == session)
      if inJobSession || ProcStat.environment(of: process.pid).filter({ marks.contains($0) }).count == 2 {
        try? Signal.kill.send(to: process.pid)
      }
    }
  }
}

/// How `usvc top` exits when the last client detached from usvc's session (it
/// read a focus-out report in window 0): nobody can see it, so window 0's
/// console waits for a client before starting it again.
public let boardUnwatchedStatus: Int32 = 3

/// The socket of the tmux server this process runs in, from `TMUX`
/// (`SOCKET,PID,SESSION`; the socket path may itself hold commas), or nil.
public func tmuxSocket(environment: [String]) -> String? {
  guard let value = value(of: "TMUX", in: environment) else { return nil }
  var parts = value.split(separator: ",", omittingEmptySubsequences: false)
  guard parts.count >= 3 else { return nil }
  parts.removeLast(2)
  return parts.joined(separator: ",")
}
