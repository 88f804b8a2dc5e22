/// What `usvc --version` prints: one line naming the release and the exact build, so a
/// report can say which code it measured. buildCommit and buildTreeDirty come from
/// BuildInfo.swift, generated at build time (Plugins/BuildInfo, scripts/build-info.sh).
enum Version {
  static let release = "0.1.0"

  /// `usvc 0.1.0 (commit <40 hex>, clean|dirty tree)`, or `(commit unknown)` for a
  /// build outside a git checkout.
  static var line: String {
    guard let commit = buildCommit else { return "usvc \(release) (commit unknown)" }
    let tree = buildTreeDirty.map { $0 ? "dirty tree" : "clean tree" } ?? "tree state unknown"
    return "usvc \(release) (commit \(commit), \(tree))"
  }
}
