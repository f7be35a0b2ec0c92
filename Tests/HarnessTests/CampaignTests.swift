import Foundation
import Testing
import Reference
import Fuzz

@testable import Harness

/// Files of a report directory, path relative to it → contents. `console.log` is left out: it
/// holds the guest's console with the kernel's timestamps, which no two runs share.
func reportFiles(_ directory: String) -> [String: String] {
  var out: [String: String] = [:]
  let fm = FileManager.default
  for rel in fm.subpaths(atPath: directory) ?? [] where !rel.hasSuffix("console.log") {
    var isDir: ObjCBool = false
    guard fm.fileExists(atPath: directory + "/" + rel, isDirectory: &isDir), !isDir.boolValue else { continue }
    out[rel] = (try? String(contentsOfFile: directory + "/" + rel, encoding: .utf8)) ?? "<unreadable>"
  }
  return out
}

/// The files `a` and `b` do not share byte for byte, each with its first differing line.
func differingFiles(_ a: [String: String], _ b: [String: String]) -> [String] {
  Set(a.keys).union(b.keys).sorted().compactMap { k -> String? in
    guard a[k] != b[k] else { return nil }
    let (x, y) = (a[k]?.split(separator: "\n") ?? ["<missing>"], b[k]?.split(separator: "\n") ?? ["<missing>"])
    let i = (0..<min(x.count, y.count)).first { x[$0] != y[$0] } ?? min(x.count, y.count)
    return "\(k): line \(i + 1): \(i < x.count ? x[i] : "<end>") | \(i < y.count ? y[i] : "<end>")"
  }
}

/// The lines of a campaign's standard output that name a sequence (its verdict lines).
func verdictLines(_ out: String) -> [String] {
  out.split(separator: "\n").map(String.init).filter { $0.hasPrefix("seed-") || $0.contains("-seed-") }
}

/// A new scratch directory, removed by the caller.
func scratchDirectory(_ name: String) -> String {
  let path = FileManager.default.temporaryDirectory.appendingPathComponent("harness-\(name)-\(UUID())").path
  try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  return path
}

/// Shards, their partition of the seeds, and where a scheduler's variables put a process.
@Suite struct ShardTests {
  @Test func stridedPartitionCoversEverySeedOnce() {
    for n in 1...5 {
      let all = (0..<n).flatMap { Array(Shard(index: $0, count: n).indices(of: 23)) }.sorted()
      #expect(all == Array(0..<23), "\(n) shards")
    }
    #expect(Array(Shard(index: 1, count: 3).indices(of: 10)) == [1, 4, 7])
  }

  @Test func parsesTheFlag() throws {
    #expect(Shard("2/4") == Shard(index: 2, count: 4))
    for bad in ["4/4", "-1/4", "1/0", "1", "a/b", "1/2/3"] { #expect(Shard(bad) == nil, "\(bad)") }
    #expect(throws: HarnessError.self) { try Shard.resolve(flag: "3/3", environment: [:]) }
  }

  @Test func readsKubernetesAndSlurmVariables() throws {
    #expect(try Shard.resolve(flag: nil, environment: [:]) == nil)
    #expect(try Shard.resolve(flag: nil, environment: ["JOB_COMPLETION_INDEX": "2", "HARNESS_SHARDS": "3"]) == Shard(index: 2, count: 3))
    #expect(try Shard.resolve(flag: nil, environment: ["SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "4"]) == Shard(index: 0, count: 4))
    // An array numbered from 1 (`--array=1-4`).
    let slurm = ["SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1"]
    #expect(try Shard.resolve(flag: nil, environment: slurm) == Shard(index: 3, count: 4))
    // The flag wins over the environment.
    #expect(try Shard.resolve(flag: "1/2", environment: ["JOB_COMPLETION_INDEX": "0", "HARNESS_SHARDS": "3"]) == Shard(index: 1, count: 2))
    // An index without the count is an error that says what to set.
    #expect {
      try Shard.resolve(flag: nil, environment: ["JOB_COMPLETION_INDEX": "1"])
    } throws: { ($0 as? HarnessError)?.message.contains("HARNESS_SHARDS") == true }
  }
}

