import Glibc
import USVCSys

// The board draws with a small renderer of its own rather than ncurses. Why:
// 1. Restoring the terminal after a crash must be async-signal-safe: a fixed
//    string and a `tcsetattr` (`TerminalGuard`, in CShims). ncurses'
//    `endwin` is not safe in a signal handler, and ncurses loaded with dlopen
//    (as libgit2 is) would need ~30 function pointers plus its globals
//    (`stdscr`, `LINES`, `COLS`) and its macros redone by hand.
// 2. What the board needs is a handful of sequences that xterm, tmux, screen
//    and every current terminal emulator implement identically, so terminfo
//    would add lookups without changing a byte: CUP `ESC[r;cH`, SGR `ESC[…m`
//    (0 reset, 1 bold, 2 dim, 7 reverse, 31/32/33 colours), ED `ESC[2J`, the
//    xterm private modes 1049 (alternate screen; screen and tmux implement it
//    too) and 25 (cursor). Nothing relies on line wrapping, scrolling regions,
//    insert/delete or cursor-key modes (arrows are read in both ESC[A and ESCOA forms).
//    A terminal that cannot address the cursor (TERM unset or `dumb`) is refused.
// 3. Width: every cell is measured with `wcwidth` under a UTF-8 LC_CTYPE, a
//    wide character takes two cells (never split at the right edge), combining
//    marks join the cell before; rows never exceed the width, so nothing wraps.
// 4. Diff: each frame is compared with the previous one cell by cell and only
//    the changed runs of cells are written, each after one cursor move: an
//    unchanged frame writes nothing.

/// How a cell is drawn: a colour (SGR 31/32/33, 0 for the default) and attributes.
public struct CellStyle: Equatable, Sendable {
  public var color: UInt8 = 0
  public var bold = false
  public var dim = false
  public var reverse = false
  public init(color: UInt8 = 0, bold: Bool = false, dim: Bool = false, reverse: Bool = false) {
    self.color = color
    self.bold = bold
    self.dim = dim
    self.reverse = reverse
  }
  public static let plain = CellStyle()

  /// The SGR sequence that sets exactly this style from any other.
  var sequence: String {
    var codes = ["0"]
    if bold { codes.append("1") }
    if dim { codes.append("2") }
    if reverse { codes.append("7") }
    if color != 0 { codes.append(String(color)) }
    return "\u{1b}[" + codes.joined(separator: ";") + "m"
  }
}

/// One column of the screen. A wide character's second column holds an empty
/// `text` (a continuation), never written by itself.
public struct Cell: Equatable, Sendable {
  public var text: String
  public var style: CellStyle
  public static let blank = Cell(text: " ", style: .plain)
  var isContinuation: Bool { text.isEmpty }
}

/// A piece of a row: text (already made visible: no control characters) in one style.
public struct Segment: Sendable {
  public var text: String
  public var style: CellStyle
  public init(_ text: String, _ style: CellStyle = .plain) {
    self.text = text
    self.style = style
  }
}

/// The columns a scalar takes on a terminal: 0 (combining), 1 or 2 (wide);
/// controls, which the board never draws, count as one (they are replaced).
func displayWidth(_ scalar: Unicode.Scalar) -> Int {
  if scalar.value >= 0x20 && scalar.value < 0x7f { return 1 }
  return terminalColumns(of: scalar) ?? 1
}

/// The columns `text` takes on a terminal.
public func displayWidth(_ text: String) -> Int {
  text.unicodeScalars.reduce(0) { $0 + displayWidth($1) }
}

/// Lays segments out on a row of exactly `width` cells: cut at the edge (a
/// wide character that would straddle it becomes a space), padded with
/// blanks in `fill`'s style.
public func layOut(_ segments: [Segment], width: Int, fill: CellStyle = .plain) -> [Cell] {
  var cells: [Cell] = []
  cells.reserveCapacity(width)
  outer: for segment in segments {
    for scalar in segment.text.unicodeScalars {
      let isControl = scalar.value < 0x20 || (0x7f...0x9f).contains(scalar.value)
      let width1 = isControl ? 1 : displayWidth(scalar)
      if width1 == 0 {
        // A combining mark joins the character before it (or is dropped at a row's start).
        if let last = cells.indices.last(where: { !cells[$0].isContinuation }) {
          cells[last].text.unicodeScalars.append(scalar)
        }
        continue
      }
      if cells.count + width1 > width {
        if width1 == 2 && cells.count < width { cells.append(Cell(text: " ", style: segment.style)) }
        break outer
      }
      cells.append(Cell(text: isControl ? "?" : String(scalar), style: segment.style))
      if width1 == 2 { cells.append(Cell(text: "", style: segment.style)) }
    }
  }
  while cells.count < width { cells.append(Cell(text: " ", style: fill)) }
  return cells
}

/// What is on the terminal, and the bytes that turn it into the next frame.
public struct ScreenDiff {
  public private(set) var rows: [[Cell]] = []
  public private(set) var width = 0

  public init() {}

  /// Forgets what is on the terminal: the next `update` starts from a blank
  /// screen of `width` × `height` (after a resize, when the caller clears it).
  public mutating func reset(width: Int, height: Int) {
    self.width = width
    rows = Array(repeating: Array(repeating: Cell.blank, count: width), count: height)
  }

