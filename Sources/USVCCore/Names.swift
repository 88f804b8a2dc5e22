/// Group and job names (SPEC: Names and selectors).
public enum Names {
  public static let reserved: Set<String> = ["all", "live", "dead", "usvc"]

  /// Checks a group name: 1–32 of `a-z 0-9 -`, starting with a letter, not
  /// ending in `-` and digits (so `web-2` always names a job, never a group:
  /// a selector means one thing), not reserved.
  public static func validateGroup(_ name: String) throws(UsvcError) {
    let bytes = Array(name.utf8)
    guard !bytes.isEmpty else { throw .badGroupName(name, why: "it is empty") }
    guard bytes.count <= 32 else { throw .badGroupName(name, why: "longer than 32 characters") }
    guard let first = bytes.first, first >= UInt8(ascii: "a") && first <= UInt8(ascii: "z") else {
      throw .badGroupName(name, why: "it must start with a letter a-z")
    }
    for byte in bytes {
      let allowed = (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
        || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-")
      guard allowed else { throw .badGroupName(name, why: "only a-z, 0-9 and - are allowed") }
    }
    if let dash = bytes.lastIndex(of: UInt8(ascii: "-")), dash + 1 < bytes.count,
      bytes[(dash + 1)...].allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
    {
      throw .badGroupName(name, why: "it ends in - and digits, like a job name (GROUP-N)")
    }
    guard !reserved.contains(name) else { throw .badGroupName(name, why: "it is reserved") }
  }

  /// `web-12` → (`web`, 12); nil for anything that is not GROUP-N.
  public static func split(job name: String) -> (group: String, index: Int)? {
    guard let dash = name.lastIndex(of: "-"), let index = Int(name[name.index(after: dash)...]),
      index > 0, name[name.index(after: dash)...].first != "+"
    else { return nil }
    let group = String(name[..<dash])
    guard (try? validateGroup(group)) != nil else { return nil }
    return (group, index)
  }

  /// The `count` lowest free indexes of `group`, given the job names in use.
  public static func freeNames(group: String, count: Int, taken: [String]) -> [String] {
    let used = Set(taken.compactMap { split(job: $0) }.filter { $0.group == group }.map(\.index))
    var result: [String] = []
    var index = 1
    while result.count < count {
      if !used.contains(index) { result.append("\(group)-\(index)") }
      index += 1
    }
    return result
  }

  /// Natural order: `web-2` before `web-10`.
  public static func naturalLess(_ a: String, _ b: String) -> Bool {
    var left = Array(a.utf8)[...]
    var right = Array(b.utf8)[...]
    func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }
    while let x = left.first, let y = right.first {
      if isDigit(x) && isDigit(y) {
        let leftDigits = left.prefix(while: isDigit)
        let rightDigits = right.prefix(while: isDigit)
        let l = leftDigits.drop { $0 == 48 }
        let r = rightDigits.drop { $0 == 48 }
        if l.count != r.count { return l.count < r.count }
        if !l.elementsEqual(r) { return l.lexicographicallyPrecedes(r) }
        left = left.dropFirst(leftDigits.count)
        right = right.dropFirst(rightDigits.count)
      } else {
        if x != y { return x < y }
        left = left.dropFirst()
        right = right.dropFirst()
      }
    }
    return left.isEmpty && !right.isEmpty
  }
}
