import Glibc
import USVCSys

/// `usvc VERB --hosts …`: the same command run on other machines through ssh,
/// all at once (SPEC: Many hosts). One implementation for every verb: the verb
/// only says how its lines look (`Shape`), whether its whole call is bounded by
/// `--timeout`, and which remote exit statuses mean it answered.
///
/// Nothing the user typed reaches a shell: the host is one argv word after
/// ssh's `--`, the remote command line is fixed words (`usvc --stdin-args`),
/// and the command's words travel on the remote usvc's standard input, each
/// ending in a NUL byte. So any login shell (fish, tcsh) runs it, and no value
/// (an `-e SECRET=…`) shows in the remote `ps`.
public struct Fleet: Sendable {
  /// How a verb's lines look, so that each can be checked and begin with its host.
  public enum Shape: Sendable, Equatable {
    /// `usvc status`: `HOSTNAME  system|JOB  …`; the remote's own name is replaced by the host as given.
    case status
    /// `--json`: one object per line; `"host"` as given is added, the remote's becomes `"hostname"`.
    case json
    /// `usvc events`: tab-separated, the host a first column of its own.
    case events
    /// Anything else (`stopped web-1`, a pid, a log line): `HOST  LINE`.
    case plain
  }

  /// What a verb needs from the fan-out.
  public struct Mode: Sendable {
    public var shape: Shape
    /// `--timeout` bounds the whole call (the reading verbs); else only until
    /// the remote usvc says it runs (connecting, logging in, the login shell).
    public var bounded: Bool
    /// Lines are printed as they come, whole, from any host (`logs -f`, `events -f`).
    public var streaming: Bool
    /// Remote exit statuses that mean "answered" (3 for `status --problems` that printed).
    public var answered: Set<Int32>

    public init(shape: Shape, bounded: Bool, streaming: Bool = false, answered: Set<Int32> = [0]) {
      self.shape = shape
      self.bounded = bounded
      self.streaming = streaming
      self.answered = answered
    }

    /// start, stop, restart, kill, rm, resurrect, shutdown: bounded by their own deadlines.
    public static let acting = Mode(shape: .plain, bounded: false)
    /// jobs, pidof, show, conf, check: the whole call within `--timeout`.
    public static let reading = Mode(shape: .plain, bounded: true)
  }

  /// The hosts, in the order their lines are printed.
  public let hosts: [String]
  /// The ssh program: `USVC_SSH` (default `ssh`) found on PATH, absolute. One
  /// program, like `GIT_SSH`: never split, never given to a shell.
  public let ssh: String
  /// The remote command line, fixed words: `usvc --stdin-args` (`USVC_REMOTE_COMMAND`
  /// instead of `usvc`, quoted when it holds more than plain path characters).
  public let remoteCommandLine: String
  /// What the remote usvc reads on its standard input: each word, then a NUL.
  public let stdinWords: [UInt8]
  public let mode: Mode
  /// The caller's environment (`KEY=VALUE`), given to ssh as it is; ssh ships
  /// none of it unless the user's ssh config says `SendEnv`.
  public let environment: [String]
  /// Seconds until the remote usvc runs (connecting, logging in, the login
  /// shell's startup); for a bounded mode, for the whole call.
  public var timeout: Double = 20
  /// How many ssh run at once (pdsh's default fanout).
  public var maxParallel = 32
  /// Host after host (`restart --rolling`): one at a time, and none after a
  /// host that did not answer cleanly (unreachable, or its usvc failed).
  public var rolling = false {
    didSet { if rolling { maxParallel = 1 } }
  }
  /// Where the control sockets are, or nil: no connection sharing.
  public var controlDirectory: String?

  /// At most this many bytes of words: they must fit in one pipe's buffer,
  /// written before ssh starts.
  public static let maxWordBytes = 65536

