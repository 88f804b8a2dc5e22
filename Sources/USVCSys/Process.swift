import CShims
import Glibc

/// Makes this process the reaper of its orphaned descendants (a job's
/// double-forked children come back to the runner). C: `prctl(PR_SET_CHILD_SUBREAPER)`.
@discardableResult
public func becomeChildSubreaper() -> Bool { usvc_set_child_subreaper() == 0 }

/// Gives the heap's free pages back to the kernel. C: `malloc_trim(0)`.
public func trimHeap() { _ = usvc_malloc_trim() }

/// Gives the stack's pages below the caller's frame back to the kernel. A
/// page the stack once reached stays private memory for good, though nothing
/// lives there any more: the first time Swift's runtime builds a generic
/// type's metadata from its mangled name it nests demanglers ~30 KiB deep,
/// while an idle loop needs a few KiB. C: `madvise(MADV_DONTNEED)` below the
/// frame, down to the end of the stack's mapping.
public func trimStack() { _ = usvc_release_stack_below() }

/// Signals read from a descriptor, one at a time, so they arrive in a `poll`
/// like any input (the set must be blocked first). C: `signalfd`.
public struct SignalDescriptor {
  public let fd: FileDescriptor

  public init(_ set: SignalSet) throws(Errno) {
    var mask = set.raw
    let raw = usvc_signalfd(&mask)
    guard raw >= 0 else { throw Errno.current }
    fd = FileDescriptor(rawValue: raw)
  }

  /// The number of the next pending signal, or nil when none is.
  public func next() -> Int32? {
    let number = usvc_signalfd_read(fd.rawValue)
    return number == 0 ? nil : number
  }
}

/// A descriptor that becomes readable every `milliseconds` (read 8 bytes to
/// clear it), or nil. C: `timerfd_create` + `timerfd_settime`.
public func intervalTimer(milliseconds: Int) -> FileDescriptor? {
  let fd = usvc_interval_timer(milliseconds)
  return fd < 0 ? nil : FileDescriptor(rawValue: fd)
}

extension FileDescriptor {
  /// A pipe: its read end and its write end, both close-on-exec. C: `pipe2(O_CLOEXEC)`.
  public static func pipe() throws(Errno) -> (read: FileDescriptor, write: FileDescriptor) {
    var fds: [Int32] = [0, 0]
    guard usvc_pipe_cloexec(&fds) == 0 else { throw Errno.current }
    return (FileDescriptor(rawValue: fds[0]), FileDescriptor(rawValue: fds[1]))
  }
}
