import USVCContract
import USVCSys

/// One host's part of the board: its system line, then its jobs.
public struct BoardSection: Sendable {
  public var host: String
  /// The fields of its system line (`StatusFormat.systemLine`).
  public var system: [String]
  /// Why its jobs are not all there (a selector that no longer matches; an
  /// unreachable host, later), shown on its system row.
  public var problem: String?
  public var jobs: [JobStatus]
  /// The host cannot be read now (unreachable, its usvc failing, silent):
  /// its system row is drawn as a problem.
  public var isDown: Bool
  public init(host: String, system: [String], problem: String? = nil, jobs: [JobStatus], isDown: Bool = false) {
    self.host = host
    self.system = system
    self.problem = problem
    self.jobs = jobs
    self.isDown = isDown
  }
}

/// Where the board's rows come from, asked once per refresh: one section per
/// host. `LocalBoardSource` reads this machine; `HostsBoardSource` other
/// hosts, through one long-lived ssh session each, whose pipes the loop polls
/// beside the terminal (`descriptors`, then `service` with the ready ones).
public protocol BoardSource {
  mutating func refresh() -> [BoardSection]
  /// Descriptors to wait on beside the terminal's.
  var descriptors: [Int32] { get }
  /// Reads what is ready, starts and ends what is due; never waits.
  mutating func service(ready: Set<Int32>, now: Double)
  /// When `service` must run again at the latest (monotonic clock).
  func nextDeadline(now: Double) -> Double
  /// Ends what the source started (before the board exits or execs).
  func close()
}

extension BoardSource {
  public var descriptors: [Int32] { [] }
  public mutating func service(ready: Set<Int32>, now: Double) {}
  public func nextDeadline(now: Double) -> Double { .infinity }
  public func close() {}
}

/// This machine's jobs, through the same core as `usvc status`, with the cpu
/// baseline kept in memory between refreshes.
public struct LocalBoardSource: BoardSource {
  let supervisor: Supervisor
  let selectors: [String]
  var baseline = StatusBaseline()

  public init(supervisor: Supervisor, selectors: [String]) {
    self.supervisor = supervisor
    self.selectors = selectors
  }

  public mutating func refresh() -> [BoardSection] {
    let (names, problem) = supervisor.boardSelection(selectors)
    let status = supervisor.status(names, baseline: &baseline)
    var system = StatusFormat.systemLine(status)
    // The machine's uptime in the board's coarse form, or it would redraw every second.
    system[2] = "up " + Board.age(status.system.uptimeSeconds)
    return [BoardSection(host: status.host, system: system, problem: problem, jobs: status.jobs)]
  }
}

/// A column of the job rows: its title and how a job fills it.
public struct BoardColumn: Sendable {
  public var title: String
  public var rightAligned: Bool
  public var value: @Sendable (JobStatus) -> String

  public static let all: [BoardColumn] = [
    BoardColumn(title: "NAME", rightAligned: false) { $0.name.visible },
    BoardColumn(title: "STATE", rightAligned: false) { $0.state.rawValue },
    BoardColumn(title: "PID", rightAligned: true) { $0.pid.map { String($0) } ?? "-" },
    BoardColumn(title: "TIME", rightAligned: false) { job in
      job.seconds.map { (job.isUp ? "up " : "down ") + Board.age($0) } ?? "-"
    },
    BoardColumn(title: "RESTARTS", rightAligned: true) { String($0.run.restarts) },
    BoardColumn(title: "EXIT", rightAligned: false) { $0.run.lastExit.visible },
    BoardColumn(title: "CPU", rightAligned: true) { StatusFormat.decimal($0.cpuPercent) + "%" },
    BoardColumn(title: "MEM", rightAligned: true) { $0.pid == nil ? "-" : StatusFormat.bytes($0.residentBytes) },
    BoardColumn(title: "READY", rightAligned: false) { Board.readiness($0) },
    BoardColumn(title: "HEALTH", rightAligned: false) { Board.health($0) },
    BoardColumn(title: "COMMAND", rightAligned: false) { job in
      StatusFormat.commandLine(job.argv) + (job.changed ? "  changed" : "")
    },
  ]
}

