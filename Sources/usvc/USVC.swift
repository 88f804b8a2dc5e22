import ArgumentParser
import Glibc
import USVCCore
import USVCSys

@main
struct USVC: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "usvc",
    abstract: "Keeps your programs running, each in its own tmux window, without root.",
    discussion: "Jobs live under USVC_HOME (default ~/.usvc). See 'usvc help COMMAND'.",
    subcommands: [
      Start.self, Stop.self, Restart.self, Status.self, Show.self, Attach.self, Logs.self,
      Kill.self, Remove.self, Conf.self, Jobs.self, Pidof.self, Events.self, Save.self, Load.self,
      Check.self, Resurrect.self, Shutdown.self,
    ])

  /// Errors become one `usvc: …` line on stderr and exit 1 (SPEC), not
  /// ArgumentParser's usage dump and exit 64.
  static func main() {
    do {
      var command = try parse(losslessArguments())
      try command.run()
    } catch let exit as ExitCode {
      Glibc.exit(exit.rawValue)
    } catch {
      if exitCode(for: error) == .success {
        print(fullMessage(for: error))
        Glibc.exit(0)
      }
      let message = (error as? UsvcError)?.description ?? message(for: error)
      printError("usvc: " + (message.split(separator: "\n").first.map(String.init) ?? "error"))
      Glibc.exit(1)
    }
  }

  /// The command `arguments` ask for. ArgumentParser 1.8 takes time quadratic
  /// in the number of words an array argument or option collects (each one
  /// merges the set of places of all before it): 10,000 arguments to `start`
  /// took 5 s, 2,000 `-e` options 0.6 s and 10,000 about a minute (release
  /// build). Everything after GROUP (`start`) or JOB (`conf`) is passthrough
  /// whatever it holds, so only the first words are parsed; when the
  /// passthrough then captured to their end, the rest is appended to it.
  /// Otherwise more words are tried, and beyond `parsedWordsAtMost` (about
  /// 0.5 s) the command line is refused before it is parsed.
  static func parse(_ arguments: [String]) throws -> ParsableCommand {
    for parsedWords in [64, parsedWordsAtMost] where arguments.count > parsedWords {
      let head = Array(arguments.prefix(parsedWords))
      if var command = try? parseAsRoot(head) as? PassthroughCommand {
        let captured = command.passthrough
        if !captured.isEmpty && head.suffix(captured.count).elementsEqual(captured) {
          command.passthrough += arguments.dropFirst(parsedWords)
          return command
        }
      }
    }
    guard arguments.count <= parsedWordsAtMost else {
      throw UsvcError.conflict(
        "too many words: \(arguments.count) (at most \(parsedWordsAtMost) besides a program's arguments or a conf key's values)")
    }
    return try parseAsRoot(arguments)
  }

  static let parsedWordsAtMost = 2048

  /// The command line after the program's name, as lossless text: Swift's
  /// `CommandLine.arguments` turns bytes that are not UTF-8 into U+FFFD, and an
  /// argument must reach the job byte for byte (SPEC: start).
  static func losslessArguments() -> [String] {
    (1..<Int(CommandLine.argc)).map { String(losslessCString: CommandLine.unsafeArgv[$0]!) }
  }

  /// The supervisor for this caller: USVC_HOME checked, usvc-runner found beside usvc.
  static func supervisor() throws -> Supervisor {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    let executable = length > 0
      ? String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
      : CommandLine.arguments[0]
    return try Supervisor(environment: processEnvironment(), executable: executable)
  }
}

/// Writes text to stdout now (print buffers, and status lines must come out in order).
func output(_ text: String) {
  try? FileDescriptor.standardOutput.writeAll(text.hasSuffix("\n") ? text : text + "\n")
}

/// A command whose last argument captures every word after it, as given.
protocol PassthroughCommand: ParsableCommand {
  var passthrough: [String] { get set }
}

/// One or more selectors: job names, groups, `all`, `live`, `dead`.
struct SelectorArguments: ParsableArguments {
  @Argument(help: "Jobs (web-2), groups (web), all, live or dead.")
  var selectors: [String] = []
}
