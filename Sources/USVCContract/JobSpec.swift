import Glibc
import USVCSys

/// When a job's program is started again after it ended.
public enum RestartPolicy: String, Sendable, CaseIterable {
  case always
  case onFailure = "on-failure"
  case never

  /// Whether a run that ended with `status` is followed by another.
  public func restarts(after status: TerminationStatus) -> Bool {
    switch self {
    case .always: return true
    case .onFailure: return !status.isSuccess
    case .never: return false
    }
  }
}

/// What tells one version of a file from the next (inode, modification time,
/// size), as text: a file rewritten through a rename has a new inode.
public func fileIdentity(_ info: stat) -> String {
  "\(info.st_ino):\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec):\(info.st_size)"
}

/// Everything a runner needs to run one job, written by the CLI to
/// `run/NAME.spec` from the job's conf each time the conf changes, so that the
/// runner needs no libgit2 (PLATFORM-NOTES: its start-up cost per process).
///
/// Format: `key NUL value NUL`, repeated, in the order of `JobKeys.all`; list keys repeat in order.
/// Values are lossless text (`String(lossless:)`): the file holds their exact bytes.
public struct JobSpec: Equatable, Sendable {
  public var name: String
  public var group: String
  public var command: String
  public var arguments: [String] = []
  public var environment: [String] = []
  public var directory: String = "/"
  public var restart: RestartPolicy = .always
  public var stopSignal: Signal = .terminate
  public var stopTimeout: Double = 10
  public var stableAfter: Double = 10
  public var backoffMax: Double = 300
  public var logMaxBytes: Int = 10 << 20
  public var logKeep: Int = 5
  /// Lines of the pane's tmux history (set when its window opens): a view for a
  /// person, not an archive (the log is), and tmux's main memory cost, ~1 KiB a line.
  public var scrollback: Int = JobSpec.defaultScrollback
  public static let defaultScrollback = 100
  public var desiredRunning: Bool = true
  /// Jobs or groups that must be running (for `afterDelay` seconds) before this one starts.
  public var after: [String] = []
  public var afterDelay: Double = 0
  /// Restart this job when one it is after restarts.
  public var propagate = false
  /// Hooks (argv): before each start, after each exit, after each failed run.
  public var pre: [String] = []
  public var post: [String] = []
  public var onFailure: [String] = []
  /// Seconds a hook may run before it is killed.
  public var hookTimeout: Double = 10
  /// The umask of the user who ran `start`, given to the job (usvc itself runs with 077).
  public var umask: mode_t = 0o022
  /// The resource limits (every one; `NAME=SOFT:HARD` in the conf) and the
  /// nice value of the user who ran `start`, given to the job like its umask
  /// (else it would get those of whichever `start` began the tmux server).
  /// Empty: the runner's own (a conf from before they were kept). Held
  /// parsed: 16 strings would cost each runner a heap page more (measured).
  public var startLimits: [ResourceLimit] = []
  public var nice: String = ""
  /// Health (SPEC: Health). `ready`/`health`: a `Probe` SPEC, "" for none (ready once exec'd; no check).
  public var ready: String = ""
  public var readyTimeout: Double = 60
  public var readyInterval: Double = 0.1
  public var health: String = ""
  public var healthInterval: Double = 10
  public var healthTimeout: Double = 5
  public var healthRetries: Int = 3
  /// Seconds without output before a restart; 0: no watchdog.
  public var silenceMax: Double = 0
  /// Bytes of the job's tree RSS before a restart; 0: no watchdog.
  public var memoryMax: Int = 0
  /// `NAME=VALUE` resource limits (`ResourceLimit`), set before exec.
  public var limits: [String] = []
  /// Which version of `jobs/NAME.conf` this spec was made from (`ConfIdentity`):
  /// a conf that no longer matches was changed by hand, and is checked again.
  public var confIdentity: String = ""

  public init(name: String, group: String, command: String) {
    self.name = name
    self.group = group
    self.command = command
  }

  /// The program's argv: the command path, then its arguments.
  public var argv: [String] { [command] + arguments }

  public func encoded() -> [UInt8] {
    var out: [UInt8] = []
    func put(_ key: String, _ value: String) {
      out.append(contentsOf: key.utf8)
      out.append(0)
      out.append(contentsOf: value.losslessBytes)
      out.append(0)
    }
    for key in JobKeys.all {
      for value in key.encode(self) { put(key.specName, value) }
    }
    put("conf-identity", confIdentity)
    return out
  }

  /// Decodes `encoded()`; nil when the bytes are not a spec (truncated, no command).
  /// Without `includingEnvironment`, the (long) `env` entries are skipped, not decoded:
  /// `status` reads every job's spec and never shows them.
  public init?(decoding bytes: [UInt8], includingEnvironment: Bool = true) {
    var fields: [(String, String)] = []
    var key: String?
    var start = 0
    for index in bytes.indices where bytes[index] == 0 {
      if let pending = key {
        if includingEnvironment || pending != "env" {
          fields.append((pending, String(lossless: bytes[start..<index])))
        }
        key = nil
      } else {
        key = String(decoding: bytes[start..<index], as: UTF8.self)
      }
      start = index + 1
    }
    guard key == nil, start == bytes.count else { return nil }
    var name: String?
    var group: String?
    var command: String?
    for (key, value) in fields {
      switch key {
      case "name": name = value
      case "group": group = value
      case "cmd": command = value
      default: break
      }
    }
    guard let name, let group, let command else { return nil }
    self.init(name: name, group: group, command: command)
    var last = 0
    for (key, value) in fields {
      if key == "conf-identity" {
        confIdentity = value
      } else if let index = JobKeys.index(ofSpecName: key, from: last) {
        JobKeys.all[index].decode(&self, value)
        last = index
      }
    }
  }
}
