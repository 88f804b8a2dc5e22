import USVCContract
import USVCSys

/// The text and JSON forms of `usvc status` (SPEC: Status).
public enum StatusFormat {
  /// `3d04h`, `2h03m`, `5m12s`, `42s`.
  public static func duration(_ seconds: Double) -> String {
    let total = Int(max(0, seconds))
    let days = total / 86400, hours = total % 86400 / 3600, minutes = total % 3600 / 60, secs = total % 60
    func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
    if days > 0 { return "\(days)d\(two(hours))h" }
    if hours > 0 { return "\(hours)h\(two(minutes))m" }
    if minutes > 0 { return "\(minutes)m\(two(secs))s" }
    return "\(secs)s"
  }

  /// One decimal: `12.4`.
  public static func decimal(_ value: Double, places: Int = 1) -> String {
    var factor = 1.0
    for _ in 0..<places { factor *= 10 }
    let scaled = Int((value * factor).rounded())
    let whole = scaled / Int(factor)
    var fraction = String(abs(scaled) % Int(factor))
    while fraction.count < places { fraction = "0" + fraction }
    return places == 0 ? "\(whole)" : "\(scaled < 0 && whole == 0 ? "-" : "")\(whole).\(fraction)"
  }

  /// `812K`, `12.4M`, `1.2G`.
  public static func bytes(_ value: UInt64) -> String {
    let kib = Double(value) / 1024
    if kib < 1000 { return "\(Int(kib.rounded()))K" }
    if kib < 1000 * 1024 { return decimal(kib / 1024) + "M" }
    return decimal(kib / 1024 / 1024) + "G"
  }

  /// A command line for one line of text: words with spaces or quotes are
  /// single-quoted, control characters made visible, so it stays one line.
  public static func commandLine(_ argv: [String]) -> String {
    argv.map { word in
      let shown = word.visible
      let plain = !shown.isEmpty && shown.unicodeScalars.allSatisfy {
        $0.properties.isAlphabetic || $0.properties.numericType != nil || "/._-+=:,@%".unicodeScalars.contains($0)
      }
      return plain ? shown : shown.shellQuoted
    }.joined(separator: " ")
  }

  static let stateOrder: [JobState] = [.running, .unhealthy, .starting, .waiting, .stopping, .stopped, .exited, .failed, .lost, .broken]

  public static func systemLine(_ status: HostStatus) -> [String] {
    let s = status.system
    return systemLine(
      host: status.host, uptime: "up " + duration(s.uptimeSeconds), load: s.load, cpus: s.cpus,
      cpuPercent: status.cpuPercent, memoryPercent: s.memoryPercent, swapPercent: s.swapPercent,
      states: status.jobs.map(\.state))
  }

  /// The fields of a system line from its figures (this host's, or another's
  /// as its `status --json` gave them): `states` are those of its jobs.
  public static func systemLine(
    host: String, uptime: String, load: (Double, Double, Double), cpus: Int, cpuPercent: Double,
    memoryPercent: Double, swapPercent: Double, states: [JobState]
  ) -> [String] {
    var counts = "jobs \(states.count)"
    let parts = stateOrder.compactMap { state -> String? in
      let n = states.filter { $0 == state }.count
      return n > 0 ? "\(n) \(state.rawValue)" : nil
    }
    if !parts.isEmpty { counts += ": " + parts.joined(separator: ", ") }
    return [
      host, "system", uptime,
      "load \(decimal(load.0, places: 2)) \(decimal(load.1, places: 2)) \(decimal(load.2, places: 2))",
      "cpus \(cpus)", "cpu \(Int(cpuPercent.rounded()))%", "mem \(decimal(memoryPercent))%",
      "swap \(decimal(swapPercent))%", counts,
    ]
  }

  public static func jobFields(_ job: JobStatus, host: String) -> [String] {
    let time = job.seconds.map { (job.isUp ? "up " : "down ") + duration($0) } ?? "down -"
    return [
      host, job.name, job.group, job.state.rawValue, job.pid.map { "pid \($0)" } ?? "pid -",
      job.kernelState.map { String($0) } ?? "-", time, "restarts \(job.run.restarts)",
      "exit \(job.run.lastExit)", "cpu \(decimal(job.cpuPercent))%",
      "mem " + (job.pid == nil ? "-" : bytes(job.residentBytes)),
      commandLine(job.argv) + (job.changed ? "  changed" : ""),
    ]
  }

