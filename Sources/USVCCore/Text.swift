import USVCSys

/// Small text helpers shared by the messages and outputs of usvc.
extension String {
  /// Without leading and trailing white space.
  var trimmed: String {
    var text = self[...]
    while let last = text.last, last.isWhitespace { text.removeLast() }
    while let first = text.first, first.isWhitespace { text.removeFirst() }
    return String(text)
  }

  /// Single-quoted for a POSIX shell (`it's` → `'it'\''s'`): the one quoting of a word.
  public var shellQuoted: String { "'" + replacing("'", with: "'\\''") + "'" }

  /// On one line, control characters made visible (`\n`, `\t`, `\x1b`), so a
  /// value in a message, a status line or `show` cannot break the line or the
  /// terminal; a byte that is not UTF-8 (lossless text) shows as `\xff`.
  public var visible: String {
    var shown = ""
    for scalar in unicodeScalars {
      switch scalar {
      case "\n": shown += "\\n"
      case "\t": shown += "\\t"
      case _ where scalar.escapedByte != nil: shown += "\\x" + String(scalar.escapedByte!, radix: 16)
      case _ where scalar.isControl: shown += "\\x" + (scalar.value < 16 ? "0" : "") + String(scalar.value, radix: 16)
      default: shown.unicodeScalars.append(scalar)
      }
    }
    return shown
  }
}

/// Bytes made safe to show on a terminal.
public enum Visible {
  /// `bytes` with every control character (C0, DEL, C1) written as `\xHH`
  /// (newline as `\n`, and tab as `\t` unless `keepingTabs`), and every byte
  /// that is not part of valid UTF-8 as `\xHH` too: no escape sequence (a window
  /// title, OSC 52 clipboard, clear screen) reaches the terminal, and a byte the
  /// terminal could not draw is shown rather than turned into U+FFFD. Printable
  /// UTF-8 (accents, CJK, emoji) passes unchanged; a backslash is not doubled,
  /// so this is for reading, not for parsing back.
  ///
  /// With `keepingColors`, colour and style sequences (SGR: `ESC [` digits,
  /// `;` or `:`, then `m`) pass, and a reset (`ESC [0m`) ends the text when
  /// any did: a job sees a terminal and colours its output, and colours
  /// cannot move the cursor, retitle or clear anything, nor outlast the line.
  public static func escaped(_ bytes: some Collection<UInt8>, keepingTabs: Bool, keepingColors: Bool = false) -> [UInt8] {
    let bytes = Array(bytes)
    var shown: [UInt8] = []
    shown.reserveCapacity(bytes.count)
    var colored = false
    func hex(_ byte: UInt8) {
      let digits = Array("0123456789abcdef".utf8)
      shown += [UInt8(ascii: "\\"), UInt8(ascii: "x"), digits[Int(byte >> 4)], digits[Int(byte & 15)]]
    }
    var index = 0
    while index < bytes.count {
      // Plain ASCII, the common case, without the parser.
      let byte = bytes[index]
      if byte >= 0x20 && byte < 0x7f {
        shown.append(byte)
        index += 1
        continue
      }
      if keepingColors, byte == 0x1b, let length = colorSequenceLength(bytes, at: index) {
        shown += bytes[index..<index + length]
        index += length
        colored = true
        continue
      }
      // A fresh parser from here: on an error it says how many bytes to show as \xHH.
      var input = bytes[index...].makeIterator()
      var parser = Unicode.UTF8.ForwardParser()
      switch parser.parseScalar(from: &input) {
      case .valid(let encoded):
        let scalar = Unicode.UTF8.decode(encoded)
        switch scalar {
        case "\n": shown += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
        case "\t" where !keepingTabs: shown += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
        case "\t": shown.append(UInt8(ascii: "\t"))
        case _ where scalar.isControl: hex(UInt8(scalar.value))
        default: shown += encoded
        }
        index += encoded.count
      case .error(let length):
        for invalid in bytes[index..<index + length] { hex(invalid) }
        index += length
      case .emptyInput:
        index = bytes.count
      }
    }
    if colored { shown += [0x1b, UInt8(ascii: "["), UInt8(ascii: "0"), UInt8(ascii: "m")] }
    return shown
  }

  /// The length of the SGR sequence at `start` (`ESC [ [0-9;:]{0,32} m`), or nil.
  static func colorSequenceLength(_ bytes: [UInt8], at start: Int) -> Int? {
    guard start + 2 < bytes.count, bytes[start + 1] == UInt8(ascii: "[") else { return nil }
    var index = start + 2
    while index < bytes.count && index - start < 35 {
      let byte = bytes[index]
      if byte == UInt8(ascii: "m") { return index - start + 1 }
      guard (UInt8(ascii: "0")...UInt8(ascii: ";")).contains(byte) else { return nil }
      index += 1
    }
    return nil
  }
}

extension Unicode.Scalar {
  /// C0 and C1 control characters and DEL.
  public var isControl: Bool { value < 0x20 || (0x7f...0x9f).contains(value) }
}
