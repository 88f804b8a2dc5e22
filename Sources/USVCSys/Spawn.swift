import CShims
import Glibc

/// What the child does with its descriptors between fork and exec, in order.
public enum FileAction: Sendable {
  /// `open(path, flags)` as descriptor `fd` (after `setsid`, a terminal opened
  /// this way becomes the controlling terminal).
  case open(String, as: Int32, flags: Int32)
  /// `dup2(from, to)`.
  case duplicate(Int32, as: Int32)
  /// Closes every descriptor from this one up.
  case closeFrom(Int32)
}

/// Starts `argv[0]` (searched on PATH when it holds no `/`) and returns its pid
/// once exec succeeded: glibc's `posix_spawn` reports exec's errno itself.
///
/// The child gets an empty signal mask and default dispositions for the signals
/// a parent commonly ignores or handles, whatever the caller did (PLATFORM-NOTES:
/// a mask inherited from a runtime thread makes SIGTERM do nothing).
///
/// For any caller. The runner starts its job with `PreparedSpawn` instead.
public func spawn(
  _ argv: [String], environment: [String], directory: String? = nil,
  newSession: Bool = false, actions: [FileAction] = []
) throws(Errno) -> pid_t {
  precondition(!argv.isEmpty, "can't happen: spawning an empty argv")
  var attributes = posix_spawnattr_t()
  posix_spawnattr_init(&attributes)
  defer { posix_spawnattr_destroy(&attributes) }
  var fileActions = posix_spawn_file_actions_t()
  posix_spawn_file_actions_init(&fileActions)
  defer { posix_spawn_file_actions_destroy(&fileActions) }

  var emptyMask = sigset_t()
  sigemptyset(&emptyMask)
  var defaults = SignalSet(
    [SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGALRM, SIGTERM, SIGUSR1, SIGUSR2, SIGCHLD, SIGTSTP, SIGTTIN,
     SIGTTOU, SIGWINCH, SIGURG, SIGXFSZ].map { Signal(rawValue: $0) }).raw
  posix_spawnattr_setsigmask(&attributes, &emptyMask)
  posix_spawnattr_setsigdefault(&attributes, &defaults)
  var flags = Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
  if newSession { flags |= usvc_POSIX_SPAWN_SETSID }
  posix_spawnattr_setflags(&attributes, flags)

  // 1. Descriptors first, then chdir: a relative path in an action means the caller's cwd.
  for action in actions {
    switch action {
    case .open(let path, let fd, let openFlags):
      posix_spawn_file_actions_addopen(&fileActions, fd, path, openFlags, 0)
    case .duplicate(let from, let to):
      posix_spawn_file_actions_adddup2(&fileActions, from, to)
    case .closeFrom(let from):
      usvc_spawn_addclosefrom(&fileActions, from)
    }
  }
  if let directory { usvc_spawn_addchdir(&fileActions, directory) }

  return try withCStrings(argv) { (argvPointers) throws(Errno) in
    try withCStrings(environment) { (envPointers) throws(Errno) in
      var pid: pid_t = 0
      let result =
        argv[0].contains("/")
        ? posix_spawn(&pid, argv[0], &fileActions, &attributes, argvPointers, envPointers)
        : posix_spawnp(&pid, argv[0], &fileActions, &attributes, argvPointers, envPointers)
      try checkingReturnedErrno(result)
      return pid
    }
  }
}

/// A program, its environment and what its child does before exec, held as the
/// C data `usvc_spawn_plain` takes: built once, started any number of times.
/// The runner keeps one per version of its spec, so a respawn builds nothing.
///
/// Its child makes only the calls needed (glibc's `posix_spawn` child also
/// checks all 64 signal dispositions, two syscalls each), so it is only for a
/// caller with no signal handler, and whose dispositions are the defaults it
/// wants its children to have (the runner: `resetSignalDispositions`); see
/// `usvc_spawn_plain`. `argv[0]` is the path executed, as is (no PATH search).
public final class PreparedSpawn {
  private let argv: [UnsafeMutablePointer<CChar>?]
  private let environment: [UnsafeMutablePointer<CChar>?]
  private let directory: UnsafeMutablePointer<CChar>?
  private let paths: [UnsafeMutablePointer<CChar>?]
  private let steps: [usvc_fd_action]
  private let newSession: Bool

