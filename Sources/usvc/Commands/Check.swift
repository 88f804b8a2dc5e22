import ArgumentParser
import USVCCore

extension USVC {
  struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate every conf; print each problem, exit 1 if any.")
    func run() throws { throw UsvcError.conflict("check is not implemented yet") }
  }
}
