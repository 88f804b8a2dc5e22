import Glibc
import USVCSys

/// Readiness probes (SPEC: Health), run from the one poll: the machine says
/// when (`probeReadiness`), the answer comes back as its `.ready` event.
extension Runner {
  /// Starts one readiness check. One still in flight is left to finish (a
  /// slow server answers later than `ready-interval`) until it is older than
  /// `health-timeout`: then it failed, and a new one starts.
  mutating func probeReadiness() {
    let now = monotonicClock()
    if readinessCheck != nil || readinessExec > 0, now - readinessCheckBegan < spec.healthTimeout { return }
    readinessCheckBegan = now
    readinessCheck?.close()
    readinessCheck = nil
    if readinessExec > 0 {
      try? Signal.kill.send(toGroup: readinessExec)  // Reaped as usual; no longer counts.
      readinessExec = 0
    }
    guard let probe = Probe(parsing: spec.ready) else { return }
    switch probe {
    case .tcp, .http:
      readinessCheck = ProbeConnection(probe)  // nil: no socket now, a failed check.
    case .exec(let command):
      // Its own session (so the whole check can be killed), output to /dev/null.
      readinessExec = (try? spawn(
        ["/bin/sh", "-c", command], environment: spec.environment, directory: spec.directory, newSession: true,
        actions: [.open("/dev/null", as: 0, flags: O_RDWR), .duplicate(0, as: 1), .duplicate(0, as: 2), .closeFrom(3)]
      )) ?? 0
    case .log:
      break  // Matched on the job's output lines (`matchReadyLines`).
    case .notify:
      break  // The job says so itself (`readReadyPipe`, `readNotifySocket`).
    }
  }

  /// The readiness check's socket is ready: go on, and tell the machine when it passed.
  mutating func advanceReadinessCheck() {
    guard var check = readinessCheck else { return }
    let outcome = check.advance()
    readinessCheck = outcome == .pending ? check : nil
    if outcome != .pending { check.close() }
    if outcome == .passed { perform(machine.handle(.ready, now: monotonicClock())) }
  }

  /// Lines longer than this are matched on their first this-many bytes: the
  /// runner keeps no big buffer.
  static let maximumReadyLine = 1024

  /// `log:REGEX`: each whole line the job prints while not ready is matched;
  /// the first that matches makes the run ready.
  mutating func matchReadyLines(_ bytes: UnsafeRawBufferPointer) {
    let pattern = String(spec.ready.dropFirst(4))
    if readyPattern != pattern || readyRegex == nil {
      if let old = readyRegex {
        regfree(old)
        old.deallocate()
        readyRegex = nil
      }
      let compiled = UnsafeMutablePointer<regex_t>.allocate(capacity: 1)
      guard regcomp(compiled, pattern, REG_EXTENDED | REG_NOSUB) == 0 else {
        compiled.deallocate()
        return  // The CLI refuses a bad pattern; a hand-edited spec waits until ready-timeout.
      }
      readyRegex = compiled
      readyPattern = pattern
    }
    for byte in bytes {
      if byte == UInt8(ascii: "\n") {
        readyLine.append(0)
        let matched = readyLine.withUnsafeBufferPointer { line in
          line.withMemoryRebound(to: CChar.self) { regexec(readyRegex, $0.baseAddress, 0, nil, 0) == 0 }
        }
        readyLine.removeAll(keepingCapacity: true)
        if matched {
          readyLine = []
          perform(machine.handle(.ready, now: monotonicClock()))
          return
        }
      } else if byte != UInt8(ascii: "\r") && byte != 0 && readyLine.count < Self.maximumReadyLine {
        readyLine.append(byte)
      }
    }
  }

  /// Starts one health check (`job.health`); the machine gives it `health-timeout`.
  mutating func checkHealth() {
    dropHealthCheck()
    guard let probe = Probe(parsing: spec.health) else { return }
    switch probe {
    case .tcp, .http:
      healthCheck = ProbeConnection(probe)
      if healthCheck == nil { perform(machine.handle(.healthFailed, now: monotonicClock())) }
    case .exec(let command):
      do {
        healthExec = try spawn(
          ["/bin/sh", "-c", command], environment: spec.environment, directory: spec.directory, newSession: true,
          actions: [.open("/dev/null", as: 0, flags: O_RDWR), .duplicate(0, as: 1), .duplicate(0, as: 2), .closeFrom(3)])
      } catch {
        perform(machine.handle(.healthFailed, now: monotonicClock()))
      }
    case .log, .notify:
      break  // Refused by the CLI for health.
    }
  }

  /// Forgets the health check in flight (overdue, or a new one starts); an
  /// `exec:` one is killed and reaped as a straggler.
  mutating func dropHealthCheck() {
    healthCheck?.close()
    healthCheck = nil
    if healthExec > 0 { try? Signal.kill.send(toGroup: healthExec) }
    healthExec = 0
  }

  /// The health check's socket is ready: go on, and tell the machine how it went.
  mutating func advanceHealthCheck() {
    guard var check = healthCheck else { return }
    let outcome = check.advance()
    healthCheck = outcome == .pending ? check : nil
    guard outcome != .pending else { return }
    check.close()
    perform(machine.handle(outcome == .passed ? .healthPassed : .healthFailed, now: monotonicClock()))
  }

