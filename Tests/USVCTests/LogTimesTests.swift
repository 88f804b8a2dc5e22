import Foundation
import Testing

@testable import USVCCore
import USVCContract
import USVCSys

/// `logs -t` and `logs --since` (SPEC: The board): the index the runner keeps
/// beside each log (`LogIndex`), read back through hand-made files first, then
/// with real jobs, real rotation and a real follow.
@Suite("log times: the index read back")
struct LogIndexTests {
  /// Writes `records` as an index at `path`.
  func writeIndex(_ path: String, _ records: [(time: Int64, offset: Int64)]) {
    var bytes = [UInt8](repeating: 0, count: records.count * LogIndex.recordSize)
    bytes.withUnsafeMutableBytes { raw in
      for (number, record) in records.enumerated() {
        LogIndex.encode(LogIndex.Record(time: record.time, offset: record.offset), into: raw.baseAddress! + number * LogIndex.recordSize)
      }
    }
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
  }

  func write(_ path: String, _ text: String) { _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) }

  /// The tail of `log` as "TIME TEXT" strings, TIME the seconds or '-'.
  func timed(_ log: String, lines: Int = 100, since: Int64? = nil) -> [String] {
    LogReader.tail(log, lines: lines, since: since, timed: true).map {
      "\($0.time.map(String.init) ?? "-") \(String(decoding: $0.bytes, as: UTF8.self))"
    }
  }

  @Test("the record format is pinned: two little-endian 64-bit integers, the time then the offset")
  func recordBytes() {
    var bytes = [UInt8](repeating: 0, count: 16)
    bytes.withUnsafeMutableBytes { LogIndex.encode(LogIndex.Record(time: 0x0102_0304, offset: 0x0A0B), into: $0.baseAddress!) }
    #expect(bytes == [4, 3, 2, 1, 0, 0, 0, 0, 0x0B, 0x0A, 0, 0, 0, 0, 0, 0])
    #expect(bytes.withUnsafeBytes { LogIndex.decode($0.baseAddress!) } == LogIndex.Record(time: 0x0102_0304, offset: 0x0A0B))
  }

  @Test("each line has the time of the record at or before its first byte; lines before the first record, or in a copy without index, have none")
  func linesDated() throws {
    let t = try TestHome()
    let log = t.file("j.log")
    write(t.file("j.log.1"), "ancient\n")  // A copy from before the index.
    write(log, "old\na\nb\nc\nd\n")
    writeIndex(LogIndex.path(of: log), [(100, 4), (105, 8)])
    #expect(timed(log) == ["- ancient", "- old", "100 a", "100 b", "105 c", "105 d"])
    #expect(timed(log, lines: 2) == ["105 c", "105 d"])
    // Without times asked for, none is looked up.
    #expect(LogReader.tail(log, lines: 10, since: nil, timed: false).allSatisfy { $0.time == nil })
  }

  @Test("--since starts at the first record at or after it; a line begun before it is left out, also across a rotation")
  func sinceCuts() throws {
    let t = try TestHome()
    let log = t.file("j.log")
    // Copy 1: x at 50, then "y-start" at 55; the live log: "-end" at 60 completes y, then z at 70.
    write(t.file("j.log.1"), "x\ny-start")
    writeIndex(t.file("j.log.1.idx"), [(50, 0), (55, 2)])
    write(log, "-end\nz\n")
    writeIndex(LogIndex.path(of: log), [(60, 0), (70, 5)])
    #expect(timed(log) == ["50 x", "55 y-start-end", "70 z"])
    #expect(timed(log, since: 0) == ["50 x", "55 y-start-end", "70 z"])
    #expect(timed(log, since: 51) == ["55 y-start-end", "70 z"])
    #expect(timed(log, since: 56) == ["70 z"], "y began at 55")
    #expect(timed(log, since: 70) == ["70 z"])
    #expect(timed(log, since: 71) == [])
    #expect(timed(log, lines: 1, since: 0) == ["70 z"])
    // Without -t, the same cut.
    #expect(LogReader.tail(log, lines: 10, since: 51, timed: false).map { String(decoding: $0.bytes, as: UTF8.self) } == ["y-start-end", "z"])
  }

  @Test("--since leaves out lines of unknown time, and a truncated or missing index costs times, never lines")
  func sinceUnknown() throws {
    let t = try TestHome()
    let log = t.file("j.log")
    write(log, "old\nnew\n")
    writeIndex(LogIndex.path(of: log), [(70, 4)])
    #expect(timed(log, since: 0) == ["70 new"])
    // A record cut short (a full disk) does not count.
    let index = LogIndex.path(of: log)
    var bytes = [UInt8](FileManager.default.contents(atPath: index)!)
    bytes += [1, 2, 3]
    _ = FileManager.default.createFile(atPath: index, contents: Data(bytes))
    #expect(timed(log) == ["- old", "70 new"])
    unlink(index)
    #expect(timed(log) == ["- old", "- new"])
    #expect(timed(log, since: 0) == [])
  }

  /// (what is typed, seconds since the epoch, or nil: refused), with now = 2,000,000,000.
  static let sinceCases: [(String, Int64?)] = [
    ("90s", 2_000_000_000 - 90), ("10m", 2_000_000_000 - 600), ("2h", 2_000_000_000 - 7200),
    ("1d", 2_000_000_000 - 86400), ("1h30m", 2_000_000_000 - 5400), ("0s", 2_000_000_000),
    ("2026-12-01", 1_796_083_200), ("2026-12-01T10:00", 1_796_119_200), ("2026-12-01T10:00:05", 1_796_119_205),
    ("2026-12-01T10:00:05Z", 1_796_119_205), ("2026-12-01 10:00:05.750Z", 1_796_119_205),
    ("2026-12-01T11:00:05+01:00", 1_796_119_205), ("2026-12-01T05:00:05-0500", 1_796_119_205),
    ("2026-12-01T11:00+01", 1_796_119_200),
    ("yesterday", nil), ("-5m", nil), ("5", nil), ("m", nil), ("5x", nil), ("", nil), ("1h30", nil),
    ("9999999999d", nil), ("2026-13-01", nil), ("2026-02-30", nil), ("2026-12-01T25:00", nil),
    ("2026-12-01T10", nil), ("2026-12-01T10:00Zjunk", nil), ("2026-12-01T10:00+24:00", nil), ("1969-12-31", nil),
  ]

  @Test("--since takes a duration back from now or an ISO 8601 time, UTC unless it carries Z or an offset", arguments: sinceCases)
  func sinceParsing(_ typed: String, _ expected: Int64?) {
    #expect(LogReader.sinceTime(typed, now: 2_000_000_000) == expected)
  }

  @Test("-t times are ISO 8601 UTC to the second")
  func timeStamp() {
    #expect(LogReader.timeStamp(1_796_119_205) == "2026-12-01T10:00:05Z")
    #expect(LogReader.timeStamp(0) == "1970-01-01T00:00:00Z")
  }
}

