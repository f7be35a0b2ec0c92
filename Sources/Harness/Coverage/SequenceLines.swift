import Foundation

/// The lines of the series' files one collection of counts reached (`fuzz --guided
/// --coverage`: a sequence's kernel lines, fed back into guided generation).
///
/// The host's `gcov` reads the guest's notes and the collection's counts and says, per line,
/// how often it ran (`gcov --json-format --stdout`, no source needed); only the series' files
/// count (not the headers whose inline functions they expand). One `gcov` run for all files,
/// in a private folder: about 30 ms on these machines, beside the collection itself.
struct SequenceLines: Sendable {
  let notes: CoverageNotes
  let gcov: String

  init(notes: CoverageNotes) throws(HarnessError) {
    guard let gcov = HostTools.find("gcov") else {
      throw .environment(
        "gcov not found (it comes with the gcc that builds the kernel); install it: apt-get update && apt-get install -y gcc")
    }
    self.notes = notes
    self.gcov = gcov
  }

  /// `SOURCE:LINE` of every line of a series file that `counts` ran at least once.
  func lines(of counts: [String: GCDA]) throws(HarnessError) -> Set<String> {
    // A file none of whose counters moved ran no line (every function has a counter on its
    // entry's cycle): gcov need not read it.
    try lines(ofData: counts.filter { $0.value.arcCounts.contains { $0 != 0 } }.mapValues(\.data))
  }

  /// The same, from the bytes of `.gcda` files (per source file).
  func lines(ofData counts: [String: Data]) throws(HarnessError) -> Set<String> {
    guard !counts.isEmpty else { return [] }
    let fm = FileManager.default
    let work = try PrivateFiles.makeDirectory(in: fm.temporaryDirectory.path, prefix: "harness-lines")
    defer { PrivateFiles.remove(work) }
    var data: [String] = []
    var sourceOf: [String: String] = [:]
    do {
      for (i, e) in notes.entries.enumerated() {
        guard let c = counts[e.source] else { continue }
        // Flat names: gcov finds `n.gcno` beside `n.gcda`.
        let stem = "\(work)/\(i)"
        try fm.copyItem(atPath: notes.directory + "/" + e.notes, toPath: stem + ".gcno")
        try c.write(to: URL(fileURLWithPath: stem + ".gcda"))
        data.append("\(i).gcda")
        sourceOf["\(i).gcda"] = e.source
      }
    } catch {
      throw HarnessError(.environment, "cannot write counts for gcov in \(work): \(error)")
    }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: gcov)
    p.arguments = ["--json-format", "--stdout"] + data
    p.currentDirectoryURL = URL(fileURLWithPath: work)
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    do { try p.run() } catch { throw HarnessError(.environment, "cannot run \(gcov): \(error)") }
    let bytes = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
      throw HarnessError(.internal, "gcov --json-format failed (\(p.terminationStatus)) on the counts of \(data.count) files")
    }
    var hit: Set<String> = []
    // One JSON document per data file, one per line.
    for line in bytes.split(separator: UInt8(ascii: "\n")) where line.first == UInt8(ascii: "{") {
      guard let doc = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
        let file = doc["data_file"] as? String, let source = sourceOf[file],
        let files = doc["files"] as? [[String: Any]]
      else { continue }
      for f in files {
        guard let path = f["file"] as? String, path == source || path.hasSuffix("/" + source),
          let lines = f["lines"] as? [[String: Any]]
        else { continue }
        for l in lines {
          if let n = l["line_number"] as? Int, let c = l["count"] as? Int, c > 0 { hit.insert("\(source):\(n)") }
        }
      }
    }
    return hit
  }
}

/// A sequence's kernel lines being worked out on a thread of its own (``SequenceLines``, the
/// host's `gcov`), so that the guest runs the next sequence meanwhile (``GuidedSource`` waits
/// for them before the next round). `nil` when they could not be had (recorded as a coverage
/// failure).
package final class PendingLines: @unchecked Sendable {
  private let condition = NSCondition()
  private var result: Set<String>?? = nil
  private var waiting: [@Sendable () -> Void] = []

  init(_ work: @escaping @Sendable () -> Set<String>?) {
    Thread.detachNewThread { [self] in
      let lines = work()
      let callbacks = condition.withLock {
        result = .some(lines)
        condition.broadcast()
        defer { waiting = [] }
        return waiting
      }
      for c in callbacks { c() }
    }
  }

  /// The lines once worked out (`.some(nil)`: they could not be), `nil` before.
  var value: Set<String>?? { condition.withLock { result } }

  /// Waits for the lines.
  func wait() -> Set<String>? {
    condition.withLock {
      while result == nil { condition.wait() }
      return result!
    }
  }

  /// Calls `f` once the lines are known (at once if they are), on whichever thread has them.
  func whenReady(_ f: @escaping @Sendable () -> Void) {
    let now = condition.withLock {
      if result != nil { return true }
      waiting.append(f)
      return false
    }
    if now { f() }
  }
}