  /// The bytes that turn the screen into `frame` (rows of `width` cells, as
  /// many as the screen has), writing only the changed runs of each row.
  public mutating func update(to frame: [[Cell]]) -> String {
    var output = ""
    var current: CellStyle? = nil
    for (index, row) in frame.enumerated() where index < rows.count {
      let old = rows[index]
      guard row != old, row.count == old.count, !row.isEmpty else { continue }
      for run in ScreenDiff.changedRuns(old, row) {
        output += "\u{1b}[\(index + 1);\(run.lowerBound + 1)H"
        for cell in row[run] where !cell.isContinuation {
          if cell.style != current {
            output += cell.style.sequence
            current = cell.style
          }
          output += cell.text
        }
      }
      rows[index] = row
    }
    if current != nil && current != .plain { output += CellStyle.plain.sequence }
    return output
  }

  /// The column ranges of `new` to write over `old`: each run of changed cells,
  /// widened to whole wide characters; runs closer than a cursor move costs
  /// (about 8 bytes) are written as one.
  static func changedRuns(_ old: [Cell], _ new: [Cell]) -> [ClosedRange<Int>] {
    var runs: [ClosedRange<Int>] = []
    var column = 0
    while column < new.count {
      guard new[column] != old[column] else {
        column += 1
        continue
      }
      var first = column
      var last = column
      while last + 1 < new.count && new[last + 1] != old[last + 1] { last += 1 }
      // Whole wide characters only: start on a character's first cell, end on its last.
      while first > 0 && (new[first].isContinuation || old[first].isContinuation) { first -= 1 }
      while last + 1 < new.count && (new[last + 1].isContinuation || old[last + 1].isContinuation) { last += 1 }
      if let previous = runs.last, first - previous.upperBound <= 8 {
        runs[runs.count - 1] = previous.lowerBound...last
      } else {
        runs.append(first...last)
      }
      column = last + 1
    }
    return runs
  }
}

/// The controlling terminal while the board owns it: raw input, the
/// alternate screen, no cursor; given back on every way out through
/// `TerminalGuard.restore`, the only place that restores it.
public struct BoardTerminal {
  /// Entering: alternate screen, cursor hidden, plain style, cleared.
  static let enterSequence = "\u{1b}[?1049h\u{1b}[?25l\u{1b}[0m\u{1b}[H\u{1b}[2J"
  /// Leaving: plain style, cursor shown, main screen back as it was.
  static let leaveSequence = "\u{1b}[0m\u{1b}[?25h\u{1b}[?1049l"

  public let input = FileDescriptor.standardInput
  public let output = FileDescriptor.standardOutput

  /// Checks that both ends are a terminal that can address its cursor.
  public init(environment: [String]) throws(UsvcError) {
    guard isatty(0) == 1, isatty(1) == 1 else {
      throw .notATerminal(command: "top", what: "standard input and output are not one")
    }
    let term = value(of: "TERM", in: environment) ?? ""
    if term.isEmpty || term == "dumb" {
      throw .notATerminal(command: "top", what: "TERM is \(term.isEmpty ? "not set" : "'dumb'")")
    }
  }

  /// Raw input (no echo, no line editing, no signals from keys: Ctrl-C
  /// arrives as a byte), the board's screen, and the crash guard.
  public func enter() throws(UsvcError) {
    var saved = termios()
    guard tcgetattr(input.rawValue, &saved) == 0 else { throw .system("cannot read the terminal's settings", .current) }
    var raw = saved
    raw.c_iflag &= ~tcflag_t(IXON | ICRNL | INLCR | IGNCR | ISTRIP | BRKINT)
    raw.c_lflag &= ~tcflag_t(ECHO | ICANON | ISIG | IEXTEN)
    raw.c_oflag &= ~tcflag_t(OPOST)
    withUnsafeMutableBytes(of: &raw.c_cc) { cc in
      cc[Int(VMIN)] = 1
      cc[Int(VTIME)] = 0
    }
    do {
      try TerminalGuard.install(fd: output.rawValue, saved: saved, leaving: BoardTerminal.leaveSequence)
    } catch {
      throw .system("cannot install the terminal's crash guard", error)
    }
    // TCSADRAIN, not TCSAFLUSH: input already typed (a focus report) is kept.
    guard tcsetattr(input.rawValue, TCSADRAIN, &raw) == 0 else {
      let error = Errno.current
      TerminalGuard.restore()
      throw .system("cannot set the terminal to raw input", error)
    }
    write(BoardTerminal.enterSequence)
  }

  /// Gives the terminal back as it was (only the first call does anything).
  public func restore() { TerminalGuard.restore() }

  /// Writes now, all of it (a terminal that is gone loses the rest).
  public func write(_ text: String) {
    guard !text.isEmpty else { return }
    _ = try? output.writeAll(text)
  }

  /// Rows and columns, or 24 × 80 when the terminal does not say.
  public func size() -> (rows: Int, columns: Int) {
    guard let size = windowSize(of: output.rawValue), size.ws_row > 0, size.ws_col > 0 else { return (24, 80) }
    return (Int(size.ws_row), Int(size.ws_col))
  }
}
