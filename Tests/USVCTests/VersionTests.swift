import Foundation
import Testing

@Suite("usvc --version")
struct VersionTests {
  @Test("prints one line naming the release and the commit (or that it is unknown), exit 0")
  func oneLine() throws {
    let outcome = try TestHome.run([usvcBinary, "--version"], environment: ProcessInfo.processInfo.environment)
    #expect(outcome.status == 0, "stderr: \(outcome.stderr)")
    #expect(outcome.stderr.isEmpty)
    #expect(outcome.stdout.hasSuffix("\n"))
    #expect(outcome.lines.count == 1, "printed \(outcome.stdout.debugDescription)")
    // The shape bench/bench.py reads to name the binaries it measured.
    let line = outcome.lines.first ?? ""
    let known = line.wholeMatch(of: /usvc \S+ \(commit [0-9a-f]{40}, (clean|dirty) tree\)/) != nil
    let unknown = line.wholeMatch(of: /usvc \S+ \(commit unknown\)/) != nil
    #expect(known || unknown, "unexpected shape: \(line)")
  }
}
