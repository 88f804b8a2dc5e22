import Glibc
import USVCContract
import USVCSys

/// Reading job logs for `usvc logs` and the event stream for `usvc events`.
public enum LogReader {
  /// A line of a log (without its newline) and the second it was written,
  /// when asked for and known (`LogIndex`: the time of its first byte).
  public struct Line {
    public var time: Int64?
    public var bytes: ArraySlice<UInt8>
  }

  /// The last `count` lines of a log (fewer if it has fewer), as bytes without
  /// their newlines, reading from its end and on into its rotated copies, newest
  /// first (`LogRotation`), while the newer ones hold too few: right after a
  /// rotation `PATH` is short or not there yet.
  public static func tail(_ path: String, lines count: Int) -> [ArraySlice<UInt8>] {
    tail(path, lines: count, since: nil, timed: false).map(\.bytes)
  }

  /// `tail`, each line with its time when `timed`; with `since` (seconds since
  /// the epoch) only the lines written in that second or later, the last `count`
  /// of them: reading stops at the first record of the index at or after it
  /// (times are taken to grow), and lines of unknown time are left out.
  public static func tail(_ path: String, lines count: Int, since: Int64?, timed: Bool) -> [Line] {
    guard count > 0 else { return [] }
    // The removal of a copy (the oldest, by a rotation) before it was opened:
    // read again, a few times at most.
    for _ in 1..<5 {
      if let lines = tailOnce(path, lines: count, since: since, timed: timed, checked: true) { return lines }
    }
    return tailOnce(path, lines: count, since: since, timed: timed, checked: false) ?? []
  }

  /// What was read of one log file: `bytes` from `offset` on, and (when times
  /// are wanted) the index records from the one dating `offset` on.
  private struct Part {
    var bytes: [UInt8] = []
    var offset = 0
    var records: [LogIndex.Record] = []
  }

  /// `tail`, or nil when `checked` and a copy needed was removed before it was
  /// opened. The files read are one snapshot: the file opened as PATH, then the
  /// copies older than it, newest first. A copy's bytes never change once it is
  /// made; if PATH was rotated after it was opened, it is one of the copies
  /// listed, and only those older than it are read.
  private static func tailOnce(
    _ path: String, lines count: Int, since: Int64?, timed: Bool, checked: Bool
  ) -> [Line]? {
    // Newest first, each file read from its end; newlines counted as they come.
    let dated = timed || since != nil
    var parts: [Part] = []
    var newlines = 0
    var chunk = [UInt8](repeating: 0, count: 65536)
    /// Whether an older file may hold lines still wanted.
    var goOn = true
    /// With `since`: the first line read began before it (drop it).
    var dropFirst = false
    /// Reads the file open as `fd` (its inode `inode`) backwards, down to where
    /// `since` says or until count + 1 newlines are seen (the last byte may be one).
    func read(_ fd: FileDescriptor, inode: ino_t) {
      var info = stat()
      fstat(fd.rawValue, &info)
      var end = Int(info.st_size)
      var floor = 0
      let index = dated ? openIndex(of: path, inode: inode) : nil
      defer { index?.close() }
      if let since {
        // 1. Where the lines written at or after `since` begin in this file.
        let records = index.map { LogIndex.count(of: $0) } ?? 0
        let first = records > 0 ? LogIndex.record(0, of: index!) : nil
        if let first, first.time >= since {
          floor = Int(first.offset)
          goOn = floor == 0  // Older bytes of unknown time, or in an older copy.
        } else {
          var low = 1
          var high = records  // The first record at or after `since` is in low...high.
          while low < high {
            let middle = (low + high) / 2
            if let record = LogIndex.record(middle, of: index!), record.time < since { low = middle + 1 } else { high = middle }
          }
          floor = low < records ? Int(LogIndex.record(low, of: index!)?.offset ?? Int64(end)) : end
          goOn = false
        }
        floor = min(floor, end)
        // 2. One byte more, to tell whether `floor` begins a line.
        if !goOn && floor > 0 {
          floor -= 1
          dropFirst = true
        }
      }
      var part = Part()
      var pieces: [[UInt8]] = []
      while end > floor && newlines <= count {
        let size = min(chunk.count, end - floor)
        end -= size
        let got = chunk.withUnsafeMutableBytes { pread(fd.rawValue, $0.baseAddress, size, off_t(end)) }
        guard got == size else {
          end += size
          break
        }
        pieces.append(Array(chunk[0..<size]))
        newlines += chunk[0..<size].lazy.filter { $0 == 10 }.count
      }
      if newlines > count { goOn = false }
      part.bytes = Array(pieces.reversed().joined())
      part.offset = end
      if dated, let index { part.records = records(of: index, from: end) }
      parts.append(part)
    }
    let log = try? FileDescriptor.open(path, O_RDONLY)
    var inode: ino_t?
    if let log {
      var info = stat()
      fstat(log.rawValue, &info)
      inode = info.st_ino
      read(log, inode: info.st_ino)
      log.close()
    }
    if goOn {
      var copies = Array(LogRotation.copies(of: path).reversed())
      if let inode, fileStatus(path)?.st_ino != inode {
        // Rotated since it was opened: skip the copies newer than it, and it.
        if let read = copies.firstIndex(where: { fileStatus(LogRotation.path(path, copy: $0))?.st_ino == inode }) {
          copies.removeFirst(read + 1)
        }
      }
      for number in copies where goOn {
        guard let copy = try? FileDescriptor.open(LogRotation.path(path, copy: number), O_RDONLY) else {
          if checked { return nil }
          break
        }
        var info = stat()
        fstat(copy.rawValue, &info)
        read(copy, inode: info.st_ino)
        copy.close()
      }
    }
    // 3. Oldest first, as one run of bytes; each line dated by the part it begins in.
    parts.reverse()
    let bytes = Array(parts.lazy.map(\.bytes).joined())
    var lines: [Line] = []
    var partIndex = 0
    var partStart = 0  // Where parts[partIndex] begins in `bytes`.
    var recordIndex = 0
    func time(at position: Int) -> Int64? {
      guard dated else { return nil }
      while partIndex + 1 < parts.count && position >= partStart + parts[partIndex].bytes.count {
        partStart += parts[partIndex].bytes.count
        partIndex += 1
        recordIndex = 0
      }
      guard partIndex < parts.count else { return nil }
      let records = parts[partIndex].records
      let offset = Int64(parts[partIndex].offset + position - partStart)
      while recordIndex + 1 < records.count && records[recordIndex + 1].offset <= offset { recordIndex += 1 }
      return recordIndex < records.count && records[recordIndex].offset <= offset ? records[recordIndex].time : nil
    }
    var start = 0
    while start < bytes.count {
      let end = bytes[start...].firstIndex(of: 10) ?? bytes.count
      lines.append(Line(time: time(at: start), bytes: bytes[start..<end]))
      start = end + 1
    }
    if dropFirst && !lines.isEmpty { lines.removeFirst() }
    if since != nil { lines.removeAll { $0.time == nil } }
    return Array(lines.suffix(count))
  }