  /// Checks every host name, finds ssh, and picks the control directory, before anything runs.
  public init(hosts: [String], words: [String], mode: Mode, environment: [String]) throws(UsvcError) {
    for host in hosts { try Self.checkHost(host) }
    let variable = { (key: String) in Self.variable(key, in: environment) }
    ssh = try Commands.resolve(
      variable("USVC_SSH") ?? "ssh", searchPath: variable("PATH") ?? "/usr/local/bin:/usr/bin:/bin",
      directory: currentDirectory())
    remoteCommandLine = Self.shellWord(variable("USVC_REMOTE_COMMAND") ?? "usvc") + " --stdin-args"
    stdinWords = words.flatMap { $0.losslessBytes + [0] }
    if stdinWords.count > Self.maxWordBytes {
      throw .fleet("the command's words are \(stdinWords.count) bytes; with --hosts at most \(Self.maxWordBytes)")
    }
    self.hosts = hosts
    self.mode = mode
    self.environment = environment
    controlDirectory = variable("USVC_SSH_MUX") == "no" ? nil : Self.controlDirectory(environment: environment)
  }

  /// A variable that is set and not empty (an empty USVC_SSH means the default).
  static func variable(_ key: String, in environment: [String]) -> String? {
    value(of: key, in: environment).flatMap { $0.isEmpty ? nil : $0 }
  }

  // MARK: - Which hosts

