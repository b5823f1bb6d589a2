import EventCore

/// An acceptor's whole durable state: what an ``AcceptorStore`` recovers.
public struct AcceptorSnapshot: Hashable, Sendable {
    /// The registers, by key.
    public var registers: [[UInt8]: RegisterState]
    /// The minimum age garbage collection set per proposer.
    public var minimumAges: [NodeID: UInt64]
    /// The highest promise of any removed register: an absent key behaves
    /// as if it had promised this ballot.
    public var removalFloor: Ballot

    /// Creates a snapshot; the default is an acceptor that never ran.
    public init(
        registers: [[UInt8]: RegisterState] = [:], minimumAges: [NodeID: UInt64] = [:], removalFloor: Ballot = .zero
    ) {
        self.registers = registers
        self.minimumAges = minimumAges
        self.removalFloor = removalFloor
    }

    /// Applies one write.
    public mutating func apply(_ write: AcceptorWrite) {
        switch write {
        case .register(let key, let state): registers[key] = state
        case .remove(let key, let floor):
            registers[key] = nil
            removalFloor = max(removalFloor, floor)
        case .minimumAge(let proposer, let age): minimumAges[proposer] = max(minimumAges[proposer] ?? 0, age)
        }
    }
}