  /// The records of the index open as `fd` from the one dating `offset` (the
  /// last at or before it) on, or all of them if none is.
  private static func records(of fd: FileDescriptor, from offset: Int) -> [LogIndex.Record] {
    let count = LogIndex.count(of: fd)
    var low = 0
    var high = count  // The first record past `offset` is in low...high.
    while low < high {
      let middle = (low + high) / 2
      if let record = LogIndex.record(middle, of: fd), record.offset <= Int64(offset) { low = middle + 1 } else { high = middle }
    }
    let first = max(0, low - 1)
    var bytes = [UInt8](repeating: 0, count: (count - first) * LogIndex.recordSize)
    let got = bytes.withUnsafeMutableBytes { pread(fd.rawValue, $0.baseAddress, $0.count, off_t(first * LogIndex.recordSize)) }
    guard got > 0 else { return [] }
    return bytes.withUnsafeBytes { raw in
      (0..<(got / LogIndex.recordSize)).map { LogIndex.decode(raw.baseAddress! + $0 * LogIndex.recordSize) }
    }
  }

  /// The index of the log file whose inode is `inode`, the live log at `path`
  /// or one of its copies; nil if it has none. The runner creates an index
  /// before its log and, rotating, renames the log before its index: so an
  /// index opened while its log is still at the same name is that log's, and a
  /// copy whose index is not there yet still has it at the live name.
  static func openIndex(of path: String, inode: ino_t) -> FileDescriptor? {
    for _ in 0..<3 {
      if fileStatus(path)?.st_ino == inode {
        guard let index = try? FileDescriptor.open(LogIndex.path(of: path), O_RDONLY) else { return nil }
        if fileStatus(path)?.st_ino == inode { return index }
        index.close()
        continue
      }
      guard let number = LogRotation.copies(of: path).last(where: {
        fileStatus(LogRotation.path(path, copy: $0))?.st_ino == inode
      }) else { return nil }
      let copy = LogIndex.path(of: LogRotation.path(path, copy: number))
      if let index = try? FileDescriptor.open(copy, O_RDONLY) { return index }
      // Between the two renames (no new log yet): still at the live name, unless renamed since.
      guard fileStatus(path) == nil else { return nil }
      guard let index = try? FileDescriptor.open(LogIndex.path(of: path), O_RDONLY) else { continue }
      if fileStatus(copy) == nil { return index }
      index.close()
    }
    return nil
  }