  /// The hosts of `--hosts H1,@NAME,…` (NAME: the `host` values of `[hosts "NAME"]`
  /// in `hostsConf`) followed by those of `--hosts-file FILE` (one per line; `#`
  /// starts a comment; blank lines are skipped). Not checked here: `init` does that.
  public static func hostNames(list: String?, file: String?, hostsConf: () throws(UsvcError) -> String) throws(UsvcError) -> [String] {
    var hosts: [String] = []
    for item in list.map({ $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }) ?? [] {
      guard item.hasPrefix("@") else {
        hosts.append(item)
        continue
      }
      let path = try hostsConf()
      let conf = try ConfStore.read(path)
      let named = conf.values("hosts.\(item.dropFirst()).host").map(\.trimmed).filter { !$0.isEmpty }
      if named.isEmpty { throw .fleet("no host list named '\(item.dropFirst())' in \(path) ([hosts \"NAME\"] host = …)") }
      hosts += named
    }
    if let file {
      let bytes: [UInt8]
      do {
        bytes = try FileDescriptor.open(file, O_RDONLY).closeAfter { (fd) throws(Errno) in try fd.readAll() }
      } catch {
        throw .badFile(path: file, why: error.description)
      }
      let before = hosts.count
      // Split bytes, not Characters: "\r\n" is one Character and would not split on "\n".
      for line in bytes.split(separator: UInt8(ascii: "\n")) {
        let host = String(decoding: line.prefix { $0 != UInt8(ascii: "#") }, as: UTF8.self).trimmed
        if !host.isEmpty { hosts.append(host) }
      }
      if hosts.count == before { throw .badFile(path: file, why: "no host names in it") }
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

  /// The words of this command line for the remote usvc: `arguments` (the
  /// command name first) without the fan-out's own options (`--hosts`,
  /// `--hosts-file`, `--parallel`, `--timeout`, as `--opt V` or `--opt=V`). The
  /// last `passthrough` words (a program's arguments, conf values) are the
  /// command's whatever they look like, and so is everything after `--`.
  public static func remoteWords(_ arguments: [String], passthrough: Int = 0) -> [String] {
    let own = ["--hosts", "--hosts-file", "--parallel", "--timeout"]
    let head = arguments.dropLast(passthrough)
    var words: [String] = []
    var index = head.startIndex
    while index < head.endIndex {
      let word = head[index]
      if word == "--" {
        words += head[index...]
        break
      }
      if own.contains(word) {
        index += 2
        continue
      }
      if own.contains(where: { word.hasPrefix($0 + "=") }) {
        index += 1
        continue
      }
      words.append(word)
      index += 1
    }
    return words + arguments.suffix(passthrough)
  }

  // MARK: - ssh

  /// `word` as one word for the remote shell: bare when it holds only
  /// characters no shell treats specially (so fish and tcsh read it alike),
  /// else `'…'` with each `'` written `'\''`.
  public static func shellWord(_ word: String) -> String {
    let plain = !word.isEmpty && word.unicodeScalars.allSatisfy {
      ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "/._-+:,@=".unicodeScalars.contains($0)
    }
    return plain ? word : word.shellQuoted
  }

  /// The 0700 directory of this user's for control sockets whose paths fit a
  /// Unix socket (108 bytes with its NUL; ssh first binds `PATH.` + 16
  /// characters and renames): `USVC_HOME/ssh` when short enough, else
  /// `/tmp/usvc-ssh-UID`. Nil (no sharing) when neither is ours and private.
  public static func controlDirectory(environment: [String]) -> String? {
    var candidates: [String] = []
    if let home = variable("USVC_HOME", in: environment) ?? variable("HOME", in: environment).map({ $0 + "/.usvc" }),
      home.hasPrefix("/")
    {
      candidates.append(home + "/ssh")
    }
    candidates.append("/tmp/usvc-ssh-\(geteuid())")
    for directory in candidates {
      // ssh reads -o values as config lines: no room for quotes, spaces or % tokens.
      let plain = directory.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7f && !"\"'\\%#".unicodeScalars.contains($0) }
      guard plain, directory.utf8.count + 1 + 16 + 17 < 108 else { continue }
      if fileStatus(directory) == nil { _ = mkdir(directory, 0o700) }
      if isPrivateDirectory(directory) { return directory }
    }
    return nil
  }

  /// The control socket of one host: the ssh program and the host's name as
  /// given, hashed (FNV-1a, 64 bits), so that two aliases of one machine keep
  /// connections (and their SetEnv) apart, and so do two ssh wrappers with
  /// configs of their own.
  public func controlPath(for host: String) -> String? {
    guard let controlDirectory else { return nil }
    let hex = String(fnv1a(ssh.utf8 + [0] + host.utf8), radix: 16)
    return controlDirectory + "/" + String(repeating: "0", count: 16 - hex.count) + hex
  }

  /// ssh's options for one host: no prompts, the connect timeout, and the control master.
  func sshOptions(for host: String, batch: Bool = true) -> [String] {
    let seconds = max(1, Int(timeout.rounded(.up)))
    var options = ["-o", "ConnectTimeout=\(seconds)"]
    if batch { options = ["-o", "BatchMode=yes"] + options }
    if let path = controlPath(for: host) {
      options += ["-o", "ControlMaster=auto", "-o", "ControlPersist=60", "-o", "ControlPath=" + path]
    }
    return options
  }

  /// ssh's argv for one host: options, `--` (so nothing after it is read as an
  /// option, the host included), the host, then the fixed remote command line.
  public func sshArguments(for host: String) -> [String] {
    [ssh] + sshOptions(for: host) + ["--", host, remoteCommandLine]
  }

  /// `usvc attach --host HOST [JOB]`: ssh with a terminal (`-t`) running the
  /// remote `usvc attach JOB`; JOB is a job name, checked, so it is one plain word.
  public func attachArguments(host: String, job: String?) throws(UsvcError) -> [String] {
    if let job {
      guard Names.split(job: job) != nil, Self.shellWord(job) == job else { throw .noSuchJob(job.visible) }
    }
    let command = remoteCommandLine.dropLast(" --stdin-args".count) + " attach" + (job.map { " " + $0 } ?? "")
    return [ssh] + sshOptions(for: host, batch: false) + ["-t", "--", host, String(command)]
  }

  // MARK: - Running

  /// Runs the command on every host, at most `maxParallel` at a time, and
  /// writes the result through `write` (whole lines): host by host in the
  /// order given, or (streaming) each line as it comes. `clean` is false when
  /// a host was unreachable, its usvc failed or printed what is not its output;
  /// `printed` when any line was written; `notRun`, the hosts a `rolling` run
  /// stopped before.
  public func run(write: (String) -> Void) -> (clean: Bool, printed: Bool, notRun: [String]) {
    var clean = true
    var printed = false
    func emit(_ text: String) {
      guard !text.isEmpty else { return }
      write(text)
      printed = true
    }
    let shape = mode.shape
    let notRun = exchange(
      line: { index, bytes in
        let (text, ok) = HostReport.render(line: bytes, host: hosts[index], shape: shape)
        if !ok { clean = false }
        emit(text)
      },
      done: { report in
        let (text, ok) = report.rendered(shape)
        if !ok { clean = false }
        emit(text)
      })
    return (clean, printed, notRun)
  }

  /// The loop under `run`: `done` gets every host's report, in the order given
  /// unless streaming; when streaming, `line` gets each whole stdout line as it
  /// comes and the report holds only what was left without a newline.
  /// Returns the hosts never started: those after where a `rolling` run stopped.
  @discardableResult
  public func exchange(line: (Int, [UInt8]) -> Void = { _, _ in }, done: (HostReport) -> Void) -> [String] {
    var reports = [HostReport?](repeating: nil, count: hosts.count)
    var calls: [Call] = []
    var started = 0
    var delivered = 0
    var halted = false
    var chunk = [UInt8](repeating: 0, count: 16384)
    func finish(_ report: HostReport, _ index: Int) {
      if rolling && report.outcome != .answered { halted = true }
      if mode.streaming { done(report) } else { reports[index] = report }
    }
    while delivered < (halted ? started : hosts.count) {
      // 1. Start hosts, in the order given, up to the bound. A follow never
      // ends: while streaming, only the calls still connecting count.
      func busy() -> Int { mode.streaming ? calls.count(where: { !$0.arrived }) : calls.count }
      while !halted && busy() < max(1, maxParallel) && started < hosts.count {
        do {
          calls.append(try start(started))
        } catch {
          finish(HostReport(host: hosts[started], output: "", outcome: .unreachable("cannot run \(ssh): \(error)")), started)
          if mode.streaming { delivered += 1 }
        }
        started += 1
      }
      // 2. Hand over every finished host whose predecessors are all handed over.
      while !mode.streaming, delivered < hosts.count, let report = reports[delivered] {
        done(report)
        delivered += 1
      }
      if calls.isEmpty { continue }

      // 3. Wait for output or a deadline. An ssh's exit is only seen by
      // waitpid(WNOHANG): Glibc has no pidfd_open, and SIGCHLD may go to another
      // thread. Both pipes at end of file mean the exit is imminent (look again
      // in 2 ms); a child of ssh that keeps them open (ProxyCommand) delays us
      // by 50 ms at most.
      var wait = 0.05
      let now = monotonicClock()
      for call in calls {
        wait = min(wait, call.killed || call.child.pipesClosed ? 0.002 : call.deadline - now)
      }
      var fds = calls.flatMap { call in call.child.pipes.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) } }
      _ = poll(&fds, nfds_t(fds.count), Int32(max(0, (wait * 1000).rounded(.up))))
      for index in calls.indices {
        for which in 0..<2 where fds[2 * index + which].revents != 0 {
          _ = calls[index].child.readAvailable(which, &chunk)
        }
        if calls[index].takeArrival() && !mode.bounded { calls[index].deadline = .infinity }
        if mode.streaming {
          let host = calls[index].index
          calls[index].takeLines { line(host, $0) }
        }
      }

      // 4. Kill what is past its deadline; collect what has ended.
      let later = monotonicClock()
      var running: [Call] = []
      for var call in calls {
        if !call.killed && later >= call.deadline {
          kill(call.child.pid, SIGKILL)
          call.killed = true
        }
        guard let ended = call.child.ended() else {
          running.append(call)
          continue
        }
        // What ssh wrote before it ended is in the pipes: take it, leave the rest.
        call.child.readToEnd(&chunk)
        _ = call.takeArrival()
        if mode.streaming {
          let host = call.index
          call.takeLines { line(host, $0) }
        }
        let output = String(decoding: call.child.captured[0], as: UTF8.self)
        let errors = String(decoding: call.child.captured[1], as: UTF8.self)
        var report = HostReport(host: hosts[call.index], output: output, outcome: .answered)
        if let status = ended {
          (report.outcome, report.warnings) = Self.outcome(
            of: status, timedOut: call.killed, output: output, errors: errors,
            timeout: timeout, answered: mode.answered)
        } else {
          report.outcome = .unreachable("ssh's exit status was taken by another waiter")
        }
        finish(report, call.index)
        if mode.streaming { delivered += 1 }
      }
      calls = running
    }
    return Array(hosts[started...])
  }

  /// What one host's ssh run means, and the remote's other stderr lines (warnings):
  /// - killed at the deadline, ended by a signal, or exit 255 (ssh's own
  ///   failure): unreachable, with ssh's last stderr line;
  /// - an exit in `answered`: the remote usvc answered;
  /// - exit 126 or 127 with nothing printed: no usvc there (`USVC_REMOTE_COMMAND` says where);
  /// - another exit: it ran and failed: its last `usvc: …` line (or last line).
  static func outcome(
    of status: TerminationStatus, timedOut: Bool, output: String, errors: String, timeout: Double,
    answered: Set<Int32> = [0]
  ) -> (HostReport.Outcome, [String]) {
    if timedOut {
      let seconds = timeout == timeout.rounded() ? String(Int(timeout)) : String(timeout)
      return (.unreachable("timed out after \(seconds) s"), [])
    }
    var lines = errors.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" })
      .map { String($0).trimmed.visible }.filter { !$0.isEmpty }
    let said = { (line: String) in line.hasPrefix("usvc: ") ? String(line.dropFirst("usvc: ".count)) : line }
    switch status {
    case .exited(let code) where answered.contains(code):
      return (.answered, lines.map(said))
    case .signaled(let signal):
      return (.unreachable(lines.last ?? "ssh ended by \(signal)"), [])
    case .exited(255):
      return (.unreachable(lines.last ?? "ssh failed (exit 255)"), [])
    case .exited(let code):
      if (code == 127 || code == 126) && output.isEmpty && !lines.contains(where: { $0.hasPrefix("usvc: ") }) {
        let why = lines.last.map { " (\($0))" } ?? ""
        return (.failed("no usvc to run there\(why): put it on the PATH ssh gives a command, or set USVC_REMOTE_COMMAND to its path there"), [])
      }
      let index = lines.lastIndex(where: { $0.hasPrefix("usvc: ") }) ?? (lines.isEmpty ? nil : lines.count - 1)
      guard let index else { return (.failed("exit \(code)"), []) }
      let message = lines.remove(at: index)
      return (.failed(said(message)), lines.map(said))
    }
  }

  /// Spawns one host's ssh: stdin the words (closed after them, so the remote
  /// reads them to their end; they fit a pipe's buffer, `maxWordBytes`),
  /// stdout and stderr read as they come (`CapturedChild`).
  private func start(_ index: Int) throws(Errno) -> Call {
    let child = try CapturedChild(sshArguments(for: hosts[index]), environment: environment, input: stdinWords)
    return Call(index: index, child: child, deadline: monotonicClock() + timeout)
  }
}

