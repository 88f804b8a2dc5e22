import Foundation
import Testing

@testable import USVCCore
@testable import USVCRunner
import USVCContract
import USVCSys

// Chatty jobs (issue 11): the pane is a view, the log is the record. A job
// printing flat out is never held back by tmux; when the pane cannot keep up
// it skips ahead and says so, the log never skips; attaching shows recent output.

@Suite("chatty jobs: the pane is a view, the log is the record", .serialized)
struct ChattyJobTests {
  static let lineCount = 20_000
  static let filler = String(repeating: "x", count: 100)

  /// The lines the job prints: numbered, so a lost, doubled or reordered one shows.
  static func expectedLine(_ number: Int) -> String {
    let digits = String(number)
    return String(repeating: "0", count: 8 - digits.count) + digits + " " + filler
  }

  @Test(
    "a job printing 2 MB while the tmux server is stopped finishes without it, and its log has every line in order",
    .timeLimit(.minutes(2)))
  func floodWhileTmuxIsStopped() throws {
    let t = try TestHome()
    // The job waits on a FIFO, so it starts printing only once tmux is stopped.
    let go = t.file("go")
    #expect(mkfifo(go, 0o600) == 0)
    let job = try t.script("flood", """
      read word < "\(go)"
      seq -f '%08g \(Self.filler)' 1 \(Self.lineCount)
      echo FLOOD-DONE
      exec sleep 1000
      """)
    try t.ok("start", "fl", job)
    let server = try #require(pid_t(try t.tmux("display-message", "-p", "#{pid}").stdout.trimmed))
    let log = t.home + "/logs/fl-1.log"

    #expect(kill(server, SIGSTOP) == 0)
    var resumed = false
    // Whatever happens, tmux runs again before the home is torn down (kill-server would wait on it).
    defer { if !resumed { kill(server, SIGCONT) }; withExtendedLifetime(t) {} }
    // Non-blocking: a job that never came to read would otherwise hang the test.
    var fifo: FileDescriptor?
    #expect(eventually(within: 30) {
      fifo = try? FileDescriptor.open(go, O_WRONLY | O_NONBLOCK)
      return fifo != nil
    }, "the job never opened its FIFO")
    try #require(fifo).closeAfter { try $0.writeAll("go\n") }

    // 1. The job got through all of it while tmux could not read a byte of the pane.
    let done = eventually(within: 60) { (t.read(log) ?? "").contains("FLOOD-DONE\n") }
    #expect(done, "the job did not finish while tmux was stopped")
    #expect(ProcStat.read(server)?.state == "T", "tmux ran again before the job finished")
    kill(server, SIGCONT)
    resumed = true

    // 2. The log has every line, in order, nothing in between.
    let printed = (t.read(log) ?? "").split(separator: "\n").filter { !$0.hasPrefix("[usvc]") }
    let expected = (1...Self.lineCount).map(Self.expectedLine) + ["FLOOD-DONE"]
    #expect(printed.count == expected.count, "\(printed.count) lines logged, \(expected.count) printed")
    let firstDifference = zip(printed, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
    #expect(firstDifference == nil, "line \((firstDifference ?? 0) + 1) differs: \(firstDifference.map { printed[$0] } ?? "")")

    // 3. The pane skipped ahead and said so, then shows the latest output again.
    let history = { (try? t.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "=usvc:=fl-1").stdout) ?? "" }
    let screen = { (try? t.tmux("capture-pane", "-p", "-J", "-t", "=usvc:=fl-1").stdout) ?? "" }
    #expect(eventually(within: 30) { history().contains("[usvc] pane skipped ") }, "\(history().suffix(800))")
    #expect(history().contains("bytes (the log has everything)"))
    #expect(
      eventually(within: 30) { screen().contains(Self.expectedLine(Self.lineCount) + "\nFLOOD-DONE") },
      "the pane does not show the last lines: \(screen().suffix(800))")
  }

  @Test("attaching shows a screen of recent output, and the pane keeps job.scrollback lines of history (100 by default)")
  func recentOutputAndScrollback() throws {
    let t = try TestHome()
    let job = try t.script("lines", """
      seq -f 'line %g' 1 1000
      exec sleep 1000
      """)
    try t.ok("start", "sb", job)
    let screen = { (try? t.tmux("capture-pane", "-p", "-t", "=usvc:=sb-1").stdout) ?? "" }
    #expect(eventually(within: 30) { screen().contains("line 999\nline 1000\n") }, "\(screen().suffix(400))")
    let limit = { try t.tmux("display-message", "-p", "-t", "=usvc:=sb-1", "#{history_limit}").stdout.trimmed }
    #expect(try limit() == String(JobSpec.defaultScrollback))
    let kept = try t.tmux("capture-pane", "-p", "-S", "-", "-t", "=usvc:=sb-1").stdout
    #expect(kept.split(separator: "\n").count <= JobSpec.defaultScrollback + 50, "more history kept than the limit")

    try t.ok("conf", "sb-1", "scrollback", "5000")
    try t.ok("restart", "sb-1")
    #expect(try limit() == "5000")
    #expect(eventually(within: 30) { (try? t.tmux("capture-pane", "-p", "-S", "-", "-t", "=usvc:=sb-1").stdout)?.contains("line 1\n") ?? false })

    let refused = try t.usvc("conf", "sb-1", "scrollback", "lots")
    #expect(refused.status == 1 && refused.stderr.hasPrefix("usvc: ") && refused.stderr.split(separator: "\n").count == 1)
  }
}

