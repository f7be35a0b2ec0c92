import Fuzz
import Reference

/// Running a sequence on the model alone.
enum ModelRun {
  /// Runs the model, checking its invariants after every op and the text round trip.
  static func run(_ sequence: OpSequence, world: World) -> SequenceResult {
    var m = Machine(world: world)
    m.countRules()
    var observed: [[Observation]] = []
    for (i, op) in sequence.ops.enumerated() {
      observed.append(m.apply(op))
      if let v = m.invariantViolation() {
        var r = SequenceResult(sequence: sequence, observed: observed, verdict: .modelInvariant(step: i, message: v))
        r.ruleHits = m.ruleHits
        return r
      }
    }
    let text = SequenceFormat.print(sequence.withExpectations(observed))
    if (try? SequenceFormat.parse(text)).map(SequenceFormat.print) != text {
      return SequenceResult(
        sequence: sequence, observed: observed,
        verdict: .modelInvariant(step: sequence.steps.count - 1, message: "text form does not round-trip"))
    }
    var r = SequenceResult(sequence: sequence, observed: observed, verdict: .match)
    r.ruleHits = m.ruleHits
    return r
  }
}
