import Foundation

/// The compiler's notes for one instrumented object (`.gcno`, GCC 12's format): per function
/// its basic blocks, the arcs between them (which of them carry a counter) and the source
/// lines of each block. With the object's counts (``GCDA``) they say which lines ran, as
/// `gcov` does, without running it (``SequenceLines``: a sequence's kernel lines for guided
/// generation, about 10 ms where `gcov` and its JSON took 150–300).
///
/// GCC's notes are a byte stream (since GCC 12 record lengths count bytes and strings are not
/// padded): a header (magic `gcno`, version, stamp, checksum, the compiler's working directory,
/// a flag), then records `tag length payload`. Per function: `FUNCTION` (ident, checksums,
/// name, …), `BLOCKS` (how many), `ARCS` per source block (destination and flags per arc),
/// `LINES` per block (line numbers, a 0 and a file name where the file changes: inlined code
/// from headers). An arc without `ON_TREE` has a counter; a function's counters come block by
/// block, each block's arcs in the notes' order. The other arcs follow from flow conservation,
/// solved in gcov's order (``Function/solve(_:)``), and lines from blocks by gcov's rule
/// (``Function/linesRun(_:inFile:)``).
struct GCNO: Sendable {
  struct Function: Sendable {
    var ident: UInt32
    var name: String
    var blocks: Int
    /// (from, to, hasCounter), in the notes' order.
    var arcs: [(from: Int, to: Int, counted: Bool)]
    /// Per block, its locations: a file and lines in it, in the notes' order.
    var lines: [Int: [(file: String, lines: [Int])]]
  }

  struct FormatError: Error, CustomStringConvertible {
    var description: String
  }

  static let magic: UInt32 = 0x6763_6e6f
  static let functionTag: UInt32 = 0x0100_0000
  static let blocksTag: UInt32 = 0x0141_0000
  static let arcsTag: UInt32 = 0x0143_0000
  static let linesTag: UInt32 = 0x0145_0000
  static let onTree: UInt32 = 1

  var functions: [Function]

  /// Reads the notes; `ident`s of functions are what their counts in a `.gcda` are matched by.
  init(_ data: Data) throws(FormatError) {
    var r = Reader(bytes: [UInt8](data))
    guard try r.word() == Self.magic else { throw FormatError(description: "not a gcno file") }
    _ = try r.word()  // version
    _ = try r.word()  // stamp
    _ = try r.word()  // checksum (GCC 12)
    _ = try r.string()  // working directory
    _ = try r.word()  // has unexecuted blocks
    functions = []
    while !r.atEnd {
      let tag = try r.word()
      let length = Int(try r.word())
      let end = r.offset + length
      guard end <= r.bytes.count else {
        throw FormatError(description: "record \(String(tag, radix: 16)) at byte \(r.offset - 8) runs past the end")
      }
      switch tag {
      case Self.functionTag:
        let ident = try r.word()
        _ = try r.word()
        _ = try r.word()
        let name = try r.string()
        functions.append(Function(ident: ident, name: name, blocks: 0, arcs: [], lines: [:]))
      case Self.blocksTag where !functions.isEmpty:
        functions[functions.count - 1].blocks = Int(try r.word())
      case Self.arcsTag where !functions.isEmpty:
        let from = Int(try r.word())
        while r.offset + 8 <= end {
          let to = Int(try r.word())
          let flags = try r.word()
          functions[functions.count - 1].arcs.append((from, to, flags & Self.onTree == 0))
        }
      case Self.linesTag where !functions.isEmpty:
        let block = Int(try r.word())
        var groups: [(file: String, lines: [Int])] = []
        while r.offset < end {
          let n = try r.word()
          if n != 0 {
            if groups.isEmpty { groups.append(("", [])) }
            groups[groups.count - 1].lines.append(Int(n))
            continue
          }
          let name = try r.string()
          if name.isEmpty { break }
          groups.append((name, []))
        }
        functions[functions.count - 1].lines[block, default: []] += groups
      default:
        break
      }
      r.offset = end
    }
  }

