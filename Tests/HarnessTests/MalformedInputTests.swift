import Foundation
import Fuzz
import Glibc
import Reference
import Testing

@testable import Harness

/// Hostile input: a seeded corpus of malformed sequence files, paths that are no sequence file,
/// and command-line values out of range. Nothing traps; every error names the file (and the
/// line and column where there is one) or the flag.
@Suite struct MalformedInputTests {
  /// The corpus: 10,000 files made from generated sequences of every world and the regression
  /// corpus by seeded mutations (bytes flipped, inserted, deleted; lines duplicated, swapped,
  /// cut; tokens replaced by huge numbers, long words, control and non-ASCII characters,
  /// invalid UTF-8; CRLF and CR line ends; truncations), written to a directory and read back
  /// as `harness replay` reads them. A file that parses is also run on the model and printed.
  static let corpusSize = 10_000
  static let corpusSeed: UInt64 = 17

  /// The corpus, in memory: (name, bytes).
  static func corpus(count: Int = corpusSize) -> [(String, [UInt8])] {
    var rng = PRNG(seed: corpusSeed)
    var bases: [[UInt8]] = []
    for (i, world) in World.builtin.enumerated() {
      for seed in 0..<8 {
        let s = Generator.generate(world: world, seed: UInt64(i * 100 + seed), length: 20)
        let predicted = Machine.run(s.ops, in: world)
        bases.append(Array(SequenceFormat.print(seed % 2 == 0 ? s.withExpectations(predicted) : s).utf8))
      }
    }
    for file in Paths.regressionFiles.prefix(20) {
      if let text = try? String(contentsOfFile: Paths.root + "/" + file, encoding: .utf8) { bases.append(Array(text.utf8)) }
    }
    let tokens: [[UInt8]] = [
      Array("18446744073709551616".utf8), Array("0xffffffffffffffffff".utf8), Array("-9223372036854775809".utf8),
      Array(String(repeating: "9", count: 400).utf8), Array(String(repeating: "p", count: 5000).utf8),
      Array("p1.t99999999999999999999".utf8), Array("p1.t-1".utf8), Array("$".utf8), Array("=".utf8),
      [0], [0xff, 0xfe], [0xc3], [0xe2, 0x82], [0xed, 0xa0, 0x80], [9], [13], [13, 10], [0x1b, 0x5b, 0x32, 0x4a],
      Array("é".utf8), Array("\u{202e}".utf8), Array("  ".utf8), Array("#".utf8), Array("\"".utf8),
      Array("ranges=0+0,".utf8), Array("ranges=+".utf8), Array("pfn=0x".utf8), Array("code=2147483648".utf8),
      Array("signal=SIGNOPE".utf8), Array("sgt a1 nents=4294967296 orig=1".utf8), Array("failure x \"\\q\"".utf8),
    ]
    var out: [(String, [UInt8])] = []
    out.reserveCapacity(count)
    for n in 0..<count {
      var b = bases[rng.below(bases.count)]
      for _ in 0...rng.below(3) {
        switch rng.below(10) {
        case 0 where !b.isEmpty: b[rng.below(b.count)] = UInt8(truncatingIfNeeded: rng.next())
        case 1: b.insert(UInt8(truncatingIfNeeded: rng.next()), at: rng.below(b.count + 1))
        case 2 where !b.isEmpty: b.remove(at: rng.below(b.count))
        case 3: b = Array(b.prefix(rng.below(b.count + 1)))
        case 4, 5: b.insert(contentsOf: tokens[rng.below(tokens.count)], at: rng.below(b.count + 1))
        case 6:
          var lines = b.split(separator: 10, omittingEmptySubsequences: false).map(Array.init)
          let i = rng.below(lines.count)
          if rng.below(2) == 0 { lines.insert(lines[i], at: rng.below(lines.count + 1)) } else { lines.swapAt(i, rng.below(lines.count)) }
          b = Array(lines.joined(separator: [10]))
        case 7:
          // A token replaced.
          let spaces = b.indices.filter { b[$0] == 32 }
          if let at = spaces.isEmpty ? nil : spaces[rng.below(spaces.count)] {
            let end = b[(at + 1)...].firstIndex { $0 == 32 || $0 == 10 } ?? b.count
            b.replaceSubrange((at + 1)..<end, with: tokens[rng.below(tokens.count)])
          }
        case 8: b = b.flatMap { $0 == 10 ? (n % 2 == 0 ? [13, 10] : [13]) : [$0] }
        default:
          let lines = b.split(separator: 10, omittingEmptySubsequences: false)
          b = Array(lines.prefix(3 + rng.below(max(1, lines.count))).joined(separator: [10]))
        }
      }
      out.append((String(format: "m%05d.seq", n), b))
    }
    return out
  }