/// A `logs -t` line of one job: its time and text; nil time for '-'.
func splitTimed(_ line: some StringProtocol) -> (time: Int64?, text: String)? {
  guard let space = line.firstIndex(of: " ") else { return nil }
  let stamp = String(line[..<space])
  let text = String(line[line.index(after: space)...])
  if stamp == "-" { return (nil, text) }
  guard let date = ISO8601DateFormatter().date(from: stamp) else { return nil }
  return (Int64(date.timeIntervalSince1970), text)
}

@Suite("log times: logs -t and --since with real jobs", .serialized)
struct LogTimesTests {
  /// The argv of a job that prints bursts of `SECOND stamp N` lines (the
  /// second it printed them, from bash's own clock), about 2 KB a second.
  static let stampingJob = [
    "/bin/bash", "-c",
    """
    i=0
    while :; do
      printf -v now '%(%s)T' -1
      for k in 1 2 3 4 5 6 7 8 9 10; do i=$((i+1)); echo "$now stamp $i"; done
      sleep 0.1
    done
    """,
  ]

  @Test("-t dates every line within the run, in order, across rotated copies, each copy beside its own index; -f -t follows across rotation", .timeLimit(.minutes(2)))
  func timesAcrossRotation() throws {
    let t = try TestHome()
    let began = Int64(time(nil))
    #expect(try t.usvc(["start", "st"] + Self.stampingJob).status == 0)
    try t.ok("conf", "st-1", "log-max-bytes", "4096")
    try t.ok("conf", "st-1", "log-keep", "2")
    try t.ok("restart", "st-1")
    // Followed for 6 s while it rotates (every 2 s or so).
    let followed = try TestHome.run(
      ["/usr/bin/timeout", "-s", "INT", "6", usvcBinary, "logs", "-f", "-t", "-n", "0", "st-1"], environment: t.environment
    ).stdout
    // Enough rotations that copies were removed as well as made (an index one
    // copy off would be seconds off).
    #expect(eventually(within: 40) { (t.rotatedLogs(of: "st-1").first ?? 0) >= 2 })
    try t.ok("stop", "st-1")
    let ended = Int64(time(nil))

    // Each copy has its index beside it, and no index outlives its log.
    let copies = t.rotatedLogs(of: "st-1")
    #expect(copies.count == 2, "\(copies)")
    let logs = directoryEntries(t.home + "/logs").sorted()
    #expect(logs == (copies.flatMap { ["st-1.log.\($0)", "st-1.log.\($0).idx"] } + ["st-1.log", "st-1.log.idx"]).sorted())
    for number in copies {
      let log = t.home + "/logs/st-1.log.\(number)"
      let index = try FileDescriptor.open(LogIndex.path(of: log), O_RDONLY)
      defer { index.close() }
      let first = LogIndex.record(0, of: index)
      #expect(first?.offset == 0, "copy \(number) is dated from its first byte")
      let last = LogIndex.record(LogIndex.count(of: index) - 1, of: index)
      #expect((last?.offset ?? .max) < Int64(fileStatus(log)?.st_size ?? 0))
    }

    // Every line printed by the job: its -t time is the second it printed it
    // or the next (the runner copies it an instant later), within the run, in order.
    func check(_ lines: [String], _ what: String) {
      var previous: Int64 = 0
      var stamps = 0
      for line in lines {
        guard let (time, text) = splitTimed(line), let time else {
          Issue.record("\(what): a line without a time: \(line)")
          return
        }
        #expect(time >= began && time <= ended, "\(what): \(line) outside \(began)...\(ended)")
        #expect(time >= previous, "\(what): \(line) after \(previous)")
        previous = time
        let fields = text.split(separator: " ")
        if fields.count == 3, fields[1] == "stamp", let printed = Int64(fields[0]) {
          stamps += 1
          #expect(time == printed || time == printed + 1, "\(what): \(line)")
        }
      }
      #expect(stamps > 100, "\(what): \(stamps) lines of the job")
    }
    check(try t.ok("logs", "-t", "-n", "100000", "st-1").lines, "logs -t")
    check(followed.split(separator: "\n").map(String.init), "logs -f -t")
  }

