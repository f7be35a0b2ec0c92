import Foundation
import Glibc

/// Directories and files the harness makes under a shared directory such as /tmp, where
/// another local user may have put a directory or a symbolic link in the way.
///
/// A private directory is made fresh by `mkdtemp(3)` (an unpredictable name, mode 0700, never
/// an existing directory); files in it are created exclusively without following links
/// (`O_CREAT | O_EXCL | O_NOFOLLOW`, mode 0600). Inside such a directory no one else can add
/// an entry, so QEMU's own files there (sockets, the snapshot drive) are private too.
enum PrivateFiles {
  /// A new directory `base/prefix-XXXXXX`, mode 0700 whatever the umask.
  static func makeDirectory(in base: String, prefix: String) throws(HarnessError) -> String {
    var template = Array((base + "/" + prefix + "-XXXXXX").utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) != nil }
    guard made else {
      throw .environment(
        "cannot create a private directory in \(base) (\(String(cString: strerror(errno)))); check that it exists and is writable, or set HARNESS_RUN_DIR")
    }
    let path = String(cString: template)
    // mkdtemp makes it 0700 already; said again so that no umask or ACL default can widen it.
    guard chmod(path, 0o700) == 0 else {
      let e = errno
      rmdir(path)
      throw .environment("cannot make \(path) private (\(String(cString: strerror(e))))")
    }
    return path
  }

  /// Creates `path` as a new, empty file readable by the owner only; fails when anything
  /// (a file, a directory, a symbolic link) is already there.
  static func createFile(_ path: String) throws(HarnessError) {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
    guard fd >= 0 else {
      throw .environment("cannot create \(path) (\(String(cString: strerror(errno)))): something is in the way of a new private file")
    }
    fchmod(fd, 0o600)
    close(fd)
  }

  /// Makes `path` (in a private directory: nobody else can swap it) readable and writable by
  /// the owner only; a symbolic link there is left alone, never followed.
  static func restrict(_ path: String) {
    var st = stat()
    guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) != S_IFLNK else { return }
    chmod(path, 0o600)
  }

  /// Removes the directory tree at `path` (links are removed, never followed).
  static func remove(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
  }
}