/// What one host said.
public struct HostReport: Sendable, Equatable {
  public enum Outcome: Sendable, Equatable {
    /// The remote usvc answered: its lines are `output`.
    case answered
    /// The remote usvc ran and failed (or is not there): `output`, then this message.
    case failed(String)
    /// No answer: ssh could not connect, log in, or finish in time.
    case unreachable(String)
  }

  /// The host as the user named it (an ssh alias, maybe).
  public var host: String
  /// The remote usvc's stdout.
  public var output: String
  public var outcome: Outcome
  /// The remote's other stderr lines, `usvc: ` taken off.
  public var warnings: [String] = []

  public init(host: String, output: String, outcome: Outcome, warnings: [String] = []) {
    self.host = host
    self.output = output
    self.outcome = outcome
    self.warnings = warnings
  }

  /// A line of this host's own: `HOST  LABEL  MESSAGE`, `HOST\tLABEL\tMESSAGE`
  /// (events) or `{"host":…,"LABEL":…}`.
  static func line(host: String, _ label: String, _ message: String, shape: Fleet.Shape) -> String {
    switch shape {
    case .json: return JSON.object([("host", .string(host)), (label, .string(message))]).encoded() + "\n"
    case .events: return "\(host)\t\(label)\t\(message)\n"
    case .status, .plain: return "\(host)  \(label)  \(message)\n"
    }
  }

