import Glibc
import USVCSys

/// Finding the program a job runs (SPEC: start).
public enum Commands {
  /// A COMMAND with a `/` is taken relative to `directory`; one without is
  /// looked up on `searchPath` (the caller's PATH). The result is absolute and
  /// names an executable regular file.
  public static func resolve(_ command: String, searchPath: String, directory: String) throws(UsvcError)
    -> String
  {
    guard !command.isEmpty else { throw .commandNotFound("''") }
    if command.contains("/") {
      let path = absolute(command, in: directory)
      try checkExecutable(path)
      return path
    }
    for folder in searchPath.split(separator: ":", omittingEmptySubsequences: false) {
      let base = folder.isEmpty ? directory : absolute(String(folder), in: directory)
      let candidate = base + "/" + command
      if (try? checkExecutable(candidate)) != nil { return candidate }
    }
    throw .commandNotFound(command)
  }

  /// Throws unless `path` is a regular file the caller may execute.
  public static func checkExecutable(_ path: String) throws(UsvcError) {
    guard let info = fileStatus(path) else {
      throw .commandNotExecutable(path, why: "No such file or directory")
    }
    guard info.st_mode & S_IFMT != S_IFDIR else {
      throw .commandNotExecutable(path, why: "is a directory")
    }
    guard info.st_mode & S_IFMT == S_IFREG else {
      throw .commandNotExecutable(path, why: "not a regular file")
    }
    guard path.withLosslessCString({ access($0, X_OK) }) == 0, info.st_mode & 0o111 != 0 else {
      throw .commandNotExecutable(path, why: "Permission denied (not executable)")
    }
  }

  /// Throws unless `path` is a folder the caller may enter (a job's working directory).
  public static func checkDirectory(_ path: String) throws(UsvcError) {
    guard let info = fileStatus(path) else { throw .badDirectory(path, why: "No such file or directory") }
    guard info.st_mode & S_IFMT == S_IFDIR else { throw .badDirectory(path, why: "not a directory") }
    guard access(path, X_OK) == 0 else { throw .badDirectory(path, why: "\(Errno.current)") }
  }

  /// `path` made absolute against `directory`, with `.` segments and doubled
  /// slashes removed (`..` is kept: through a symlink it means something else).
  public static func absolute(_ path: String, in directory: String) -> String {
    let full = path.hasPrefix("/") ? path : directory + "/" + path
    var parts: [Substring] = []
    for part in full.split(separator: "/") where part != "." { parts.append(part) }
    return "/" + parts.joined(separator: "/")
  }
}
