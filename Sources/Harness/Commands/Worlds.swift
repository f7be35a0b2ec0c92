import ArgumentParser
import Fuzz
import Reference

/// `harness worlds`: lists the built-in worlds and their facts, or boots one and prints what
/// its guest reports.
struct Worlds: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "List the built-in worlds and the facts the model uses.",
    discussion: """
      With --guest W the world W is booted and its guest's `fact` lines are printed, then the \
      world the model is rebuilt from (what a campaign in W predicts from).

      Examples:
        harness worlds
        harness worlds --guest p2p-switch-acs
      """)

  @Option(help: "Boot this world's guest and print the facts it reports (`all`: every guest world).")
  var guest: String?
  @OptionGroup(title: "Kernel under test") var kernel: KernelOptions

  func run() async throws {
    guard let guest else {
      for w in World.builtin { Self.describe(w) }
      return
    }
    let worlds = guest == "all" ? GuestWorld.all : [try GuestWorld.named(guest)]
    let artifacts = try await kernel.build()
    for gw in worlds {
      let (facts, world) = try await GuestSession.with(gw, artifacts: artifacts) { g in (g.facts, g.world) }
      print("\(gw.name): guest facts")
      for f in facts { print("  \(f)") }
      Self.describe(world)
    }
  }

  static func describe(_ w: World) {
    print("\(w.name): cpu \(w.cpu.vendor) family \(w.cpu.family), iommu \(w.iommu.rawValue)")
    if let m = w.deviceMemory {
      print("  device memory: pfn \(SequenceFormat.hex(m.firstPFN)), \(m.pages) pages (regions 2 and 4)")
    }
    for x in w.exporters {
      let bars = x.bars.map { "BAR\($0.index) \(SequenceFormat.hex($0.phys))+\(SequenceFormat.hex($0.size))" }
      print("  exporter \(x.name) at \(x.node): \(bars.joined(separator: ", ")), reset \(x.resetWorks ? "works" : "unsupported"), hot reset \(!x.hotResetWorks ? "unsupported" : w.sharesBus(x) ? "refused (another function on its bus)" : "works"), config space \(x.configSize) bytes, \(x.pmCapability.map { "PM capability at \(SequenceFormat.hex($0))" } ?? "no PM capability")")
    }
    for i in w.importers {
      let types = w.exporters.map { x in "\(x.name) \(DmaBufModel.mapType(exporter: x, importer: i, in: w))" }
      print("  importer \(i.name) at \(i.node), \(i.dmaMaskBits)-bit DMA: map type \(types.joined(separator: ", "))")
    }
    let redirected = w.pci.filter(\.acsRedirect).map(\.name)
    if !redirected.isEmpty { print("  ACS redirect on: \(redirected.joined(separator: ", "))") }
  }
}