  /// `limits` are set in order (soft and hard) after the descriptors' actions,
  /// then the `nice` value; a hard limit the caller may not raise stays as it
  /// is, the soft one as high as it allows, a nice value it may not lower stays
  /// as it is: each a `shortfall` of that start.
  public init(
    _ argv: [String], environment: [String], directory: String? = nil, newSession: Bool = false,
    actions: [FileAction] = [], limits: [ResourceLimit] = [], nice: Int32? = nil
  ) {
    precondition(!argv.isEmpty, "can't happen: spawning an empty argv")
    // Lossless text: the exact bytes of each word (any but NUL), UTF-8 or not.
    self.argv = argv.map { $0.losslessDuplicate() } + [nil]
    self.environment = environment.map { $0.losslessDuplicate() } + [nil]
    self.directory = directory.map { $0.losslessDuplicate() }
    let paths = actions.map { action -> UnsafeMutablePointer<CChar>? in
      if case .open(let path, _, _) = action { return strdup(path) }
      return nil
    }
    self.paths = paths
    steps = zip(actions, paths).map { action, path in
      switch action {
      case .open(_, let fd, let flags):
        usvc_fd_action(kind: Int32(USVC_FD_OPEN), fd: fd, source: -1, flags: flags, path: path, soft: 0, hard: 0)
      case .duplicate(let from, let to):
        usvc_fd_action(kind: Int32(USVC_FD_DUPLICATE), fd: to, source: from, flags: 0, path: nil, soft: 0, hard: 0)
      case .closeFrom(let from):
        usvc_fd_action(kind: Int32(USVC_FD_CLOSE_FROM), fd: from, source: -1, flags: 0, path: nil, soft: 0, hard: 0)
      }
    }
      + limits.map {
        usvc_fd_action(kind: Int32(USVC_SET_LIMIT), fd: $0.resource, source: -1, flags: 0, path: nil, soft: $0.soft, hard: $0.hard)
      }
      + (nice.map { [usvc_fd_action(kind: Int32(USVC_SET_NICE), fd: $0, source: -1, flags: 0, path: nil, soft: 0, hard: 0)] } ?? [])
    self.newSession = newSession
  }

  deinit {
    for pointer in argv + environment + paths + [directory] { free(pointer) }
  }

  /// What the last `start` could not give its child: a bit per `RLIMIT_*`, and
  /// `USVC_SHORT_NICE` (`ResourceLimit.names(inShortfall:)` names them).
  public private(set) var shortfall: UInt64 = 0

  /// Starts the program; returns its pid once exec succeeded.
  public func start() throws(Errno) -> pid_t {
    var short: UInt64 = 0
    let result = usvc_spawn_plain(
      argv[0], argv, environment, directory, newSession ? 1 : 0, steps, Int32(steps.count), &short)
    guard result > 0 else { throw Errno(-result) }
    shortfall = short
    return result
  }
}

/// Sets every signal's disposition to the default (what the process inherited
/// may ignore some), so children started with `PreparedSpawn` start with
/// defaults without the child resetting them one syscall at a time.
public func resetSignalDispositions() {
  for number in 1..<Int32(65) where number != SIGKILL && number != SIGSTOP {
    signal(number, SIG_DFL)
  }
}

/// Lends a NULL-terminated `char *[]` of `strings` (lossless text: their exact bytes) to `body`.
public func withCStrings<R, E: Error>(
  _ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) throws(E) -> R
) throws(E) -> R {
  var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { $0.losslessDuplicate() }
  pointers.append(nil)
  defer { for pointer in pointers { free(pointer) } }
  return try pointers.withUnsafeBufferPointer { (buffer) throws(E) in try body(buffer.baseAddress!) }
}

/// Waits for one specific child. C: `waitpid(pid, &status, 0)`.
public func waitForExit(of pid: pid_t) throws(Errno) -> TerminationStatus {
  var status: Int32 = 0
  _ = try retryingEINTR { waitpid(pid, &status, 0) }
  return TerminationStatus(waitStatus: status)
}

/// Reaps one child that has ended, if any. C: `waitpid(-1, &status, WNOHANG)`.
/// Nil when no child has ended yet or there are no children at all.
public func reapAnyChild() -> (pid: pid_t, status: TerminationStatus)? {
  var status: Int32 = 0
  let pid = waitpid(-1, &status, WNOHANG)
  return pid > 0 ? (pid, TerminationStatus(waitStatus: status)) : nil
}

/// True while the calling process has at least one child (ended or not).
public func hasChildren() -> Bool {
  var info = siginfo_t()
  return waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0
}

/// The result of running a program to its end with its output captured.
public struct CapturedRun: Sendable {
  public var status: TerminationStatus
  public var output: String
  public var errorOutput: String
}

