import Foundation

/// A campaign's kernel coverage (`harness fuzz --coverage DIR`): the collector every guest of
/// the campaign hands its counts to, and the folder the report goes to.
///
/// The campaign itself does nothing for it: the collector rides on the guest artifacts, and
/// ``GuestSession`` collects after the boot, before every snapshot restore and at the end of
/// each guest. ``finish(title:)`` then writes the folder (``CoverageReport``).
struct CampaignCoverage: Sendable {
  let directory: String
  let collector: CoverageCollector

  /// Attaches a collector to the coverage flavour's `artifacts`; `perSequence`: each sequence's
  /// kernel lines are wanted too (``SequenceLines``, `--guided`).
  static func start(_ artifacts: inout GuestArtifacts, directory: String, perSequence: Bool = false)
    throws(HarnessError) -> CampaignCoverage
  {
    guard let notes = try CoverageNotes.load(guestDirectory: artifacts.directory) else {
      throw HarnessError(
        .internal, "the guest in \(artifacts.directory) is not a coverage build (no coverage/files)"
      )
    }
    let collector = CoverageCollector(notes: notes, sequenceLines: perSequence ? try SequenceLines(notes: notes) : nil)
    artifacts.coverage = collector
    return CampaignCoverage(directory: directory, collector: collector)
  }

  /// Writes DIR/coverage.info, DIR/src, DIR/html and DIR/summary.json; returns the summary.
  func finish(title: String) async throws -> CoverageSummary {
    try await CoverageReport.write(collector, to: directory, title: title)
  }

  /// The HTML report's first page.
  var html: String { directory + "/" + CoverageReport.htmlName + "/index.html" }

  /// Lines for the campaign's summary: how the counts were taken, and what could not be.
  var notes: [String] {
    var out = ["coverage: \(collector.collections) collections from the guests"]
    let failures = collector.failures
    for f in failures.prefix(10) { out.append("coverage: \(f)") }
    if failures.count > 10 { out.append("coverage: … \(failures.count - 10) more") }
    return out
  }
}
