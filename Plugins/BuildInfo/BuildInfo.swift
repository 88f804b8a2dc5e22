import Foundation
import PackagePlugin

/// Gives the usvc executable the commit it is built from, so that `usvc --version`
/// names what was built, not what the tree holds later. A prebuild command runs at
/// every build (a build command would run only when its inputs change, and a commit
/// changes no input); scripts/build-info.sh rewrites its file only when the commit
/// or the dirty flag changed, so an unchanged tree recompiles nothing. The generated
/// file lives under .build, never in the tree.
@main
struct BuildInfo: BuildToolPlugin {
  func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
    let output = context.pluginWorkDirectoryURL.appending(path: "generated")
    let root = context.package.directoryURL
    return [
      .prebuildCommand(
        displayName: "Recording the commit of \(target.name)",
        executable: URL(fileURLWithPath: "/bin/sh"),
        arguments: [root.appending(path: "scripts/build-info.sh").path, root.path, output.path],
        outputFilesDirectory: output)
    ]
  }
}
