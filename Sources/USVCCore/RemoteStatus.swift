import CShims
import Glibc
import USVCSys

/// `usvc status --hosts`: the same `usvc status` asked of other machines through
/// ssh, all at once, each host's lines printed in the order the hosts were given
/// (SPEC: Status).
///
/// Nothing the user typed reaches a shell unquoted: the host is one argv word
/// after ssh's `--`, and every word of the remote command is single-quoted for
/// the remote shell, which is what ssh hands its command line to.
public struct RemoteStatus: Sendable {
  /// The hosts to ask, in the order their lines are printed.
  public let hosts: [String]
  /// The ssh program: `USVC_SSH` (default `ssh`) found on PATH, absolute. One
  /// program, like `GIT_SSH`: never split, never given to a shell.
  public let ssh: String
  /// The remote command, ready for the remote shell: `'usvc' 'status' …`.
  public let remoteCommandLine: String
  public let environment: [String]
  /// Seconds one host may take in all (connecting, running, answering) before
  /// its ssh is killed and the host reported unreachable.
  public var timeout: Double = 20
  /// How many ssh run at once. Not more than 10: that is where sshd's default
  /// `MaxStartups 10:30:100` starts dropping connections that are still logging
  /// in, which happens when several names lead to one sshd (aliases, a jump host).
  public var maxParallel = 10

  /// Checks every host name and finds ssh before anything runs.
  /// `environment` is the caller's (`KEY=VALUE`): ssh gets it as it is.
  public init(
    hosts: [String], selectors: [String], json: Bool, systemOnly: Bool, environment: [String]
  ) throws(UsvcError) {
    for host in hosts { try Self.checkHost(host) }
    func variable(_ key: String) -> String? {
      for entry in environment where entry.hasPrefix(key + "=") {
        let value = String(entry.dropFirst(key.count + 1))
        return value.isEmpty ? nil : value
      }
      return nil
    }
    ssh = try Commands.resolve(
      variable("USVC_SSH") ?? "ssh", searchPath: variable("PATH") ?? "/usr/local/bin:/usr/bin:/bin",
      directory: currentDirectory())
    // Flags, then `--`: a selector is never taken for an option on the remote side.
    var words = [variable("USVC_REMOTE_COMMAND") ?? "usvc", "status"]
    if json { words.append("--json") }
    if systemOnly { words.append("-s") }
    if !selectors.isEmpty { words += ["--"] + selectors }
    remoteCommandLine = words.map(Self.shellQuoted).joined(separator: " ")
    self.hosts = hosts
    self.environment = environment
  }