/// What the board shows and where its cursor is: pure, so that its frames can
/// be checked without a terminal. `BoardLoop` feeds it data and keys.
public struct Board {
  public enum Mode: Equatable {
    case browse
    /// Typing a filter after `/` (it applies as it is typed); Esc puts `previous` back.
    case filtering(previous: String)
    /// `K` asks before it sends SIGKILL.
    case confirmKill(host: String, job: String)
    /// `l`: the last lines of a job's log.
    case log(host: String, job: String)
  }

  public var sections: [BoardSection] = []
  public var filter = ""
  public var mode = Mode.browse
  /// The job under the cursor, by name (rows move as states change; the cursor stays on its job).
  public var cursor: (host: String, job: String)?
  /// The first body row shown.
  public var scroll = 0
  /// The last thing an action said.
  public var message = ""
  /// The lines `l` shows (already visible: no control characters).
  public var logLines: [String] = []
  public var color: Bool

  public init(color: Bool) { self.color = color }

  /// Rows of the body: each host's system line, then its jobs.
  enum Row {
    case system(BoardSection)
    case job(host: String, JobStatus)
  }

  /// Problems first (failed, lost, broken; then waiting and exited with a
  /// non-zero code), then what is changing, running, and stopped on purpose;
  /// by name within each (the core lists them in natural order).
  static func rank(_ job: JobStatus) -> Int {
    switch job.state {
    case .failed, .lost, .broken: return 0
    case .waiting, .unhealthy: return 1
    case .exited: return job.run.lastExit == "0" ? 5 : 1
    case .starting: return job.readyOverdue ? 1 : 2
    case .stopping: return 2
    case .running: return 3
    case .stopped: return 4
    }
  }

  /// Whether a job matches the filter: a case-insensitive substring of its name,
  /// group, state or command line.
  func matches(_ job: JobStatus) -> Bool {
    if filter.isEmpty { return true }
    let text = [job.name, job.group, job.state.rawValue, StatusFormat.commandLine(job.argv)].joined(separator: " ")
    return text.lowercased().contains(filter.lowercased())
  }

  var rows: [Row] {
    var rows: [Row] = []
    for section in sections {
      rows.append(.system(section))
      let shown = section.jobs.enumerated().filter { matches($0.element) }
        .sorted { (Board.rank($0.element), $0.offset) < (Board.rank($1.element), $1.offset) }
      rows += shown.map { .job(host: section.host, $0.element) }
    }
    return rows
  }

  /// The job under the cursor, if it is still shown.
  public var selected: (host: String, job: JobStatus)? {
    let rows = self.rows
    guard let index = cursorIndex(rows), case .job(let host, let job) = rows[index] else { return nil }
    return (host, job)
  }

  /// The row of the cursor's job; the first job row when it is gone or unset.
  func cursorIndex(_ rows: [Row]) -> Int? {
    if let cursor, let index = rows.firstIndex(where: {
      if case .job(let host, let job) = $0 { return host == cursor.host && job.name == cursor.job }
      return false
    }) {
      return index
    }
    return rows.firstIndex { if case .job = $0 { return true } else { return false } }
  }

  /// Moves the cursor `by` job rows (negative: up), staying in the list.
  public mutating func move(by step: Int) {
    let rows = self.rows
    let jobRows = rows.indices.filter { if case .job = rows[$0] { return true } else { return false } }
    guard !jobRows.isEmpty else { return }
    let current = cursorIndex(rows).flatMap { jobRows.firstIndex(of: $0) } ?? 0
    let target = jobRows[min(max(0, current + step), jobRows.count - 1)]
    if case .job(let host, let job) = rows[target] { cursor = (host, job.name) }
  }

