import Foundation
import Glibc

/// QEMU processes alive right now, so Ctrl-C (SIGINT) or SIGTERM never leaves one behind.
///
/// Each QEMU runs in its own session (process group = its pid); the handler kills every group
/// and removes their run directories, then exits with 128 + signal. During a campaign
/// (``Interruption``) the first signal only kills the QEMU processes and records itself: the
/// campaign stops starting sequences and writes its report; a second signal exits at once.
enum ChildRegistry {
  private static let capacity = 16
  private nonisolated(unsafe) static var pids = [Int32](repeating: 0, count: capacity)
  /// Per slot: NUL-terminated paths to unlink, the last one a directory to remove.
  private nonisolated(unsafe) static var files = [[[UInt8]]](repeating: [], count: capacity)
  private nonisolated(unsafe) static var installed = false

  /// Serializes add and remove (guests boot and end on several threads); the signal handler
  /// only reads.
  private static let lock = NSLock()

  static func add(pid: Int32, files paths: [String]) {
    lock.lock()
    defer { lock.unlock() }
    installLocked()
    for i in 0..<capacity where pids[i] == 0 {
      files[i] = paths.map { Array($0.utf8) + [0] }
      pids[i] = pid
      return
    }
  }

  /// The QEMU processes alive now (for tests that kill one on purpose).
  static var registered: [Int32] { pids.filter { $0 != 0 } }

  static func remove(pid: Int32) {
    lock.lock()
    defer { lock.unlock() }
    for i in 0..<capacity where pids[i] == pid { pids[i] = 0 }
  }

  /// Installs the signal handler (once).
  static func installHandler() {
    lock.lock()
    defer { lock.unlock() }
    installLocked()
  }

  private static func installLocked() {
    guard !installed else { return }
    installed = true
    let handler: @convention(c) (Int32) -> Void = { sig in
      if Interruption.isGraceful, Interruption.signal == 0 {
        // The campaign stops and reports; its guests' teardown removes their files.
        Interruption.signal = sig
        for i in 0..<ChildRegistry.capacity where ChildRegistry.pids[i] > 0 {
          kill(-ChildRegistry.pids[i], SIGKILL)
          kill(ChildRegistry.pids[i], SIGKILL)
        }
        return
      }
      for i in 0..<ChildRegistry.capacity where ChildRegistry.pids[i] > 0 {
        kill(-ChildRegistry.pids[i], SIGKILL)
        kill(ChildRegistry.pids[i], SIGKILL)
        for path in ChildRegistry.files[i] {
          path.withUnsafeBufferPointer { p in
            _ = p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) { unlink($0) == 0 || rmdir($0) == 0 }
          }
        }
      }
      _exit(128 + sig)
    }
    signal(SIGINT, handler)
    signal(SIGTERM, handler)
    signal(SIGHUP, handler)
  }
}