/// `F_SETPIPE_SZ` for fcntl (Linux, behind _GNU_SOURCE, which Swift's Glibc lacks).
private let setPipeSize: Int32 = 1031

/// The pane feed's accounting, with a pipe of one page standing in for the pane.
@Suite("pane feed: skips and says so, with a pipe as the pane")
struct PaneFeedTests {
  /// A pipe whose write end takes 4096 bytes before it is full, non-blocking.
  static func smallPipe() throws -> (read: FileDescriptor, write: FileDescriptor) {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { throw Errno.current }
    _ = fcntl(fds[1], setPipeSize, 4096)
    let write = FileDescriptor(rawValue: fds[1])
    write.setNonBlocking()
    FileDescriptor(rawValue: fds[0]).setNonBlocking()
    return (FileDescriptor(rawValue: fds[0]), write)
  }

  static func drain(_ fd: FileDescriptor) -> [UInt8] {
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while case let count = chunk.withUnsafeMutableBytes({ read(fd.rawValue, $0.baseAddress, $0.count) }), count > 0 {
      out += chunk[0..<count]
    }
    return out
  }

  @Test("a full pane skips ahead; on resume one [usvc] line counts exactly what it missed, then whole recent lines end with the last")
  func skipAndResume() throws {
    let (readEnd, writeEnd) = try Self.smallPipe()
    defer { readEnd.close(); writeEnd.close() }
    var pane = PaneFeed(descriptor: writeEnd.rawValue)
    let text = (1...2000).map { ChattyJobTests.expectedLine($0) + "\n" }.joined()
    let bytes = Array(text.utf8)
    for start in stride(from: 0, to: bytes.count, by: 1000) {
      bytes[start..<min(start + 1000, bytes.count)].withUnsafeBytes { pane.show($0) }
    }
    let skippingAfterFlood = pane.isSkipping
    #expect(skippingAfterFlood)
    let first = Self.drain(readEnd)
    #expect(!first.isEmpty && first.count <= 4096 && Array(bytes[0..<first.count]) == first)

    // The pane drains as fast as it is written: each resume shows what fits.
    var shownBytes: [UInt8] = []
    for _ in 0..<4 where pane.isSkipping {
      pane.resume()
      shownBytes += Self.drain(readEnd)
    }
    let skippingAtEnd = pane.isSkipping
    #expect(!skippingAtEnd)
    let shown = String(decoding: shownBytes, as: UTF8.self)
    let lines = shown.split(separator: "\n", omittingEmptySubsequences: false)
    // The cut line of the first write is ended first, then the notice.
    let noticeIndex = try #require(lines.firstIndex { $0.hasPrefix("[usvc] pane skipped ") })
    #expect(noticeIndex == 1 && lines[0].isEmpty)
    let notice = String(lines[noticeIndex])
    let missed = try #require(Int(notice.dropFirst("[usvc] pane skipped ".count).prefix { $0.isNumber }))
    #expect(notice.hasSuffix(" bytes (the log has everything)"))
    let tail = lines[(noticeIndex + 1)...].joined(separator: "\n")
    #expect(first.count + missed + tail.utf8.count == bytes.count, "every byte is shown or counted, once")
    #expect(text.hasSuffix(tail) && tail.hasPrefix("0") && tail.hasSuffix(ChattyJobTests.expectedLine(2000) + "\n"))
  }

  @Test("a pane that keeps up still gets at most 64 KiB per 0.2 s; the rest is skipped")
  func budget() throws {
    var fds: [Int32] = [0, 0]
    #expect(pipe(&fds) == 0)
    let readEnd = FileDescriptor(rawValue: fds[0]), writeEnd = FileDescriptor(rawValue: fds[1])
    defer { readEnd.close(); writeEnd.close() }
    _ = fcntl(writeEnd.rawValue, setPipeSize, 1 << 20)
    writeEnd.setNonBlocking()
    readEnd.setNonBlocking()
    var pane = PaneFeed(descriptor: writeEnd.rawValue)
    let chunk = [UInt8](repeating: UInt8(ascii: "y"), count: 4096)
    let began = monotonicClock()
    for _ in 0..<50 { chunk.withUnsafeBytes { pane.show($0) } }
    // A loaded machine may let a window pass during the loop: each allows one budget more.
    let windows = Int((monotonicClock() - began) / PaneFeed.pause) + 1
    let skipping = pane.isSkipping
    #expect(skipping)
    let got = Self.drain(readEnd).count
    #expect(got >= PaneFeed.budget && got <= PaneFeed.budget * windows, "\(got) bytes in \(windows) window(s)")
  }
}
