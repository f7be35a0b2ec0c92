import Foundation
import Fuzz
import Glibc
import Reference

/// Reading and writing sequence files, with errors that name the file, line and fix.
package enum Corpus {
  /// Reads and parses a sequence file; a missing file or a parse error is a usage error.
  package static func load(_ path: String) throws(HarnessError) -> OpSequence {
    let text = try readText(path)
    do {
      return try SequenceFormat.parse(text, file: path)
    } catch {
      throw .usage(error.description)
    }
  }

  /// The largest sequence file read (a million ops is about 40 MB).
  package static let maxFileBytes = 256 << 20

  /// The text of the sequence file at `path`: a regular file of valid UTF-8, or a usage error
  /// that says what it is instead (missing, a directory, a FIFO, a device, unreadable, too
  /// large, or not UTF-8, with the byte offset, line and column of the first bad byte).
  package static func readText(_ path: String) throws(HarnessError) -> String {
    func refuse(_ what: String) -> HarnessError { .usage("\(path): \(what)") }
    var st = stat()
    guard stat(path, &st) == 0 else {
      let e = errno
      throw refuse(
        e == ENOENT ? "no such file; check the path" : "cannot read the sequence file (\(String(cString: strerror(e))))")
    }
    switch st.st_mode & S_IFMT {
    case S_IFREG: break
    case S_IFDIR: throw refuse("is a directory, not a sequence file (give the .seq files in it)")
    case S_IFIFO: throw refuse("is a FIFO, not a sequence file (give a regular file)")
    case S_IFCHR, S_IFBLK: throw refuse("is a device, not a sequence file (give a regular file)")
    case S_IFSOCK: throw refuse("is a socket, not a sequence file (give a regular file)")
    default: throw refuse("is not a regular file")
    }
    guard st.st_size <= maxFileBytes else {
      throw refuse("is \(st.st_size) bytes; a sequence file is at most \(maxFileBytes >> 20) MiB")
    }
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
    guard fd >= 0 else { throw refuse("cannot read the sequence file (\(String(cString: strerror(errno))))") }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
      let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
      if n < 0 && errno == EINTR { continue }
      guard n >= 0 else { throw refuse("cannot read the sequence file (\(String(cString: strerror(errno))))") }
      if n == 0 { break }
      bytes += chunk[..<n]
      guard bytes.count <= maxFileBytes else { throw refuse("is larger than \(maxFileBytes >> 20) MiB") }
    }
    if let bad = invalidUTF8Offset(bytes) {
      let before = bytes[..<bad]
      let line = before.reduce(1) { $0 + ($1 == 10 ? 1 : 0) }
      let column = bad - (before.lastIndex(of: 10).map { $0 + 1 } ?? 0) + 1
      throw .usage(
        "\(path):\(line):\(column): error: invalid UTF-8 at byte offset \(bad) (0x\(String(bytes[bad], radix: 16))); sequence files are UTF-8 text")
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  /// The offset of the first byte that does not belong to a valid UTF-8 sequence.
  static func invalidUTF8Offset(_ bytes: [UInt8]) -> Int? {
    var parser = Unicode.UTF8.ForwardParser()
    var it = bytes.makeIterator()
    var offset = 0
    while true {
      switch parser.parseScalar(from: &it) {
      case .valid(let scalar): offset += scalar.count
      case .emptyInput: return nil
      case .error: return offset
      }
    }
  }

  /// The world a sequence names, or a usage error pointing at its `world` line.
  package static func world(of s: OpSequence, file: String) throws(HarnessError) -> World {
    guard let w = World.named(s.world) else {
      throw .usage(
        "\(file):2:7: error: unknown world \(SequenceFormat.quoted(s.world)); known worlds: \(World.builtin.map(\.name).joined(separator: ", "))"
      )
    }
    return w
  }

  /// Every `.seq` file under `directory`, sorted by path (deterministic order).
  package static func files(under directory: String) -> [String] {
    guard let e = FileManager.default.enumerator(atPath: directory) else { return [] }
    var out: [String] = []
    while let f = e.nextObject() as? String {
      if f.hasSuffix(".seq") { out.append(directory + "/" + f) }
    }
    return out.sorted()
  }

  /// Writes `contents` to `path`, creating parent directories.
  ///
  /// A new file or a regular file is written atomically: a new temporary file beside it,
  /// renamed into place (a new file is linked, so that nothing that appeared meanwhile is
  /// replaced). A character device or a FIFO (`/dev/null`, `/dev/stdout`, a named pipe) is
  /// written through. Anything else (a directory, a symbolic link to a file, a block device,
  /// a socket) is refused with a message: no rename ever replaces one.
  package static func writeAtomically(_ contents: String, to path: String) throws(HarnessError) {
    func fail(_ what: String) -> HarnessError { .environment("\(path): cannot write (\(what))") }
    func refuse(_ what: String) -> HarnessError {
      .usage("\(path): \(what); give the path of a regular file or of a new one")
    }
    var st = stat()
    var existing: stat?
    if lstat(path, &st) == 0 {
      switch st.st_mode & S_IFMT {
      case S_IFREG: existing = st
      case S_IFCHR, S_IFIFO: return try writeThrough(contents, to: path, followingLink: false)
      case S_IFLNK:
        var target = stat()
        guard stat(path, &target) == 0 else { throw refuse("is a symbolic link to nothing") }
        let kind = target.st_mode & S_IFMT
        if kind == S_IFCHR || kind == S_IFIFO { return try writeThrough(contents, to: path, followingLink: true) }
        throw refuse("is a symbolic link (not replaced, not followed)")
      case S_IFDIR: throw refuse("is a directory")
      case S_IFBLK: throw refuse("is a block device")
      case S_IFSOCK: throw refuse("is a socket")
      default: throw refuse("is not a regular file")
      }
    } else if errno != ENOENT {
      throw fail(String(cString: strerror(errno)))
    }
    let url = URL(fileURLWithPath: path)
    let dir = url.deletingLastPathComponent().path
    do {
      try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    } catch {
      throw fail("its directory \(dir): \(Self.reason(error)); check the permissions")
    }
    // The temporary file: new, exclusive, never through a link.
    var temp = ""
    var fd: Int32 = -1
    for _ in 0..<100 {
      temp = dir + "/." + url.lastPathComponent + ".tmp-" + String(UInt32.random(in: 0...UInt32.max), radix: 36)
      fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o666)
      if fd >= 0 || errno != EEXIST { break }
    }
    guard fd >= 0 else { throw fail("\(String(cString: strerror(errno))); check the directory's permissions") }
    var ok = writeAll(fd, contents)
    let writeErrno = errno
    if let existing { fchmod(fd, existing.st_mode & 0o7777) }
    ok = close(fd) == 0 && ok
    guard ok else {
      unlink(temp)
      throw fail("\(String(cString: strerror(writeErrno))); check the free space")
    }
    if existing != nil {
      guard rename(temp, path) == 0 else {
        let e = errno
        unlink(temp)
        throw fail(String(cString: strerror(e)))
      }
    } else {
      // link(2) fails when anything exists at `path` now (created since the check above).
      let linked = link(temp, path) == 0
      let e = errno
      unlink(temp)
      guard linked else {
        throw e == EEXIST ? refuse("appeared while it was being written") : fail(String(cString: strerror(e)))
      }
    }
  }

  /// Writes into an existing device or FIFO at `path` (not created, not truncated).
  private static func writeThrough(_ contents: String, to path: String, followingLink: Bool) throws(HarnessError) {
    let fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC | (followingLink ? 0 : O_NOFOLLOW))
    guard fd >= 0 else { throw .environment("\(path): cannot open for writing (\(String(cString: strerror(errno))))") }
    let ok = writeAll(fd, contents)
    let e = errno
    close(fd)
    guard ok else { throw .environment("\(path): cannot write (\(String(cString: strerror(e))))") }
  }

  private static func writeAll(_ fd: Int32, _ contents: String) -> Bool {
    var bytes = Array(contents.utf8)
    var off = 0
    while off < bytes.count {
      let n = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
      if n < 0 {
        if errno == EINTR { continue }
        return false
      }
      off += n
    }
    return true
  }

  static func reason(_ error: any Error) -> String {
    (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
  }
}
