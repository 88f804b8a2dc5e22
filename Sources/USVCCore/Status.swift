import Glibc
import USVCContract
import USVCSys

/// One job's line of `usvc status`, with every figure of `--json`.
public struct JobStatus: Sendable {
  public var name: String
  public var group: String
  public var state: JobState
  public var pid: pid_t?
  public var kernelState: Character?
  /// Seconds in the current state: up while running, down otherwise; nil
  /// when not known (a job that never ran has no state file).
  public var seconds: Double?
  public var run: RunState
  public var cpuPercent: Double
  public var residentBytes: UInt64
  public var argv: [String]
  public var changed: Bool
  public var desiredRunning: Bool
  /// Why its conf cannot be used (state `broken`), or nil.
  public var confProblem: String?
  /// Still `starting` past its `ready-timeout` (a look is needed).
  public var readyOverdue = false

  /// Whether `seconds` counts up time: a ready run, healthy or not (an
  /// unhealthy run is still the same process).
  public var isUp: Bool { state == .running || state == .unhealthy }
}

/// Everything one `usvc status` prints for this host.
public struct HostStatus: Sendable {
  public var host: String
  public var system: SystemFigures
  public var cpuPercent: Double
  public var jobs: [JobStatus]
  /// How cpu % was measured: since the previous status call, or since boot / process start.
  public var cpuSince: String
}

/// The cpu figures of the previous status, held in memory by a caller that
/// asks again and again (the board), instead of `run/status.sample`.
public struct StatusBaseline: Sendable {
  var sample: CPUSample?
  public init() {}
}

extension Supervisor {
  /// Reads /proc once and every job's state file, and builds the status of `names`.
  /// cpu % is measured since the previous call of any `usvc status` of this home.
  /// Without `processFigures` (`status -s`: only the counts of the system line),
  /// the jobs' processes are not read, and their baselines of the last full call stay.
  public func status(_ names: [String], processFigures: Bool = true) -> HostStatus {
    let samplePath = home.path + "/run/status.sample"
    let previous = CPUSample.load(samplePath)
    var (status, sample) = status(names, previous: previous, processFigures: processFigures)
    if !processFigures { sample.jobs = previous?.jobs ?? [:] }
    // Keep the older baseline while it is still too young to compare against.
    // Rewritten in place, not renamed: creating a file costs more than the rest of
    // `status` here, and a torn sample only makes the next call use lifetime figures.
    if status.cpuSince == "previous-call" || previous == nil || sample.time - (previous?.time ?? 0) >= 0.05,
      let fd = try? FileDescriptor.open(samplePath, O_WRONLY | O_CREAT)
    {
      let bytes = Array(sample.encoded().utf8)
      _ = try? fd.writeAll(bytes)
      ftruncate(fd.rawValue, off_t(bytes.count))
      fd.close()
    }
    return status
  }

  /// The status of `names` with cpu % since the previous call with this
  /// `baseline` (kept in memory: the board asks every second and must not
  /// write the home each time, nor disturb `usvc status`'s own baseline).
  public func status(_ names: [String], baseline: inout StatusBaseline) -> HostStatus {
    let (status, sample) = status(names, previous: baseline.sample)
    baseline.sample = sample
    return status
  }

  func status(_ names: [String], previous: CPUSample?, processFigures: Bool = true) -> (HostStatus, CPUSample) {
    let system = SystemFigures.read()
    let now = monotonicClock()
    // A baseline younger than 50 ms says little: use lifetime figures instead.
    let baseline = previous.flatMap { now - $0.time >= 0.05 && now - $0.time < 3600 ? $0 : nil }
    var sample = CPUSample(time: now, busy: system.cpuBusy, total: system.cpuTotal)
    let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
    let pageSize = UInt64(sysconf(Int32(_SC_PAGESIZE)))

    var cpuPercent: Double
    if let baseline, system.cpuTotal > baseline.total {
      cpuPercent = Double(system.cpuBusy &- baseline.busy) * 100 / Double(system.cpuTotal - baseline.total)
    } else {
      cpuPercent = system.cpuTotal == 0 ? 0 : Double(system.cpuBusy) * 100 / Double(system.cpuTotal)
    }
    cpuPercent = min(100, max(0, cpuPercent))

    let views = names.map(view)
    let wall = wallClock()
    var jobs: [JobStatus] = []
    for job in views {
      let state = job.state
      var status = JobStatus(
        name: job.name, group: job.spec?.group ?? Names.split(job: job.name)?.group ?? job.name,
        state: state, pid: nil, kernelState: nil,
        seconds: job.hasState && job.run.since > 0
          ? max(0, wall - (state == .running || state == .unhealthy ? job.run.started : job.run.since)) : nil,
        run: job.run, cpuPercent: 0, residentBytes: 0, argv: job.spec?.argv ?? [],
        changed: false, desiredRunning: job.spec?.desiredRunning ?? true, confProblem: job.confProblem)
      if state == .starting, let spec = job.spec, job.run.started > 0 {
        status.readyOverdue = wall - job.run.started > spec.readyTimeout
      }
      // The job's processes are its runner's descendants (the runner is their
      // subreaper): a few reads of the kernel's children lists, not a scan of /proc.
      if processFigures, job.isLive, let pid = job.pid, let runner = job.runner,
        case let members = ProcStat.descendants(of: runner),
        let main = members.first(where: { $0.pid == pid })
      {
        status.pid = pid
        status.kernelState = main.state
        let ticks = members.reduce(0) { $0 + $1.cpuTicks }
        status.residentBytes = members.reduce(0) { $0 + $1.residentPages } * pageSize
        if let baseline, let before = baseline.jobs[job.name], before.pid == pid, before.start == main.startTicks {
          status.cpuPercent = Double(ticks &- min(before.ticks, ticks)) / ticksPerSecond / (now - baseline.time) * 100
        } else {
          let age = system.uptimeSeconds - Double(main.startTicks) / ticksPerSecond
          status.cpuPercent = age > 0 ? Double(ticks) / ticksPerSecond / age * 100 : 0
        }
        sample.jobs[job.name] = (pid, main.startTicks, ticks)
        if let spec = job.spec, let info = fileStatus(spec.command) {
          let modified = Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
          status.changed = UInt64(info.st_ino) != job.run.programInode
            || UInt64(info.st_dev) != job.run.programDevice || modified != job.run.programModified
        }
      }
      jobs.append(status)
    }
    let status = HostStatus(
      host: hostName(), system: system, cpuPercent: cpuPercent, jobs: jobs,
      cpuSince: baseline != nil ? "previous-call" : "boot")
    return (status, sample)
  }
}

/// This machine's name. C: `gethostname`.
public func hostName() -> String {
  var buffer = [CChar](repeating: 0, count: 256)
  gethostname(&buffer, buffer.count - 1)
  return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

extension JobStatus {
  /// What `status --problems` shows (SPEC: Many hosts): waiting, failed, lost,
  /// broken, unhealthy, exited with a last exit other than 0, or starting for
  /// longer than its ready-timeout.
  public var needsALook: Bool {
    switch state {
    case .waiting, .failed, .lost, .broken, .unhealthy: return true
    case .exited: return run.lastExit != "0" && run.lastExit != "-"
    case .starting: return readyOverdue
    case .running, .stopping, .stopped: return false
    }
  }
}
