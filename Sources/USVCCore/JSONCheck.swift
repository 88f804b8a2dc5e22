/// Checking JSON that another program printed (a remote `usvc status --json`)
/// before passing it on.
extension JSON {
  /// Whether `text` is exactly one JSON object (RFC 8259; white space around
  /// it allowed), nested at most `maxDepth` deep.
  public static func isObject(_ text: String, maxDepth: Int = 64) -> Bool {
    var checker = Checker(bytes: Array(text.utf8), maxDepth: maxDepth)
    checker.skipSpace()
    guard checker.peek == UInt8(ascii: "{"), checker.value(depth: 0) else { return false }
    checker.skipSpace()
    return checker.index == checker.bytes.count
  }

  /// A recursive-descent reader that only says whether a value is well formed.
  private struct Checker {
    let bytes: [UInt8]
    let maxDepth: Int
    var index = 0

    var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

    mutating func skipSpace() {
      while let byte = peek, byte == 0x20 || byte == 0x09 || byte == 0x0a || byte == 0x0d { index += 1 }
    }

    mutating func take(_ byte: UInt8) -> Bool {
      guard peek == byte else { return false }
      index += 1
      return true
    }

    mutating func literal(_ word: String) -> Bool {
      for byte in word.utf8 where !take(byte) { return false }
      return true
    }

    mutating func value(depth: Int) -> Bool {
      guard depth < maxDepth, let byte = peek else { return false }
      switch byte {
      case UInt8(ascii: "{"):
        index += 1
        skipSpace()
        if take(UInt8(ascii: "}")) { return true }
        repeat {
          skipSpace()
          guard string() else { return false }
          skipSpace()
          guard take(UInt8(ascii: ":")) else { return false }
          skipSpace()
          guard value(depth: depth + 1) else { return false }
          skipSpace()
        } while take(UInt8(ascii: ","))
        return take(UInt8(ascii: "}"))
      case UInt8(ascii: "["):
        index += 1
        skipSpace()
        if take(UInt8(ascii: "]")) { return true }
        repeat {
          skipSpace()
          guard value(depth: depth + 1) else { return false }
          skipSpace()
        } while take(UInt8(ascii: ","))
        return take(UInt8(ascii: "]"))
      case UInt8(ascii: "\""): return string()
      case UInt8(ascii: "t"): return literal("true")
      case UInt8(ascii: "f"): return literal("false")
      case UInt8(ascii: "n"): return literal("null")
      default: return number()
      }
    }

    /// A string: no raw control character, only JSON's escapes. The bytes came
    /// from a Swift String, so they are valid UTF-8.
    mutating func string() -> Bool {
      guard take(UInt8(ascii: "\"")) else { return false }
      while let byte = peek {
        index += 1
        switch byte {
        case UInt8(ascii: "\""): return true
        case 0..<0x20: return false
        case UInt8(ascii: "\\"):
          guard let escaped = peek else { return false }
          index += 1
          if escaped == UInt8(ascii: "u") {
            for _ in 0..<4 {
              guard let hex = peek, isHexDigit(hex) else { return false }
              index += 1
            }
          } else if !Array("\"\\/bfnrt".utf8).contains(escaped) {
            return false
          }
        default: break
        }
      }
      return false
    }

    func isHexDigit(_ byte: UInt8) -> Bool {
      (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
        || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    mutating func number() -> Bool {
      func digits() -> Int {
        let start = index
        while let byte = peek, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { index += 1 }
        return index - start
      }
      _ = take(UInt8(ascii: "-"))
      if take(UInt8(ascii: "0")) {
      } else if digits() == 0 {
        return false
      }
      if take(UInt8(ascii: ".")) && digits() == 0 { return false }
      if take(UInt8(ascii: "e")) || take(UInt8(ascii: "E")) {
        if !take(UInt8(ascii: "+")) { _ = take(UInt8(ascii: "-")) }
        if digits() == 0 { return false }
      }
      return true
    }
  }
}
