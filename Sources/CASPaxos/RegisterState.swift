/// What an acceptor holds for one key: its promise and the value it
/// accepted, with that value's ballot.
public struct RegisterState: Hashable, Sendable {
    /// The highest ballot promised (by a prepare or a piggybacked prepare);
    /// ``Ballot/zero`` if none.
    public var promised: Ballot
    /// The ballot of the accepted value; ``Ballot/zero`` if nothing was
    /// accepted yet.
    public var accepted: Ballot
    /// The accepted value; nil is the empty register (never written, or a
    /// tombstone when ``accepted`` is not zero).
    public var value: [UInt8]?

    /// Creates a register state.
    public init(promised: Ballot = .zero, accepted: Ballot = .zero, value: [UInt8]? = nil) {
        self.promised = promised
        self.accepted = accepted
        self.value = value
    }

    /// Whether this register holds a tombstone: an accepted empty value.
    public var isTombstone: Bool { accepted != .zero && value == nil }
}
