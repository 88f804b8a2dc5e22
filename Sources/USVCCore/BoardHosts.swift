import Glibc
import USVCContract
import USVCSys

// `usvc top --hosts …`: the board across hosts (SPEC: The board). Each host
// holds one ssh session for the board's lifetime, through the fleet's
// transport (`Fleet`: host checks, control masters, the words on stdin), whose
// remote usvc runs `status --json --feed SECONDS` and prints one JSON line per
// refresh. A new ssh call per refresh would cost ~6 ms of client CPU per host
// per second; a line on an open session costs almost nothing. What a host
// sends is checked as fleet output is: a line that is not a feed object makes
// that host an error row, and every string is shown escaped.

extension Supervisor {
  /// The jobs `selectors` name now, and why some are missing: a job removed
  /// while the board watches leaves the other selectors' jobs on it.
  public func boardSelection(_ selectors: [String]) -> (names: [String], problem: String?) {
    do {
      return (try select(selectors), nil)
    } catch {
      let valid = selectors.filter { (try? select([$0])) != nil }
      return (valid.isEmpty ? [] : (try? select(valid)) ?? [], error.description)
    }
  }

  /// `usvc status --json --feed SECONDS` (hidden; what `top --hosts` runs on
  /// each host): one `status --json` line every `interval` seconds, with cpu %
  /// since the line before and, when a selector no longer matches, `"problem"`,
  /// until `write` fails (the board, or its ssh link, went away).
  public func feed(_ selectors: [String], every interval: Double, write: (String) -> Bool) {
    var baseline = StatusBaseline()
    var next = monotonicClock()
    while true {
      let (names, problem) = boardSelection(selectors)
      var line = StatusFormat.json(status(names, baseline: &baseline), systemOnly: false)
      if let problem { line = line.dropLast() + ",\"problem\":" + JSON.string(problem).encoded() + "}" }
      guard write(line + "\n") else { return }
      // Deadlines, not sleeps of a fixed length: lines keep their pace however long a status takes.
      next += interval
      let now = monotonicClock()
      if next < now { next = now + interval }
      _ = poll(nil, 0, Int32(((next - now) * 1000).rounded(.up)))
    }
  }
}

extension BoardSection {
  /// One line of a host's feed as that host's section, or nil when it is not
  /// a feed object (a system object and a list of jobs, each with a name, a
  /// group and a state usvc knows). Numbers are clamped; strings stay as sent
  /// (the board shows them with `visible`).
  static func decoding(feed line: String, host: String) -> BoardSection? {
    guard let object = JSON.parse(line), let system = object["system"], let jobList = object["jobs"]?.arrayValue else { return nil }
    var jobs: [JobStatus] = []
    for item in jobList {
      guard let name = item["name"]?.stringValue, let group = item["group"]?.stringValue,
        let state = item["state"]?.stringValue.flatMap(JobState.init(rawValue:))
      else { return nil }
      var run = RunState()
      run.restarts = item["restarts"].wholeNumber(in: 0...Int(Int32.max)) ?? 0
      run.lastExit = item["last_exit"]?.stringValue ?? "-"
      run.checksHealth = item["health"]?.stringValue != nil
      run.healthFailures = item["health_failures"].wholeNumber(in: 0...Int(Int32.max)) ?? 0
      let seconds = item["up_seconds"]?.numberValue ?? item["down_seconds"]?.numberValue
      jobs.append(
        JobStatus(
          name: name, group: group, state: state,
          pid: item["pid"].wholeNumber(in: 1...Int(Int32.max)).map { pid_t($0) }, kernelState: nil,
          seconds: seconds.flatMap { $0.isFinite ? max(0, $0) : nil }, run: run,
          cpuPercent: item["cpu_percent"]?.numberValue.flatMap { $0.isFinite ? min(1e6, max(0, $0)) : nil } ?? 0,
          residentBytes: UInt64(item["rss_bytes"].wholeNumber(in: 0...Int.max) ?? 0),
          argv: item["command"]?.arrayValue?.compactMap(\.stringValue) ?? [], changed: item["changed"]?.boolValue ?? false,
          desiredRunning: item["desired"]?.stringValue != "stopped",
          confProblem: state == .broken ? item["reason"]?.stringValue : nil))
    }
    let load = system["load"]?.arrayValue?.map { $0.numberValue.flatMap { $0.isFinite ? $0 : nil } ?? 0 } ?? []
    func percent(_ key: String) -> Double { system[key]?.numberValue.flatMap { $0.isFinite ? min(1e6, max(0, $0)) : nil } ?? 0 }
    let fields = StatusFormat.systemLine(
      host: host, uptime: "up " + Board.age(Double(system["uptime_seconds"].wholeNumber(in: 0...Int(Int32.max)) ?? 0)),
      load: load.count == 3 ? (load[0], load[1], load[2]) : (0, 0, 0),
      cpus: system["cpus"].wholeNumber(in: 1...1_000_000) ?? 1, cpuPercent: percent("cpu_percent"),
      memoryPercent: percent("mem_percent"), swapPercent: percent("swap_percent"), states: jobs.map(\.state))
    return BoardSection(host: host, system: fields, problem: object["problem"]?.stringValue, jobs: jobs)
  }
}

