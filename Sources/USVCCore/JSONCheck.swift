/// Reading JSON that another program printed (a remote `usvc status --json`,
/// the board's feed from another host) before passing it on or showing it.
extension JSON {
  /// Whether `text` is exactly one JSON object (RFC 8259; white space around
  /// it allowed), nested at most `maxDepth` deep.
  public static func isObject(_ text: String, maxDepth: Int = 64) -> Bool {
    if case .object = parse(text, maxDepth: maxDepth) { return true }
    return false
  }

  /// The one JSON value `text` holds (white space around it allowed), nested
  /// at most `maxDepth` deep; nil when it is not exactly that. Strings are
  /// decoded (`\u001b` becomes ESC): a caller shows them with `visible`.
  public static func parse(_ text: String, maxDepth: Int = 64) -> JSON? {
    var reader = Reader(bytes: Array(text.utf8), maxDepth: maxDepth)
    reader.skipSpace()
    guard let value = reader.value(depth: 0) else { return nil }
    reader.skipSpace()
    return reader.index == reader.bytes.count ? value : nil
  }

  /// The value of `key` in an object (its first), nil for anything else.
  public subscript(key: String) -> JSON? {
    guard case .object(let fields) = self else { return nil }
    return fields.first { $0.0 == key }?.1
  }

  public var stringValue: String? {
    if case .string(let value) = self { return value }
    return nil
  }

  public var numberValue: Double? {
    if case .number(let value) = self { return value }
    return nil
  }

  public var boolValue: Bool? {
    if case .bool(let value) = self { return value }
    return nil
  }

  public var arrayValue: [JSON]? {
    if case .array(let items) = self { return items }
    return nil
  }

  /// A recursive-descent reader: the value, or nil where the text is not well formed.
  private struct Reader {
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

    mutating func literal(_ word: String, _ value: JSON) -> JSON? {
      for byte in word.utf8 where !take(byte) { return nil }
      return value
    }

    mutating func value(depth: Int) -> JSON? {
      guard depth < maxDepth, let byte = peek else { return nil }
      switch byte {
      case UInt8(ascii: "{"):
        index += 1
        skipSpace()
        var fields: [(String, JSON)] = []
        if take(UInt8(ascii: "}")) { return .object(fields) }
        repeat {
          skipSpace()
          guard let key = string() else { return nil }
          skipSpace()
          guard take(UInt8(ascii: ":")) else { return nil }
          skipSpace()
          guard let item = value(depth: depth + 1) else { return nil }
          fields.append((key, item))
          skipSpace()
        } while take(UInt8(ascii: ","))
        return take(UInt8(ascii: "}")) ? .object(fields) : nil
      case UInt8(ascii: "["):
        index += 1
        skipSpace()
        var items: [JSON] = []
        if take(UInt8(ascii: "]")) { return .array(items) }
        repeat {
          skipSpace()
          guard let item = value(depth: depth + 1) else { return nil }
          items.append(item)
          skipSpace()
        } while take(UInt8(ascii: ","))
        return take(UInt8(ascii: "]")) ? .array(items) : nil
      case UInt8(ascii: "\""): return string().map { .string($0) }
      case UInt8(ascii: "t"): return literal("true", .bool(true))
      case UInt8(ascii: "f"): return literal("false", .bool(false))
      case UInt8(ascii: "n"): return literal("null", .null)
      default: return number()
      }
    }

    /// A string: no raw control character, only JSON's escapes. The bytes came
    /// from a Swift String, so they are valid UTF-8; a `\u` escape of a lone
    /// surrogate becomes U+FFFD.
    mutating func string() -> String? {
      guard take(UInt8(ascii: "\"")) else { return nil }
      var decoded: [UInt8] = []
      while let byte = peek {
        index += 1
        switch byte {
        case UInt8(ascii: "\""): return String(decoding: decoded, as: UTF8.self)
        case 0..<0x20: return nil
        case UInt8(ascii: "\\"):
          guard let escaped = peek else { return nil }
          index += 1
          switch escaped {
          case UInt8(ascii: "u"):
            guard var unit = hex4() else { return nil }
            if (0xd800..<0xdc00).contains(unit), bytes[index...].starts(with: Array("\\u".utf8)) {
              let mark = index
              index += 2
              if let low = hex4(), (0xdc00..<0xe000).contains(low) {
                unit = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)
              } else {
                index = mark
              }
            }
            decoded += Array(String(Unicode.Scalar(unit) ?? "\u{fffd}").utf8)
          case UInt8(ascii: "b"): decoded.append(0x08)
          case UInt8(ascii: "f"): decoded.append(0x0c)
          case UInt8(ascii: "n"): decoded.append(0x0a)
          case UInt8(ascii: "r"): decoded.append(0x0d)
          case UInt8(ascii: "t"): decoded.append(0x09)
          case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(escaped)
          default: return nil
          }
        default: decoded.append(byte)
        }
      }
      return nil
    }

    /// Four hex digits (after `\u`).
    mutating func hex4() -> UInt32? {
      var unit: UInt32 = 0
      for _ in 0..<4 {
        guard let byte = peek, let digit = hexValue(byte) else { return nil }
        unit = unit << 4 | digit
        index += 1
      }
      return unit
    }

    func hexValue(_ byte: UInt8) -> UInt32? {
      switch byte {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(byte - UInt8(ascii: "0"))
      case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(byte - UInt8(ascii: "a") + 10)
      case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(byte - UInt8(ascii: "A") + 10)
      default: return nil
      }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    mutating func number() -> JSON? {
      let start = index
      func digits() -> Int {
        let first = index
        while let byte = peek, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { index += 1 }
        return index - first
      }
      _ = take(UInt8(ascii: "-"))
      if take(UInt8(ascii: "0")) {
      } else if digits() == 0 {
        return nil
      }
      if take(UInt8(ascii: ".")) && digits() == 0 { return nil }
      if take(UInt8(ascii: "e")) || take(UInt8(ascii: "E")) {
        if !take(UInt8(ascii: "+")) { _ = take(UInt8(ascii: "-")) }
        if digits() == 0 { return nil }
      }
      return Double(String(decoding: bytes[start..<index], as: UTF8.self)).map { .number($0) }
    }
  }
}