  /// The lines to print for this host, each ending in a newline, and whether
  /// they are clean: the host answered and every line it printed has the shape
  /// of its verb's. An unreachable host is one line (`HOST  unreachable
  /// REASON`); a failed one is its output, then `HOST  error  MESSAGE`;
  /// warnings (`HOST  warning  MESSAGE`) come after the output.
  public func rendered(_ shape: Fleet.Shape) -> (text: String, clean: Bool) {
    if case .unreachable(let reason) = outcome { return (Self.line(host: host, "unreachable", reason, shape: shape), false) }
    var text = ""
    var clean = outcome == .answered
    var lines = Array(output.utf8).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
    if lines.last?.isEmpty == true { lines.removeLast() }
    for remote in lines {
      let (shown, ok) = Self.render(line: Array(remote), host: host, shape: shape)
      text += shown
      if !ok { clean = false }
    }
    for warning in warnings { text += Self.line(host: host, "warning", warning, shape: shape) }
    if case .failed(let message) = outcome { text += Self.line(host: host, "error", message, shape: shape) }
    return (text, clean)
  }

  /// One line the remote printed (without its newline), checked, as it could
  /// be anything (a login shell's greeting, a program that is not usvc):
  /// - status: a status line (`HOSTNAME  system  …`, `HOSTNAME  JOB  …`) with
  ///   the host as given in place of the remote's name, control characters visible;
  /// - json: one JSON object, with `"host"` as given first (the remote's
  ///   `"host"` renamed `"hostname"`), DEL and C1 characters written `\u00XX`;
  /// - events, plain: the host, then the line with control characters visible (tabs kept);
  /// a status or JSON line of another shape becomes an error line of this host
  /// (`unexpected output: …`, at most 200 characters). Blank lines of status
  /// and JSON are dropped.
  static func render(line bytes: [UInt8], host: String, shape: Fleet.Shape) -> (text: String, clean: Bool) {
    var bytes = bytes[...]
    if bytes.last == UInt8(ascii: "\r") { bytes = bytes.dropLast() }
    switch shape {
    case .events, .plain:
      let shown = String(decoding: Visible.escaped(bytes, keepingTabs: true), as: UTF8.self)
      return ((shape == .events ? host + "\t" : host + "  ") + shown + "\n", true)
    case .status, .json:
      let remote = String(decoding: bytes, as: UTF8.self)
      if remote.trimmed.isEmpty { return ("", true) }
      if shape == .json, JSON.isObject(remote) { return (Self.escapingC1(Self.withHost(host, remote)) + "\n", true) }
      if shape == .status, isStatusLine(remote), let gap = remote.firstRange(of: "  ") {
        return ((host + remote[gap.lowerBound...]).visible + "\n", true)
      }
      let shown = remote.visible
      let message = "unexpected output: " + (shown.count > 200 ? String(shown.prefix(200)) + "…" : shown)
      return (line(host: host, "error", message, shape: shape), false)
    }
  }

