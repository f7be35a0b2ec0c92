/// The dma-buf half of the model (CONTRACT sections 6 and 7). Placeholder until implemented.
package struct DmaBufModel: Sendable {
  package let world: World
  package init(world: World) { self.world = world }
  package mutating func apply(_ op: Op) -> [Observation] { [.result(.error(.notImplemented))] }
  package func invariantViolation() -> String? { nil }
}
