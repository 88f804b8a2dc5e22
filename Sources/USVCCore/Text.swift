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

extension Unicode.Scalar {
  /// C0 and C1 control characters and DEL.
  var isControl: Bool { value < 0x20 || (0x7f...0x9f).contains(value) }
}