  /// A JSON object's text with `"host":HOST` first; a `"host"` the remote put
  /// first (usvc status does) is renamed `"hostname"`.
  static func withHost(_ host: String, _ object: String) -> String {
    let trimmed = object.trimmed
    var rest = trimmed.dropFirst()  // after "{"
    while rest.first?.isWhitespace == true { rest = rest.dropFirst() }
    let given = "{\"host\":" + JSON.string(host).encoded()
    if rest.hasPrefix("\"host\":") { return given + ",\"hostname\":" + rest.dropFirst("\"host\":".count) }
    return rest.hasPrefix("}") ? given + "}" : given + "," + rest
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

/// One host's ssh while it runs (a call of `exchange`, or a board's long-lived session).
struct Call {
  let index: Int
  var child: CapturedChild
  /// When it is killed: `timeout` after its start; never, once the remote usvc
  /// runs, for a mode that is not bounded.
  var deadline: Double
  /// Sent SIGKILL at its deadline.
  var killed = false
  /// The remote usvc's first byte, a NUL (`usvc --stdin-args` writes it once
  /// it has its words), has come: connecting and logging in are over.
  var arrived = false

  /// Takes the remote usvc's NUL out of stdout when it is there (what came
  /// before it is the login's, e.g. a greeting); true the moment it arrives.
  mutating func takeArrival() -> Bool {
    guard !arrived, let nul = child.captured[0].firstIndex(of: 0) else { return false }
    child.captured[0].remove(at: nul)
    arrived = true
    return true
  }

  /// Hands over every whole line of stdout captured so far (without its
  /// newline) and keeps the rest: a line is never torn between hosts.
  mutating func takeLines(_ take: ([UInt8]) -> Void) {
    guard let last = child.captured[0].lastIndex(of: UInt8(ascii: "\n")) else { return }
    for line in child.captured[0][...last].split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).dropLast() {
      take(Array(line))
    }
    child.captured[0].removeSubrange(...last)
  }
}
