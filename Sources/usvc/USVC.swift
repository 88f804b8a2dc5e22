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
    version: Version.line,
    subcommands: [
      Start.self, Stop.self, Restart.self, Status.self, Show.self, Attach.self, Logs.self,
      Kill.self, Remove.self, Conf.self, Jobs.self, Pidof.self, Events.self, Save.self, Load.self,
      Check.self, Resurrect.self, Shutdown.self, Top.self,
    ])

  /// Errors become one `usvc: …` line on stderr and exit 1 (SPEC), not
  /// ArgumentParser's usage dump and exit 64.
  static func main() {
    var arguments = losslessArguments()
    do {
      if arguments == ["--stdin-args"] {
        arguments = try standardInputWords()
        viaStandardInput = true
        // One NUL first: the caller's sign that usvc runs here (connecting and logging
        // in are over), so its --timeout stops counting for a verb that may take long.
        try? FileDescriptor.standardOutput.writeAll([0])
      }
      try checkHelpTopic(arguments)
      var command = try parse(arguments)
      try command.run()
    } catch let exit as ExitCode {
      Glibc.exit(exit.rawValue)
    } catch {
      if exitCode(for: error) == .success {
        print(fullMessage(for: error))
        Glibc.exit(0)
      }
      printError("usvc: " + oneLine(error, arguments: arguments))
      Glibc.exit(1)
    }
  }

  /// An error as one whole line. usvc's own messages are escaped whole
  /// (`visible`: a name holding a newline shows as `\n`). ArgumentParser's may
  /// go on over lines of its own (a list of the values allowed): the words the
  /// user typed are escaped in them first, then the first line is kept.
  static func oneLine(_ error: Error, arguments: [String]) -> String {
    if let error = error as? UsvcError { return error.description.visible }
    var message = message(for: error)
    if let refusal = typedValueRefusal(message) { return refusal.description.visible }
    // `--key=value` is quoted as its value alone.
    let typed = arguments + arguments.compactMap { word in word.firstIndex(of: "=").map { String(word[word.index(after: $0)...]) } }
    for word in typed.sorted(by: { $0.count > $1.count }) where word.visible != word {
      message = message.replacing(word, with: word.visible)
    }
    return message.split(separator: "\n").first.map(String.init) ?? "error"
  }

  /// Whether this command line came on standard input (`usvc --stdin-args`).
  nonisolated(unsafe) static var viaStandardInput = false

  /// `usvc --stdin-args`: the command's words on standard input, each ending in
  /// a NUL byte; how `--hosts` hands a command to a remote usvc (SPEC: Many
  /// hosts), so that no word passes through the remote shell or shows in `ps`.
  static func standardInputWords() throws -> [String] {
    let bytes: [UInt8]
    do {
      bytes = try FileDescriptor(rawValue: 0).readAll()
    } catch {
      throw UsvcError.system("--stdin-args: cannot read standard input", error)
    }
    guard bytes.last == 0 else {
      throw ValidationError("--stdin-args: expected the command's words on standard input, each ending in a NUL byte")
    }
    return bytes.dropLast().split(separator: 0, omittingEmptySubsequences: false).map { String(lossless: $0) }
  }

  /// A value the parser refused for a typed option, said as usvc says it
  /// elsewhere (`unknown signal 'X'`, as a conf's stop-signal), not as
  /// ArgumentParser's "The value 'X' is invalid for '-s <signal>'".
  static func typedValueRefusal(_ message: String) -> UsvcError? {
    let refusals: [(suffix: String, error: (String) -> UsvcError)] = [
      ("' is invalid for '-s <signal>'", UsvcError.badSignal)
    ]
    let prefix = "The value '"
    for refusal in refusals where message.hasPrefix(prefix) && message.hasSuffix(refusal.suffix) {
      return refusal.error(String(message.dropFirst(prefix.count).dropLast(refusal.suffix.count)))
    }
    return nil
  }

  /// `usvc help TOPIC…` for a command that does not exist is an error, not the
  /// overview with exit 0 that ArgumentParser gives.
  static func checkHelpTopic(_ arguments: [String]) throws {
    guard arguments.first == "help" else { return }
    var commands = configuration.subcommands
    for topic in arguments.dropFirst() {
      guard let command = commands.first(where: { $0.configuration.commandName == topic }) else {
        throw ValidationError("no command named '\(topic.visible)': see 'usvc help'")
      }
      commands = command.configuration.subcommands
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
  /// Reading commands (and `stop`) pass `forWriting: false`: they work on a read-only home.
  static func supervisor(forWriting: Bool = true) throws -> Supervisor {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    let executable = length > 0
      ? String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
      : CommandLine.arguments[0]
    return try Supervisor(environment: processEnvironment(), executable: executable, forWriting: forWriting)
  }
}

/// Writes text to stdout now (print buffers, and status lines must come out in order).
func output(_ text: String) {
  try? FileDescriptor.standardOutput.writeAll(text.hasSuffix("\n") ? text : text + "\n")
}

/// Whether standard output gets colour: a terminal, and `NO_COLOR` unset or
/// empty (no-color.org: only a value turns colour off).
func colorWanted() -> Bool {
  guard isatty(1) == 1 else { return false }
  guard let value = getenv("NO_COLOR") else { return true }
  return value.pointee == 0
}

/// Lines of bytes for standard output: verbatim when it is not a terminal (so
/// `usvc logs web-1 > copy` is the log byte for byte, invalid UTF-8 included);
/// on a terminal, control characters and bytes that are not UTF-8 made visible
/// (`Visible`, tabs kept, colours kept unless NO_COLOR), so nothing a job
/// printed can retitle, clear or reprogram the user's terminal or set its clipboard.
struct LineOutput {
  let toTerminal = isatty(1) == 1
  let keepingColors = colorWanted()
  private var pending: [UInt8] = []

  /// Adds one line (without its newline) after `prefix`, and writes when enough is pending.
  mutating func add(_ line: some Collection<UInt8>, prefix: String = "") {
    if toTerminal {
      pending += Visible.escaped(Array(prefix.utf8) + line, keepingTabs: true, keepingColors: keepingColors)
    } else {
      pending += prefix.utf8
      pending += line
    }
    pending.append(UInt8(ascii: "\n"))
    if pending.count >= 65536 { flush() }
  }

  /// Writes what is pending now.
  mutating func flush() {
    guard !pending.isEmpty else { return }
    try? FileDescriptor.standardOutput.writeAll(pending)
    pending.removeAll(keepingCapacity: true)
  }
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

/// A command whose selectors may not be left out, and the line that says so.
protocol SelectorsRequired {
  static var missingSelectors: String { get }
}

/// At least one selector, checked by the parser: the refusal is `Command.missingSelectors`.
struct RequiredSelectors<Command: SelectorsRequired>: ParsableArguments {
  @Argument(help: "Jobs (web-2), groups (web), all, live or dead.")
  var selectors: [String] = []

  func validate() throws {
    if selectors.isEmpty { throw ValidationError(Command.missingSelectors) }
  }
}