  /// `42s`, `5m`, `2h03m`, `3d04h`: seconds only in the first minute, so that
  /// a quiet board redraws nothing most seconds (as pm2 shows uptimes).
  static func age(_ seconds: Double) -> String {
    let total = Int(max(0, seconds))
    if total < 60 { return "\(total)s" }
    if total < 3600 { return "\(total / 60)m" }
    return StatusFormat.duration(seconds)
  }

  /// READY: `yes` once a run is ready (running or unhealthy), `no` while it
  /// is starting, `-` without a run.
  static func readiness(_ job: JobStatus) -> String {
    switch job.state {
    case .running, .unhealthy: return "yes"
    case .starting: return "no"
    case .waiting, .stopping, .stopped, .exited, .failed, .lost, .broken: return "-"
    }
  }

  /// HEALTH: `ok`, `fail N` (checks failed in a row), or `-` when the run is
  /// not checked (no `job.health`, or not ready).
  static func health(_ job: JobStatus) -> String {
    guard let health = StatusFormat.health(job) else { return "-" }
    return health == "ok" ? "ok" : "fail \(job.run.healthFailures)"
  }

  /// Problems in red (a run failing its health checks, or not ready past its
  /// ready-timeout, too), what is changing in yellow, running green.
  static func style(of job: JobStatus) -> CellStyle {
    switch job.state {
    case .running: return CellStyle(color: 32)
    case .starting: return job.readyOverdue ? CellStyle(color: 31) : CellStyle(color: 33)
    case .waiting, .stopping: return CellStyle(color: 33)
    case .unhealthy: return CellStyle(color: 31)
    case .failed, .lost, .broken: return CellStyle(color: 31, bold: true)
    case .exited: return job.run.lastExit == "0" ? CellStyle(dim: true) : CellStyle(color: 31)
    case .stopped: return CellStyle(dim: true)
    }
  }

  /// The style of a READY or HEALTH cell: failing checks red, not ready yet yellow.
  static func style(ofCell text: String, column: String, job: JobStatus) -> CellStyle? {
    if column == "HEALTH" && text.hasPrefix("fail") { return CellStyle(color: 31) }
    if column == "READY" && text == "no" { return job.readyOverdue ? CellStyle(color: 31) : CellStyle(color: 33) }
    return nil
  }

  public static let keysLine = "arrows/j k move  r restart  s stop  S start  K kill  l log  Enter attach  / filter  q quit"

