import Reference
import Testing

@testable import Fuzz

/// Every classed field of every op gets values of each of its input classes (InputClasses), in
/// combinations too, and each class's draws are what the census counts them as.
@Suite struct InputClassTests {
  /// The census of 300 seeds of 100 ops in every world.
  static let census: InputCensus = {
    var c = InputCensus()
    for world in World.builtin {
      for seed in 0..<300 {
        for op in Generator.generate(world: world, seed: UInt64(seed), length: 100).ops { c.add(op, world: world) }
      }
    }
    return c
  }()

  /// `keyword.field` of every field with a class besides valid, of the kinds a world generates.
  static var classedFields: [(key: String, classes: [InputClass])] {
    var out: [(String, [InputClass])] = []
    for k in OpKind.allCases {
      for f in k.spec.fields {
        let classes = InputClasses.classes(of: f.domain)
        guard !classes.isEmpty else { continue }
        let keys = f.domain == .dmaRanges ? ["offset", "length"] : [f.name]
        for key in keys where !out.contains(where: { $0.0 == k.spec.keyword + "." + key }) {
          out.append((k.spec.keyword + "." + key, classes))
        }
      }
    }
    return out
  }

  /// No class below 2 % of its field's values.
  @Test func everyClassHasItsShare() {
    let census = Self.census
    for (key, classes) in Self.classedFields {
      guard let draws = census.draws[key] else {
        Issue.record("\(key): never drawn")
        continue
      }
      let total = draws.values.reduce(0, +)
      #expect(Set(draws.keys) == Set(classes.map(\.rawValue)), "\(key): \(draws)")
      for k in classes {
        let n = draws[k.rawValue, default: 0]
        #expect(n * 50 >= total, "\(key): \(k) \(n) of \(total) (below 2 %)")
      }
    }
  }

  /// Ops with two or more classed fields get several values outside the valid class at once.
  @Test func combinationsOfSeveralFields() {
    for k in OpKind.allCases {
      let classed = k.spec.fields.filter { InputClasses.classes(of: $0.domain).count > 1 }
      guard classed.count > 1 else { continue }
      #expect(Self.census.combinations[k.spec.keyword, default: 0] > 20, "\(k.spec.keyword): no combinations")
    }
  }

  /// A value drawn for a class is classified as that class (a drawn invalid value never lands
  /// on an edge, and so on), in every world.
  @Test(arguments: World.builtin.map(\.name))
  func drawsAreOfTheirClass(world: String) {
    let w = World.named(world)!
    var rng = PRNG(seed: 3)
    let x = w.exporters.first?.name.raw ?? "x0"
    let samples: [Op] = [
      .exit(ProcessName("p1")!, code: 0), .mceKill(ThreadRef(ProcessName("p1")!, 0), arg2: 1, arg3: 1),
      .sysctlEarlyKill(1), .mmap(ProcessName("p1")!, addr: w.mapWindow.lowerBound, pages: 1, region: 2, pgoff: 0),
      .spaceCreate(SpaceName("s1")!, first: 1, last: 2, callback: .nvgrace),
      .injectShim(ThreadRef(ProcessName("p1")!, 0), pfn: 1, flags: 0),
      .export(BufName("b1")!, DeviceName(x)!, ExportRequest(region: 2, ranges: [DMARange(offset: 0, length: 0x1000)])),
      .attach(AttachmentName("a1")!, BufName("b1")!, importer: ImporterName("i0")!, isDynamic: true),
    ]
    for op in samples where !(op.isDmaBuf && w.exporters.isEmpty) {
      let values = op.fieldValues
      let context = InputClasses.Context(world: w, kind: op.kind, values: values)
      for f in op.kind.spec.fields {
        for k in InputClasses.classes(of: f.domain) {
          let parts = f.domain == .dmaRanges ? ["offset", "length"] : [""]
          for part in parts {
            for _ in 0..<200 {
              let v = InputClasses.draw(f, k, context, &rng, part: part)
              let got = InputClasses.classify(f.domain, v, context, field: part.isEmpty ? f.name : part)
              #expect(got == k, "\(world) \(op.keyword).\(part.isEmpty ? f.name : part): \(v) drawn as \(k), classified \(String(describing: got))")
              if got != k { return }
            }
          }
        }
      }
    }
  }
}
