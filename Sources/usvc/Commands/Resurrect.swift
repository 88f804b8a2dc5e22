import ArgumentParser
import USVCCore

extension USVC {
  struct Resurrect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Start every job that should run but has no live runner.")
    func run() throws { throw UsvcError.conflict("resurrect is not implemented yet") }
  }

  struct Shutdown: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stop every job, then the tmux server; resurrect undoes it.")
    func run() throws { throw UsvcError.conflict("shutdown is not implemented yet") }
  }
}
