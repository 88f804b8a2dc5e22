import Foundation
import Testing

import USVCSys

/// Both ways USVCSys starts a program: `spawn` (glibc's posix_spawn, for any
/// caller) and `PreparedSpawn` (usvc_spawn_plain, for the runner's job). What
/// the child sees must not depend on the way.
@Suite("spawn")
struct SpawnTests {
  /// Starts a program one way or the other.
  static func start(
    prepared: Bool, _ argv: [String], environment: [String], directory: String? = nil, newSession: Bool = false,
    actions: [FileAction] = []
  ) throws(Errno) -> pid_t {
    prepared
      ? try PreparedSpawn(argv, environment: environment, directory: directory, newSession: newSession, actions: actions).start()
      : try spawn(argv, environment: environment, directory: directory, newSession: newSession, actions: actions)
  }

  @Test("the child gets its own session, only the descriptors asked for, the directory, the environment and an empty signal mask", arguments: [false, true])
  func childSetup(prepared: Bool) throws {
    let t = try TestHome()
    let out = t.file("out")
    _ = FileManager.default.createFile(atPath: out, contents: nil)
    let leaked = open("/dev/null", O_RDONLY)  // No O_CLOEXEC: only closeFrom keeps it from the child.
    defer { close(leaked) }
    // The mask is read by the exec'd grep: a shell blocks signals while it waits for a command.
    let script = #"echo "sid=$(cut -d' ' -f6 /proc/$$/stat) pid=$$ x=$X"; pwd; ls /proc/$$/fd; exec grep SigBlk /proc/self/status"#
    let pid = try Self.start(
      prepared: prepared, ["/bin/sh", "-c", script], environment: ["PATH=/usr/bin:/bin", "X=y z"], directory: t.root, newSession: true,
      actions: [.open("/dev/null", as: 0, flags: O_RDONLY), .open(out, as: 1, flags: O_WRONLY), .duplicate(1, as: 2), .closeFrom(3)])
    #expect(try waitForExit(of: pid) == .exited(0))
    let lines = (t.read(out) ?? "").split(separator: "\n").map(String.init)
    #expect(lines == ["sid=\(pid) pid=\(pid) x=y z", t.root, "0", "1", "2", "SigBlk:\t0000000000000000"])
  }

  @Test("exec's error, or that of a step before it, is thrown as the errno", arguments: [false, true])
  func errors(prepared: Bool) throws {
    #expect(throws: Errno(ENOENT)) { try Self.start(prepared: prepared, ["/nonexistent/program"], environment: []) }
    #expect(throws: Errno(EACCES)) { try Self.start(prepared: prepared, ["/etc/passwd"], environment: []) }
    #expect(throws: Errno(ENOENT)) {
      try Self.start(prepared: prepared, ["/bin/true"], environment: [], directory: "/nonexistent")
    }
    #expect(throws: Errno(ENOENT)) {
      try Self.start(prepared: prepared, ["/bin/true"], environment: [], actions: [.open("/nonexistent/file", as: 0, flags: O_RDONLY)])
    }
  }
}