  /// The whole screen: `height` rows of `width` cells.
  public mutating func frame(width: Int, height: Int) -> [[Cell]] {
    guard width >= 20, height >= 5 else {
      return (0..<height).map { layOut($0 == 0 ? [Segment("usvc top: terminal too small")] : [], width: width) }
    }
    let bodyHeight = height - 3
    var lines: [[Segment]] = []
    var fills: [CellStyle] = []
    let header = CellStyle(bold: true, reverse: true)

    if case .log(_, let job) = mode {
      lines.append([Segment(" log of \(job.visible): last \(logLines.count) lines, refreshed; any key goes back", header)])
      fills.append(header)
      for line in logLines.suffix(bodyHeight) {
        lines.append([Segment(line)])
        fills.append(.plain)
      }
    } else {
      let rows = self.rows
      let columns = BoardColumn.all
      let jobs = rows.compactMap { row -> JobStatus? in if case .job(_, let job) = row { return job } else { return nil } }
      let cells = jobs.map { job in columns.map { $0.value(job) } }
      var widths = columns.map { displayWidth($0.title) }
      for row in cells { for (index, text) in row.enumerated() { widths[index] = max(widths[index], displayWidth(text)) } }

      func padded(_ text: String, _ index: Int) -> String {
        if index == columns.count - 1 { return text }
        let pad = String(repeating: " ", count: max(0, widths[index] - displayWidth(text)))
        return columns[index].rightAligned ? pad + text : text + pad
      }
      lines.append([Segment(" " + columns.indices.map { padded(columns[$0].title, $0) }.joined(separator: "  "), header)])
      fills.append(header)

      // Scroll so the cursor's row is shown.
      let cursorRow = cursorIndex(rows)
      if let cursorRow {
        if case .job(let host, let job) = rows[cursorRow] { cursor = (host, job.name) }
        if cursorRow < scroll { scroll = cursorRow }
        if cursorRow >= scroll + bodyHeight { scroll = cursorRow - bodyHeight + 1 }
        // The host's system row above the first job stays in view when it fits.
        if scroll == cursorRow && scroll > 0, case .system = rows[scroll - 1] { scroll -= 1 }
      }
      scroll = max(0, min(scroll, max(0, rows.count - bodyHeight)))

      var jobIndex = rows[..<min(scroll, rows.count)].filter { if case .job = $0 { return true } else { return false } }.count
      for index in rows.indices.dropFirst(scroll).prefix(bodyHeight) {
        switch rows[index] {
        case .system(let section):
          var text = section.system.map(\.visible).joined(separator: "  ")
          if let problem = section.problem { text += "  (" + problem.visible + ")" }
          lines.append([Segment(text, section.isDown && color ? CellStyle(color: 31, bold: true) : CellStyle(bold: true))])
          fills.append(.plain)
        case .job(_, let job):
          let isCursor = index == cursorRow
          let base = CellStyle(reverse: isCursor)
          var segments = [Segment(isCursor ? ">" : " ", base)]
          for (column, text) in cells[jobIndex].enumerated() {
            var style = base
            let title = columns[column].title
            if color && title == "STATE" {
              let stateStyle = Board.style(of: job)
              style.color = stateStyle.color
              style.bold = stateStyle.bold
              style.dim = stateStyle.dim && !isCursor
            } else if !color && title == "STATE" && Board.rank(job) <= 1 {
              style.bold = true
            } else if let cellStyle = Board.style(ofCell: text, column: title, job: job) {
              if color { style.color = cellStyle.color } else { style.bold = cellStyle.color == 31 }
            }
            if column > 0 { segments.append(Segment("  ", base)) }
            segments.append(Segment(padded(text, column), style))
          }
          lines.append(segments)
          fills.append(base)
          jobIndex += 1
        }
      }
      if rows.count <= sections.count {
        lines.append([Segment(filter.isEmpty ? "  (no jobs)" : "  (no job matches '\(filter.visible)')")])
        fills.append(.plain)
      }
    }
    while lines.count < height - 2 {
      lines.append([])
      fills.append(.plain)
    }
    lines = Array(lines.prefix(height - 2))
    fills = Array(fills.prefix(height - 2))

    // The line above the keys: a prompt, a question, or what the last action said.
    switch mode {
    case .filtering:
      lines.append([Segment("/" + filter.visible, CellStyle(bold: true)), Segment(" ", CellStyle(reverse: true))])
    case .confirmKill(_, let job):
      lines.append([Segment("kill \(job.visible) with SIGKILL? (y/n)", CellStyle(color: color ? 31 : 0, bold: true))])
    case .browse, .log:
      var status = message.visible
      if !filter.isEmpty { status = "filter: \(filter.visible)" + (status.isEmpty ? "" : "  ") + status }
      lines.append([Segment(status)])
    }
    fills.append(.plain)
    let keys: String
    switch mode {
    case .filtering: keys = "type a filter  Enter apply  Esc cancel (empty: show all)"
    case .confirmKill: keys = "y kill  any other key: do not"
    case .log: keys = "any key: back to the board"
    case .browse: keys = Board.keysLine
    }
    lines.append([Segment(keys, CellStyle(dim: color))])
    fills.append(.plain)
    return zip(lines, fills).map { layOut($0.0, width: width, fill: $0.1) }
  }
}
