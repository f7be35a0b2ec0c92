import Foundation

/// The compiler's notes for one instrumented object (`.gcno`, GCC 12's format): per function
/// its basic blocks, the arcs between them (which of them carry a counter) and the source
/// lines of each block. With the object's counts (``GCDA``) they say which lines ran, as
/// `gcov` does, without running it (``SequenceLines``: a sequence's kernel lines for guided
/// generation, one or two milliseconds where `gcov` and its JSON took a few hundred).
///
/// GCC's notes are a byte stream (since GCC 12 record lengths count bytes and strings are not
/// padded): a header (magic `gcno`, version, stamp, checksum, the compiler's working directory,
/// a flag), then records `tag length payload`. Per function: `FUNCTION` (ident, checksums,
/// name, …), `BLOCKS` (how many), `ARCS` per source block (destination and flags per arc),
/// `LINES` per block (line numbers, a 0 and a file name where the file changes: inlined code
/// from headers). An arc without `ON_TREE` has a counter; the counters of a function come in
/// the order its arcs were listed. The arcs on the spanning tree follow from flow
/// conservation at every block, with the arc from the exit block back to the entry added.
struct GCNO: Sendable {
  struct Function: Sendable {
    var ident: UInt32
    var name: String
    var blocks: Int
    /// (from, to, hasCounter), in the notes' order.
    var arcs: [(from: Int, to: Int, counted: Bool)]
    /// Per block, the lines it belongs to in each file.
    var lines: [Int: [(file: String, line: Int)]]
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
        var file = ""
        var lines: [(file: String, line: Int)] = []
        while r.offset < end {
          let n = try r.word()
          if n != 0 {
            lines.append((file, Int(n)))
            continue
          }
          let name = try r.string()
          if name.isEmpty { break }
          file = name
        }
        functions[functions.count - 1].lines[block, default: []] += lines
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
      let blocks = try f.blockCounts(c)
      for (b, lines) in f.lines where b < blocks.count && blocks[b] > 0 {
        for l in lines where l.file == source || l.file.hasSuffix("/" + source) { run.insert(l.line) }
      }
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
  /// Each block's execution count from the counted arcs' `counts` (in arc order): the other
  /// arcs' counts follow from flow conservation at every block (in = out, with the arc from
  /// the exit block, 1, back to the entry, 0).
  func blockCounts(_ counts: [UInt64]) throws(GCNO.FormatError) -> [UInt64] {
    let counted = arcs.count { $0.counted }
    guard counted == counts.count else {
      throw GCNO.FormatError(description: "\(name): \(counts.count) counters for \(counted) counted arcs")
    }
    guard blocks >= 2 else { return [UInt64](repeating: 0, count: blocks) }
    var all = arcs
    all.append((1, 0, false))
    var value = [UInt64?](repeating: nil, count: all.count)
    var k = 0
    for (i, a) in arcs.enumerated() where a.counted {
      value[i] = counts[k]
      k += 1
    }
    var ins = [[Int]](repeating: [], count: blocks), outs = [[Int]](repeating: [], count: blocks)
    for (i, a) in all.enumerated() where a.from < blocks && a.to < blocks {
      outs[a.from].append(i)
      ins[a.to].append(i)
    }
    // Solves an arc where a block's other side is known and one arc of this side is not.
    var progress = true
    while progress {
      progress = false
      for b in 0..<blocks {
        for (known, open) in [(ins[b], outs[b]), (outs[b], ins[b])] {
          guard known.allSatisfy({ value[$0] != nil }) else { continue }
          let unknown = open.filter { value[$0] == nil }
          guard unknown.count == 1 else { continue }
          let total = known.reduce(UInt64(0)) { $0 &+ value[$1]! }
          let rest = open.reduce(UInt64(0)) { $0 &+ (value[$1] ?? 0) }
          value[unknown[0]] = total >= rest ? total - rest : 0
          progress = true
        }
      }
    }
    return (0..<blocks).map { b in
      let i = ins[b].reduce(UInt64(0)) { $0 &+ (value[$1] ?? 0) }
      let o = outs[b].reduce(UInt64(0)) { $0 &+ (value[$1] ?? 0) }
      return max(i, o)
    }
  }
}
