import Foundation

/// One of N parts of a campaign's seeds: sequence `i` (seed SEED+i) belongs to shard `i mod N`.
///
/// Strided rather than in blocks, so that shards stopped by a budget still cover a prefix of
/// every shard's seeds, and N shards together run exactly the seeds of one campaign.
/// Invariant: `0 <= index < count`.
struct Shard: Codable, Equatable, Sendable, CustomStringConvertible {
  /// 0-based, as Kubernetes' `JOB_COMPLETION_INDEX`.
  var index: Int
  var count: Int

  /// `I/N`, as `--shard` takes it.
  var description: String { "\(index)/\(count)" }

  /// The indices of `all` (a campaign's sequence numbers) that this shard runs.
  func indices(of all: Int) -> StrideTo<Int> { stride(from: index, to: all, by: count) }

  /// `I/N` with `0 <= I < N`; `nil` when malformed.
  init?(_ text: String) {
    let parts = text.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, (0..<n).contains(i) else { return nil }
    self.init(index: i, count: n)
  }

  init(index: Int, count: Int) {
    precondition((0..<count).contains(index), "shard \(index)/\(count)")
    self.index = index
    self.count = count
  }

  /// The shard to run: `--shard I/N` when given, else what a scheduler set in `environment`:
  /// a Kubernetes Indexed Job's `JOB_COMPLETION_INDEX` with `HARNESS_SHARDS` (the Job's
  /// completions, which Kubernetes does not export), or a Slurm job array's
  /// `SLURM_ARRAY_TASK_ID` (from `SLURM_ARRAY_TASK_MIN`) and `SLURM_ARRAY_TASK_COUNT`.
  /// `nil`: the whole campaign.
  static func resolve(flag: String?, environment: [String: String]) throws(HarnessError) -> Shard? {
    if let flag {
      guard let s = Shard(flag) else {
        throw .usage("--shard \(flag): expected I/N with 0 <= I < N (e.g. --shard 0/4 for the first of four)")
      }
      return s
    }
    func number(_ key: String) throws(HarnessError) -> Int? {
      guard let v = environment[key], !v.isEmpty else { return nil }
      guard let n = Int(v) else { throw .usage("\(key)=\(v): not a number") }
      return n
    }
    if let i = try number("JOB_COMPLETION_INDEX") {
      guard let n = try number("HARNESS_SHARDS") else {
        throw .usage(
          "JOB_COMPLETION_INDEX=\(i) is set but HARNESS_SHARDS is not: set it to the Job's completions "
            + "(deploy/kubernetes/fuzz-job.yaml), or pass --shard I/N")
      }
      guard (0..<max(n, 0)).contains(i) else { throw .usage("JOB_COMPLETION_INDEX=\(i) is not below HARNESS_SHARDS=\(n)") }
      return Shard(index: i, count: n)
    }
    if let id = try number("SLURM_ARRAY_TASK_ID") {
      guard let n = try number("SLURM_ARRAY_TASK_COUNT") else {
        throw .usage("SLURM_ARRAY_TASK_ID=\(id) is set but SLURM_ARRAY_TASK_COUNT is not; pass --shard I/N")
      }
      let i = id - (try number("SLURM_ARRAY_TASK_MIN") ?? 0)
      guard (0..<max(n, 0)).contains(i) else {
        throw .usage("SLURM_ARRAY_TASK_ID=\(id) does not make a shard of \(n) (array 0-\(n - 1) or from SLURM_ARRAY_TASK_MIN, step 1)")
      }
      return Shard(index: i, count: n)
    }
    return nil
  }
}
