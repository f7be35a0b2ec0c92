import Foundation
import Synchronization

/// What the coverage flavour's guest was built with to turn counts into lines (`VM/build.sh
/// --coverage`): its `coverage/` folder, with `files` (`<source path> <.gcda path under the
/// guest's /sys/kernel/debug/gcov>` per line), `obj/<file>.gcno` and `src/<file>.c`.
struct CoverageNotes: Sendable, Equatable {
  struct Entry: Sendable, Equatable {
    /// The source file, relative to the kernel tree (`mm/memory-failure.c`).
    var source: String
    /// Where the guest shows its counts, relative to the gcov directory.
    var guestPath: String
    /// The compiler's notes for it, `obj/….gcno` under ``CoverageNotes/directory``.
    var notes: String { "obj/" + source.dropLast(2) + ".gcno" }
  }

  /// The guest's `coverage` folder.
  var directory: String
  var entries: [Entry]

  /// The notes of the guest in `guestDirectory`; nil when it is not a coverage build.
  static func load(guestDirectory: String) throws(HarnessError) -> CoverageNotes? {
    let dir = guestDirectory + "/coverage"
    guard let text = try? String(contentsOfFile: dir + "/files", encoding: .utf8) else {
      return nil
    }
    var entries: [Entry] = []
    for (n, line) in text.split(separator: "\n").enumerated() {
      let f = line.split(separator: " ")
      guard f.count == 2, f[0].hasSuffix(".c") else {
        throw HarnessError(
          .internal,
          "\(dir)/files:\(n + 1): expected `SOURCE GCDA-PATH`, got `\(line)`; rebuild the guest (harness vm build --coverage)"
        )
      }
      entries.append(Entry(source: String(f[0]), guestPath: String(f[1])))
    }
    return CoverageNotes(directory: dir, entries: entries)
  }

  /// The source file whose counts the guest shows at `guestPath` (the build's path, or any
  /// path ending in the same object: a tree rebuilt elsewhere).
  func source(forGuestPath guestPath: String) -> String? {
    if let e = entries.first(where: { $0.guestPath == guestPath }) { return e.source }
    return entries.first { guestPath.hasSuffix("/" + $0.source.dropLast(2) + ".gcda") }?.source
  }
}

/// Sums the gcov counts of every guest of a campaign (coverage flavour) on the host.
///
/// The guest's counters are global (every context that runs the instrumented code adds to them:
/// system calls, kernel workers, the machine-check path). The agent's `coverage` command hands
/// them over and zeroes them (VM/agent/gcov.c), so the sums are exact when counts are taken
/// after the boot (before the snapshot: the snapshot then holds zero counters), before every
/// snapshot restore (which would bring back the snapshot's zeros), and at the end of each
/// guest. ``GuestSession`` does all three when its artifacts carry a collector, so campaigns,
/// reruns and minimization need no code of their own. Counts of a guest that died (panic, hang)
/// since its last collection are lost; ``failures`` says so.
///
/// Safe to share between guests running at the same time (`--jobs`).
final class CoverageCollector: Sendable {
  let notes: CoverageNotes

  private struct State {
    var counts: [String: GCDA] = [:]
    var collections = 0
    var bytes = 0
    var time: Duration = .zero
    var failures: [String] = []
    var linesTime: Duration = .zero
  }
  private let state = Mutex(State())

  /// Set when each sequence's own counts are wanted (`fuzz --guided --coverage`): the guest
  /// then collects after every sequence (``GuestRun``) and the sequence's result carries the
  /// lines it reached.
  let sequenceLines: SequenceLines?

  init(notes: CoverageNotes, sequenceLines: SequenceLines? = nil) {
    self.notes = notes
    self.sequenceLines = sequenceLines
  }

  /// The counts summed so far, per source file.
  var counts: [String: GCDA] { state.withLock { $0.counts } }
  /// How many dumps were added.
  var collections: Int { state.withLock { $0.collections } }
  /// Bytes of counts received and time spent receiving them (`bench guest --coverage`).
  var cost: (bytes: Int, time: Duration) { state.withLock { ($0.bytes, $0.time) } }
  /// What could not be collected or added (for the summary).
  var failures: [String] { state.withLock { $0.failures } }

  /// Asks the guest for its counts (which zeroes them there) and adds them; returns them (per
  /// source file), `nil` when there were none. Never throws: a failure is recorded and the
  /// campaign goes on.
  @discardableResult
  func collect(from g: GuestSession) -> [String: GCDA]? {
    let start = ContinuousClock.now
    let reply: [String]
    do {
      reply = try g.exchange("coverage", timeout: .seconds(10))
    } catch {
      record(failure: "no counts from the guest (\(error))")
      return nil
    }
    return add(agentReply: reply, took: ContinuousClock.now - start)
  }

  /// Adds the agent's answer to `coverage` (its lines before `.`); returns what it added.
  @discardableResult
  func add(agentReply lines: [String], took time: Duration = .zero) -> [String: GCDA] {
    var parsed: [(String, GCDA)] = []
    var problems: [String] = []
    var bytes = 0
    for line in lines {
      if line.hasPrefix("error ") {
        problems.append("guest: " + line.dropFirst(6))
        continue
      }
      let f = line.split(separator: " ", maxSplits: 3)
      guard f.count == 4, f[0] == "gcda", let size = Int(f[2]),
        let data = Data(base64Encoded: String(f[3])),
        data.count == size
      else {
        problems.append("unreadable coverage line `\(line.prefix(80))`")
        continue
      }
      guard let source = notes.source(forGuestPath: String(f[1])) else { continue }  // not a series file
      do {
        parsed.append((source, try GCDA(data)))
        bytes += data.count
      } catch {
        problems.append("\(source): \(error)")
      }
    }
    state.withLock { s in
      for (source, g) in parsed {
        if let old = s.counts[source] {
          do { s.counts[source] = try old.adding(g) } catch {
            s.failures.append("\(source): \(error)")
          }
        } else {
          s.counts[source] = g
        }
      }
      s.collections += 1
      s.bytes += bytes
      s.time += time
      s.failures += problems
    }
    return Dictionary(parsed, uniquingKeysWith: { a, b in (try? a.adding(b)) ?? a })
  }

  func record(failure: String) { state.withLock { $0.failures.append(failure) } }

  /// Time spent turning each sequence's counts into lines (``SequenceLines``, `--guided`).
  var linesTime: Duration { state.withLock { $0.linesTime } }
  func add(linesTime t: Duration) { state.withLock { $0.linesTime += t } }
}