extension Optional where Wrapped == JSON {
  /// A number as an Int within `range` (clamped), nil when it is not a finite number.
  func wholeNumber(in range: ClosedRange<Int>) -> Int? {
    guard let value = self?.numberValue, value.isFinite else { return nil }
    if value <= Double(range.lowerBound) { return range.lowerBound }
    if value >= Double(range.upperBound) { return range.upperBound }
    return Int(value.rounded())
  }
}

/// One host's long-lived ssh session and what it last said.
struct HostFeed {
  let host: String
  /// The ssh running now (`Fleet`'s call: the child and whether the remote usvc runs yet).
  var call: Call?
  /// When this session began, and when its last line came.
  var startedAt = 0.0
  var lastLineAt: Double?
  /// The newest whole line not decoded yet (older ones are worth nothing).
  var latest: [UInt8]?
  /// What its rows show while it is fine: the last line decoded.
  var shown: BoardSection?
  /// Why it shows no jobs (`unreachable`, `error`) and what was said; nil while fine.
  var trouble: (label: String, message: String)?
  /// Sessions in a row that ended before a line; the next try waits 2^(failures-1) s.
  var failures = 0
  var retryAt = 0.0
  /// Why the board ended the session itself (silent too long, a line too long).
  var endedBecause: String?
  /// When both its pipes reached end of file (ssh is about to end).
  var closedAt: Double?

  init(host: String) { self.host = host }
}

/// The board's rows from other hosts, one long-lived ssh session each
/// (`status --json --feed` on the far side). Never blocks: the loop polls the
/// pipes with the terminal and calls `service` with what is ready.
public struct HostsBoardSource: BoardSource {
  let fleet: Fleet
  let interval: Double
  var feeds: [HostFeed]
  /// A session is ended and started again after this long without a line.
  let silenceLimit: Double
  /// Longest wait before connecting again.
  static let maxBackoff = 16.0
  /// A line longer than this ends the session (a remote that never ends its line).
  static let maxLineBytes = 16 << 20

  /// The words of the remote usvc: `status --json --feed SECONDS -- SELECTOR…`.
  public static func feedWords(selectors: [String], interval: Double) -> [String] {
    ["status", "--json", "--feed", String(interval), "--"] + selectors
  }

  /// `fleet` holds the hosts and the feed's words (`feedWords`).
  public init(fleet: Fleet, interval: Double) {
    self.fleet = fleet
    self.interval = interval
    feeds = fleet.hosts.map(HostFeed.init)
    silenceLimit = max(fleet.timeout, 3 * interval)
  }

  /// "Silent": no line for more than two refreshes.
  var silentAfter: Double { 2 * interval + min(1, interval / 4) }