  /// Lines of files whose name is `source` or ends in `/source` that ran at least once
  /// according to `counts` (the same compilation's `.gcda`). Functions without counts in
  /// `counts` ran nothing.
  func linesRun(_ counts: GCDA, source: String) throws(FormatError) -> Set<Int> {
    // The counters of each function, by ident.
    var countsOf: [UInt32: [UInt64]] = [:]
    var current: UInt32? = nil
    for rec in counts.records {
      if rec.tag == GCDA.functionTag {
        current = rec.payload.first
      } else if rec.tag == GCDA.arcsTag, let c = current {
        countsOf[c, default: []] += stride(from: 0, to: rec.payload.count - 1, by: 2).map {
          UInt64(rec.payload[$0]) | UInt64(rec.payload[$0 + 1]) << 32
        }
      }
    }
    var run: Set<Int> = []
    for f in functions {
      guard let c = countsOf[f.ident], c.contains(where: { $0 != 0 }) else { continue }
      run.formUnion(try f.linesRun(c) { $0 == source || $0.hasSuffix("/" + source) })
    }
    return run
  }

  /// A reader of the notes' little-endian words and strings (byte length with the NUL, no
  /// padding).
  private struct Reader {
    let bytes: [UInt8]
    var offset = 0
    var atEnd: Bool { offset + 8 > bytes.count }
    mutating func word() throws(FormatError) -> UInt32 {
      guard offset + 4 <= bytes.count else { throw FormatError(description: "cut short at byte \(offset)") }
      defer { offset += 4 }
      return UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16
        | UInt32(bytes[offset + 3]) << 24
    }
    mutating func string() throws(FormatError) -> String {
      let n = Int(try word())
      guard offset + n <= bytes.count else { throw FormatError(description: "string cut short at byte \(offset)") }
      defer { offset += n }
      let chars = bytes[offset..<(offset + n)].prefix { $0 != 0 }
      return String(decoding: chars, as: UTF8.self)
    }
  }
}

extension GCNO.Function {
  /// The lines of the files `inFile` accepts that ran, by gcov's rule (GCC 12's `gcov.cc`,
  /// `add_line_counts` and `accumulate_line_info`): a line that is the last (highest) of a
  /// location of a block (neither the first block nor the last) counts the arcs entering those
  /// blocks from blocks outside them; any other line counts the blocks it is in.
  func linesRun(_ counts: [UInt64], inFile: (String) -> Bool) throws(GCNO.FormatError) -> Set<Int> {
    let (blockCount, arcCount) = try solve(counts)
    var sum: [Int: Int64] = [:]
    var ending: [Int: Set<Int>] = [:]
    for (b, locations) in lines {
      // The last line seen, over the block's locations so far (gcov's `line`).
      var last: (file: String, line: Int)? = nil
      for loc in locations {
        // gcov sorts (and uniques) a location's lines before it attaches the block to the last.
        for l in Set(loc.lines).sorted() {
          last = (loc.file, l)
          if inFile(loc.file) { sum[l, default: 0] &+= blockCount[b] }
        }
        if b != 0, b + 1 != blocks, let last, inFile(last.file) { ending[last.line, default: []].insert(b) }
      }
    }
    var run: Set<Int> = []
    for (l, n) in sum {
      if let set = ending[l] {
        var entering: Int64 = 0
        var inside = false
        for (i, a) in arcs.enumerated() where set.contains(a.to) {
          if set.contains(a.from) { inside = inside || arcCount[i] > 0 } else { entering &+= arcCount[i] }
        }
        // (gcov adds the counts of loops entirely on the line; an arc between two of its
        // blocks that ran stands for them.)
        if entering > 0 || (entering == 0 && inside) { run.insert(l) }
      } else if n > 0 {
        run.insert(l)
      }
    }
    return run
  }

