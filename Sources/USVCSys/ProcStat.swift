import Glibc

/// The fields usvc needs from `/proc/PID/stat` (see proc(5)).
public struct ProcStat: Sendable, Equatable {
  public var pid: pid_t
  public var state: Character
  public var parent: pid_t
  public var processGroup: pid_t
  public var session: pid_t
  /// User plus system time, in clock ticks.
  public var cpuTicks: UInt64
  /// Start time after boot, in clock ticks.
  public var startTicks: UInt64
  /// Resident set size, in pages.
  public var residentPages: UInt64
  /// How many threads (tasks) it has.
  public var threads: Int

  /// Parses one stat line. The command name sits in parentheses and may hold
  /// spaces or `)`, so fields are counted from the last `)`.
  public init?(line: [UInt8]) {
    guard let close = line.lastIndex(of: UInt8(ascii: ")")),
      let pid = ProcStat.number(line[..<(line.firstIndex(of: UInt8(ascii: " ")) ?? 0)])
    else { return nil }
    // Fields from index 0 = state (field 3 in proc(5)).
    var fields: [ArraySlice<UInt8>] = []
    fields.reserveCapacity(22)
    var start = close + 2
    var index = start
    while index <= line.count && fields.count < 22 {
      if index == line.count || line[index] == UInt8(ascii: " ") || line[index] == UInt8(ascii: "\n") {
        if index > start { fields.append(line[start..<index]) }
        start = index + 1
      }
      index += 1
    }
    guard fields.count >= 22, let stateByte = fields[0].first,
      let parent = ProcStat.number(fields[1]), let group = ProcStat.number(fields[2]),
      let session = ProcStat.number(fields[3]), let utime = ProcStat.number(fields[11]),
      let stime = ProcStat.number(fields[12]), let threads = ProcStat.number(fields[17]),
      let start = ProcStat.number(fields[19]), let rss = ProcStat.number(fields[21])
    else { return nil }
    self.pid = pid_t(pid)
    self.state = Character(Unicode.Scalar(stateByte))
    self.parent = pid_t(parent)
    self.processGroup = pid_t(group)
    self.session = pid_t(session)
    self.cpuTicks = UInt64(utime + stime)
    self.startTicks = UInt64(start)
    self.residentPages = UInt64(max(rss, 0))
    self.threads = Int(threads)
  }

  static func number(_ bytes: ArraySlice<UInt8>) -> Int64? {
    var value: Int64 = 0
    var negative = false
    var any = false
    for byte in bytes {
      if byte == UInt8(ascii: "-") && !any { negative = true; continue }
      guard byte >= 48 && byte <= 57 else { return nil }
      value = value &* 10 &+ Int64(byte - 48)
      any = true
    }
    return any ? (negative ? -value : value) : nil
  }

  /// The stat of one process, or nil when it is gone.
  public static func read(_ pid: pid_t) -> ProcStat? {
    readFile("/proc/\(pid)/stat", shortReadEnds: true).flatMap { ProcStat(line: $0) }
  }

  /// Every process visible in /proc, read in one pass.
  public static func all() -> [ProcStat] {
    var result: [ProcStat] = []
    for name in directoryEntries("/proc") {
      guard let first = name.utf8.first, first >= 48 && first <= 57, let pid = pid_t(name) else {
        continue
      }
      if let stat = read(pid) { result.append(stat) }
    }
    return result
  }

  /// A process's environment (`/proc/PID/environ`); empty when it cannot be read.
  public static func environment(of pid: pid_t) -> [String] {
    guard let bytes = readFile("/proc/\(pid)/environ") else { return [] }
    return bytes.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
  }

  /// Every descendant of `ancestor` (a single-threaded process: a runner),
  /// from the kernel's children lists (`/proc/PID/task/TID/children`): a few
  /// small reads instead of a scan of /proc. Each one's stat is read on the way,
  /// which also tells whether it has threads whose children must be listed too.
  public static func descendants(of ancestor: pid_t) -> [ProcStat] {
    var result: [ProcStat] = []
    var queue = children(of: ancestor, task: ancestor)
    while let pid = queue.popLast() {
      guard let stat = read(pid) else { continue }  // Gone meanwhile.
      result.append(stat)
      let tasks = stat.threads > 1 ? directoryEntries("/proc/\(pid)/task").compactMap { pid_t($0) } : [pid]
      for task in tasks { queue += children(of: pid, task: task) }
      if result.count > 100_000 { break }  // A pid loop can't happen; don't spin if it does.
    }
    return result
  }

  /// The children one task of `pid` started.
  private static func children(of pid: pid_t, task: pid_t) -> [pid_t] {
    guard let bytes = readFile("/proc/\(pid)/task/\(task)/children", shortReadEnds: true) else { return [] }
    return bytes.split { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\n") }.compactMap { number($0).map(pid_t.init) }
  }
}
