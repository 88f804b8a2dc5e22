/// Just enough JSON to write status lines: ordered keys, correct escaping.
public indirect enum JSON: Sendable {
  case null
  case bool(Bool)
  case number(Double)
  case string(String)
  case array([JSON])
  case object([(String, JSON)])

  public func encoded() -> String {
    switch self {
    case .null: return "null"
    case .bool(let value): return value ? "true" : "false"
    case .number(let value):
      if value.isFinite && value == value.rounded() && abs(value) < 1e15 { return String(Int64(value)) }
      return value.isFinite ? String(value) : "null"
    case .string(let value): return JSON.quote(value)
    case .array(let items): return "[" + items.map { $0.encoded() }.joined(separator: ",") + "]"
    case .object(let fields):
      return "{" + fields.map { JSON.quote($0.0) + ":" + $0.1.encoded() }.joined(separator: ",") + "}"
    }
  }

  static func quote(_ text: String) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\"": result += "\\\""
      case "\\": result += "\\\\"
      case "\n": result += "\\n"
      case "\r": result += "\\r"
      case "\t": result += "\\t"
      // A byte that is not UTF-8 (lossless text) has no JSON form.
      case _ where scalar.escapedByte != nil: result += "\\ufffd"
      case _ where scalar.value < 0x20 || scalar.value == 0x7f:
        let hex = String(scalar.value, radix: 16)
        result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
      default: result.unicodeScalars.append(scalar)
      }
    }
    return result + "\""
  }
}
