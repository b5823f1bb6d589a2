/// What an acceptor holds for one key: its promise and the value it
/// accepted, with that value's ballot.
///
/// An acceptor also keeps, while it runs, a little of the history of the
/// ballots it accepted for the key, enough for ``neverAccepted(_:)`` to
/// tell a refused proposer that an accept was not written here. That is a
/// hint, not state: it is neither stored nor part of equality, and a
/// register recovered from a store knows nothing below its accepted
/// ballot.
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
    /// Every ballot this acceptor ever accepted for the key (in any
    /// incarnation of the register) is ``accepted`` or at most this.
    private var knownBelow: Ballot
    /// The last ballot accepted from the proposer ``accepted`` displaced
    /// (another proposer), which is that proposer's highest accepted here
    /// as long as it accepted nothing of that proposer since;
    /// ``Ballot/zero`` if unknown.
    private var lastOfOtherProposer = Ballot.zero

    /// Creates a register state, knowing nothing of its history but that
    /// every ballot accepted for the key is at most `promised` (a register
    /// created again after a removal is promised the removal floor, above
    /// all the removed one accepted).
    public init(promised: Ballot = .zero, accepted: Ballot = .zero, value: [UInt8]? = nil) {
        self.init(promised: promised, accepted: accepted, value: value, knownBelow: max(promised, accepted))
    }

    private init(promised: Ballot, accepted: Ballot, value: [UInt8]?, knownBelow: Ballot) {
        self.promised = promised
        self.accepted = accepted
        self.value = value
        self.knownBelow = knownBelow
    }

    /// Whether this register holds a tombstone: an accepted empty value.
    public var isTombstone: Bool { accepted != .zero && value == nil }

    /// This register with `ballot` promised.
    func promising(_ ballot: Ballot) -> RegisterState {
        var promised = self
        promised.promised = ballot
        return promised
    }

    /// This register with `value` accepted at `ballot` and `next` promised.
    func accepting(_ value: [UInt8]?, at ballot: Ballot, promising next: Ballot) -> RegisterState {
        guard ballot != accepted else {
            var state = RegisterState(promised: next, accepted: ballot, value: value, knownBelow: knownBelow)
            state.lastOfOtherProposer = lastOfOtherProposer
            return state
        }
        var state = RegisterState(promised: next, accepted: ballot, value: value, knownBelow: max(knownBelow, accepted))
        let displacesAnother = accepted != .zero && accepted.proposer != ballot.proposer
        state.lastOfOtherProposer = displacesAnother ? accepted : lastOfOtherProposer
        return state
    }

    /// Whether this acceptor knows it never accepted `ballot` for this key.
    /// An acceptor keeps no full history, so it says false when it cannot
    /// tell, as for a repeated copy of an accept it took (refused: it has
    /// promised the next ballot since). It can tell when `ballot` is above
    /// everything it may have accepted but the current ballot, or above the
    /// last ballot it accepted from `ballot`'s proposer (what two proposers
    /// taking turns on a key leave).
    func neverAccepted(_ ballot: Ballot) -> Bool {
        if ballot == accepted { return false }
        if ballot > knownBelow { return true }
        return lastOfOtherProposer != .zero && lastOfOtherProposer.proposer == ballot.proposer
            && ballot > lastOfOtherProposer
    }

    public static func == (lhs: RegisterState, rhs: RegisterState) -> Bool {
        lhs.promised == rhs.promised && lhs.accepted == rhs.accepted && lhs.value == rhs.value
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(promised)
        hasher.combine(accepted)
        hasher.combine(value)
    }
}
