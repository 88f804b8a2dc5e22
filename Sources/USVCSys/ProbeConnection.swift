import CShims
import Glibc

/// A `tcp:` or `http://` check in flight, never blocking: a connect in
/// progress, then for http a GET and its status line. The runner polls `fd`
/// for `events` in its one poll and calls `advance()` when it is ready.
public struct ProbeConnection {
  public enum Outcome: Equatable { case pending, passed, failed }
  enum Phase { case connecting, awaitingAnswer }

  public let fd: Int32
  var phase = Phase.connecting
  /// The GET (http), nil for tcp.
  let request: [UInt8]?
  /// The first bytes of the answer, up to the status code.
  var answer: [UInt8] = []

  /// Starts checking `probe` (tcp or http; nil for the other kinds, or when no
  /// socket can be made: a failed check).
  public init?(_ probe: Probe) {
    let host: String
    let port: UInt16
    switch probe {
    case .tcp(let h, let p):
      (host, port, request) = (h, p, nil)
    case .http(let h, let p, let path):
      (host, port) = (h, p)
      request = Array("GET \(path) HTTP/1.1\r\nHost: \(h):\(p)\r\nUser-Agent: usvc\r\nConnection: close\r\n\r\n".utf8)
    case .exec, .log, .notify:
      return nil
    }
    let result = usvc_tcp_connect_start(host, Int32(port))
    guard result >= 0 else { return nil }
    fd = result
  }

  /// What to poll `fd` for.
  public var events: Int16 { Int16(phase == .connecting ? POLLOUT : POLLIN) }

  /// Goes on after poll said `fd` is ready: passed, failed, or still pending.
  public mutating func advance() -> Outcome {
    switch phase {
    case .connecting:
      guard usvc_socket_error(fd) == 0 else { return .failed }
      guard let request else { return .passed }
      // A request this small fits a fresh socket's buffer in one write.
      let written = request.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
      guard written == request.count else { return .failed }
      phase = .awaitingAnswer
      return .pending
    case .awaitingAnswer:
      // "HTTP/1.1 200": the status line's first 12 bytes say it; the rest is not read.
      var chunk: (UInt64, UInt64) = (0, 0)
      let count = withUnsafeMutableBytes(of: &chunk) { Glibc.read(fd, $0.baseAddress, 12 - answer.count) }
      if count < 0 && (errno == EAGAIN || errno == EINTR) { return .pending }
      guard count > 0 else { return .failed }
      withUnsafeBytes(of: &chunk) { answer += $0.prefix(count) }
      guard answer.count >= 12 else { return .pending }
      guard answer.starts(with: "HTTP/1.".utf8), answer[8] == UInt8(ascii: " ") else { return .failed }
      return answer[9] == UInt8(ascii: "2") || answer[9] == UInt8(ascii: "3") ? .passed : .failed
    }
  }

  public func close() { _ = Glibc.close(fd) }
}
