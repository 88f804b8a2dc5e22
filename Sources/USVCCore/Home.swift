import Glibc
import USVCContract
import USVCSys

/// `USVC_HOME`: where everything of one user's usvc lives (SPEC: Files).
public struct Home: Sendable {
  public let path: String

  /// Resolves `USVC_HOME` (default `~/.usvc`), creates it and its folders
  /// (0700), and refuses a home someone else could tamper with.
  ///
  /// A relative `USVC_HOME` is refused: resolved against each command's own
  /// working directory it would name a different home from every folder.
  /// Unless `forWriting`, a home that exists but cannot be written is
  /// accepted, so the reading commands (and `stop`) work on a read-only disk.
  public static func open(environment: [String], forWriting: Bool = true) throws(UsvcError) -> Home {
    var path = value(of: "USVC_HOME", in: environment) ?? ""
    if path.isEmpty {
      guard let user = value(of: "HOME", in: environment), user.hasPrefix("/") else {
        throw .badHome("neither USVC_HOME nor HOME is set to an absolute path")
      }
      path = user + "/.usvc"
    }
    guard path.hasPrefix("/") else {
      throw .badHome("USVC_HOME must be an absolute path, not '\(path.visible)' (it would name another home from every folder)")
    }
    while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
    if fileStatus(path) == nil {
      if mkdir(path, 0o700) != 0 && errno != EEXIST {
        throw .badHome("cannot create USVC_HOME \(path): \(Errno.current)")
      }
    }
    guard let info = fileStatus(path) else { throw .badHome("USVC_HOME \(path) cannot be read") }
    guard info.st_mode & S_IFMT == S_IFDIR else {
      throw .badHome("USVC_HOME \(path) is not a directory")
    }
    guard info.st_uid == geteuid() else {
      throw .badHome("USVC_HOME \(path) is owned by uid \(info.st_uid), not by you (uid \(geteuid()))")
    }
    guard info.st_mode & 0o022 == 0 else {
      throw .badHome("USVC_HOME \(path) is writable by others (mode \(String(info.st_mode & 0o777, radix: 8))): run chmod 700 \(path)")
    }
    if forWriting {
      guard access(path, W_OK | X_OK) == 0 else {
        throw .badHome("USVC_HOME \(path) is not writable: \(Errno.current)")
      }
    }
    for folder in ["jobs", "run", "logs"] where fileStatus(path + "/" + folder) == nil {
      do { try makeDirectory(path + "/" + folder) } catch {
        throw .badHome("cannot create \(path)/\(folder): \(error)")
      }
    }
    return Home(path: path)
  }

  public func paths(_ name: String) -> JobPaths { JobPaths(home: path, name: name) }
  public var jobsDirectory: String { path + "/jobs" }
  public var eventsLog: String { path + "/events.log" }
}

/// The working directory (lossless text). C: `getcwd`.
public func currentDirectory() -> String {
  var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
  guard getcwd(&buffer, buffer.count) != nil else { return "/" }
  return String(lossless: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) })
}