  /// The hosts of `--hosts H1,H2,…` followed by those of `--hosts-file FILE`
  /// (one per line; `#` starts a comment; blank lines are skipped). Not checked
  /// here: `init` does that.
  public static func hostNames(list: String?, file: String?) throws(UsvcError) -> [String] {
    var hosts = list.map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) } ?? []
    if let file {
      let bytes: [UInt8]
      do {
        bytes = try FileDescriptor.open(file, O_RDONLY).closeAfter { (fd) throws(Errno) in try fd.readAll() }
      } catch {
        throw .badFile(path: file, why: error.description)
      }
      // Split bytes, not Characters: "\r\n" is one Character and would not split on "\n".
      for line in bytes.split(separator: UInt8(ascii: "\n")) {
        let host = String(decoding: line.prefix { $0 != UInt8(ascii: "#") }, as: UTF8.self).trimmed
        if !host.isEmpty { hosts.append(host) }
      }
      if hosts.isEmpty { throw .badFile(path: file, why: "no host names in it") }
    }
    return hosts
  }

  /// Refuses a host name ssh could take for an option (`-oProxyCommand=…`), or
  /// one holding spaces or control characters, or an empty one.
  public static func checkHost(_ host: String) throws(UsvcError) {
    let bad =
      host.isEmpty || host.hasPrefix("-")
      || host.unicodeScalars.contains { $0.properties.isWhitespace || $0.isControl }
    if bad { throw .badHost(host.visible) }
  }

  /// `word` as one word for a POSIX shell: `'…'`, each `'` written `'\''`.
  public static func shellQuoted(_ word: String) -> String {
    word.shellQuoted
  }

  /// ssh's argv for one host: options, `--` (so nothing after it is read as an
  /// option, the host included), the host, then the remote command as one word.
  public func sshArguments(for host: String) -> [String] {
    [ssh, "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "--", host, remoteCommandLine]
  }

  /// Asks every host, at most `maxParallel` at a time, and calls `deliver` with
  /// each host's report in the order the hosts were given, as soon as that host
  /// and every one before it are done.
  public func run(_ deliver: (HostReport) -> Void) {
    var reports = [HostReport?](repeating: nil, count: hosts.count)
    var calls: [Call] = []
    var started = 0
    var delivered = 0
    var chunk = [UInt8](repeating: 0, count: 16384)
    while delivered < hosts.count {
      // 1. Start hosts, in the order given, up to the bound.
      while calls.count < max(1, maxParallel) && started < hosts.count {
        do {
          calls.append(try start(started))
        } catch {
          reports[started] = HostReport(host: hosts[started], output: "", outcome: .unreachable("cannot run \(ssh): \(error)"))
        }
        started += 1
      }
      // 2. Hand over every finished host whose predecessors are all handed over.
      while delivered < hosts.count, let report = reports[delivered] {
        deliver(report)
        delivered += 1
      }
      if calls.isEmpty { continue }

      // 3. Wait for output or a deadline. An ssh's exit is only seen by
      // waitpid(WNOHANG): Glibc has no pidfd_open, and SIGCHLD may go to another
      // thread. Both pipes at end of file mean the exit is imminent (look again
      // in 5 ms); a child of ssh that keeps them open (ProxyCommand, a
      // ControlPersist master) delays us by 50 ms at most.
      var wait = 0.05
      let now = monotonicClock()
      for call in calls {
        wait = min(wait, call.killed || call.pipesClosed ? 0.005 : call.deadline - now)
      }
      var fds = calls.flatMap { call in call.pipes.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) } }
      _ = poll(&fds, nfds_t(fds.count), Int32(max(0, (wait * 1000).rounded(.up))))
      for index in calls.indices {
        for which in 0..<2 where fds[2 * index + which].revents != 0 {
          _ = calls[index].readAvailable(which, &chunk)
        }
      }

      // 4. Kill what is past its deadline; collect what has ended.
      let later = monotonicClock()
      var running: [Call] = []
      for var call in calls {
        if !call.killed && later >= call.deadline {
          kill(call.pid, SIGKILL)
          call.killed = true
        }
        var raw: Int32 = 0
        let reaped = waitpid(call.pid, &raw, WNOHANG)
        if reaped == 0 || (reaped < 0 && errno == EINTR) {
          running.append(call)
          continue
        }
        // What ssh wrote before it ended is in the pipes: take it, leave the rest.
        for which in 0..<2 {
          while call.readAvailable(which, &chunk) {}
          if call.pipes[which] >= 0 { Glibc.close(call.pipes[which]) }
        }
        let output = String(decoding: call.captured[0], as: UTF8.self)
        let outcome =
          reaped == call.pid
          ? Self.outcome(
            of: TerminationStatus(waitStatus: raw), timedOut: call.killed, output: output,
            errors: String(decoding: call.captured[1], as: UTF8.self), timeout: timeout)
          : .unreachable("ssh's exit status was taken by another waiter")
        reports[call.index] = HostReport(host: hosts[call.index], output: output, outcome: outcome)
      }
      calls = running
    }
  }

  /// What one host's ssh run means:
  /// - killed at the deadline, ended by a signal, or exit 255 (ssh's own
  ///   failure): unreachable, with ssh's last stderr line;
  /// - exit 0: the remote usvc answered;
  /// - another exit after the remote usvc printed something or said `usvc: …`:
  ///   it ran and failed (no such selector): its message;
  /// - another exit with neither (`usvc: command not found`, exit 127): unreachable.
  static func outcome(
    of status: TerminationStatus, timedOut: Bool, output: String, errors: String, timeout: Double
  ) -> HostReport.Outcome {
    if timedOut {
      let seconds = timeout == timeout.rounded() ? String(Int(timeout)) : String(timeout)
      return .unreachable("timed out after \(seconds) s")
    }
    let lines = errors.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" })
      .map { String($0).trimmed.visible }.filter { !$0.isEmpty }
    switch status {
    case .exited(0):
      return .answered
    case .signaled(let signal):
      return .unreachable(lines.last ?? "ssh ended by \(signal)")
    case .exited(255):
      return .unreachable(lines.last ?? "ssh failed (exit 255)")
    case .exited(let code):
      if let usvcLine = lines.last(where: { $0.hasPrefix("usvc: ") }) {
        return .failed(String(usvcLine.dropFirst("usvc: ".count)))
      }
      let message = lines.last ?? "exit \(code)"
      return output.isEmpty ? .unreachable(message) : .failed(message)
    }
  }

  /// Spawns one host's ssh, stdin from /dev/null, stdout and stderr to pipes we
  /// read without blocking.
  private func start(_ index: Int) throws(Errno) -> Call {
    var out: [Int32] = [-1, -1]
    var err: [Int32] = [-1, -1]
    do {
      // Close-on-exec, so that no other host's ssh holds these pipes open.
      _ = try retryingEINTR { usvc_pipe_cloexec(&out) }
      _ = try retryingEINTR { usvc_pipe_cloexec(&err) }
      let pid = try spawn(
        sshArguments(for: hosts[index]), environment: environment,
        actions: [
          .open("/dev/null", as: 0, flags: O_RDONLY), .duplicate(out[1], as: 1), .duplicate(err[1], as: 2),
          .closeFrom(3),
        ])
      Glibc.close(out[1])
      Glibc.close(err[1])
      FileDescriptor(rawValue: out[0]).setNonBlocking()
      FileDescriptor(rawValue: err[0]).setNonBlocking()
      return Call(index: index, pid: pid, deadline: monotonicClock() + timeout, pipes: [out[0], err[0]])
    } catch {
      for fd in out + err where fd >= 0 { Glibc.close(fd) }
      throw error
    }
  }


}

