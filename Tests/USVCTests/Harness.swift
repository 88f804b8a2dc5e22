import Foundation
import Testing

@testable import USVCCore
import USVCContract
import USVCSys

/// The package's root, found from this file's path.
let packageRoot: String = {
  var url = URL(fileURLWithPath: #filePath)
  for _ in 0..<3 { url.deleteLastPathComponent() }
  return url.path
}()

/// The usvc binary under test (built by `swift build` before `swift test`;
/// `USVC_TEST_BINARY` names another build, e.g. one with its own --scratch-path).
let usvcBinary = ProcessInfo.processInfo.environment["USVC_TEST_BINARY"] ?? packageRoot + "/.build/debug/usvc"

/// What one run of usvc did.
struct Outcome {
  var status: Int32
  var stdout: String
  var stderr: String
  var lines: [String] { stdout.split(separator: "\n").map(String.init) }
}

/// A temporary USVC_HOME with its own tmux server, torn down (server, every
/// job process, files) when the test ends.
final class TestHome: @unchecked Sendable {  // Used from one test at a time.
  let root: String
  let home: String
  var environment: [String: String]

  init(_ label: String = #function) throws {
    // Short: the tmux socket path must fit in 107 bytes.
    let template = "/tmp/ut.XXXXXX"
    var bytes = Array(template.utf8CString)
    guard mkdtemp(&bytes) != nil else { throw Errno.current }
    root = String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    home = root + "/h"
    var environment = ProcessInfo.processInfo.environment
    environment["USVC_HOME"] = home
    environment["NO_COLOR"] = "1"
    for key in ["TMUX", "TMUX_PANE", "USVC_JOB", "USVC_GROUP"] { environment[key] = nil }
    self.environment = environment
  }

  deinit { tearDown() }

  func tearDown() {
    let socket = home + "/tmux.sock"
    if FileManager.default.fileExists(atPath: socket) {
      _ = try? Self.run(["tmux", "-S", socket, "kill-server"], environment: environment)
    }
    // Whatever is left of any job of this home (a failing test may leave some).
    for process in ProcStat.all() where ProcStat.environment(of: process.pid).contains("USVC_HOME=\(home)") {
      kill(process.pid, SIGKILL)
    }
    try? FileManager.default.removeItem(atPath: root)
  }

  /// Runs usvc with `arguments` in this home.
  @discardableResult
  func usvc(_ arguments: String...) throws -> Outcome {
    try usvc(arguments)
  }

  @discardableResult
  func usvc(_ arguments: [String], directory: String? = nil) throws -> Outcome {
    try Self.run([usvcBinary] + arguments, environment: environment, directory: directory)
  }

  /// Runs usvc and expects success.
  @discardableResult
  func ok(_ arguments: String..., sourceLocation: SourceLocation = #_sourceLocation) throws -> Outcome {
    let outcome = try usvc(arguments)
    #expect(outcome.status == 0, "usvc \(arguments) failed: \(outcome.stderr)", sourceLocation: sourceLocation)
    return outcome
  }

  /// Runs a program to its end with USVCSys's own spawn (Foundation's Process
  /// can miss its child's exit when many tests spawn at once).
  static func run(_ argv: [String], environment: [String: String], directory: String? = nil) throws -> Outcome {
    var argv = argv
    if let directory { argv = ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", directory] + argv }
    let result = try runCapturing(argv, environment: environment.map { "\($0.key)=\($0.value)" })
    let status: Int32
    switch result.status {
    case .exited(let code): status = code
    case .signaled(let signal): status = 128 + signal.rawValue
    }
    return Outcome(status: status, stdout: result.output, stderr: result.errorOutput)
  }

  /// Writes an executable script in this test's folder and returns its path.
  func script(_ name: String, _ body: String) throws -> String {
    // Written through a close-on-exec descriptor: a copy leaked into a process
    // another test forks at that moment would make exec fail with ETXTBSY.
    let path = root + "/" + name
    let fd = try FileDescriptor.open(path, O_WRONLY | O_CREAT | O_TRUNC, mode: 0o755)
    try fd.closeAfter { try $0.writeAll("#!/bin/sh\n" + body + "\n") }
    return path
  }

  func file(_ name: String) -> String { root + "/" + name }

  func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

  var supervisor: Supervisor {
    get throws {
      try Supervisor(environment: environment.map { "\($0.key)=\($0.value)" }, executable: usvcBinary, forWriting: false)
    }
  }

  func view(_ name: String) throws -> JobView { try supervisor.view(name) }

  func state(_ name: String) throws -> JobState { try view(name).state }

  func pid(_ name: String) throws -> pid_t? { try view(name).pid }

  /// Every live process that carries this home's USVC_HOME and `USVC_JOB=job`.
  func processes(of job: String) -> [pid_t] {
    ProcStat.all().filter {
      let environment = ProcStat.environment(of: $0.pid)
      return environment.contains("USVC_HOME=\(home)") && environment.contains("USVC_JOB=\(job)") && $0.state != "Z"
    }.map(\.pid)
  }

  func tmux(_ arguments: String...) throws -> Outcome {
    try Self.run(["tmux", "-S", home + "/tmux.sock"] + arguments, environment: environment)
  }
}

/// Polls `condition` until it holds or `seconds` pass; returns whether it held.
@discardableResult
func eventually(within seconds: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
  let deadline = Date().addingTimeInterval(seconds)
  while Date() < deadline {
    if try condition() { return true }
    usleep(10_000)
  }
  return try condition()
}

extension TestHome {
  /// The numbers of a job's rotated logs (`NAME.log.N`), oldest first: copies
  /// are numbered in the order they were made.
  func rotatedLogs(of job: String) -> [Int] {
    let prefix = job + ".log."
    return directoryEntries(home + "/logs").compactMap { $0.hasPrefix(prefix) ? Int($0.dropFirst(prefix.count)) : nil }.sorted()
  }

  /// Everything a job's log holds, its rotated copies (oldest first) then `NAME.log`, as bytes.
  func wholeLog(of job: String) -> [UInt8] {
    let logs = home + "/logs/" + job + ".log"
    return (rotatedLogs(of: job).map { "\(logs).\($0)" } + [logs]).flatMap { path in
      FileManager.default.contents(atPath: path).map { [UInt8]($0) } ?? []
    }
  }
}
