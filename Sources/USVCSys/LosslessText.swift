import Glibc

/// Text that holds any bytes but NUL, UTF-8 or not (SPEC: arguments and
/// environment are kept byte for byte), as a Swift `String`, so the rest of
/// usvc handles it as text.
///
/// Swift decodes bytes that are not UTF-8 as U+FFFD, which loses them. Here
/// each such byte B (0x80–0xFF) becomes the scalar U+10FF00 + B instead, from
/// the top of a private-use plane; a scalar of that range that was really in
/// the input (U+10FF80–U+10FFFF, four bytes `F4 8F BE|BF xx`) is kept as its
/// four escaped bytes, so decoding is one-to-one and `losslessBytes` gives
/// back exactly the bytes decoded (the idea of Python's `surrogateescape`).
/// Only the edges convert: argv and `environ` coming in; confs, specs, the
/// runner's exec and what usvc prints going out.
extension String {
  /// The text of `bytes`, each byte that is not part of UTF-8 kept as an escape scalar.
  public init(lossless bytes: some Collection<UInt8>) {
    // Nearly always: valid UTF-8 without the lead byte of the escape range,
    // checked on contiguous bytes without generic code (`status` decodes every
    // job's spec).
    if let text = bytes.withContiguousStorageIfAvailable(String.init(plainUTF8:)) ?? nil {
      self = text
      return
    }
    self.init(decodingWithEscapes: Array(bytes))
  }

  /// The text of `bytes` when they are UTF-8 without escape scalars, else nil.
  private init?(plainUTF8 bytes: UnsafeBufferPointer<UInt8>) {
    guard let start = bytes.baseAddress else {
      self = ""
      return
    }
    guard memchr(start, 0xF4, bytes.count) == nil, let text = String(validating: bytes, as: UTF8.self) else {
      return nil
    }
    self = text
  }

  /// One sequence at a time, for input with bytes that are not UTF-8 (or escape scalars).
  private init(decodingWithEscapes array: [UInt8]) {
    var scalars = String.UnicodeScalarView()
    var index = 0
    while index < array.count {
      let length = Self.utf8SequenceLength(array, at: index)
      if length > 0 {
        var scalar: UInt32 = 0
        switch length {
        case 1: scalar = UInt32(array[index])
        case 2: scalar = UInt32(array[index] & 0x1F) << 6 | UInt32(array[index + 1] & 0x3F)
        case 3:
          scalar = UInt32(array[index] & 0x0F) << 12 | UInt32(array[index + 1] & 0x3F) << 6 | UInt32(array[index + 2] & 0x3F)
        default:
          scalar = UInt32(array[index] & 0x07) << 18 | UInt32(array[index + 1] & 0x3F) << 12
            | UInt32(array[index + 2] & 0x3F) << 6 | UInt32(array[index + 3] & 0x3F)
        }
        let decoded = Unicode.Scalar(scalar)!
        if decoded.escapedByte == nil {
          scalars.append(decoded)
        } else {
          for byte in array[index..<index + length] { scalars.append(Unicode.Scalar.escaping(byte)) }
        }
        index += length
      } else {
        scalars.append(Unicode.Scalar.escaping(array[index]))
        index += 1
      }
    }
    self = String(scalars)
  }

  /// The length of the well-formed UTF-8 sequence at `index`, or 0 when the
  /// byte there does not begin one (Unicode's definition: no overlong forms,
  /// no surrogates, nothing above U+10FFFF).
  private static func utf8SequenceLength(_ bytes: [UInt8], at index: Int) -> Int {
    let lead = bytes[index]
    func continuation(_ offset: Int, _ range: ClosedRange<UInt8> = 0x80...0xBF) -> Bool {
      index + offset < bytes.count && range.contains(bytes[index + offset])
    }
    switch lead {
    case 0x00...0x7F: return 1
    case 0xC2...0xDF: return continuation(1) ? 2 : 0
    case 0xE0: return continuation(1, 0xA0...0xBF) && continuation(2) ? 3 : 0
    case 0xE1...0xEC, 0xEE...0xEF: return continuation(1) && continuation(2) ? 3 : 0
    case 0xED: return continuation(1, 0x80...0x9F) && continuation(2) ? 3 : 0
    case 0xF0: return continuation(1, 0x90...0xBF) && continuation(2) && continuation(3) ? 4 : 0
    case 0xF1...0xF3: return continuation(1) && continuation(2) && continuation(3) ? 4 : 0
    case 0xF4: return continuation(1, 0x80...0x8F) && continuation(2) && continuation(3) ? 4 : 0
    default: return 0
    }
  }

  /// The text of a NUL-terminated C string, bytes that are not UTF-8 kept.
  public init(losslessCString pointer: UnsafePointer<CChar>) {
    let count = strlen(pointer)
    self = pointer.withMemoryRebound(to: UInt8.self, capacity: count) {
      String(lossless: UnsafeBufferPointer(start: $0, count: count))
    }
  }

  /// The bytes this text was decoded from (`init(lossless:)`): escape scalars
  /// become their byte again, everything else its UTF-8.
  public var losslessBytes: [UInt8] {
    // The escape scalars are the only ones whose UTF-8 begins F4 8F BE or F4 8F BF.
    guard utf8.contains(0xF4) else { return Array(utf8) }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(utf8.count)
    for scalar in unicodeScalars {
      if let byte = scalar.escapedByte {
        bytes.append(byte)
      } else {
        bytes.append(contentsOf: UTF8.encode(scalar)!)
      }
    }
    return bytes
  }

  /// Lends `losslessBytes` as a NUL-terminated C string to `body`.
  public func withLosslessCString<R, E: Error>(_ body: (UnsafePointer<CChar>) throws(E) -> R) throws(E) -> R {
    var bytes = losslessBytes
    bytes.append(0)
    return try bytes.withUnsafeBufferPointer { (buffer) throws(E) in
      try buffer.withMemoryRebound(to: CChar.self) { (chars) throws(E) in try body(chars.baseAddress!) }
    }
  }

  /// `losslessBytes` as a C string in memory of its own (`free` it). C: `strdup`.
  public func losslessDuplicate() -> UnsafeMutablePointer<CChar> {
    withLosslessCString { strdup($0)! }
  }
}

extension Unicode.Scalar {
  /// The scalar that stands for `byte` (0x80–0xFF) in lossless text.
  static func escaping(_ byte: UInt8) -> Unicode.Scalar { Unicode.Scalar(0x10FF00 + UInt32(byte))! }

  /// The byte this scalar stands for in lossless text, or nil for any other scalar.
  public var escapedByte: UInt8? {
    (0x10FF80...0x10FFFF).contains(value) ? UInt8(value - 0x10FF00) : nil
  }
}