  @Test("--since TIME starts at the first line written in that second or later; with -n, the last of those; durations too")
  func sinceCuts() throws {
    let t = try TestHome()
    let job = try t.script("phases", """
      #!/bin/sh
      i=0
      while [ ! -e "\(t.file("pause"))" ]; do i=$((i+1)); echo "before $i"; sleep 0.05; done
      echo paused
      while [ ! -e "\(t.file("go"))" ]; do sleep 0.02; done
      i=0
      while [ $i -lt 5 ]; do i=$((i+1)); echo "after $i"; done
      exec sleep 1000
      """)
    try t.ok("start", "ph", job)
    #expect(try eventually { try t.ok("logs", "ph-1").stdout.contains("before 12") })
    _ = FileManager.default.createFile(atPath: t.file("pause"), contents: nil)
    #expect(try eventually { try t.ok("logs", "ph-1").lines.last == "paused" })
    // Everything so far was written in this second or before: wait (polling the clock) for the next.
    let written = Int64(time(nil))
    #expect(eventually { Int64(time(nil)) > written })
    let cut = Int64(time(nil))
    _ = FileManager.default.createFile(atPath: t.file("go"), contents: nil)
    #expect(try eventually { try t.ok("logs", "ph-1").lines.last == "after 5" })
    let after = (1...5).map { "after \($0)" }

    let stamp = LogReader.timeStamp(cut)
    #expect(try t.ok("logs", "--since", stamp, "ph-1").lines == after)
    #expect(try t.ok("logs", "--since", String(stamp.dropLast()), "ph-1").lines == after, "no zone: UTC")
    #expect(try t.ok("logs", "--since", String(LogReader.timeStamp(cut + 3600).dropLast()) + "+01:00", "ph-1").lines == after)
    #expect(try t.ok("logs", "--since", stamp, "-n", "2", "ph-1").lines == ["after 4", "after 5"])
    let dated = try t.ok("logs", "-t", "--since", stamp, "ph-1").lines
    #expect(dated.compactMap { splitTimed($0)?.text } == after)
    #expect(dated.allSatisfy { (splitTimed($0)?.time ?? 0) >= cut }, "\(dated)")
    // A duration reaching back before the job: everything it wrote, without -n's 10.
    let all = try t.ok("logs", "--since", "1h", "ph-1").lines
    #expect(all.count > 10 && all.first?.hasPrefix("[usvc] started pid") == true && all.last == "after 5", "\(all)")
    #expect(all == (try t.ok("logs", "-n", "100000", "ph-1").lines))
    // The future: nothing, and no error.
    let future = try t.ok("logs", "--since", "2100-01-01", "ph-1")
    #expect(future.stdout.isEmpty)
  }