/// `--shard` and `harness merge` on the model: three shards merged write exactly what one run
/// writes, and merge refuses what does not belong together.
@Suite struct MergeTests {
  static let campaign = ["fuzz", "--seed", "5", "--count", "60", "--world", "all", "--length", "40", "--target", "model"]
  static let runID = "fuzz-all-5-60-l40-model"

  @Test func threeShardsMergeIntoOneRun() throws {
    let tmp = scratchDirectory("merge")
    defer { try? FileManager.default.removeItem(atPath: tmp) }
    let one = try runHarness(Self.campaign + ["--reports", tmp + "/one"])
    #expect(one.status == 0, "\(one.err)")
    for i in 0..<3 {
      let r = try runHarness(Self.campaign + ["--shard", "\(i)/3", "--reports", tmp + "/shards"])
      #expect(r.status == 0, "\(r.err)")
    }
    let shardDirs = (0..<3).map { "\(tmp)/shards/\(Self.runID)-shard-\($0)-of-3" }
    let merged = try runHarness(["merge", "--reports", tmp + "/one-merged"] + shardDirs.reversed())
    #expect(merged.status == 0, "\(merged.err)")
    let a = reportFiles(tmp + "/one/" + Self.runID)
    let b = reportFiles(tmp + "/one-merged/" + Self.runID)
    #expect(a.keys.sorted() == ["campaign.json", "ktap.txt", "summary.json", "summary.txt"])
    #expect(differingFiles(a, b).isEmpty)
    #expect(verdictLines(one.out) == verdictLines(merged.out))
    // A shard alone is not the campaign.
    #expect(reportFiles(shardDirs[0])["ktap.txt"] != a["ktap.txt"])
  }

  @Test func refusesMissingAndForeignShards() throws {
    let tmp = scratchDirectory("merge-refuse")
    defer { try? FileManager.default.removeItem(atPath: tmp) }
    for i in 0..<3 {
      _ = try runHarness(Self.campaign + ["--shard", "\(i)/3", "--reports", tmp])
    }
    let dirs = (0..<3).map { "\(tmp)/\(Self.runID)-shard-\($0)-of-3" }
    let missing = try runHarness(["merge", "--reports", tmp + "/out", dirs[0], dirs[2]])
    #expect(missing.status == 2)
    #expect(missing.err.contains("missing shard 1/3"), "\(missing.err)")

    // Another campaign's shard (other seeds).
    _ = try runHarness(["fuzz", "--seed", "6", "--count", "60", "--world", "all", "--length", "40", "--target", "model", "--shard", "1/3", "--reports", tmp])
    let other = try runHarness(["merge", "--reports", tmp + "/out", dirs[0], "\(tmp)/fuzz-all-6-60-l40-model-shard-1-of-3", dirs[2]])
    #expect(other.status == 2)
    #expect(other.err.contains("another campaign"), "\(other.err)")

    // The same shard twice.
    let twice = try runHarness(["merge", "--reports", tmp + "/out", dirs[0], dirs[0], dirs[1], dirs[2]])
    #expect(twice.status == 2)
    #expect(twice.err.contains("both shard 0/3"), "\(twice.err)")

    // A record edited to say another kernel, ledger or harness.
    for (what, edit) in [
      ("kernel", { (r: inout CampaignRecord) in r.identity.fields.append(["kernel_image_sha256", "0"]) }),
      ("findings ledger", { (r: inout CampaignRecord) in r.ledger = "0 entries" }),
      ("harness version", { (r: inout CampaignRecord) in r.identity.harness = "v0-other" }),
    ] {
      let copy = tmp + "/edited-" + what.replacingOccurrences(of: " ", with: "-")
      try? FileManager.default.removeItem(atPath: copy)
      try FileManager.default.copyItem(atPath: dirs[1], toPath: copy)
      var record = try CampaignRecord.load(copy + "/campaign.json")
      edit(&record)
      try record.json.write(toFile: copy + "/campaign.json", atomically: true, encoding: .utf8)
      let r = try runHarness(["merge", "--reports", tmp + "/out", dirs[0], copy, dirs[2]])
      #expect(r.status == 2, "\(what)")
      #expect(r.err.contains("another \(what)"), "\(what): \(r.err)")
    }
  }