/// A helper program (tmux, ssh; never a job) started with its stdout and
/// stderr on non-blocking pipes that the caller reads as they fill, so
/// neither can stall it: the one way usvc captures a child's output, for
/// `runCapturing` (one child, to its end) and the fan-out to many hosts
/// (many at once, each to a deadline).
public struct CapturedChild {
  public let pid: pid_t
  /// The read ends of its stdout and stderr; -1 once at end of file.
  public private(set) var pipes: [Int32]
  /// What each has said so far.
  public var captured: [[UInt8]] = [[], []]

  /// Starts `argv` with `input` on its stdin (a pipe closed after it, so the
  /// child reads to its end; it must fit a pipe's buffer), or /dev/null.
  public init(_ argv: [String], environment: [String], input: [UInt8]? = nil) throws(Errno) {
    var opened: [FileDescriptor] = []
    do {
      let out = try FileDescriptor.pipe()
      let err = try FileDescriptor.pipe()
      opened = [out.read, out.write, err.read, err.write]
      var stdin: FileAction = .open("/dev/null", as: 0, flags: O_RDONLY)
      if let input {
        let pipe = try FileDescriptor.pipe()
        opened += [pipe.read, pipe.write]
        try pipe.write.writeAll(input)
        pipe.write.close()
        opened.removeLast()
        stdin = .duplicate(pipe.read.rawValue, as: 0)
      }
      pid = try spawn(argv, environment: environment, actions: [stdin, .duplicate(out.write.rawValue, as: 1), .duplicate(err.write.rawValue, as: 2), .closeFrom(3)])
      for fd in opened where fd != out.read && fd != err.read { fd.close() }
      out.read.setNonBlocking()
      err.read.setNonBlocking()
      pipes = [out.read.rawValue, err.read.rawValue]
    } catch {
      for fd in opened { fd.close() }
      throw error
    }
  }

  public var pipesClosed: Bool { pipes.allSatisfy { $0 < 0 } }

  /// One read from one pipe (0 stdout, 1 stderr), without waiting, into
  /// `chunk`'s space; closes it at end of file or on an error. True when it
  /// got bytes, so more may be there.
  public mutating func readAvailable(_ which: Int, _ chunk: inout [UInt8]) -> Bool {
    let fd = pipes[which]
    guard fd >= 0 else { return false }
    let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
    if count > 0 {
      captured[which].append(contentsOf: chunk[0..<count])
      return true
    }
    if count < 0 && (errno == EAGAIN || errno == EINTR) { return false }
    Glibc.close(fd)
    pipes[which] = -1
    return false
  }

  /// Reads what is left in both pipes and closes them.
  public mutating func readToEnd(_ chunk: inout [UInt8]) {
    for which in 0..<2 {
      while readAvailable(which, &chunk) {}
      if pipes[which] >= 0 { Glibc.close(pipes[which]) }
      pipes[which] = -1
    }
  }

  /// Its end, if it has ended (not waiting): nil while it runs. C: `waitpid(WNOHANG)`.
  public func ended() -> TerminationStatus?? {
    var raw: Int32 = 0
    let reaped = waitpid(pid, &raw, WNOHANG)
    if reaped == pid { return .some(TerminationStatus(waitStatus: raw)) }
    if reaped == 0 || (reaped < 0 && errno == EINTR) { return nil }
    return .some(nil)  // Reaped by someone else: its status is gone.
  }
}

/// Runs `argv` with stdin from /dev/null, capturing stdout and stderr, and waits
/// for it. For short helper programs (tmux, ssh), never for jobs.
public func runCapturing(_ argv: [String], environment: [String]) throws(Errno) -> CapturedRun {
  var child = try CapturedChild(argv, environment: environment)
  var chunk = [UInt8](repeating: 0, count: 16384)
  while !child.pipesClosed {
    var fds = child.pipes.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
    if poll(&fds, 2, -1) < 0 && errno != EINTR { break }
    for which in 0..<2 where fds[which].revents != 0 { while child.readAvailable(which, &chunk) {} }
  }
  child.readToEnd(&chunk)
  let status = try waitForExit(of: child.pid)
  return CapturedRun(
    status: status, output: String(decoding: child.captured[0], as: UTF8.self),
    errorOutput: String(decoding: child.captured[1], as: UTF8.self))
}

/// Replaces this process with `argv[0]` (an absolute path); returns only by throwing.
public func replaceProcess(_ argv: [String], environment: [String]) throws(Errno) -> Never {
  _ = withCStrings(argv) { argvPointers in
    withCStrings(environment) { envPointers in execve(argv[0], argvPointers, envPointers) }
  }
  throw Errno.current
}
