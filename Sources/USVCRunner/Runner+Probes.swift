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
      break  // Not yet: the run waits until ready-timeout.
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
}
