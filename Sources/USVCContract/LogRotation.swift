import USVCSys

/// How a job's log is rotated (SPEC: Files): past `log-max-bytes`, `NAME.log`
/// is renamed to the next copy, `NAME.log.1`, `.2`, …, numbered in the order
/// they were made, so the highest number is the newest copy; the copy
/// `log-keep` back is removed. A rotation costs the same few system calls
/// whatever `log-keep` is: shifting every copy up by one, as logrotate does to
/// keep `.1` the newest, costs one rename per copy kept on every rotation.
public enum LogRotation {
  /// `job.log-max-bytes`: from one page (smaller makes the runner rotate more
  /// often than it copies output) to 1 TiB.
  public static let maxBytesRange = 4096...(1 << 40)
  /// `job.log-keep`: 0 (no copy) to 1000.
  public static let keepRange = 0...1000

  /// The numbers of the copies of the log at `path` that exist now, oldest first.
  public static func copies(of path: String) -> [Int] {
    let slash = path.lastIndex(of: "/")
    let directory = slash.map { String(path[..<$0]) } ?? "."
    let prefix = (slash.map { String(path[path.index(after: $0)...]) } ?? path) + "."
    return directoryEntries(directory.isEmpty ? "/" : directory).compactMap { name -> Int? in
      guard name.hasPrefix(prefix) else { return nil }
      let digits = name.utf8.dropFirst(prefix.utf8.count)
      // Digits only, no leading zero, short enough that the next number cannot overflow.
      guard !digits.isEmpty, digits.count <= 15, digits.first != UInt8(ascii: "0"),
        digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
      else { return nil }
      return Int(String(decoding: digits, as: UTF8.self))
    }.sorted()
  }

  /// The path of copy `number` of the log at `path`.
  public static func path(_ path: String, copy number: Int) -> String { "\(path).\(number)" }
}
