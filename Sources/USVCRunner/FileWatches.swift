import Glibc
import USVCSys

/// What the runner learns without asking: the CLI replaced its spec, or the
/// state of another job changed under `run/` (what `job.after` waits for, and
/// what `job.propagate` follows). One inotify descriptor serves both, so the
/// runner's one `poll` waits only for descriptors and the machine's deadline.
///
/// inotify instances are limited (128 per user by default), so the 129th
/// runner may get none: then the spec is looked at before each start, and a
/// 250 ms interval timer stands in for the `run/` watch.
struct FileWatches {
  /// The inotify descriptor, or -1.
  let inotify: Int32
  /// The stand-in for the `run/` watch without inotify, or -1.
  var timer: Int32 { timerDescriptor?.rawValue ?? -1 }
  private var timerDescriptor: FileDescriptor?
  private var specWatch: Int32 = -1
  private var runWatch: Int32 = -1
  /// Whether the spec may differ from the one read last.
  var specMayHaveChanged = true
  /// `NAME.state` of this job: its own writes are no news.
  let ownState: String

  init(ownState: String) {
    inotify = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
    self.ownState = ownState
  }

  /// Watches the spec file there now (the CLI replaces it by a rename, which
  /// the old file sees as a lost link): call before reading it, so no later
  /// change goes unseen.
  mutating func watchSpec(_ path: String) {
    guard inotify >= 0 else { return }
    if specWatch >= 0 { inotify_rm_watch(inotify, specWatch) }
    specWatch = inotify_add_watch(inotify, path, UInt32(IN_ATTRIB | IN_MODIFY | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF))
    specMayHaveChanged = specWatch < 0
  }

  /// Follows the jobs' state files in `directory` (`run/`) while `wanted`.
  mutating func watchStates(in directory: String, _ wanted: Bool) {
    if wanted {
      if inotify >= 0 {
        if runWatch < 0 {
          runWatch = inotify_add_watch(inotify, directory, UInt32(IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_TO))
        }
        if runWatch >= 0 { return }
      }
      if timerDescriptor == nil { timerDescriptor = intervalTimer(milliseconds: 250) }
    } else {
      if runWatch >= 0 { inotify_rm_watch(inotify, runWatch) }
      runWatch = -1
      timerDescriptor?.close()
      timerDescriptor = nil
    }
  }

  /// Reads what the descriptors say (`buffer` is scratch space); returns
  /// whether another job's state may have changed.
  mutating func drain(_ buffer: UnsafeMutableRawBufferPointer) -> Bool {
    var statesChanged = false
    if timer >= 0 {
      var ticks: UInt64 = 0
      if Glibc.read(timer, &ticks, 8) == 8 { statesChanged = true }
    }
    guard inotify >= 0 else { return statesChanged }
    while true {
      let count = Glibc.read(inotify, buffer.baseAddress, buffer.count)
      guard count > 0 else { break }
      // struct inotify_event { int wd; uint32_t mask, cookie, len; char name[len]; }, repeated.
      var offset = 0
      while offset + 16 <= count {
        let watch = buffer.load(fromByteOffset: offset, as: Int32.self)
        let length = Int(buffer.load(fromByteOffset: offset + 12, as: UInt32.self))
        if watch == specWatch {
          specMayHaveChanged = true
        } else if watch == runWatch && length > 0 {
          let name = UnsafeRawBufferPointer(rebasing: buffer[(offset + 16)..<(offset + 16 + length)])
          let text = String(decoding: name.prefix { $0 != 0 }, as: UTF8.self)
          if text.hasSuffix(".state") && text != ownState { statesChanged = true }
        }
        offset += 16 + length
      }
    }
    return statesChanged
  }
}