  @Test func corpusOfMalformedFiles() throws {
    let shm = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NSTemporaryDirectory()
    let dir = try PrivateFiles.makeDirectory(in: shm, prefix: "harness-malformed")
    defer { PrivateFiles.remove(dir) }
    let files = Self.corpus()
    #expect(files.count >= 10_000)
    var rejected = 0
    var positioned = 0
    var badMessages: [String] = []
    for (name, bytes) in files {
      let path = dir + "/" + name
      // Plain write(2): Foundation's createFile syncs each file, which made this test disk-bound.
      let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
      #expect(fd >= 0 && bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count)
      close(fd)
      do {
        let s = try Corpus.load(path)
        // Parsed: run it as replay would (model, diff against its expectations, print).
        if let world = World.named(s.world) {
          let observed = Machine.run(s.ops, in: world)
          let expected = s.steps.enumerated().map { i, step in step.expected ?? observed[i] }
          _ = Differ.firstDivergence(ops: s.ops, expected: expected, observed: observed)
          _ = SequenceFormat.print(s.withExpectations(observed))
        } else {
          #expect(throws: HarnessError.self) { try Corpus.world(of: s, file: path) }
        }
      } catch {
        rejected += 1
        let m = error.message
        // Every message names the file; a format error its line and column too.
        let located = Self.isLocated(m, in: path)
        if located { positioned += 1 }
        // The longest message lists the op keywords (about 600 characters; with the path and a cut
        // token about 800).
        if !(located || m.hasPrefix(path + ": ")) || m.count > 1000 || m.contains("\n") {
          badMessages.append(m)
        }
      }
    }
    #expect(badMessages.count == 0, "messages without a location or too long, e.g. \(badMessages.first ?? "")")
    // Most mutations break the file, and nearly every break has a position.
    #expect(rejected > files.count / 2, "only \(rejected) of \(files.count) rejected")
    #expect(positioned == rejected, "\(rejected - positioned) errors without line and column")
  }

  /// `path:LINE:COLUMN: error: …`
  static func isLocated(_ message: String, in path: String) -> Bool {
    guard message.hasPrefix(path + ":") else { return false }
    let parts = message.dropFirst(path.count + 1).split(separator: ":", maxSplits: 2)
    return parts.count == 3 && Int(parts[0]) != nil && Int(parts[1]) != nil && parts[2].hasPrefix(" error: ")
  }

  /// The corpus is a function of its seed: the same files every run.
  @Test func corpusIsSeeded() {
    #expect(Self.corpus(count: 300).map(\.1) == Self.corpus(count: 300).map(\.1))
  }

  /// CR and CRLF line ends: rejected at line 1, with a short message.
  @Test(arguments: ["harness-sequence 1\r\nworld mf\r\n\r\nspawn p1\r\n", "harness-sequence 1\rworld mf\r\rspawn p1\r"])
  func carriageReturns(text: String) {
    #expect {
      _ = try SequenceFormat.parse(String(repeating: text, count: 1000), file: "w.seq")
    } throws: { error in
      guard let e = error as? FormatError else { return false }
      return e.line == 1 && e.column == 19 && e.description.count < 200 && e.message.contains("carriage return")
    }
  }

  /// A long token is quoted to 80 characters.
  @Test func longTokensAreCut() {
    let long = String(repeating: "z", count: 100_000)
    for line in ["spawn \(long)", "spawn P\(long)", "\(long) p1", "mmap p1 addr=\(long) pages=1 region=0 pgoff=0"] {
      #expect {
        _ = try SequenceFormat.parseOp(line[...], file: "x.seq")
      } throws: { error in
        (error as? FormatError).map { $0.description.count < 1000 && !$0.description.contains(String(repeating: "z", count: 81)) } ?? false
      }
    }
  }

  /// Paths that are no sequence file say what they are.
  @Test func unreadablePaths() throws {
    let dir = try PrivateFiles.makeDirectory(in: NSTemporaryDirectory(), prefix: "harness-paths")
    defer { PrivateFiles.remove(dir) }
    mkfifo(dir + "/fifo.seq", 0o600)
    mkdir(dir + "/dir.seq", 0o700)
    FileManager.default.createFile(atPath: dir + "/bad.seq", contents: Data("harness-sequence 1\nworld mf\n\nspawn p\u{1}".utf8 + [0xff, 0x0a]))
    let cases: [(String, String)] = [
      (dir + "/fifo.seq", "is a FIFO"), (dir + "/dir.seq", "is a directory"), ("/dev/zero", "is a device"),
      (dir + "/none.seq", "no such file"), (dir + "/bad.seq", "bad.seq:4:9: error: invalid UTF-8 at byte offset 37"),
    ]
    for (path, message) in cases {
      #expect {
        _ = try Corpus.load(path)
      } throws: { error in
        guard let e = error as? HarnessError else { return false }
        return e.status == .usage && e.message.hasPrefix(path.hasSuffix("bad.seq") ? dir : path) && e.message.contains(message)
      }
    }
  }
}

extension Error {
  fileprivate var message: String { (self as? HarnessError)?.message ?? "\(self)" }
}
