import Glibc
import USVCContract
import USVCSys

/// Reading job logs for `usvc logs` and the event stream for `usvc events`.
public enum LogReader {
  /// The last `count` lines of a log (fewer if it has fewer), as bytes without
  /// their newlines, reading from its end and on into its rotated copies, newest
  /// first (`LogRotation`), while the newer ones hold too few: right after a
  /// rotation `PATH` is short or not there yet.
  public static func tail(_ path: String, lines count: Int) -> [ArraySlice<UInt8>] {
    guard count > 0 else { return [] }
    // The removal of a copy (the oldest, by a rotation) before it was opened:
    // read again, a few times at most.
    for _ in 1..<5 {
      if let lines = tailOnce(path, lines: count, checked: true) { return lines }
    }
    return tailOnce(path, lines: count, checked: false) ?? []
  }

  /// `tail`, or nil when `checked` and a copy needed was removed before it was
  /// opened. The files read are one snapshot: the file opened as PATH, then the
  /// copies older than it, newest first. A copy's bytes never change once it is
  /// made; if PATH was rotated after it was opened, it is one of the copies
  /// listed, and only those older than it are read.
  private static func tailOnce(_ path: String, lines count: Int, checked: Bool) -> [ArraySlice<UInt8>]? {
    // Newest first, each file read from its end; newlines counted as they come.
    var pieces: [[UInt8]] = []
    var newlines = 0
    var chunk = [UInt8](repeating: 0, count: 65536)
    /// Reads `fd` backwards until count + 1 newlines are seen (the last byte may be one).
    func readBackwards(_ fd: FileDescriptor) {
      var info = stat()
      fstat(fd.rawValue, &info)
      var end = Int(info.st_size)
      while end > 0 && newlines <= count {
        let size = min(chunk.count, end)
        end -= size
        let got = chunk.withUnsafeMutableBytes { pread(fd.rawValue, $0.baseAddress, size, off_t(end)) }
        guard got == size else { break }
        pieces.append(Array(chunk[0..<size]))
        newlines += chunk[0..<size].lazy.filter { $0 == 10 }.count
      }
    }
    let log = try? FileDescriptor.open(path, O_RDONLY)
    var inode: ino_t?
    if let log {
      var info = stat()
      fstat(log.rawValue, &info)
      inode = info.st_ino
      readBackwards(log)
      log.close()
    }
    if newlines <= count {
      var copies = Array(LogRotation.copies(of: path).reversed())
      if let inode, fileStatus(path)?.st_ino != inode {
        // Rotated since it was opened: skip the copies newer than it, and it.
        if let read = copies.firstIndex(where: { fileStatus(LogRotation.path(path, copy: $0))?.st_ino == inode }) {
          copies.removeFirst(read + 1)
        }
      }
      for number in copies where newlines <= count {
        guard let copy = try? FileDescriptor.open(LogRotation.path(path, copy: number), O_RDONLY) else {
          if checked { return nil }
          break
        }
        readBackwards(copy)
        copy.close()
      }
    }
    var lines = Array(pieces.reversed().joined()).split(separator: 10, omittingEmptySubsequences: false)
    if lines.last?.isEmpty == true { lines.removeLast() }
    return Array(lines.suffix(count))
  }

  /// Follows files as they grow, across rotation (a renamed file is read to its
  /// end before the new one is opened), calling `emit` with each complete line,
  /// until the process is interrupted.
  public static func follow(_ sources: [(label: String, path: String)], emit: (String, ArraySlice<UInt8>) -> Void) -> Never {
    struct Followed {
      var label: String
      var path: String
      var fd: FileDescriptor?
      var inode: ino_t = 0
      var partial: [UInt8] = []
    }
    var followed = sources.map { source -> Followed in
      var entry = Followed(label: source.label, path: source.path)
      if let fd = try? FileDescriptor.open(source.path, O_RDONLY) {
        var info = stat()
        fstat(fd.rawValue, &info)
        lseek(fd.rawValue, 0, SEEK_END)
        entry.fd = fd
        entry.inode = info.st_ino
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
      // Every complete line, then what is left of the partial one moved to the front, once.
      var start = 0
      while let newline = entry.partial[start...].firstIndex(of: 10) {
        emit(entry.label, entry.partial[start..<newline])
        start = newline + 1
      }
      entry.partial.removeFirst(start)
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
        }
      }
      usleep(100_000)
    }
  }
}
