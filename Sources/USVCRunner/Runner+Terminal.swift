import Glibc
import USVCSys

/// The job's terminal: its output to the log and the pane, keys typed in the
/// pane to the job, and usvc's own `[usvc]` lines.
extension Runner {
  /// Copies what the job printed to the log, then to the pane, which never
  /// holds the job back (`PaneFeed`). At most `chunks` reads, so that a job
  /// printing flat out cannot keep the runner from its signals.
  mutating func pumpOutput(chunks: Int = 16) {
    var reads = 0
    while reads < chunks {
      // 1. Fill the buffer (a pty read gives at most 4 KiB), so a flood costs
      //    one log write per buffer, not one per read.
      var count = 0
      var drained = false
      while count < buffer.count && reads < chunks {
        let got = Glibc.read(master.rawValue, buffer.baseAddress! + count, buffer.count - count)
        reads += 1
        if got <= 0 {
          drained = true
          break
        }
        count += got
      }
      guard count > 0 else { return }
      machine.lastOutput = monotonicClock()
      // 2. The log first: it is the record. Then the pane, which may skip.
      let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
      if let error = log.append(bytes) {
        toPane("\n[usvc] cannot write \(paths.log): \(error); the job goes on, shown here only\n")
      }
      if case .awaitingReady = machine.state, spec.ready.hasPrefix("log:") { matchReadyLines(bytes) }
      if paneOpen { pane.show(bytes) }
      atLineStart = buffer[count - 1] == UInt8(ascii: "\n")
      if drained { return }
    }
  }

  /// Keys typed in the pane (through `usvc attach`) go to the job's terminal.
  mutating func forwardInput() {
    let count = Glibc.read(0, buffer.baseAddress, buffer.count)
    if count <= 0 {
      if count == 0 || (errno != EINTR && errno != EAGAIN) { paneOpen = false }
      return
    }
    try? master.writeAll(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
  }

  /// One `[usvc] …` line, to the pane and the log, starting on a line of its own.
  mutating func say(_ text: String) {
    let line = (atLineStart ? "" : "\n") + "[usvc] " + text + "\n"
    atLineStart = true
    toPane(line)
    let bytes = line.losslessBytes
    if let error = bytes.withUnsafeBytes({ log.append($0) }) {
      toPane("[usvc] cannot write \(paths.log): \(error); the job goes on, shown here only\n")
    }
  }

  mutating func toPane(_ text: String) {
    if paneOpen { pane.show(text) }
  }

  static func say(_ line: String) { printError(line) }
}
