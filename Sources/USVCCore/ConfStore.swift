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
/// libgit2's config API (every write: `write(_:to:temporary:startingEmpty:)`).
///
/// Writers serialise on an `flock` of `jobs/.lock`, and build each new version
/// of a conf under a temporary name that they rename into place. libgit2's own
/// lock file (`NAME.conf.lock`, O_EXCL) has no owner to ask, so one left by a
/// writer that died would block later writes; under our flock no live usvc
/// writer can hold one, so any `.lock` found there is stale and is removed.
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

  /// Reads any git-config file through libgit2; names and values keep every
  /// byte (lossless text: bytes that are not UTF-8 too).
  public static func read(_ path: String) throws(UsvcError) -> JobConf {
    let git = try Git2.loaded()
    guard fileStatus(path) != nil else { throw .badFile(path: path, why: "No such file or directory") }
    var config: OpaquePointer?
    guard path.withLosslessCString({ git.config_open_ondisk(&config, $0) }) == 0 else {
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
      let key = String(losslessCString: entry.pointee.name)
      let value = entry.pointee.value.map { String(losslessCString: $0) } ?? ""
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

  /// Creates a new conf with `changes` (call under `withWriteLock`): complete or absent.
  public func create(_ name: String, _ changes: [ConfChange]) throws(UsvcError) {
    // Callers check the sizes first; this is the last word, before any rename.
    try Self.write(
      changes, to: path(name), temporary: home.jobsDirectory + "/.\(name).conf.new", startingEmpty: true,
      check: ConfKeys.checkValueCounts(of:))
  }

  /// Changes an existing conf (call under `withWriteLock`): all of `changes` or none.
  public func update(_ name: String, _ changes: [ConfChange]) throws(UsvcError) {
    let file = path(name)
    guard exists(name) else { throw .noSuchJob(name) }
    // Any libgit2 lock file here is stale (see the type's comment): gone, so
    // that `git config` by hand works on the file again.
    unlink(file + ".lock")
    try Self.write(
      changes, to: file, temporary: home.jobsDirectory + "/.\(name).conf.new", startingEmpty: false,
      check: ConfKeys.checkValueCounts(of:))
  }

  /// The one way usvc writes a git-config file (a job's conf, `save`):
  ///
  /// 1. a copy of `path` (or an empty file) is made under `temporary`, mode 0600;
  /// 2. the copy is changed in one libgit2 transaction, each key with one call
  ///    (`block(_:key:)`);
  /// 3. it is read back through libgit2 and every changed key compared with
  ///    what was asked;
  /// 4. it is renamed over `path`, so `path` is complete and checked, or untouched.
  ///
  /// Measured with libgit2 1.5.1 (Debian 12): appending the values of a list
  /// one `git_config_set_multivar` call each costs time and memory quadratic
  /// in their number (500 values: 0.6 s and 520 MB; 1,000: 3.6 s and 2 GB),
  /// on the live file, in one transaction, in a fresh file or with a new
  /// `git_config` per batch alike. Each call rewrites the whole file, and
  /// matches its regex against every value the key has: libgit2 1.5.1's
  /// `git_regexp_match` never frees PCRE2's match data (with its 20 KB of
  /// frames) when a value does not match (fixed in 1.6.1), and appending means
  /// a regex that matches none. One call per key writes 1,000,000 values in
  /// about a second and 230 MB.
  ///
  /// `check` sees the new version read back, before it is renamed into place.
  static func write(
    _ changes: [ConfChange], to path: String, temporary: String, startingEmpty: Bool,
    check: (JobConf) throws(UsvcError) -> Void = { _ in }
  ) throws(UsvcError) {
    let changes = coalesced(changes)
    unlink(temporary)
    unlink(temporary + ".lock")
    do throws(Errno) {
      let original: [UInt8]
      if startingEmpty {
        original = []
      } else {
        guard let bytes = readFile(path) else { throw Errno.current }
        original = bytes
      }
      try FileDescriptor.open(temporary, O_WRONLY | O_CREAT | O_EXCL, mode: 0o600).closeAfter { (fd) throws(Errno) in
        try fd.writeAll(original)
      }
    } catch {
      unlink(temporary)
      throw .confWrite(path: path, why: error.description)
    }
    do throws(UsvcError) {
      try transact(changes, on: temporary)
      let written = try read(temporary)
      for change in changes {
        let (key, wanted): (String, [String])
        switch change {
        case .set(let name, let values): (key, wanted) = (name, values)
        case .unset(let name): (key, wanted) = (name, [])
        }
        // Can't happen with libgit2 1.5.1 or its master of 2026 (see `block`);
        // would, were libgit2 ever to escape what set_multivar writes.
        guard written.values(key) == wanted else {
          throw .confWrite(path: path, why: "libgit2 wrote \(key) differently than asked")
        }
      }
      try check(written)
    } catch {
      unlink(temporary)
      unlink(temporary + ".lock")
      throw error
    }
    // libgit2 commits through a lock file created with the umask's mode.
    chmod(temporary, 0o600)
    if rename(temporary, path) != 0 {
      let error = Errno.current
      unlink(temporary)
      throw .confWrite(path: path, why: error.description)
    }
  }

  /// `changes` with one change per key: the last one given, at the place of the first.
  static func coalesced(_ changes: [ConfChange]) -> [ConfChange] {
    var order: [String] = []
    var last: [String: ConfChange] = [:]
    for change in changes {
      let key: String
      switch change {
      case .set(let name, _), .unset(let name): key = name
      }
      if last[key] == nil { order.append(key) }
      last[key] = change
    }
    return order.map { last[$0]! }
  }

  /// Applies `changes` (one per key) to the file at `path` in one libgit2 transaction.
  static func transact(_ changes: [ConfChange], on path: String) throws(UsvcError) {
    let git = try Git2.loaded()
    // A private git_config per transaction (PLATFORM-NOTES: freeing an
    // uncommitted transaction frees its config), opened fresh so no cached
    // value hides another process's write.
    var config: OpaquePointer?
    guard path.withLosslessCString({ git.config_open_ondisk(&config, $0) }) == 0 else {
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
        // ".*" matches every value, so no match data is lost (see `write`).
        result = git.config_delete_multivar(config, key, ".*")
        if result == GIT_ENOTFOUND.rawValue { result = 0 }
        if result == 0 && !values.isEmpty {
          // No value of `key` is left for "a^" to be matched against.
          result = block(values, key: key).withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { git.config_set_multivar(config, key, "a^", $0.baseAddress) }
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

  /// Every value of `key` as the text one `git_config_set_multivar` call
  /// writes after `\tNAME = ` (NUL-terminated): the values, each quoted and
  /// escaped as git reads it, joined by a newline and `\tNAME = `.
  ///
  /// libgit2 writes a set_multivar value as given, unescaped (PLATFORM-NOTES),
  /// between quotes when it holds `;` or `#` or begins or ends with a space;
  /// so with such a value the text leaves out the first and last quote, which
  /// libgit2 then adds. Quoted and escaped, every byte but NUL reads back the
  /// same through libgit2 and git, CR included (a CR is never followed by the
  /// end of the line: checked for every byte at the start, middle and end of
  /// a value); `write` reads the result back anyway.
  static func block(_ values: [String], key: String) -> [UInt8] {
    let name = Array(key[key.index(after: key.lastIndex(of: ".")!)...].utf8)
    let separator: [UInt8] = Array("\n\t".utf8) + name + Array(" = ".utf8)
    let encoded = values.map(\.losslessBytes)
    let libgit2Quotes = encoded.contains { $0.contains(UInt8(ascii: ";")) || $0.contains(UInt8(ascii: "#")) }
    var text: [UInt8] = []
    for (index, bytes) in encoded.enumerated() {
      if index > 0 { text += separator }
      let edge = index == 0 || index == encoded.count - 1
      if libgit2Quotes && edge || needsQuotes(bytes) {
        text.append(UInt8(ascii: "\""))
        appendEscaped(bytes, to: &text)
        text.append(UInt8(ascii: "\""))
      } else {
        text += bytes
      }
    }
    if libgit2Quotes {
      text.removeFirst()
      text.removeLast()
    }
    text.append(0)
    return text
  }

  /// Whether git would read `bytes` differently unquoted: anything but
  /// printable ASCII without `" \ ; #`, with no space at either end.
  static func needsQuotes(_ bytes: [UInt8]) -> Bool {
    guard let first = bytes.first, let last = bytes.last, first != 0x20, last != 0x20 else { return true }
    return bytes.contains { byte in
      !(0x20...0x7E).contains(byte) || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
        || byte == UInt8(ascii: ";") || byte == UInt8(ascii: "#")
    }
  }

  /// `bytes` with `\ " \n \t \b` escaped as git reads them.
  static func appendEscaped(_ bytes: [UInt8], to text: inout [UInt8]) {
    for byte in bytes {
      switch byte {
      case UInt8(ascii: "\\"): text += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
      case UInt8(ascii: "\""): text += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
      case 0x0A: text += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
      case 0x09: text += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
      case 0x08: text += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
      default: text.append(byte)
      }
    }
  }
}
