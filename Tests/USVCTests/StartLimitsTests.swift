import Foundation
import Testing

@testable import USVCCore
import USVCSys

/// A job gets the resource limits and nice value of the `start` that made it,
/// not those of whichever command began the tmux server (SPEC: Health), with
/// real commands under real `prlimit`, `ulimit` and `nice`.
@Suite("start limits: each job has its own start's limits and nice value")
struct StartLimitsTests {
  /// A limit as /proc/PID/limits shows it.
  static func shown(_ value: rlim_t) -> String { value == rlim_t(ResourceLimit.unlimited) ? "unlimited" : String(value) }

  /// This test process's soft and hard value of one limit, as /proc shows them.
  static func own(_ resource: __rlimit_resource) -> (soft: String, hard: String) {
    var current = rlimit()
    getrlimit(__rlimit_resource_t(resource.rawValue), &current)
    return (shown(current.rlim_cur), shown(current.rlim_max))
  }

  /// The nice value of a process (/proc/PID/stat, field 19).
  static func nice(of pid: pid_t) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let close = text.lastIndex(of: ")")
    else { return nil }
    let fields = text[text.index(after: close)...].split(separator: " ")
    return fields.count > 16 ? Int(fields[16]) : nil
  }

  /// usvc run through `prefix` (prlimit, nice, a shell with ulimit) in this home.
  static func usvc(_ t: TestHome, under prefix: [String], _ arguments: String...) throws -> Outcome {
    try TestHome.run(prefix + [usvcBinary] + arguments, environment: t.environment)
  }

  /// The main pid of a job once its program runs.
  static func runningPid(_ t: TestHome, _ job: String) throws -> pid_t {
    var pid: pid_t = 0
    _ = try eventually { pid = try t.pid(job) ?? 0; return pid > 0 }
    return try #require(pid > 0 ? pid : nil, "\(job) has no pid")
  }

  @Test("the first start under a lower soft nofile and ulimit -Sv 1 GiB: its job has them, a later start's job has this shell's")
  func firstStartLowered() throws {
    let t = try TestHome()
    let lowered = ["/bin/sh", "-c", "ulimit -Sv 1048576 && exec prlimit --nofile=512: \"$@\"", "sh"]
    let first = try Self.usvc(t, under: lowered, "start", "low", "/bin/sleep", "1000")
    #expect(first.status == 0 && first.stderr == "", "\(first.stderr)")
    let low = try Self.runningPid(t, "low-1")
    #expect(HealthTests.limit("Max open files", of: low)?.soft == "512")
    #expect(HealthTests.limit("Max address space", of: low)?.soft == String(1 << 30))

    let later = try t.usvc("start", "full", "/bin/sleep", "1000")
    #expect(later.status == 0 && later.stderr == "", "\(later.stderr)")
    let full = try Self.runningPid(t, "full-1")
    let open = HealthTests.limit("Max open files", of: full)
    #expect(open?.soft == Self.own(RLIMIT_NOFILE).soft && open?.hard == Self.own(RLIMIT_NOFILE).hard)
    #expect(HealthTests.limit("Max address space", of: full)?.soft == Self.own(RLIMIT_AS).soft, "not capped by the first start")
    // Its runner is the tmux server's child, still under the first start's limits: the job's are its own.
    let runner = try #require(t.view("full-1").run.runner as pid_t?)
    #expect(HealthTests.limit("Max open files", of: runner)?.soft == "512")
  }

  @Test("the converse: a later start under lower limits and nice +7 gives its job those; the first job keeps its own")
  func laterStartLowered() throws {
    let t = try TestHome()
    try t.ok("start", "first", "/bin/sleep", "1000")
    let lowered = ["/usr/bin/nice", "-n", "7", "/bin/sh", "-c", "ulimit -Sv 1048576 && exec prlimit --nofile=256:300 --core=0: \"$@\"", "sh"]
    let later = try Self.usvc(t, under: lowered, "start", "later", "/bin/sleep", "1000")
    #expect(later.status == 0 && later.stderr == "", "\(later.stderr)")
    let pid = try Self.runningPid(t, "later-1")
    let open = HealthTests.limit("Max open files", of: pid)
    #expect(open?.soft == "256" && open?.hard == "300")
    #expect(HealthTests.limit("Max address space", of: pid)?.soft == String(1 << 30))
    #expect(HealthTests.limit("Max core file size", of: pid)?.soft == "0")
    #expect(Self.nice(of: pid) == min(19, (Self.nice(of: getpid()) ?? 0) + 7))
    let first = try Self.runningPid(t, "first-1")
    #expect(HealthTests.limit("Max open files", of: first)?.soft == Self.own(RLIMIT_NOFILE).soft)
    #expect(Self.nice(of: first) == Self.nice(of: getpid()))
    // job.limit still has the last word, over the limits of the start.
    try t.ok("conf", "later-1", "limit", "nofile=100")
    try t.ok("restart", "later-1")
    #expect(try eventually { let pid = try t.pid("later-1") ?? 0; return pid > 0 && HealthTests.limit("Max open files", of: pid)?.hard == "100" })
    // The conf shows what the job was given.
    let conf = try t.ok("conf", "later-1", "start-limit").stdout
    #expect(conf.contains("nofile=256:300\n") && conf.contains("core=0:"))
    #expect(try t.ok("conf", "later-1", "nice").stdout == "7\n")
  }

  @Test("a tmux server begun under lower hard limits and nice 5: a later start warns in one line naming them; after shutdown, gone")
  func warnsWhenImpossible() throws {
    let t = try TestHome()
    // Root may raise hard limits and lower nice values (CAP_SYS_RESOURCE, CAP_SYS_NICE):
    // the first start (hence the tmux server, hence every runner) runs without both.
    var unprivileged: [String] = []
    if geteuid() == 0 {
      guard FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
        return try skip("as root, the test needs setpriv (util-linux) to drop CAP_SYS_RESOURCE and CAP_SYS_NICE")
      }
      unprivileged = ["/usr/bin/setpriv", "--bounding-set", "-sys_resource,-sys_nice"]
    }
    let ownOpen = Self.own(RLIMIT_NOFILE)
    guard let hard = Int(ownOpen.hard), hard > 64, Self.nice(of: getpid()) ?? 99 < 5 else {
      return try skip("needs a hard nofile above 64 and a nice value below 5 (has \(ownOpen.hard), \(Self.nice(of: getpid()) ?? 99))")
    }
    let capped = unprivileged + ["/usr/bin/nice", "-n", "5", "/usr/bin/prlimit", "--nofile=32:64", "--as=1073741824"]
    let first = try Self.usvc(t, under: capped, "start", "cap", "/bin/sleep", "1000")
    #expect(first.status == 0 && first.stderr == "", "its own limits: nothing to warn about: \(first.stderr)")

    let later = try t.usvc("start", "want", "/bin/sleep", "1000")
    #expect(later.status == 0 && later.stdout == "started want-1\n", "\(later.stderr)")
    let unmet = ["nofile"] + (Self.own(RLIMIT_AS).hard == String(1 << 30) ? [] : ["as"]) + ["nice value"]
    let lines = later.stderr.split(separator: "\n")
    #expect(lines.count == 1, "one line: \(later.stderr)")
    #expect(later.stderr.hasPrefix("usvc: warning: want-1 cannot have this shell's \(unmet.joined(separator: ", ")): "), "\(later.stderr)")
    #expect(later.stderr.contains("'usvc shutdown', then start again from a shell without those limits"))
    // It started all the same, with what it could get.
    let pid = try Self.runningPid(t, "want-1")
    let open = HealthTests.limit("Max open files", of: pid)
    #expect(open?.soft == "64" && open?.hard == "64", "as high as the server allows")
    #expect(Self.nice(of: pid) == 5)
    // Several jobs: still one line.
    let pair = try t.usvc("start", "-n", "2", "pair", "/bin/sleep", "1000")
    #expect(pair.status == 0 && pair.stdout == "started pair-1\nstarted pair-2\n", "\(pair.stderr)")
    #expect(pair.stderr.split(separator: "\n").count == 1, "\(pair.stderr)")
    #expect(pair.stderr.hasPrefix("usvc: warning: 2 jobs cannot have this shell's \(unmet.joined(separator: ", ")): "), "\(pair.stderr)")

    // The way out the warning names.
    try t.ok("shutdown")
    let again = try t.usvc("start", "again", "/bin/sleep", "1000")
    #expect(again.status == 0 && again.stderr == "", "\(again.stderr)")
    let fresh = try Self.runningPid(t, "again-1")
    #expect(HealthTests.limit("Max open files", of: fresh)?.hard == ownOpen.hard)
    #expect(Self.nice(of: fresh) == Self.nice(of: getpid()))
  }
}