  /// A shard's counts merged into an empty campaign's are the shard's, field by field: a field
  /// `merge` forgets (the observer's counts were) fails here, and a new field fails until this
  /// fixture sets it.
  @Test func mergeKeepsEveryCount() throws {
    var shard = CampaignStats()
    shard.sequences = 3
    shard.ops = 90
    shard.opCounts = ["mmap": 4]
    shard.observationCounts = ["result": 7]
    shard.errnoResults = 2
    shard.comparedOps = 80
    shard.comparedToEnd = 2
    shard.deviationUses = ["kill-outside-vma": 1]
    shard.rules = [Rule.allCases[0].rawValue: 5]
    shard.rulesNeverTaken = [Rule.allCases[1].rawValue]
    shard.inputClasses.draws = ["mmap.length": ["page": 2]]
    shard.inputClasses.combinations = ["mmap": 1]
    shard.add(observer: [["walk pfn=1"], ["signal pid=1"]], compared: true)
    shard.outcomes.add([Outcome.allCases[0]], world: World.named("mf")!)
    func fields(_ s: CampaignStats) throws -> [String: String] {
      let enc = JSONEncoder()
      enc.outputFormatting = .sortedKeys
      let object = try JSONSerialization.jsonObject(with: enc.encode(s)) as? [String: Any] ?? [:]
      return object.mapValues { "\($0)" }
    }
    let empty = try fields(CampaignStats())
    let full = try fields(shard)
    for (key, value) in full where empty[key] == value {
      Issue.record("the fixture leaves CampaignStats.\(key) at its default: set it above")
    }
    var merged = CampaignStats()
    merged.merge(shard)
    #expect(merged == shard)
  }

  /// A verdict's folder, written by the shard that ran it, is in the merged report.
  @Test func mergeCarriesVerdictFolders() throws {
    let tmp = scratchDirectory("merge-folders")
    defer { try? FileManager.default.removeItem(atPath: tmp) }
    let small = ["fuzz", "--seed", "1", "--count", "4", "--target", "model"]
    for i in 0..<2 { _ = try runHarness(small + ["--shard", "\(i)/2", "--reports", tmp]) }
    let dirs = (0..<2).map { "\(tmp)/fuzz-mf-1-4-l30-model-shard-\($0)-of-2" }
    try FileManager.default.createDirectory(atPath: dirs[1] + "/seed-2", withIntermediateDirectories: true)
    try "diff\n".write(toFile: dirs[1] + "/seed-2/diff.txt", atomically: true, encoding: .utf8)
    let r = try runHarness(["merge", "--reports", tmp + "/out"] + dirs)
    #expect(r.status == 0, "\(r.err)")
    #expect(reportFiles(tmp + "/out/fuzz-mf-1-4-l30-model")["seed-2/diff.txt"] == "diff\n")
  }
}

/// deploy/: the commands its manifests run (deploy/shard.sh in every engine's environment, then
/// deploy/merge.sh), here as several processes on this machine, against one run.
@Suite struct DeployTests {
  static let deploy = Paths.root + "/deploy"

  /// Runs deploy/`script` with the campaign's variables and `environment` added.
  static func script(_ script: String, reports: String, _ environment: [String: String]) throws -> (status: Int32, out: String, err: String) {
    let campaign = [
      "HARNESS": Paths.harness, "HARNESS_REPORTS": reports, "HARNESS_SEED": "3", "HARNESS_COUNT": "50",
      "HARNESS_WORLD": "all", "HARNESS_TARGET": "model",
    ]
    // Not inherited from the test's own environment: each engine sets its own.
    let cleared = ["JOB_COMPLETION_INDEX", "HARNESS_SHARDS", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "HARNESS_SHARD"]
    let env = Dictionary(uniqueKeysWithValues: cleared.map { ($0, "") }).merging(campaign) { $1 }.merging(environment) { $1 }
    return try runTool(["/bin/bash", deploy + "/" + script], environment: env)
  }

