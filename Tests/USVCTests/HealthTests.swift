import Foundation
import Testing

@testable import USVCCore
import USVCSys

/// SPEC: Health, against real processes.
@Suite("health: limits, readiness, liveness, watchdogs")
struct HealthTests {
  /// The soft and hard value of one row of /proc/PID/limits ("Max open files  64  64  files").
  static func limit(_ row: String, of pid: pid_t) -> (soft: String, hard: String)? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8) else { return nil }
    guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(row) }) else { return nil }
    let words = line.dropFirst(row.count).split(separator: " ")
    return words.count >= 2 ? (String(words[0]), String(words[1])) : nil
  }

  @Test("job.limit is set in the job before exec: /proc/PID/limits shows it, soft and hard")
  func limitsApplied() throws {
    let t = try TestHome()
    try t.ok("start", "lim", "/bin/sleep", "1000")
    try t.ok("conf", "lim-1", "limit", "nofile=64", "core=0", "as=1G", "cpu=unlimited")
    try t.ok("restart", "lim-1")
    var pid: pid_t = 0
    #expect(try eventually { pid = try t.pid("lim-1") ?? 0; return pid > 0 && Self.limit("Max open files", of: pid)?.soft == "64" })
    let open = Self.limit("Max open files", of: pid)
    #expect(open?.soft == "64" && open?.hard == "64")
    #expect(Self.limit("Max core file size", of: pid)?.soft == "0")
    #expect(Self.limit("Max address space", of: pid)?.soft == String(1 << 30))
    #expect(Self.limit("Max cpu time", of: pid)?.soft == "unlimited")
    // The runner itself keeps its own limits: only the job gets them.
    let runner = try #require(t.view("lim-1").run.runner as pid_t?)
    #expect(Self.limit("Max open files", of: runner)?.soft != "64")
  }
}