  /// Follows files as they grow, across rotation (a renamed file is read to its
  /// end before the new one is opened), calling `emit` with each complete line,
  /// until the process is interrupted.
  public static func follow(_ sources: [(label: String, path: String)], emit: (String, ArraySlice<UInt8>) -> Void) -> Never {
    follow(sources, timed: false) { label, line in emit(label, line.bytes) }
  }

  /// `follow`, each line with its time when `timed` (from the index the runner
  /// writes before the bytes it dates, so it is read after them).
  public static func follow(_ sources: [(label: String, path: String)], timed: Bool, emit: (String, Line) -> Void) -> Never {
    struct Followed {
      var label: String
      var path: String
      var fd: FileDescriptor?
      var inode: ino_t = 0
      var partial: [UInt8] = []
      /// Where `partial` begins in the file open; negative while its start is in
      /// the file before (a line cut by a rotation), then dated `carriedTime`.
      var partialOffset = 0
      var carriedTime: Int64?
      var index: FileDescriptor?
      /// The records read: the last one at or before `partialOffset`, and those after.
      var records: [LogIndex.Record] = []
      var recordBytes: [UInt8] = []

      /// The time of the byte at `offset` of the file open; offsets only grow between calls.
      mutating func time(at offset: Int) -> Int64? {
        if offset < 0 { return carriedTime }
        while records.count > 1 && records[1].offset <= Int64(offset) { records.removeFirst() }
        guard let first = records.first, first.offset <= Int64(offset) else { return nil }
        return first.time
      }

      /// Opens the index of the file open, from the start (`fromEnd`: its last record only).
      mutating func openIndex(fromEnd: Bool) {
        index?.close()
        records = []
        recordBytes = []
        index = LogReader.openIndex(of: path, inode: inode)
        guard let index else { return }
        let count = LogIndex.count(of: index)
        if fromEnd && count > 0, let last = LogIndex.record(count - 1, of: index) { records = [last] }
        lseek(index.rawValue, off_t(fromEnd ? count * LogIndex.recordSize : 0), SEEK_SET)
      }

      /// Reads the records written since the last read.
      mutating func readRecords(_ chunk: inout [UInt8]) {
        guard let index else { return }
        while true {
          let count = chunk.withUnsafeMutableBytes { Glibc.read(index.rawValue, $0.baseAddress, $0.count) }
          guard count > 0 else { break }
          recordBytes += chunk[0..<count]
        }
        let whole = recordBytes.count / LogIndex.recordSize
        recordBytes.withUnsafeBytes { raw in
          for number in 0..<whole { records.append(LogIndex.decode(raw.baseAddress! + number * LogIndex.recordSize)) }
        }
        recordBytes.removeFirst(whole * LogIndex.recordSize)
      }
    }
    var followed = sources.map { source -> Followed in
      var entry = Followed(label: source.label, path: source.path)
      if let fd = try? FileDescriptor.open(source.path, O_RDONLY) {
        var info = stat()
        fstat(fd.rawValue, &info)
        entry.partialOffset = Int(lseek(fd.rawValue, 0, SEEK_END))
        entry.fd = fd
        entry.inode = info.st_ino
        if timed { entry.openIndex(fromEnd: true) }
      }
      return entry
    }
    var chunk = [UInt8](repeating: 0, count: 65536)
    /// Emits the complete lines appended to the file `entry` has open (even if
    /// renamed away).
    func drain(_ entry: inout Followed) {
      guard let fd = entry.fd else { return }
      while true {
        let count = chunk.withUnsafeMutableBytes { Glibc.read(fd.rawValue, $0.baseAddress, $0.count) }
        guard count > 0 else { break }
        entry.partial.append(contentsOf: chunk[0..<count])
      }
      if timed { entry.readRecords(&chunk) }
      // Every complete line, then what is left of the partial one moved to the front, once.
      var start = 0
      while let newline = entry.partial[start...].firstIndex(of: 10) {
        let time = timed ? entry.time(at: entry.partialOffset + start) : nil
        emit(entry.label, Line(time: time, bytes: entry.partial[start..<newline]))
        start = newline + 1
      }
      entry.partial.removeFirst(start)
      entry.partialOffset += start
    }
    while true {
      for index in followed.indices {
        drain(&followed[index])
        // If the path now names another file (rotated, or new): the runner may have
        // written to the old one since it was drained, so drain it once more, then
        // switch to the new one from its start.
        if let info = fileStatus(followed[index].path), info.st_ino != followed[index].inode
          || followed[index].fd == nil
        {
          drain(&followed[index])
          followed[index].fd?.close()
          followed[index].fd = try? FileDescriptor.open(followed[index].path, O_RDONLY)
          // The inode of what was opened: the path may have moved on again since the stat.
          var opened = stat()
          if let fd = followed[index].fd, fstat(fd.rawValue, &opened) == 0 { followed[index].inode = opened.st_ino }
          // A line begun in the old file keeps the time it began.
          if timed { followed[index].carriedTime = followed[index].time(at: followed[index].partialOffset) }
          followed[index].partialOffset = -followed[index].partial.count
          if timed { followed[index].openIndex(fromEnd: false) }
        }
      }
      usleep(100_000)
    }
  }
}