/// What one host said.
public struct HostReport: Sendable, Equatable {
  public enum Outcome: Sendable, Equatable {
    /// The remote usvc answered: its lines are `output`.
    case answered
    /// The remote usvc ran and failed: `output`, then this message.
    case failed(String)
    /// No answer: ssh could not connect, log in, or finish in time.
    case unreachable(String)
  }

  /// The host as the user named it (an ssh alias, maybe; the remote's lines
  /// begin with its own host name).
  public var host: String
  /// The remote usvc's stdout.
  public var output: String
  public var outcome: Outcome

  /// The lines to print for this host, each ending in a newline (empty when
  /// the host answered with nothing), and whether they are clean: the host
  /// answered and every line it printed is a status line. An unreachable host
  /// is one line (`HOST  unreachable  REASON`, or `{"host":…,"unreachable":…}`
  /// in JSON); a failed one is its output, then `HOST  error  MESSAGE`
  /// (`"error"` in JSON).
  ///
  /// What the remote printed is checked, line by line, as it could be anything
  /// (a login shell's greeting, a program that is not usvc): a status line
  /// (`HOSTNAME  system  …` or `HOSTNAME  JOB  …`) is kept with its control
  /// characters made visible; in JSON, a line that is one JSON object is kept
  /// with DEL and C1 characters written `\u00XX`; any other line becomes an
  /// error line of this host (`unexpected output: …`, at most 200 characters).
  public func rendered(json: Bool) -> (text: String, clean: Bool) {
    func line(_ label: String, _ message: String) -> String {
      json
        ? JSON.object([("host", .string(host)), (label, .string(message))]).encoded() + "\n"
        : "\(host)  \(label)  \(message)\n"
    }
    if case .unreachable(let reason) = outcome { return (line("unreachable", reason), false) }
    var text = ""
    var clean = outcome == .answered
    for remote in output.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map(String.init) where !remote.trimmed.isEmpty {
      if json ? JSON.isObject(remote) : Self.isStatusLine(remote) {
        text += (json ? Self.escapingC1(remote) : remote.visible) + "\n"
      } else {
        let shown = remote.visible
        text += line("error", "unexpected output: " + (shown.count > 200 ? String(shown.prefix(200)) + "…" : shown))
        clean = false
      }
    }
    if case .failed(let message) = outcome { text += line("error", message) }
    return (text, clean)
  }

  /// `WORD  system…` or `WORD  NAME…` (NAME of a-z, 0-9 and -, starting with a
  /// letter): the shape of every line `usvc status` prints.
  static func isStatusLine(_ line: String) -> Bool {
    let fields = line.split(separator: "  ", maxSplits: 2, omittingEmptySubsequences: false)
    guard fields.count >= 2, !fields[0].isEmpty, !fields[0].contains(where: { $0.isWhitespace }) else { return false }
    let second = fields[1].unicodeScalars
    return second.first.map { ("a"..."z").contains($0) } == true
      && second.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
  }

  /// A JSON text with DEL and C1 characters (which JSON allows raw in
  /// strings) written as `\u00XX`: the same JSON, safe on a terminal.
  static func escapingC1(_ json: String) -> String {
    var result = ""
    for scalar in json.unicodeScalars {
      if (0x7f...0x9f).contains(scalar.value) {
        result += "\\u00" + String(scalar.value, radix: 16)
      } else {
        result.unicodeScalars.append(scalar)
      }
    }
    return result
  }
}

/// One host's ssh while it runs.
private struct Call {
  let index: Int
  let pid: pid_t
  let deadline: Double
  /// The read ends of its stdout and stderr; -1 once at end of file.
  var pipes: [Int32]
  var captured: [[UInt8]] = [[], []]
  /// Sent SIGKILL at its deadline.
  var killed = false

  var pipesClosed: Bool { pipes.allSatisfy { $0 < 0 } }

  /// One read from one pipe, without waiting; closes the pipe at end of file
  /// (or on an error). True when it got bytes, so more may be there.
  mutating func readAvailable(_ which: Int, _ chunk: inout [UInt8]) -> Bool {
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
}
