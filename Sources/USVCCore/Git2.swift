// swift-format-ignore-file: AlwaysUseLowerCamelCase
import CGit2
import Glibc

/// libgit2, loaded on first use. Linking it costs every usvc process about
/// 1.7 ms of dynamic loading here (libgit2 and a dozen libraries it needs,
/// measured), while only the commands that read or write confs use it: so
/// `status`, `jobs`, `pidof`, `logs` and `events` never load it.
///
/// Each field is the C function of the same name (`git_` prefix dropped).
struct Git2: @unchecked Sendable {  // Immutable C function pointers.
  typealias Config = OpaquePointer
  let libgit2_init: @convention(c) () -> Int32
  let error_last: @convention(c) () -> UnsafePointer<git_error>?
  let config_open_ondisk: @convention(c) (UnsafeMutablePointer<Config?>?, UnsafePointer<CChar>?) -> Int32
  let config_free: @convention(c) (Config?) -> Void
  let config_iterator_new: @convention(c) (UnsafeMutablePointer<OpaquePointer?>?, Config?) -> Int32
  let config_next: @convention(c) (UnsafeMutablePointer<UnsafeMutablePointer<git_config_entry>?>?, OpaquePointer?) -> Int32
  let config_iterator_free: @convention(c) (OpaquePointer?) -> Void
  let config_lock: @convention(c) (UnsafeMutablePointer<OpaquePointer?>?, Config?) -> Int32
  let config_set_string: @convention(c) (Config?, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Int32
  let config_set_multivar: @convention(c) (Config?, UnsafePointer<CChar>?, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Int32
  let config_delete_multivar: @convention(c) (Config?, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Int32
  let transaction_commit: @convention(c) (OpaquePointer?) -> Int32
  let transaction_free: @convention(c) (OpaquePointer?) -> Void

  /// The loaded and initialised library (`git_libgit2_init` once per process).
  static func loaded() throws(UsvcError) -> Git2 { try shared.get() }

  private static let shared: Result<Git2, UsvcError> = {
    // The development link first (it is there wherever usvc was built), then the soname.
    guard let handle = dlopen("libgit2.so", RTLD_NOW) ?? dlopen("libgit2.so.1.5", RTLD_NOW) else {
      let why = dlerror().map { String(cString: $0) } ?? "not found"
      return .failure(.conflict("cannot load libgit2 (install libgit2-dev): \(why)"))
    }
    func symbol<T>(_ name: String, _: T.Type) -> T? {
      dlsym(handle, name).map { unsafeBitCast($0, to: T.self) }
    }
    guard let libgit2_init = symbol("git_libgit2_init", (@convention(c) () -> Int32).self),
      let error_last = symbol("git_error_last", (@convention(c) () -> UnsafePointer<git_error>?).self),
      let config_open_ondisk = symbol("git_config_open_ondisk", (@convention(c) (UnsafeMutablePointer<Config?>?, UnsafePointer<CChar>?) -> Int32).self),
      let config_free = symbol("git_config_free", (@convention(c) (Config?) -> Void).self),
      let config_iterator_new = symbol("git_config_iterator_new", (@convention(c) (UnsafeMutablePointer<OpaquePointer?>?, Config?) -> Int32).self),
      let config_next = symbol("git_config_next", (@convention(c) (UnsafeMutablePointer<UnsafeMutablePointer<git_config_entry>?>?, OpaquePointer?) -> Int32).self),
      let config_iterator_free = symbol("git_config_iterator_free", (@convention(c) (OpaquePointer?) -> Void).self),
      let config_lock = symbol("git_config_lock", (@convention(c) (UnsafeMutablePointer<OpaquePointer?>?, Config?) -> Int32).self),
      let config_set_string = symbol("git_config_set_string", (@convention(c) (Config?, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Int32).self),
      let config_set_multivar = symbol("git_config_set_multivar", (@convention(c) (Config?, UnsafePointer<CChar>?, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Int32).self),
      let config_delete_multivar = symbol("git_config_delete_multivar", (@convention(c) (Config?, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Int32).self),
      let transaction_commit = symbol("git_transaction_commit", (@convention(c) (OpaquePointer?) -> Int32).self),
      let transaction_free = symbol("git_transaction_free", (@convention(c) (OpaquePointer?) -> Void).self)
    else {
      return .failure(.conflict("cannot load libgit2: a function is missing (libgit2 1.5 or later is needed)"))
    }
    let git = Git2(
      libgit2_init: libgit2_init, error_last: error_last, config_open_ondisk: config_open_ondisk,
      config_free: config_free, config_iterator_new: config_iterator_new, config_next: config_next,
      config_iterator_free: config_iterator_free, config_lock: config_lock,
      config_set_string: config_set_string, config_set_multivar: config_set_multivar,
      config_delete_multivar: config_delete_multivar, transaction_commit: transaction_commit,
      transaction_free: transaction_free)
    _ = git.libgit2_init()
    return .success(git)
  }()

  /// libgit2's message for the last failure.
  var lastError: String {
    guard let error = error_last(), let message = error.pointee.message else { return "unknown libgit2 error" }
    return String(cString: message)
  }
}
