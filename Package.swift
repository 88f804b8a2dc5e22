// swift-tools-version:6.0
import PackageDescription

let package = Package(
  name: "usvc",
  products: [
    .executable(name: "usvc", targets: ["usvc"]),
    .executable(name: "usvc-runner", targets: ["usvc-runner"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
  ],
  targets: [
    // C edges: libgit2, and the _GNU_SOURCE bits Swift's Glibc module lacks.
    // Headers only: libgit2 itself is loaded when first needed (Git2.swift), so
    // the commands that never touch a conf do not pay for loading it.
    .systemLibrary(name: "CGit2", providers: [.apt(["libgit2-dev"])]),
    .target(name: "CShims"),
    // Glibc-only typed syscalls, shared by the runner and the CLI.
    .target(name: "USVCSys", dependencies: ["CShims"]),
    // The runner↔CLI contract: the files both read and write under USVC_HOME
    // (the job spec, the run state, the paths, the events, the log copies).
    .target(name: "USVCContract", dependencies: ["USVCSys"]),
    // The per-job restart loop as a library, so its transition table is testable.
    .target(name: "USVCRunner", dependencies: ["USVCContract"]),
    .target(name: "USVCCore", dependencies: ["USVCContract", "CGit2"]),
    // Records the commit it is built from for `usvc --version` (Plugins/BuildInfo).
    .plugin(name: "BuildInfo", capability: .buildTool()),
    .executableTarget(
      name: "usvc",
      dependencies: ["USVCCore", .product(name: "ArgumentParser", package: "swift-argument-parser")],
      // Runs once per command: a static Swift runtime saves the loader and the
      // protocol-conformance scans of half a dozen shared libraries on every call.
      linkerSettings: [.unsafeFlags(["-static-stdlib", "-use-ld=lld", "-Xlinker", "--no-warnings", "-l_FoundationCollections", "-l_FoundationCShims", "-lswiftSynchronization"])],
      plugins: ["BuildInfo"]),
    // One runner exists per job: Glibc only, static stdlib, no Foundation, no libgit2.
    .executableTarget(
      name: "usvc-runner", dependencies: ["USVCRunner"],
      // Fully static: no dynamic loader or shared-library relocations per runner (USS
      // 176 KiB instead of ~500 KiB with -static-stdlib). Linker warnings are off because
      // glibc warns about the dlopen in the Swift runtime, which the runner never reaches.
      linkerSettings: [.unsafeFlags(["-static-executable", "-use-ld=lld", "-Xlinker", "--no-warnings"])]),
    .testTarget(name: "USVCTests", dependencies: ["USVCCore", "USVCRunner"]),
  ],
  swiftLanguageModes: [.v6]
)