  /// Each engine's way of naming shard `i` of `n`.
  static func environment(_ engine: String, _ i: Int, _ n: Int) -> [String: String] {
    switch engine {
    case "kubernetes": ["JOB_COMPLETION_INDEX": "\(i)", "HARNESS_SHARDS": "\(n)"]
    // An array numbered from 1, as `--array=1-N` makes it.
    case "slurm": ["SLURM_ARRAY_TASK_ID": "\(i + 1)", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "\(n)"]
    default: ["HARNESS_SHARD": "\(i)/\(n)"]  // GitHub Actions: from the matrix
    }
  }

  @Test(arguments: ["kubernetes", "slurm", "github"])
  func shardsAndMergeAsTheManifestsRunThem(engine: String) throws {
    let tmp = scratchDirectory("deploy-\(engine)")
    defer { try? FileManager.default.removeItem(atPath: tmp) }
    let one = try runHarness(["fuzz", "--seed", "3", "--count", "50", "--world", "all", "--target", "model", "--reports", tmp + "/one"])
    #expect(one.status == 0, "\(one.err)")
    // The shards as separate processes at once, as the engines start them.
    let n = 3
    let statuses = Locked<[Int: String]>([:])
    DispatchQueue.concurrentPerform(iterations: n) { i in
      let r = try? Self.script("shard.sh", reports: tmp + "/campaign", Self.environment(engine, i, n))
      statuses.update { $0[i] = r.map { $0.status == 0 ? "ok" : "exit \($0.status): \($0.err)" } ?? "did not run" }
    }
    #expect(statuses.value == [0: "ok", 1: "ok", 2: "ok"])
    let merged = try Self.script("merge.sh", reports: tmp + "/campaign", [:])
    #expect(merged.status == 0, "\(merged.err)")
    let runID = "fuzz-all-3-50-l30-model"
    #expect(differingFiles(reportFiles(tmp + "/campaign/" + runID), reportFiles(tmp + "/one/" + runID)).isEmpty)
    #expect(verdictLines(merged.out) == verdictLines(one.out))
  }

  /// A shard that did not run is named by the merge, which fails.
  @Test func mergeNamesTheMissingShard() throws {
    let tmp = scratchDirectory("deploy-missing")
    defer { try? FileManager.default.removeItem(atPath: tmp) }
    for i in [0, 2] {
      _ = try Self.script("shard.sh", reports: tmp, ["JOB_COMPLETION_INDEX": "\(i)", "HARNESS_SHARDS": "3"])
    }
    let merged = try Self.script("merge.sh", reports: tmp, [:])
    #expect(merged.status == 2)
    #expect(merged.err.contains("missing shard 1/3"), "\(merged.err)")
  }

  /// The manifests run those scripts, and the Kubernetes Job tells each pod the Job's size.
  @Test func manifestsRunTheTestedScripts() throws {
    func read(_ path: String) throws -> String { try String(contentsOfFile: Self.deploy + "/" + path, encoding: .utf8) }
    let job = try read("kubernetes/fuzz-job.yaml")
    #expect(job.contains("command: [\"deploy/shard.sh\"]") && job.contains("completionMode: Indexed"))
    let completions = job.split(separator: "\n").first { $0.contains("completions:") }?.split(separator: ":").last?
      .trimmingCharacters(in: .whitespaces)
    #expect(completions != nil && job.contains("{ name: HARNESS_SHARDS, value: \"\(completions!)\" }"), "HARNESS_SHARDS must equal completions")
    #expect(try read("kubernetes/merge-job.yaml").contains("command: [\"deploy/merge.sh\"]"))
    #expect(try read("slurm/shard.sbatch").contains("exec deploy/shard.sh"))
    #expect(try read("slurm/merge.sbatch").contains("exec deploy/merge.sh"))
    #expect(try read("slurm/submit.sh").contains("--dependency=\"afterok:"))
    let gha = try read("github/fuzz-shards.yml")
    #expect(gha.contains("HARNESS_SHARD: ${{ matrix.shard }}/4") && gha.contains("deploy/shard.sh") && gha.contains("deploy/merge.sh"))
    #expect(gha.contains("shard: [0, 1, 2, 3]"))
    #expect(try read("Containerfile").contains("HARNESS_GUEST=/opt/harness/guest"))
  }
}
