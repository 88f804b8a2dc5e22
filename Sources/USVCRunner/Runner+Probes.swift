import Glibc
import USVCSys

/// Readiness probes (SPEC: Health), run from the one poll: the machine says
/// when (`probeReadiness`), the answer comes back as its `.ready` event.
extension Runner {
  /// Starts one readiness check. A check still in flight from the last
  /// interval has taken too long: it failed, and a new one starts.
  mutating func probeReadiness() {
    readinessCheck?.close()
    readinessCheck = nil
    guard let probe = Probe(parsing: spec.ready) else { return }
    switch probe {
    case .tcp, .http:
      readinessCheck = ProbeConnection(probe)  // nil: no socket now, a failed check.
    case .exec, .log, .notify:
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
}