  @Test("a log begun before usvc kept times: its lines and its copies' show '-' under -t, --since leaves them out, new lines are dated")
  func logWithoutIndex() throws {
    let t = try TestHome()
    try FileManager.default.createDirectory(atPath: t.home + "/logs", withIntermediateDirectories: true)
    chmod(t.home, 0o700)
    _ = FileManager.default.createFile(atPath: t.home + "/logs/old-1.log.1", contents: Data("older\n".utf8))
    _ = FileManager.default.createFile(atPath: t.home + "/logs/old-1.log", contents: Data("ancient\n".utf8))
    try t.ok("start", "old", "sh", "-c", "echo fresh; exec sleep 1000")
    #expect(try eventually { try t.ok("logs", "old-1").lines.last == "fresh" })
    let lines = try t.ok("logs", "-t", "-n", "100", "old-1").lines
    #expect(lines.prefix(2) == ["- older", "- ancient"], "\(lines)")
    #expect(lines.dropFirst(2).allSatisfy { splitTimed($0)?.time != nil }, "\(lines)")
    #expect(lines.last.flatMap { splitTimed($0)?.text } == "fresh")
    let since = try t.ok("logs", "--since", "1d", "old-1").lines
    #expect(!since.contains("older") && !since.contains("ancient") && since.last == "fresh", "\(since)")
  }

  @Test("several jobs: 'NAME | TIME line', each job's lines dated; with -f too")
  func severalJobs() throws {
    let t = try TestHome()
    let began = Int64(time(nil))
    try t.ok("start", "-n", "2", "two", "sh", "-c", "echo \"hello $USVC_JOB\"; while :; do echo tick; sleep 0.2; done")
    #expect(try eventually { try t.ok("logs", "-n", "100", "two").lines.filter { $0.hasSuffix("| tick") }.count >= 4 })
    let lines = try t.ok("logs", "-t", "-n", "100", "two").lines
    for line in lines {
      let match = line.wholeMatch(of: /(two-[12]) \| ([0-9T:Z-]+ .*)/)
      #expect(match != nil, "\(line)")
      guard let match, let (stamp, _) = splitTimed(match.2), let stamp else { continue }
      #expect(stamp >= began && stamp <= Int64(time(nil)), "\(line)")
    }
    #expect(lines.contains { $0.hasPrefix("two-1 | ") && $0.hasSuffix(" hello two-1") })
    #expect(lines.contains { $0.hasPrefix("two-2 | ") && $0.hasSuffix(" hello two-2") })
    let followed = try TestHome.run(
      ["/usr/bin/timeout", "-s", "INT", "2", usvcBinary, "logs", "-f", "-t", "-n", "0", "two"], environment: t.environment)
    let ticks = followed.lines.filter { $0.hasSuffix(" tick") }
    #expect(ticks.contains { $0.hasPrefix("two-1 | ") } && ticks.contains { $0.hasPrefix("two-2 | ") }, "\(followed.stdout)")
    #expect(ticks.allSatisfy { $0.wholeMatch(of: /two-[12] \| [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z tick/) != nil }, "\(followed.stdout)")
  }
}