  /// The text form: system line (counting every job), then the lines of the
  /// jobs `shown` keeps, their columns lined up.
  public static func text(
    _ status: HostStatus, systemOnly: Bool, color: Bool, shown: (JobStatus) -> Bool = { _ in true }
  ) -> String {
    var output = systemLine(status).joined(separator: "  ") + "\n"
    if systemOnly { return output }
    let jobs = status.jobs.filter(shown)
    let rows = jobs.map { jobFields($0, host: status.host) }
    guard let columns = rows.first?.count else { return output }
    var widths = [Int](repeating: 0, count: columns)
    for row in rows { for (index, field) in row.enumerated() { widths[index] = max(widths[index], field.count) } }
    for (row, job) in zip(rows, jobs) {
      var line = ""
      for (index, field) in row.enumerated() {
        var cell = index == columns - 1 ? field : field + String(repeating: " ", count: widths[index] - field.count)
        if color && index == 3 { cell = colored(cell, job.state) }
        line += (index == 0 ? "" : "  ") + cell
      }
      output += line + "\n"
    }
    return output
  }

  static func colored(_ text: String, _ state: JobState) -> String {
    let code: String
    switch state {
    case .running: code = "32"
    case .starting, .waiting, .stopping, .unhealthy: code = "33"
    case .failed, .lost, .broken: code = "31"
    case .stopped, .exited: code = "2"
    }
    return "\u{1b}[\(code)m\(text)\u{1b}[0m"
  }

  /// One JSON object (one line) for this host: the system (counting every
  /// job), then the jobs `shown` keeps.
  public static func json(_ status: HostStatus, systemOnly: Bool, shown: (JobStatus) -> Bool = { _ in true }) -> String {
    let s = status.system
    var counts: [(String, JSON)] = []
    for state in stateOrder { counts.append((state.rawValue, .number(Double(status.jobs.filter { $0.state == state }.count)))) }
    let system: JSON = .object([
      ("uptime_seconds", .number(s.uptimeSeconds.rounded())),
      ("load", .array([.number(s.load.0), .number(s.load.1), .number(s.load.2)])),
      ("cpus", .number(Double(s.cpus))), ("cpu_percent", .number(rounded(status.cpuPercent))),
      ("cpu_since", .string(status.cpuSince)),
      ("mem_percent", .number(rounded(s.memoryPercent))), ("mem_total_bytes", .number(Double(s.memoryTotal))),
      ("mem_available_bytes", .number(Double(s.memoryAvailable))), ("swap_percent", .number(rounded(s.swapPercent))),
      ("jobs", .number(Double(status.jobs.count))), ("job_states", .object(counts)),
    ])
    var fields: [(String, JSON)] = [("host", .string(status.host)), ("system", system)]
    if !systemOnly { fields.append(("jobs", .array(status.jobs.filter(shown).map(jobJSON)))) }
    return JSON.object(fields).encoded()
  }

  static func rounded(_ value: Double) -> Double { (value * 10).rounded() / 10 }

  static func jobJSON(_ job: JobStatus) -> JSON {
    let r = job.run
    return .object([
      ("name", .string(job.name)), ("group", .string(job.group)), ("state", .string(job.state.rawValue)),
      ("desired", .string(job.desiredRunning ? "running" : "stopped")),
      ("pid", job.pid.map { .number(Double($0)) } ?? .null),
      ("kernel_state", job.kernelState.map { .string(String($0)) } ?? .null),
      ("up_seconds", job.isUp ? job.seconds.map { .number($0.rounded()) } ?? .null : .null),
      ("down_seconds", job.isUp ? .null : job.seconds.map { .number($0.rounded()) } ?? .null),
      ("restarts", .number(Double(r.restarts))), ("last_exit", r.lastExit == "-" ? .null : .string(r.lastExit)),
      ("cpu_percent", .number(rounded(job.cpuPercent))), ("rss_bytes", .number(Double(job.residentBytes))),
      ("command", .array(job.argv.map { .string($0) })), ("changed", .bool(job.changed)),
      ("runs", .number(Double(r.runs))), ("failures", .number(Double(r.failures))),
      ("last_run_seconds", .number(rounded(r.lastRunSeconds))),
      ("average_run_seconds", .number(rounded(r.averageRunSeconds))),
      ("quick_deaths", .number(Double(r.quickDeaths))),
      ("started", r.started > 0 ? .string(isoTime(r.started)) : .null),
      ("since", r.since > 0 ? .string(isoTime(r.since)) : .null),
      ("retry_at", r.retryAt > 0 && job.state == .waiting ? .string(isoTime(r.retryAt)) : .null),
      ("reason", job.confProblem.map { .string($0) } ?? (r.reason.isEmpty ? .null : .string(r.reason))),
      ("runner_pid", r.runner > 0 && job.state != .lost ? .number(Double(r.runner)) : .null),
      ("ready", .bool(job.isUp)),
      ("health", health(job).map { .string($0) } ?? .null),
      ("health_failures", .number(Double(r.healthFailures))),
    ])
  }

  /// `ok` or `failing` while a ready run is checked for health (SPEC: Health); nil otherwise.
  public static func health(_ job: JobStatus) -> String? {
    guard job.run.checksHealth, job.state == .running || job.state == .unhealthy else { return nil }
    return job.run.healthFailures > 0 ? "failing" : "ok"
  }
}
