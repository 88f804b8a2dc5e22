import Glibc
import USVCSys

/// System-wide figures from /proc, read once per `usvc status`.
public struct SystemFigures: Sendable {
  public var uptimeSeconds: Double = 0
  public var load: (Double, Double, Double) = (0, 0, 0)
  public var cpus = 1
  /// Busy and total jiffies of all cpus since boot (/proc/stat line `cpu`).
  public var cpuBusy: UInt64 = 0
  public var cpuTotal: UInt64 = 0
  public var memoryTotal: UInt64 = 0
  public var memoryAvailable: UInt64 = 0
  public var swapTotal: UInt64 = 0
  public var swapFree: UInt64 = 0

  public static func read() -> SystemFigures {
    var figures = SystemFigures()
    if let text = readTextFile("/proc/uptime"), let first = text.split(separator: " ").first {
      figures.uptimeSeconds = Double(first) ?? 0
    }
    if let text = readTextFile("/proc/loadavg") {
      let parts = text.split(separator: " ").prefix(3).map { Double($0) ?? 0 }
      if parts.count == 3 { figures.load = (parts[0], parts[1], parts[2]) }
    }
    figures.cpus = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    if let text = readTextFile("/proc/stat"), let line = text.split(separator: "\n").first,
      line.hasPrefix("cpu ")
    {
      // user nice system idle iowait irq softirq steal (guest time is already in user).
      let values = line.split(separator: " ").dropFirst().prefix(8).map { UInt64($0) ?? 0 }
      figures.cpuTotal = values.reduce(0, +)
      let idle = values.count > 4 ? values[3] + values[4] : 0
      figures.cpuBusy = figures.cpuTotal - min(idle, figures.cpuTotal)
    }
    // By key, never by position: the set of lines differs between kernels.
    if let text = readTextFile("/proc/meminfo") {
      for line in text.split(separator: "\n") {
        guard let colon = line.firstIndex(of: ":") else { continue }
        let kib = UInt64(line[line.index(after: colon)...].split(separator: " ").first ?? "") ?? 0
        switch line[..<colon] {
        case "MemTotal": figures.memoryTotal = kib * 1024
        case "MemAvailable": figures.memoryAvailable = kib * 1024
        case "SwapTotal": figures.swapTotal = kib * 1024
        case "SwapFree": figures.swapFree = kib * 1024
        default: break
        }
      }
    }
    return figures
  }

  public var memoryPercent: Double {
    memoryTotal == 0 ? 0 : Double(memoryTotal - min(memoryAvailable, memoryTotal)) * 100 / Double(memoryTotal)
  }
  public var swapPercent: Double {
    swapTotal == 0 ? 0 : Double(swapTotal - min(swapFree, swapTotal)) * 100 / Double(swapTotal)
  }
}

/// The figures `status` keeps from one call to the next (`run/status.sample`),
/// so cpu % means "since the previous status" rather than needing a pause.
struct CPUSample: Sendable {
  var time: Double = 0
  var busy: UInt64 = 0
  var total: UInt64 = 0
  /// Job name → (main pid, its start ticks, cpu ticks of its whole group).
  var jobs: [String: (pid: pid_t, start: UInt64, ticks: UInt64)] = [:]

  static func load(_ path: String) -> CPUSample? {
    guard let text = readTextFile(path) else { return nil }
    var sample = CPUSample()
    for line in text.split(separator: "\n") {
      let parts = line.split(separator: " ")
      if parts.count == 4 && parts[0] == "system" {
        sample.time = Double(parts[1]) ?? 0
        sample.busy = UInt64(parts[2]) ?? 0
        sample.total = UInt64(parts[3]) ?? 0
      } else if parts.count == 5 && parts[0] == "job" {
        sample.jobs[String(parts[1])] = (pid_t(parts[2]) ?? 0, UInt64(parts[3]) ?? 0, UInt64(parts[4]) ?? 0)
      }
    }
    return sample.time > 0 ? sample : nil
  }

  func encoded() -> String {
    var text = "system \(time) \(busy) \(total)\n"
    for (name, job) in jobs { text += "job \(name) \(job.pid) \(job.start) \(job.ticks)\n" }
    return text
  }
}