  /// The write end of the ready pipe, made on first use; nil when no pipe can be made.
  mutating func openReadyPipe() -> Int32? {
    if readyPipeWrite < 0 {
      guard let pipe = try? FileDescriptor.pipe() else { return nil }
      pipe.read.setNonBlocking()
      pipe.write.setNonBlocking()
      (readyPipeRead, readyPipeWrite) = (pipe.read.rawValue, pipe.write.rawValue)
    }
    return readyPipeWrite
  }

  /// Drops what an earlier run wrote, so that only this run's newline counts.
  func drainReadyPipe() {
    guard readyPipeRead >= 0 else { return }
    var chunk: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    while withUnsafeMutableBytes(of: &chunk, { Glibc.read(readyPipeRead, $0.baseAddress, $0.count) }) > 0 {}
  }

  /// The job wrote to USVC_READY_FD: a newline means ready; other bytes are ignored.
  mutating func readReadyPipe() {
    var chunk: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    var newline = false
    while true {
      let count = withUnsafeMutableBytes(of: &chunk) { Glibc.read(readyPipeRead, $0.baseAddress, $0.count) }
      guard count > 0 else { break }
      withUnsafeBytes(of: &chunk) { if $0.prefix(count).contains(UInt8(ascii: "\n")) { newline = true } }
    }
    if newline, case .awaitingReady = machine.state, spec.ready == "notify" {
      perform(machine.handle(.ready, now: monotonicClock()))
    }
  }

  /// The sd_notify socket, made on first use; its path, or nil when none can
  /// be made (said once in the log: the job still has USVC_READY_FD).
  ///
  /// It is `run/NAME.notify` when that path fits a Unix socket (107 bytes,
  /// PLATFORM-NOTES) and `run/` is private. Otherwise it goes where the tmux
  /// socket goes in that case, `/tmp/usvc-UID/HASH.notify` (HASH: FNV-1a of
  /// the path it would have had), and a line in the log says so. Why not a
  /// shorter name in `run/`: when USVC_HOME itself is that deep no name fits,
  /// and one rule for every socket of usvc is one fewer to learn; the job finds
  /// the path in NOTIFY_SOCKET either way.
  mutating func openNotifySocket() -> String? {
    if let notifySocket { return notifySocket.path }
    if notifySocketFailed { return nil }
    let preferred = paths.notifySocket
    var path = preferred
    if preferred.utf8.count > maximumSocketPathLength || !isPrivateDirectory(paths.home + "/run") {
      let folder = shortSocketDirectory
      try? makeDirectory(folder)
      path = folder + "/" + String(fnv1a(preferred.utf8), radix: 16) + ".notify"
      guard isPrivateDirectory(folder) else {
        notifySocketFailed = true
        say("no NOTIFY_SOCKET for this job: \(folder) is not a private directory of yours; USVC_READY_FD still works")
        return nil
      }
      let why = preferred.utf8.count > maximumSocketPathLength ? "is longer than a socket path may be" : "is in a directory others may enter"
      say("NOTIFY_SOCKET is \(path): \(preferred) \(why)")
    }
    do {
      notifySocket = try NotifySocket(binding: path)
    } catch {
      notifySocketFailed = true
      say("no NOTIFY_SOCKET for this job: \(path): \(error); USVC_READY_FD still works")
      return nil
    }
    return path
  }

  /// Closes the sd_notify socket and removes its file (the job is no longer `notify`).
  mutating func closeNotifySocket() {
    notifySocket?.close()
    notifySocket = nil
  }

  /// Datagrams came to NOTIFY_SOCKET: one holding the line `READY=1` makes the
  /// run ready (the machine ignores it unless the run awaits that); whatever
  /// else sd_notify programs send (STATUS=, MAINPID=, WATCHDOG=1, STOPPING=1)
  /// and any garbage is ignored.
  mutating func readNotifySocket() {
    guard let socket = notifySocket else { return }
    // Into the output buffer's first page, which reading output already made
    // resident: systemd itself reads at most 4096 bytes of a message (PIPE_BUF).
    let page = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<4096])
    var ready = false
    // At most 64 a wake-up: a job flooding the socket cannot hold the loop
    // (poll wakes again at once for the rest).
    for _ in 0..<64 {
      guard let (count, truncated) = socket.receive(into: page) else { break }
      if NotifySocket.saysReady(UnsafeRawBufferPointer(rebasing: page[0..<count]), truncated: truncated) { ready = true }
    }
    if ready, spec.ready == "notify" { perform(machine.handle(.ready, now: monotonicClock())) }
  }

  /// The job's environment for a run: what `start` captured, less any
  /// USVC_READY_FD or NOTIFY_SOCKET in it (those belong to whatever supervised
  /// that shell: another job, systemd; glibc's getenv would find them first),
  /// plus this runner's own when the job is `notify`.
  static func notifyEnvironment(_ captured: [String], readyFD: Bool, socket: String?) -> [String] {
    captured.filter { !$0.hasPrefix("USVC_READY_FD=") && !$0.hasPrefix("NOTIFY_SOCKET=") }
      + (readyFD ? ["USVC_READY_FD=3"] : []) + (socket.map { ["NOTIFY_SOCKET=" + $0] } ?? [])
  }
}