  public var descriptors: [Int32] {
    feeds.flatMap { $0.call?.child.pipes.filter { $0 >= 0 } ?? [] }
  }

  public func nextDeadline(now: Double) -> Double {
    var deadline = Double.infinity
    // With every connecting slot taken, a host due to connect waits for one of
    // them to arrive or end (their pipes wake the loop), not for its own time.
    let slotFree = feeds.count(where: { $0.call.map { !$0.arrived } ?? false }) < max(1, fleet.maxParallel)
    for feed in feeds {
      guard let call = feed.call else {
        if slotFree { deadline = min(deadline, feed.retryAt) }
        continue
      }
      // Both pipes closed: its exit is imminent (see Fleet.exchange).
      if call.child.pipesClosed { return now + 0.005 }
      deadline = min(deadline, (feed.lastLineAt ?? feed.startedAt) + silenceLimit)
    }
    return deadline
  }

  public mutating func service(ready: Set<Int32>, now: Double) {
    var chunk = [UInt8](repeating: 0, count: 65536)
    var connecting = feeds.count(where: { $0.call.map { !$0.arrived } ?? false })
    for index in feeds.indices {
      if feeds[index].call == nil {
        guard now >= feeds[index].retryAt, connecting < max(1, fleet.maxParallel) else { continue }
        connect(index, now: now)
        connecting += 1
        continue
      }
      read(index, ready: ready, now: now, chunk: &chunk)
      reap(index, now: now)
    }
  }

  mutating func connect(_ index: Int, now: Double) {
    let host = feeds[index].host
    do {
      let child = try CapturedChild(fleet.sshArguments(for: host), environment: fleet.environment, input: fleet.stdinWords)
      feeds[index].call = Call(index: index, child: child, deadline: .infinity)
      feeds[index].startedAt = now
      feeds[index].lastLineAt = nil
      feeds[index].endedBecause = nil
      feeds[index].closedAt = nil
    } catch {
      ended(index, now: now, trouble: ("unreachable", "cannot run \(fleet.ssh): \(error)"))
    }
  }

  mutating func read(_ index: Int, ready: Set<Int32>, now: Double, chunk: inout [UInt8]) {
    guard var call = feeds[index].call else { return }
    // At most 1 MiB a pipe per pass: a host that floods its pipe cannot keep the loop from the keys.
    for which in 0..<2 where call.child.pipes[which] >= 0 && ready.contains(call.child.pipes[which]) {
      var reads = 0
      while reads < 16 && call.child.readAvailable(which, &chunk) { reads += 1 }
    }
    _ = call.takeArrival()
    var latest: [UInt8]?
    call.takeLines { line in latest = line }
    if let latest {
      feeds[index].latest = latest
      feeds[index].lastLineAt = now
    }
    // Only stderr's last lines are worth keeping (the reason a session ended).
    if call.child.captured[1].count > 8192 { call.child.captured[1].removeFirst(call.child.captured[1].count - 4096) }
    feeds[index].call = call
    if call.child.captured[0].count > Self.maxLineBytes {
      end(index, because: "it sent a line longer than \(Self.maxLineBytes >> 20) MiB")
    } else if !call.killed && now - (feeds[index].lastLineAt ?? feeds[index].startedAt) > silenceLimit {
      let said = feeds[index].lastLineAt == nil ? "no answer" : "no line"
      end(index, because: "\(said) for \(Int(silenceLimit.rounded())) s")
    }
  }

  /// Ends a session from this side: SIGKILL to its ssh, reaped by `reap`.
  mutating func end(_ index: Int, because why: String) {
    guard var call = feeds[index].call, !call.killed else { return }
    kill(call.child.pid, SIGKILL)
    call.killed = true
    feeds[index].call = call
    feeds[index].endedBecause = why
  }

