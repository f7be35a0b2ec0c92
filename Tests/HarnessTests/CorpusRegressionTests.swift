import Foundation
import Fuzz
import Reference
import Testing

@testable import Harness

/// Every file under Corpora/regression replayed on the model: its recorded expectations (derived
/// by hand from docs/contract.md) must match the model's predictions exactly.
@Suite struct CorpusRegressionTests {
  @Test func corpusIsLargeAndCoversTheContract() throws {
    let files = Paths.regressionFiles
    #expect(files.count >= 40, "only \(files.count) regression sequences")
    var items: Set<String> = []
    for f in files {
      let text = try String(contentsOfFile: Paths.root + "/" + f, encoding: .utf8)
      for m in text.matches(of: /C(\d+)\.(\d+)/) { items.insert("C\(m.1).\(m.2)") }
    }
    // Every item of sections 1-7 is cited by at least one sequence.
    // The repository's own copy of the contract: a fresh clone has everything this test reads.
    let contract = try String(contentsOfFile: Paths.root + "/docs/contract.md", encoding: .utf8)
    let all = Set(contract.matches(of: /^- (C[1-7]\.\d+)/.anchorsMatchLineEndings()).map { String($0.1) })
    #expect(!all.isEmpty)
    // Every item is observable: C2.1 by mf-race (mf-race-calls-serialised.seq), C6.7 by the
    // importer's IOMMU check after an unmap (dmabuf-zen-unmap-nothing-stays-mapped.seq).
    #expect(all.subtracting(items).isEmpty, "contract items without a regression case: \(all.subtracting(items).sorted())")
  }

  /// Model-rule coverage of the corpus: every decision point of the model (``Rule``) is taken by
  /// at least one regression sequence, and every rule's name starts with the contract item the
  /// docs describe.
  @Test func everyModelRuleHasARegressionSequence() throws {
    var hits = RuleHits()
    for f in Paths.regressionFiles {
      let s = try Corpus.load(Paths.root + "/" + f)
      hits.merge(Machine.runCountingRules(s.ops, in: try Corpus.world(of: s, file: f)).1)
    }
    // No world has an exporter whose driver lacks dma-buf support (every vfio-pci device has it),
    // nor one with a PCI power-management capability (ivshmem has none): DmaBufPowerTests takes
    // the PM rules in a world of its own.
    let unreachable: Set<Rule> = [.exportNoSupport, .lowPowerD3hot, .configPowerState, .configPowerStateDiscarded, .powerLow]
    let missing = hits.neverHit.filter { !unreachable.contains($0) }
    #expect(missing.isEmpty, "rules no regression sequence takes: \(missing.map(\.rawValue))")
    #expect(unreachable.allSatisfy { hits.counts[$0] == nil }, "a rule listed unreachable is taken: drop it from the list")
    let contract = try String(contentsOfFile: Paths.root + "/docs/contract.md", encoding: .utf8)
    let items = Set(contract.matches(of: /^- (C[1-7]\.\d+)/.anchorsMatchLineEndings()).map { String($0.1) })
    for r in Rule.allCases {
      #expect(items.contains(r.item), "rule \"\(r.rawValue)\" names no contract item")
      #expect(r.rawValue.count > r.item.count + 4, "rule \(r) has no name beyond its item")
    }
    #expect(Set(Rule.allCases.map(\.rawValue)).count == Rule.allCases.count)
  }

  @Test(arguments: Paths.regressionFiles)
  func replayOnModel(file: String) throws {
    let s = try Corpus.load(Paths.root + "/" + file)
    let world = try Corpus.world(of: s, file: file)
    #expect(s.steps.allSatisfy { $0.expected != nil }, "\(file): every op needs its expected observations")
    let observed = Machine.run(s.ops, in: world)
    if let d = Differ.firstDivergence(ops: s.ops, expected: s.steps.map(\.expected), observed: observed) {
      let r = SequenceResult(sequence: s, observed: observed, verdict: .divergence(d))
      Issue.record("\(file): \(ReportWriter.describe(r))")
    }
    // The file is in canonical form.
    let text = try String(contentsOfFile: Paths.root + "/" + file, encoding: .utf8)
    #expect(SequenceFormat.print(s) == text, "\(file) is not in canonical form")
  }
}
