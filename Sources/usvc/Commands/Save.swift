import ArgumentParser
import USVCCore

extension USVC {
  struct Save: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Save all groups to one git-config file.")
    @Argument var file: String
    func run() throws { throw UsvcError.conflict("save is not implemented yet") }
  }

  struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Recreate the groups saved in FILE.")
    @Argument var file: String
    func run() throws { throw UsvcError.conflict("load is not implemented yet") }
  }
}