extension LogReader {
  /// `2026-12-02T15:04:05Z`: when a line was written, as `logs -t` prints it
  /// (ISO 8601, UTC, whole seconds: the index's resolution).
  public static func timeStamp(_ seconds: Int64) -> String {
    var whole = time_t(seconds)
    var parts = tm()
    gmtime_r(&whole, &parts)
    func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
    return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
      + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
  }

  /// What `logs --since` takes, as seconds since the epoch, or nil: a duration
  /// back from `now` (whole numbers with `s`, `m`, `h`, `d`, one or more:
  /// `90s`, `10m`, `1h30m`), or an ISO 8601 time `YYYY-MM-DD[THH:MM[:SS[.fff]]]`
  /// (a space for the T too), UTC unless it ends in `Z` or an offset (`+01:00`,
  /// `-0500`, `+01`): UTC as `-t` prints, so one `--since` names the same moment
  /// on every host. A fraction of a second counts from the start of its second.
  public static func sinceTime(_ text: String, now: Int64) -> Int64? {
    let bytes = Array(text.utf8)
    func digit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }
    // 1. A duration.
    if let last = bytes.last, [UInt8(ascii: "s"), UInt8(ascii: "m"), UInt8(ascii: "h"), UInt8(ascii: "d")].contains(last),
      digit(bytes[0])
    {
      var total: Int64 = 0
      var number: Int64 = 0
      var digits = 0
      for byte in bytes {
        if digit(byte) {
          digits += 1
          guard digits <= 9 else { return nil }
          number = number * 10 + Int64(byte - 48)
          continue
        }
        let unit: Int64
        switch byte {
        case UInt8(ascii: "s"): unit = 1
        case UInt8(ascii: "m"): unit = 60
        case UInt8(ascii: "h"): unit = 3600
        case UInt8(ascii: "d"): unit = 86400
        default: return nil
        }
        guard digits > 0 else { return nil }
        total += number * unit
        number = 0
        digits = 0
      }
      // At most about 30 years back.
      return total <= 1_000_000_000 ? now - total : nil
    }
    // 2. A time: fixed fields, then an optional fraction and zone.
    var position = 0
    func number(_ count: Int) -> Int32? {
      guard position + count <= bytes.count, bytes[position..<(position + count)].allSatisfy(digit) else { return nil }
      defer { position += count }
      return bytes[position..<(position + count)].reduce(Int32(0)) { $0 * 10 + Int32($1 - 48) }
    }
    func take(_ character: Character) -> Bool {
      guard position < bytes.count, bytes[position] == character.asciiValue! else { return false }
      position += 1
      return true
    }
    var parts = tm()
    guard let year = number(4), take("-"), let month = number(2), take("-"), let day = number(2) else { return nil }
    parts.tm_year = year - 1900
    parts.tm_mon = month - 1
    parts.tm_mday = day
    if take("T") || take(" ") {
      guard let hour = number(2), take(":"), let minute = number(2) else { return nil }
      parts.tm_hour = hour
      parts.tm_min = minute
      if take(":") {
        guard let second = number(2) else { return nil }
        parts.tm_sec = second
        if take(".") || take(",") {
          let fractionStart = position
          while position < bytes.count && digit(bytes[position]) { position += 1 }
          guard position > fractionStart else { return nil }
        }
      }
    }
    var offset: Int64 = 0
    if take("Z") {
    } else if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
      let sign: Int64 = bytes[position] == UInt8(ascii: "+") ? 1 : -1
      position += 1
      guard let hours = number(2), hours <= 23 else { return nil }
      var minutes: Int32 = 0
      if take(":") {
        guard let value = number(2) else { return nil }
        minutes = value
      } else if position < bytes.count {
        guard let value = number(2) else { return nil }
        minutes = value
      }
      guard minutes <= 59 else { return nil }
      offset = sign * (Int64(hours) * 3600 + Int64(minutes) * 60)
    }
    guard position == bytes.count, year >= 1970, (1...12).contains(month), (1...31).contains(day),
      parts.tm_hour <= 23, parts.tm_min <= 59, parts.tm_sec <= 60
    else { return nil }
    let wanted = parts
    let seconds = timegm(&parts)
    // timegm makes 31 February into 3 March: a date that moved was not one.
    guard parts.tm_mday == wanted.tm_mday, parts.tm_mon == wanted.tm_mon else { return nil }
    return Int64(seconds) - offset
  }
}
