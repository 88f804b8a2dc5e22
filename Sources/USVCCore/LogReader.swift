import Glibc
import USVCSys

/// Reading job logs for `usvc logs` and the event stream for `usvc events`.
public enum LogReader {
  /// The last `count` lines of a log (fewer if it has fewer), reading from its
  /// end and on into its rotated copies (`PATH.1`, `PATH.2`, …) while the newer
  /// ones hold too few: right after a rotation `PATH` is short or not there yet.
  public static func tail(_ path: String, lines count: Int) -> [String] {
    guard count > 0 else { return [] }
    // A rotation while the copies are read renames them under the reader (what
    // was read as PATH is then PATH.1 too): read again, a few times at most.
    for _ in 1..<5 {
      if let lines = tailOnce(path, lines: count, checked: true) { return lines }
    }
    return tailOnce(path, lines: count, checked: false) ?? []
  }

  /// `tail`, or nil when `checked` and a name read no longer names the file
  /// that was read under it.
  private static func tailOnce(_ path: String, lines count: Int, checked: Bool) -> [String]? {
    var collected: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    var opened: [(name: String, inode: ino_t)] = []
    var index = 0
    // Read backwards until count + 1 newlines are seen (the last byte may be one).
    while collected.lazy.filter({ $0 == 10 }).count <= count {
      let file = index == 0 ? path : "\(path).\(index)"
      index += 1
      guard let fd = try? FileDescriptor.open(file, O_RDONLY) else {
        if index == 1 { continue }
        break
      }
      defer { fd.close() }
      var info = stat()
      fstat(fd.rawValue, &info)
      opened.append((file, info.st_ino))
      var end = Int(info.st_size)
      while end > 0 && collected.lazy.filter({ $0 == 10 }).count <= count {
        let size = min(chunk.count, end)
        end -= size
        let got = chunk.withUnsafeMutableBytes { pread(fd.rawValue, $0.baseAddress, size, off_t(end)) }
        guard got == size else { break }
        collected.insert(contentsOf: chunk[0..<size], at: 0)
      }
    }
    if checked && !opened.allSatisfy({ fileStatus($0.name)?.st_ino == $0.inode }) { return nil }
    var lines = collected.split(separator: 10, omittingEmptySubsequences: false).map {
      String(decoding: $0, as: UTF8.self)
    }
    if lines.last == "" { lines.removeLast() }
    return Array(lines.suffix(count))
  }

  /// Follows files as they grow, across rotation (a renamed file is read to its
  /// end before the new one is opened), calling `emit` with each complete line,
  /// until the process is interrupted.
  public static func follow(_ sources: [(label: String, path: String)], emit: (String, String) -> Void) -> Never {
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
      while let newline = entry.partial.firstIndex(of: 10) {
        let line = String(decoding: entry.partial[..<newline], as: UTF8.self)
        entry.partial.removeSubrange(...newline)
        emit(entry.label, line)
      }
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
