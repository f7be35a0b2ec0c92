import ArgumentParser
import Foundation

/// `harness merge`: shards' report directories into the report of one campaign.
struct Merge: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Combine the reports of a campaign's shards into the report one run would write.",
    discussion: """
      Each DIR is a report directory written by `harness fuzz --shard I/N` (or with a \
      scheduler's shard variables: JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID). The merged \
      report goes to REPORTS/<run-id>/: the same summary.txt, summary.json, ktap.txt, \
      campaign.json and verdict folders as `harness fuzz` without --shard over the same seeds \
      writes, and the same verdict lines on standard output. Refuses shards of different \
      campaigns, kernels, worlds, ledgers or harness versions, and names any shard missing. \
      Exit status 1 when the merged campaign has new verdicts, as fuzz.

      Example:
        for i in 0 1 2; do harness fuzz --seed 1 --count 300 --target model --shard $i/3; done
        harness merge reports/fuzz-mf-1-300-l30-model-shard-*
      """)

  @Argument(help: "The shards' report directories.") var directories: [String]
  @Option(help: "Directory for the merged report; writes REPORTS/<run-id>/.") var reports: String = "reports"
  @Flag(help: "Print one line per sequence, as fuzz --verbose.") var verbose = false

  func validate() throws {
    if directories.isEmpty { throw ValidationError("give the shards' report directories") }
  }

  func run() async throws {
    var shards: [(directory: String, record: CampaignRecord)] = []
    for dir in directories {
      let d = dir.hasSuffix("/") ? String(dir.dropLast()) : dir
      shards.append((d, try CampaignRecord.load(d + "/campaign.json")))
    }
    if try Campaign.merge(shards, reports: reports, verbose: verbose) > 0 { throw Finished(.divergence) }
  }
}
