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

extension Differ {
  /// A run as `replay` prints it: a step that matches its expectation shows the model's name
  /// for each value the kernel chose (`$p1`, `$b2`, `$iova1`: another boot, or the same boot on
  /// a busier host, picks another pid, fd or address, and the comparison binds the name to
  /// whatever it was); a step from the first divergence on shows what the guest did. So the
  /// same files print the same lines on any number of guests.
  package static func symbolic(ops: [Op], expected: [[Observation]?], observed: [[Observation]]) -> [[Observation]] {
    var d = Differ()
    var out = observed
    for (i, op) in ops.enumerated() {
      guard i < observed.count else { break }
      guard let e = expected[i] else { continue }
      if d.compare(step: i, op: op, expected: e, observed: observed[i]) != nil { break }
      let resolved = resolve(e, against: observed[i])
      guard resolved.count == observed[i].count else { continue }
      out[i] = zip(resolved, observed[i]).map { r, o in
        if case .guestFailure = o { return o }  // the kernel's own words
        return r
      }
    }
    return out
  }
}