  /// Collects an ssh that has ended, and says why the session is over.
  mutating func reap(_ index: Int, now: Double) {
    guard var call = feeds[index].call, call.killed || call.child.pipesClosed else { return }
    if feeds[index].closedAt == nil { feeds[index].closedAt = now }
    guard let status = call.child.ended() else {
      // Pipes at end of file but ssh lingers (a ProxyCommand holding them): end it.
      if now - (feeds[index].closedAt ?? now) > 2 { end(index, because: "ssh closed its output but did not end") }
      return
    }
    var chunk = [UInt8](repeating: 0, count: 16384)
    call.child.readToEnd(&chunk)
    let errors = String(decoding: call.child.captured[1], as: UTF8.self)
    var trouble: (String, String)
    if let why = feeds[index].endedBecause {
      trouble = ("unreachable", why)
    } else if let status {
      switch Fleet.outcome(of: status, timedOut: false, output: "", errors: errors, timeout: fleet.timeout).0 {
      case .unreachable(let reason): trouble = ("unreachable", reason)
      case .failed(let message): trouble = ("error", message)
      case .answered: trouble = ("error", "its usvc stopped sending")
      }
    } else {
      trouble = ("unreachable", "ssh's exit status was taken by another waiter")
    }
    if feeds[index].lastLineAt != nil { feeds[index].failures = 0 }
    ended(index, now: now, trouble: trouble)
  }

  mutating func ended(_ index: Int, now: Double, trouble: (label: String, message: String)) {
    feeds[index].call = nil
    feeds[index].trouble = trouble
    feeds[index].failures += 1
    var wait = 1.0
    for _ in 1..<feeds[index].failures where wait < Self.maxBackoff { wait *= 2 }
    feeds[index].retryAt = now + min(Self.maxBackoff, wait)
  }

  public mutating func refresh() -> [BoardSection] {
    let now = monotonicClock()
    return feeds.indices.map { section(of: $0, now: now) }
  }

  /// A host's rows now: its last line decoded, or one row saying what is wrong.
  mutating func section(of index: Int, now: Double) -> BoardSection {
    let host = feeds[index].host
    if let line = feeds[index].latest {
      feeds[index].latest = nil
      if let section = BoardSection.decoding(feed: String(decoding: line, as: UTF8.self), host: host) {
        feeds[index].shown = section
        feeds[index].trouble = nil
      } else {
        let shown = String(decoding: line, as: UTF8.self).visible
        feeds[index].trouble = ("error", "unexpected output: " + (shown.count > 200 ? String(shown.prefix(200)) + "…" : shown))
        feeds[index].shown = nil
      }
    }
    let feed = feeds[index]
    guard let call = feed.call else {
      // Not connected: waiting for its back-off, or for a turn (--parallel hosts connect at once).
      let again = Int((feed.retryAt - now).rounded(.up))
      let turn = "waiting its turn to connect (--parallel \(fleet.maxParallel))"
      guard let (label, message) = feed.trouble else {
        return BoardSection(host: host, system: [host, "connecting"], problem: turn, jobs: [])
      }
      let note = again > 0 ? "connecting again in \(again)s" : turn
      return BoardSection(host: host, system: [host, label, message], problem: note, jobs: [], isDown: true)
    }
    let quiet = now - (feed.lastLineAt ?? feed.startedAt)
    if let (label, message) = feed.trouble, feed.lastLineAt == nil || feed.shown == nil {
      // The last session's trouble stays until the new one says something.
      let note = call.arrived ? nil : "connecting again"
      return BoardSection(host: host, system: [host, label, message], problem: note, jobs: [], isDown: true)
    }
    if quiet > silentAfter {
      let since = feed.lastLineAt == nil ? "no answer for \(Int(quiet))s" : "no line for \(Int(quiet))s"
      return BoardSection(host: host, system: [host, "silent", since], jobs: feed.shown?.jobs ?? [], isDown: true)
    }
    return feed.shown ?? BoardSection(host: host, system: [host, "connecting"], jobs: [])
  }

  /// Ends every session (before the board exits or becomes `ssh -t`); their
  /// remote usvc ends at its next line, on the closed link.
  public func close() {
    for feed in feeds { if let call = feed.call { kill(call.child.pid, SIGTERM) } }
  }
}
