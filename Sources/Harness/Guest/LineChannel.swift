import Glibc

/// Why talking to the guest failed.
enum ChannelError: Error, Equatable, Sendable {
  /// Nothing arrived before the deadline.
  case timeout
  /// The peer closed the connection (QEMU exited).
  case closed
  /// A system call failed.
  case system(String)
}

/// A line-oriented connection over a Unix stream socket (QEMU's chardev or HMP monitor).
///
/// Reads wait with `poll(2)` up to a deadline, so a silent guest is a timeout, never a hang.
final class LineChannel {
  private let fd: Int32
  private var buffer: [UInt8] = []
  private var isClosed = false

  /// Connects to the server socket at `path`, retrying while it does not exist or refuses, until
  /// `deadline`, or until `serverAlive` says the server is gone (`.closed`).
  init(
    connectingTo path: String, until deadline: ContinuousClock.Instant, serverAlive: () -> Bool = { true }
  ) throws(ChannelError) {
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
      throw .system("socket path longer than 107 bytes: \(path)")
    }
    withUnsafeMutableBytes(of: &addr.sun_path) { raw in
      raw.copyBytes(from: bytes)
      raw[bytes.count] = 0
    }
    while true {
      let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
      guard s >= 0 else { throw .system("socket: \(String(cString: strerror(errno)))") }
      let r = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
      }
      if r == 0 {
        fd = s
        return
      }
      let e = errno
      close(s)
      guard e == ENOENT || e == ECONNREFUSED else { throw .system("connect \(path): \(String(cString: strerror(e)))") }
      guard serverAlive() else { throw .closed }
      guard ContinuousClock.now < deadline else { throw .timeout }
      usleep(5_000)
    }
  }

  deinit { close(fd) }

  /// Sends `line` followed by a newline.
  func send(_ line: String) throws(ChannelError) {
    var data = Array((line + "\n").utf8)
    var off = 0
    while off < data.count {
      // MSG_NOSIGNAL: a dead QEMU is an error to report, not a SIGPIPE that kills the harness.
      let n = data.withUnsafeMutableBytes { Glibc.send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
      if n < 0 {
        if errno == EINTR { continue }
        throw errno == EPIPE || errno == ECONNRESET ? .closed : .system("write: \(String(cString: strerror(errno)))")
      }
      off += n
    }
  }

  /// Drops whatever was received and not read yet (after a snapshot restore).
  func discardBuffered() {
    buffer.removeAll()
    var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    var chunk = [UInt8](repeating: 0, count: 65536)
    while poll(&p, 1, 0) > 0, chunk.withUnsafeMutableBytes({ read(fd, $0.baseAddress, $0.count) }) > 0 {}
  }

  /// The next line (without its newline), waiting at most until `deadline`.
  func readLine(until deadline: ContinuousClock.Instant) throws(ChannelError) -> String {
    while true {
      if let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
        let line = String(decoding: buffer[..<nl], as: UTF8.self)
        buffer.removeSubrange(...nl)
        return line.hasSuffix("\r") ? String(line.dropLast()) : line
      }
      if isClosed { throw .closed }
      try fill(until: deadline)
    }
  }

  /// Reads whatever arrives until `deadline` or until `stop` matches the accumulated text.
  func readText(until deadline: ContinuousClock.Instant, stop: (String) -> Bool) -> String {
    var text = ""
    while true {
      text += String(decoding: buffer, as: UTF8.self)
      buffer.removeAll()
      if stop(text) || isClosed { return text }
      do { try fill(until: deadline) } catch { return text }
    }
  }

  private func fill(until deadline: ContinuousClock.Instant) throws(ChannelError) {
    let left = deadline - ContinuousClock.now
    guard left > .zero else { throw .timeout }
    let ms = Int32(clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1)
    var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    let r = poll(&p, 1, ms)
    if r < 0 {
      if errno == EINTR { return }
      throw .system("poll: \(String(cString: strerror(errno)))")
    }
    if r == 0 { throw .timeout }
    var chunk = [UInt8](repeating: 0, count: 65536)
    let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    if n < 0 {
      if errno == EINTR || errno == EAGAIN { return }
      // A peer that exits with our data unread resets the connection: it is closed all the same.
      if errno == ECONNRESET {
        isClosed = true
        throw .closed
      }
      throw .system("read: \(String(cString: strerror(errno)))")
    }
    if n == 0 {
      isClosed = true
      return
    }
    buffer += chunk[..<n]
  }
}
