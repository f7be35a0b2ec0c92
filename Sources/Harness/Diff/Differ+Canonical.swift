import Reference

extension Differ {
  /// The observations of a run as a report keeps them: where the contract permits a signal
  /// without requiring it (C3.5's `sig?`: a later SIGBUS of one walk arrives only when the
  /// thread ran its handler for the earlier one before the kernel sent it, which the guest's
  /// scheduling decides), the step holds the permission, `sig? …`, whether the signal came or
  /// not. The same kernel then gives the same report on a quiet host and a loaded one, with one
  /// guest or several.
  ///
  /// Only the first `steps` steps are rewritten, those the prediction matched (the comparison
  /// went by the same walk, so each permitted signal's place is known); a step after them keeps
  /// what the guest showed. `predicted`: the prediction that matched them, with the
  /// deviations that explained the run.
  package static func canonical(_ observed: [[Observation]], predicted: [[Observation]], steps: Int)
    -> [[Observation]]
  {
    var out = observed
    for i in 0..<min(steps, observed.count, predicted.count) {
      out[i] = canonical(observed[i], expected: predicted[i])
    }
    return out
  }

  /// One step: the walk of ``resolve(_:against:)``, keeping each permitted signal as the
  /// permission.
  static func canonical(_ observed: [Observation], expected: [Observation]) -> [Observation] {
    guard expected.contains(where: { if case .optional(.signal) = $0 { true } else { false } }) else {
      return observed
    }
    var out: [Observation] = []
    var j = 0
    for e in expected {
      if case .optional(let o) = e {
        let shown = j < observed.count && (observed[j] == o || observed[j] == e || failureMatches(o, observed[j]))
        if case .signal = o {
          out.append(e)
        } else if shown {
          out.append(observed[j])
        }
        if shown { j += 1 }
      } else if j < observed.count {
        out.append(observed[j])
        j += 1
      }
    }
    if j < observed.count { out += observed[j...] }
    return out
  }
}
