import CGit2
import Glibc
import USVCSys

/// One job's conf: its entries in file order, keys lower-cased (`job.args`).
public struct JobConf: Sendable, Equatable {
  public var entries: [(key: String, value: String)]

  public init(entries: [(key: String, value: String)]) { self.entries = entries }

  public static func == (a: JobConf, b: JobConf) -> Bool {
    a.entries.elementsEqual(b.entries) { $0.key == $1.key && $0.value == $1.value }
  }

  /// Every value of `key`, in order (a multivar has several).
  public func values(_ key: String) -> [String] { entries.filter { $0.key == key }.map(\.value) }
  /// The last value of `key` (git's rule for single-valued keys).
  public func value(_ key: String) -> String? { entries.last { $0.key == key }?.value }
}

/// A change to a conf: give `key` exactly these values, or remove it.
public enum ConfChange: Sendable {
  case set(String, [String])
  case unset(String)
}

/// The job confs under `USVC_HOME/jobs`, read and written only through
/// libgit2's config API.
///
/// Writers serialise on an `flock` of `jobs/.lock`. libgit2's own lock file
/// (`NAME.conf.lock`, O_EXCL) has no owner to ask, so one left by a writer
/// that died would block every later write; under our flock no live usvc
/// writer can hold it, so any `.lock` found there is stale and is removed.
public struct ConfStore: Sendable {
  public let home: Home
  public init(home: Home) { self.home = home }


  public func path(_ name: String) -> String { home.paths(name).conf }

  /// The names of every defined job, in natural order.
  public func names() -> [String] {
    directoryEntries(home.jobsDirectory).compactMap { entry -> String? in
      guard entry.hasSuffix(".conf"), !entry.hasPrefix(".") else { return nil }
      return String(entry.dropLast(5))
    }.sorted(by: Names.naturalLess)
  }

  /// Whether job `name` is defined. A name that is not a plain file name
  /// (`../jobs/web-1`, `.x`) names no job, even if a path built from it exists.
  public func exists(_ name: String) -> Bool {
    !name.isEmpty && !name.hasPrefix(".") && !name.contains("/") && fileStatus(path(name)) != nil
  }

  /// Reads one conf; a file git cannot parse names its path and line.
  public func load(_ name: String) throws(UsvcError) -> JobConf {
    try Self.read(path(name))
  }

  /// `load`, but also refuses what libgit2 reads and git does not (an unterminated
  /// quote): what `conf` and `show` print must be what `git config -f` reads.
  public func loadAsGitReads(_ name: String) throws(UsvcError) -> JobConf {
    let conf = try load(name)
    if let refusal = readFile(path(name)).flatMap(GitConfigSyntax.refusal) {
      throw .badConf(path: path(name), why: GitConfigSyntax.describe(refusal))
    }
    return conf
  }

  /// Why job `name`'s conf cannot be used (SPEC: Broken confs), or nil:
  /// libgit2 cannot parse it, git would refuse it, a `job.*` key is unknown
  /// or holds a bad value, or `job.cmd` is missing. The files its values name
  /// are not looked at: a program that is gone makes a failed run, not a
  /// broken conf.
  public func problem(_ name: String) -> String? {
    let conf: JobConf
    do { conf = try loadAsGitReads(name) } catch { return error.description }
    for (key, value) in conf.entries where key.hasPrefix("job.") {
      do { try ConfKeys.validate(key, value, checkingFiles: false) } catch {
        return "\(path(name)): \(error.description)"
      }
    }
    if conf.value("job.cmd") == nil { return "\(path(name)): job.cmd is missing" }
    return nil
  }

  /// Reads any git-config file through libgit2.
  public static func read(_ path: String) throws(UsvcError) -> JobConf {
    let git = try Git2.loaded()
    guard fileStatus(path) != nil else { throw .badFile(path: path, why: "No such file or directory") }
    var config: OpaquePointer?
    guard git.config_open_ondisk(&config, path) == 0 else {
      throw .badConf(path: path, why: git.lastError)
    }
    defer { git.config_free(config) }
    var iterator: OpaquePointer?
    guard git.config_iterator_new(&iterator, config) == 0 else {
      throw .badConf(path: path, why: git.lastError)
    }
    defer { git.config_iterator_free(iterator) }
    var entries: [(key: String, value: String)] = []
    var entry: UnsafeMutablePointer<git_config_entry>?
    while git.config_next(&entry, iterator) == 0, let entry {
      let key = String(cString: entry.pointee.name)
      let value = entry.pointee.value.map { String(cString: $0) } ?? ""
      entries.append((key, value))
    }
    return JobConf(entries: entries)
  }

