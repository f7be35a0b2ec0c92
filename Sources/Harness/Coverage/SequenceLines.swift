import Foundation

/// The lines of the series' files one collection of counts reached (`fuzz --guided
/// --coverage`: a sequence's kernel lines, fed back into guided generation).
///
/// The compiler's notes of the guest's build (``GCNO``, read once) and the collection's counts
/// say, per line, whether it ran, as the host's `gcov` would (`SequenceLinesTests` and
/// `CoverageGuestTests.kernelLinesAreLcovs` compare them); only the series' files count (not
/// the headers whose inline functions they expand). About 10 ms per collection, where `gcov
/// --json-format` and its JSON took 150–300 ms.
struct SequenceLines: Sendable {
  let notes: CoverageNotes
  /// The notes of each series file, by source path.
  let graphs: [String: GCNO]

  init(notes: CoverageNotes) throws(HarnessError) {
    self.notes = notes
    var graphs: [String: GCNO] = [:]
    for e in notes.entries {
      let path = notes.directory + "/" + e.notes
      guard let data = FileManager.default.contents(atPath: path) else {
        throw HarnessError(.environment, "\(path): missing; rebuild the guest (harness vm build --coverage)")
      }
      do { graphs[e.source] = try GCNO(data) } catch {
        throw HarnessError(.internal, "\(path): \(error); rebuild the guest (harness vm build --coverage)")
      }
    }
    self.graphs = graphs
  }

  /// `SOURCE:LINE` of every line of a series file that `counts` ran at least once.
  func lines(of counts: [String: GCDA]) throws(HarnessError) -> Set<String> {
    var hit: Set<String> = []
    for (source, c) in counts {
      guard let g = graphs[source] else { continue }
      do {
        for l in try g.linesRun(c, source: source) { hit.insert("\(source):\(l)") }
      } catch {
        throw HarnessError(.internal, "counts of \(source) do not fit its notes: \(error)")
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
