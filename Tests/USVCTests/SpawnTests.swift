import Foundation
import Testing

import USVCSys

/// USVCSys.spawn, both ways it starts a program: glibc's posix_spawn (callers
/// that may have signal handlers) and usvc_spawn_plain (the runner, which has
/// none). What the child sees must not depend on the way.
@Suite("spawn")
struct SpawnTests {
  @Test("the child gets its own session, only the descriptors asked for, the directory, the environment and an empty signal mask", arguments: [true, false])
  func childSetup(resettingSignals: Bool) throws {
    let t = try TestHome()
    let out = t.file("out")
    _ = FileManager.default.createFile(atPath: out, contents: nil)
    let leaked = open("/dev/null", O_RDONLY)  // No O_CLOEXEC: only closeFrom keeps it from the child.
    defer { close(leaked) }
    // The mask is read by the exec'd grep: a shell blocks signals while it waits for a command.
    let script = #"echo "sid=$(cut -d' ' -f6 /proc/$$/stat) pid=$$ x=$X"; pwd; ls /proc/$$/fd; exec grep SigBlk /proc/self/status"#
    let pid = try spawn(
      ["/bin/sh", "-c", script], environment: ["PATH=/usr/bin:/bin", "X=y z"], directory: t.root, newSession: true,
      actions: [.open("/dev/null", as: 0, flags: O_RDONLY), .open(out, as: 1, flags: O_WRONLY), .duplicate(1, as: 2), .closeFrom(3)],
      resettingSignals: resettingSignals)
    #expect(try waitForExit(of: pid) == .exited(0))
    let lines = (t.read(out) ?? "").split(separator: "\n").map(String.init)
    #expect(lines == ["sid=\(pid) pid=\(pid) x=y z", t.root, "0", "1", "2", "SigBlk:\t0000000000000000"])
  }

  @Test("exec's error, or that of a step before it, is thrown as the errno", arguments: [true, false])
  func errors(resettingSignals: Bool) throws {
    #expect(throws: Errno(ENOENT)) { try spawn(["/nonexistent/program"], environment: [], resettingSignals: resettingSignals) }
    #expect(throws: Errno(EACCES)) { try spawn(["/etc/passwd"], environment: [], resettingSignals: resettingSignals) }
    #expect(throws: Errno(ENOENT)) {
      try spawn(["/bin/true"], environment: [], directory: "/nonexistent", resettingSignals: resettingSignals)
    }
    #expect(throws: Errno(ENOENT)) {
      try spawn(["/bin/true"], environment: [], actions: [.open("/nonexistent/file", as: 0, flags: O_RDONLY)], resettingSignals: resettingSignals)
    }
  }
}