  /// Each block's and each arc's execution count from the counted arcs' `counts`, solved as
  /// gcov's `solve_flow_graph` does (the same order: with counts collected from a running
  /// kernel, flow is not always conserved, and the order decides what the other arcs get).
  func solve(_ counts: [UInt64]) throws(GCNO.FormatError) -> (blocks: [Int64], arcs: [Int64]) {
    let counted = arcs.count { $0.counted }
    guard counted == counts.count else {
      throw GCNO.FormatError(description: "\(name): \(counts.count) counters for \(counted) counted arcs")
    }
    var arcCount = [Int64](repeating: 0, count: arcs.count)
    var arcValid = [Bool](repeating: false, count: arcs.count)
    var blockCount = [Int64](repeating: 0, count: blocks)
    guard blocks >= 2 else { return (blockCount, arcCount) }
    var succ = [[Int]](repeating: [], count: blocks), pred = [[Int]](repeating: [], count: blocks)
    var numSucc = [Int](repeating: 0, count: blocks), numPred = [Int](repeating: 0, count: blocks)
    for (i, a) in arcs.enumerated() where a.from < blocks && a.to < blocks {
      succ[a.from].append(i)
      pred[a.to].append(i)
      numSucc[a.from] += 1
      numPred[a.to] += 1
    }
    // Neither the entry's count nor the exit's follows from its missing side.
    numPred[0] = Int.max / 2
    numSucc[1] = Int.max / 2
    var k = 0
    for b in 0..<blocks {
      for i in succ[b] where arcs[i].counted {
        arcCount[i] = Int64(bitPattern: counts[k])
        k += 1
        arcValid[i] = true
        numSucc[b] -= 1
        numPred[arcs[i].to] -= 1
      }
      // gcov sorts a block's arcs by destination (stable) after handing out its counters.
      succ[b] = succ[b].enumerated().sorted { (arcs[$0.element].to, $0.offset) < (arcs[$1.element].to, $1.offset) }.map(\.element)
    }
    var blockValid = [Bool](repeating: false, count: blocks)
    var onInvalid = [Bool](repeating: true, count: blocks), onValid = [Bool](repeating: false, count: blocks)
    var invalid = Array(0..<blocks), valid: [Int] = []
    // The one unsolved arc on a side of a solved block gets what the others leave; the block
    // at its other end may then be solved in turn (gcov's chains).
    func solveLast(of b: Int, outgoing: Bool) {
      var total = blockCount[b]
      var open = -1
      for i in outgoing ? succ[b] : pred[b] {
        total &-= arcCount[i]
        if !arcValid[i] { open = i }
      }
      guard open >= 0 else { return }
      arcValid[open] = true
      arcCount[open] = total
      let o = outgoing ? arcs[open].to : arcs[open].from
      if outgoing {
        numSucc[b] -= 1
        numPred[o] -= 1
      } else {
        numPred[b] -= 1
        numSucc[o] -= 1
      }
      let left = outgoing ? numPred[o] : numSucc[o]
      if blockValid[o] {
        if left == 1 && !onValid[o] {
          valid.append(o)
          onValid[o] = true
        }
      } else if left == 0 && !onInvalid[o] {
        invalid.append(o)
        onInvalid[o] = true
      }
    }
    while !invalid.isEmpty || !valid.isEmpty {
      while let b = invalid.popLast() {
        onInvalid[b] = false
        let total: Int64
        if numSucc[b] == 0 {
          total = succ[b].reduce(0) { $0 &+ arcCount[$1] }
        } else if numPred[b] == 0 {
          total = pred[b].reduce(0) { $0 &+ arcCount[$1] }
        } else {
          continue
        }
        blockCount[b] = total
        blockValid[b] = true
        valid.append(b)
        onValid[b] = true
      }
      while let b = valid.popLast() {
        onValid[b] = false
        if numSucc[b] == 1 { solveLast(of: b, outgoing: true) }
        if numPred[b] == 1 { solveLast(of: b, outgoing: false) }
      }
    }
    return (blockCount, arcCount)
  }
}