  /// Runs `body` holding the writers' lock of this USVC_HOME.
  public func withWriteLock<R>(_ body: () throws(UsvcError) -> R) throws(UsvcError) -> R {
    let lockPath = home.jobsDirectory + "/.lock"
    let fd: FileDescriptor
    do {
      fd = try FileDescriptor.open(lockPath, O_RDWR | O_CREAT)
      _ = try fd.lockExclusive(wait: true)
    } catch {
      throw .confWrite(path: lockPath, why: error.description)
    }
    defer { fd.close() }
    return try body()
  }

  /// Creates a new conf with `changes` (call under `withWriteLock`). The file is
  /// built under a temporary name and renamed into place, so a conf is either
  /// complete or absent.
  public func create(_ name: String, _ changes: [ConfChange]) throws(UsvcError) {
    let final = path(name)
    let temporary = home.jobsDirectory + "/.\(name).conf.new"
    unlink(temporary)
    unlink(temporary + ".lock")
    do {
      try Self.apply(changes, to: temporary)
    } catch {
      unlink(temporary)
      throw error
    }
    if rename(temporary, final) != 0 {
      let error = Errno.current
      unlink(temporary)
      throw .confWrite(path: final, why: error.description)
    }
  }

  /// Changes an existing conf in one libgit2 transaction (call under `withWriteLock`).
  public func update(_ name: String, _ changes: [ConfChange]) throws(UsvcError) {
    let file = path(name)
    guard exists(name) else { throw .noSuchJob(name) }
    // Any lock file here is stale: see the type's comment.
    unlink(file + ".lock")
    try Self.apply(changes, to: file)
  }

  /// Writes `changes` to the git-config file at `path` in one transaction.
  static func apply(_ changes: [ConfChange], to path: String) throws(UsvcError) {
    let git = try Git2.loaded()
    // A private git_config per transaction (PLATFORM-NOTES: freeing an
    // uncommitted transaction frees its config), opened fresh so no cached
    // value hides another process's write.
    var config: OpaquePointer?
    guard git.config_open_ondisk(&config, path) == 0 else {
      throw .badConf(path: path, why: git.lastError)
    }
    var transaction: OpaquePointer?
    guard git.config_lock(&transaction, config) == 0 else {
      let why = git.lastError
      git.config_free(config)
      throw .confWrite(path: path, why: why)
    }
    for change in changes {
      var result: Int32 = 0
      switch change {
      case .set(let key, let values):
        if values.count == 1 && !ConfKeys.isMultivar(key) {
          result = git.config_set_string(config, key, values[0])
        } else {
          result = git.config_delete_multivar(config, key, ".*")
          if result == GIT_ENOTFOUND.rawValue { result = 0 }
          for value in values where result == 0 {
            // set_multivar quotes a value with `;`, `#` or outer spaces but escapes
            // nothing: escape here ("a^" never matches, so this appends; PLATFORM-NOTES).
            result = git.config_set_multivar(config, key, "a^", escaped(value))
          }
        }
      case .unset(let key):
        result = git.config_delete_multivar(config, key, ".*")
        if result == GIT_ENOTFOUND.rawValue { result = 0 }
      }
      if result != 0 {
        let why = git.lastError
        // Frees `config` too (libgit2 1.5.1), so it is not freed again here.
        git.transaction_free(transaction)
        unlink(path + ".lock")
        throw .confWrite(path: path, why: why)
      }
    }
    let committed = git.transaction_commit(transaction)
    let why = committed == 0 ? "" : git.lastError
    git.transaction_free(transaction)
    git.config_free(config)
    if committed != 0 { throw .confWrite(path: path, why: why) }
  }

  /// A git-config value with `\ " \n \t \b` escaped (libgit2 adds the quotes
  /// a value needs for `;`, `#` or outer spaces itself).
  public static func escaped(_ value: String) -> String {
    var result = ""
    for character in value.unicodeScalars {
      switch character {
      case "\\": result += "\\\\"
      case "\"": result += "\\\""
      case "\n": result += "\\n"
      case "\t": result += "\\t"
      case "\u{8}": result += "\\b"
      default: result.unicodeScalars.append(character)
      }
    }
    return result
  }
}
