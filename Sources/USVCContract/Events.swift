import Glibc
import USVCSys

/// `USVC_HOME/events.log`: one event per line, `TIME<TAB>JOB<TAB>EVENT<TAB>DETAIL`.
///
/// Each line goes out in one `write` on an O_APPEND descriptor, so lines from
/// many runners never interleave. Rotated like job logs when it grows past
/// `maxBytes`; the rename is done under an flock so only one writer rotates.
public enum Events {
  public static let maxBytes = 4 << 20
  public static let keep = 3

  /// Appends one event; returns why it could not be written (a full or
  /// read-only disk), or nil. Callers say so: an event is never lost silently.
  @discardableResult
  public static func append(home: String, job: String, event: String, detail: String) -> Errno? {
    let path = home + "/events.log"
    let clean = { (text: String) in
      String(text.map { $0 == "\t" || $0 == "\n" || $0 == "\r" ? " " : $0 })
    }
    let line = "\(isoTime(wallClock()))\t\(clean(job))\t\(clean(event))\t\(clean(detail))\n"
    let fd: FileDescriptor
    do { fd = try FileDescriptor.open(path, O_WRONLY | O_APPEND | O_CREAT) } catch { return error }
    defer { fd.close() }
    do { try fd.writeAll(line) } catch { return error }
    var info = stat()
    if fstat(fd.rawValue, &info) == 0 && Int(info.st_size) > maxBytes { rotate(path) }
    return nil
  }

  static func rotate(_ path: String) {
    guard let lock = try? FileDescriptor.open(path + ".rotate", O_RDWR | O_CREAT) else { return }
    defer { lock.close() }
    guard (try? lock.lockExclusive(wait: true)) == true,
      let info = fileStatus(path), Int(info.st_size) > maxBytes
    else { return }
    var index = keep - 1
    while index >= 1 {
      rename("\(path).\(index)", "\(path).\(index + 1)")
      index -= 1
    }
    rename(path, path + ".1")
  }
}

/// `2026-11-23T15:04:05.123Z`: ISO-8601, UTC, milliseconds.
public func isoTime(_ seconds: Double) -> String {
  var whole = time_t(seconds)
  var parts = tm()
  gmtime_r(&whole, &parts)
  func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
  let millis = Int((seconds - Double(whole)) * 1000)
  let ms = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
  return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
    + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(ms)Z"
}
