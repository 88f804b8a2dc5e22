import Glibc
import USVCSys

/// The job's output on its way to the tmux pane: a view, never a brake (the
/// log, written apart from this, is the record and never skips).
///
/// Writes never wait. When the pane cannot take more (tmux is busy or
/// stopped, or the pane had its `budget` for this `pause`), it skips ahead:
/// what it misses is counted and its last few KiB kept; once the pane drains,
/// and no sooner than `pause` after the skip began, the pane gets one
/// `[usvc]` line saying how much it missed, then the kept tail, so it shows
/// the latest output again. So a job printing flat out costs tmux's terminal
/// emulation a few screens a second, not the whole flood.
struct PaneFeed {
  /// The pane's terminal, opened again by the runner itself: setting O_NONBLOCK
  /// on fd 1 would set it on fds 0 and 2 as well (one open file description,
  /// inherited from tmux's fork), and on whatever else inherits them.
  let fd: Int32
  /// False once the pane is gone (the window was closed, or the server died).
  private(set) var isOpen = true
  /// Whether output is being skipped (counted and its tail kept, not written);
  /// only while the pane is open.
  private(set) var isSkipping = false
  /// Bytes skipped since the skip began, the kept tail included.
  private var skipped = 0
  /// The monotonic time from which the pane may be written again.
  private(set) var resumeAt: Double = 0
  /// The last `recentCapacity` bytes skipped, shown when the pane resumes.
  /// Allocated at the first skip, never grown past its capacity.
  private var recent: [UInt8] = []
  /// Whether the last byte the pane got ended a line.
  private var atLineStart = true
  /// When the current `pause`-long window began, and what the pane got in it.
  private var windowStart: Double = 0
  private var windowBytes = 0

  /// About a screen of recent output (30 lines of 120 characters), one page.
  static let recentCapacity = 4096
  /// Seconds a skip lasts at least; also the window the budget counts in.
  static let pause = 0.2
  /// Bytes the pane takes per `pause` at most: 320 KiB a second, some 2,700
  /// lines of 120 characters, more than anyone reads.
  static let budget = 64 * 1024
  static let newline = UInt8(ascii: "\n")

  /// The runner's pane: its standard output.
  init() {
    let own = open("/proc/self/fd/1", O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
    if own >= 0 {
      self.init(descriptor: own)
    } else {
      // No /proc: fd 1 itself, non-blocking (fds 0 and 2 then are too; the runner copes).
      FileDescriptor.standardOutput.setNonBlocking()
      self.init(descriptor: FileDescriptor.standardOutput.rawValue)
    }
  }

  /// A pane reached through `descriptor`, which must be non-blocking.
  init(descriptor: Int32) {
    fd = descriptor
  }

  /// Whether the pane should be polled for room (a skip is over but for that).
  func waitsForRoom(now: Double) -> Bool { isOpen && isSkipping && now >= resumeAt }

  /// Shows `bytes` in the pane, or counts them skipped; never waits.
  mutating func show(_ bytes: UnsafeRawBufferPointer) {
    guard isOpen, !bytes.isEmpty else { return }
    if isSkipping { return skip(bytes) }
    let now = monotonicClock()
    if now - windowStart >= PaneFeed.pause {
      windowStart = now
      windowBytes = 0
    }
    let allowed = min(bytes.count, PaneFeed.budget - windowBytes)
    let written = allowed > 0 ? write(UnsafeRawBufferPointer(rebasing: bytes[..<allowed])) : 0
    windowBytes += written
    if written < bytes.count && isOpen {
      isSkipping = true
      skipped = 0
      recent.removeAll(keepingCapacity: true)
      // Full: a pause from now. Over budget: until this window ends.
      resumeAt = written < allowed ? now + PaneFeed.pause : windowStart + PaneFeed.pause
      skip(UnsafeRawBufferPointer(rebasing: bytes[written...]))
    }
  }

  mutating func show(_ text: String) {
    var text = text
    text.withUTF8 { show(UnsafeRawBufferPointer($0)) }
  }

  /// The pane has room again: says what it missed, then shows the kept tail.
  mutating func resume() {
    guard isSkipping, isOpen else { return }
    windowStart = monotonicClock()
    windowBytes = 0
    // 1. Whole lines: the kept tail starts after its first newline, unless it
    //    holds everything skipped (or has no newline at all: a full-screen program).
    var start = 0
    if recent.count < skipped, let newline = recent.firstIndex(of: PaneFeed.newline) { start = newline + 1 }
    let missed = skipped - (recent.count - start)
    // 2. The line saying so. Cut short by a pane still full: the skip goes on, the count stays.
    if missed > 0 {
      let notice = (atLineStart ? "" : "\n") + "[usvc] pane skipped \(missed) bytes (the log has everything)\n"
      let noticeBytes = Array(notice.utf8)
      if noticeBytes.withUnsafeBytes({ write($0) }) < noticeBytes.count {
        resumeAt = monotonicClock() + PaneFeed.pause
        return
      }
    }
    // 3. The tail; what does not fit stays kept, as the start of the next skip.
    let written = recent.withUnsafeBytes { write(UnsafeRawBufferPointer(rebasing: $0[start...])) }
    windowBytes = written
    let left = recent.count - start - written
    if left == 0 || !isOpen {
      isSkipping = false
      skipped = 0
      recent.removeAll(keepingCapacity: true)
      return
    }
    recent.removeFirst(recent.count - left)
    skipped = left
    resumeAt = monotonicClock() + PaneFeed.pause
  }

  /// Counts `bytes` as skipped and keeps the last `recentCapacity` of them.
  private mutating func skip(_ bytes: UnsafeRawBufferPointer) {
    skipped += bytes.count
    if recent.capacity < PaneFeed.recentCapacity { recent.reserveCapacity(PaneFeed.recentCapacity) }
    let kept = bytes.count >= PaneFeed.recentCapacity
      ? UnsafeRawBufferPointer(rebasing: bytes[(bytes.count - PaneFeed.recentCapacity)...]) : bytes
    let overflow = recent.count + kept.count - PaneFeed.recentCapacity
    if overflow > 0 { recent.removeFirst(overflow) }
    recent.append(contentsOf: kept)
  }

  /// Writes what the pane takes now, without waiting; returns how much that was.
  private mutating func write(_ bytes: UnsafeRawBufferPointer) -> Int {
    var offset = 0
    while offset < bytes.count {
      let count = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
      if count > 0 {
        offset += count
      } else if count < 0 && errno == EINTR {
        continue
      } else {
        // EAGAIN: full for now. Anything else (EIO once tmux closed the pane): gone,
        // and nothing is skipped any more (nothing waits for room that never comes).
        if count == 0 || errno != EAGAIN {
          isOpen = false
          isSkipping = false
        }
        break
      }
    }
    if offset > 0 { atLineStart = bytes[offset - 1] == PaneFeed.newline }
    return offset
  }
}
