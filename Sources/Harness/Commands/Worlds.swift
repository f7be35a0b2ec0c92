import ArgumentParser
import Fuzz
import Reference

/// `harness worlds`: lists the built-in worlds and their facts.
struct Worlds: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "List the built-in worlds and the facts the model uses.",
    discussion: "Example:\n  harness worlds")

  func run() {
    for w in World.builtin {
      print("\(w.name): cpu \(w.cpu.vendor) family \(w.cpu.family), iommu \(w.iommu.rawValue)")
      if let m = w.deviceMemory {
        print("  device memory: pfn \(SequenceFormat.hex(m.firstPFN)), \(m.pages) pages (regions 2 and 4)")
      }
      for x in w.exporters {
        let bars = x.bars.map { "BAR\($0.index) \(SequenceFormat.hex($0.phys))+\(SequenceFormat.hex($0.size))" }
        print("  exporter \(x.name) at \(x.node): \(bars.joined(separator: ", ")), reset \(x.resetWorks ? "works" : "unsupported"), hot reset \(x.hotResetWorks ? "works" : "unsupported"), config space \(x.configSize) bytes, \(x.pmCapability.map { "PM capability at \(SequenceFormat.hex($0))" } ?? "no PM capability")")
      }
      for i in w.importers {
        let type = DmaBufModel.mapType(exporter: w.exporters[0], importer: i, in: w)
        print("  importer \(i.name) at \(i.node): map type \(type)")
      }
    }
  }
}
