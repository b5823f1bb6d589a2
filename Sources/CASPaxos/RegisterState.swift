import EventCore

/// What an acceptor holds for one key: its promise and the value it
/// accepted, with that value's ballot.
///
/// An acceptor also keeps, while it runs, a little of the history of the
/// ballots it accepted for the key, enough for ``neverAccepted(_:)`` to
/// tell a refused proposer that an accept was not written here. That is a
/// hint, not state: it is neither stored nor part of equality, and a
/// register recovered from a store knows nothing below its accepted
/// ballot.
///
/// The history is the ballot each other proposer last had accepted here,
/// recorded when the next proposer's accept displaced it (it was then the
/// highest ballot the register had accepted, so every ballot of its
/// proposer accepted here is at most it, for as long as that proposer has
/// nothing accepted here again). Up to three proposers are remembered, the
/// most recently displaced (with the current one, four proposers taking
/// turns), inline: the hint costs no allocation and no reference count.
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
    /// incarnation of the register) is ``accepted`` or has at most this
    /// counter. The counter alone (the bound taken as the highest ballot
    /// of that counter) keeps the register at 113 bytes, and an effect
    /// that carries one (``CASPaxosEffect/persist(_:)``) within the 128
    /// bytes the compiler copies inline, not through a call to `memmove`
    /// (a quarter of the uncontended write throughput in process); it
    /// proves a little less: not a ballot of the same counter from a
    /// proposer with a higher ID.
    private var knownBelow: UInt64
    /// Per proposer other than ``accepted``'s: the ballot of its that an
    /// accept of another proposer displaced, the highest of its accepted
    /// here (see above).
    private var displaced = DisplacedBallots()
    /// The ballot of the value ``value`` was computed from: the highest
    /// accepted ballot among the promises its proposer built on, or the
    /// ballot of that proposer's own previous write when it took a cached
    /// ballot; ``Ballot/zero`` for a value computed from a register never
    /// written. Nil when unknown: nothing accepted, an accept that did not
    /// say (a build before parents, a collection's tombstone re-write), or
    /// a value built where a removal floor above every accepted ballot
    /// hid a collected history. A proposer whose retry finds another's
    /// value above its own accepts tells by it whether that value was
    /// built on one of its own (see ``Proposer``). Always below
    /// ``accepted``.
    /// (Declared last: after the 8-byte fields, the optional's extra byte
    /// adds 1 byte to the register, not 8.)
    public var parent: Ballot?

    /// Creates a register state, knowing nothing of its history but that
    /// every ballot accepted for the key is at most `promised` (a register
    /// created again after a removal is promised the least ballot above
    /// the removal floor, above all the removed one accepted).
    public init(promised: Ballot = .zero, accepted: Ballot = .zero, value: [UInt8]? = nil, parent: Ballot? = nil) {
        self.init(
            promised: promised, accepted: accepted, value: value, parent: parent,
            knownBelow: max(promised, accepted).counter)
    }

    private init(promised: Ballot, accepted: Ballot, value: [UInt8]?, parent: Ballot?, knownBelow: UInt64) {
        self.promised = promised
        self.accepted = accepted
        self.value = value
        self.knownBelow = knownBelow
        self.parent = parent
    }

    /// Whether this register holds a tombstone: an accepted empty value.
    public var isTombstone: Bool { accepted != .zero && value == nil }

    /// This register with `ballot` promised.
    func promising(_ ballot: Ballot) -> RegisterState {
        var promised = self
        promised.promised = ballot
        return promised
    }

    /// This register with `value` (computed from the value of ballot
    /// `parent`, if known) accepted at `ballot` and `next` promised.
    func accepting(_ value: [UInt8]?, at ballot: Ballot, parent: Ballot? = nil, promising next: Ballot) -> RegisterState {
        var state = RegisterState(
            promised: next, accepted: ballot, value: value, parent: parent,
            knownBelow: ballot == accepted ? knownBelow : max(knownBelow, accepted.counter))
        state.displaced = displaced
        if accepted != .zero && accepted.proposer != ballot.proposer {
            state.displaced.record(accepted, current: ballot.proposer)
        }
        return state
    }

    /// Whether this acceptor knows it never accepted `ballot` for this key.
    /// An acceptor keeps no full history, so it says false when it cannot
    /// tell, as for a copy of an accept it took and has replaced since
    /// (refused: another ballot was accepted). It can tell when `ballot` is above
    /// everything it may have accepted but the current ballot, or above the
    /// displaced ballot of `ballot`'s proposer (what proposers taking turns
    /// on a key leave).
    func neverAccepted(_ ballot: Ballot) -> Bool {
        if ballot == accepted { return false }
        if ballot.counter > knownBelow { return true }
        guard let last = displaced.ballot(of: ballot.proposer) else { return false }
        return ballot > last
    }

    public static func == (lhs: RegisterState, rhs: RegisterState) -> Bool {
        lhs.promised == rhs.promised && lhs.accepted == rhs.accepted && lhs.value == rhs.value
            && lhs.parent == rhs.parent
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(promised)
        hasher.combine(accepted)
        hasher.combine(value)
        hasher.combine(parent)
    }
}

/// The displaced ballots a ``RegisterState`` remembers, of up to
/// ``capacity`` proposers, one each, oldest first (``Ballot/zero`` marks the
/// free slots, at the end).
struct DisplacedBallots {
    private typealias Storage = InlineArray<3, Ballot>
    static var capacity: Int { Storage.count }
    private var ballots = Storage(repeating: .zero)

    /// The displaced ballot of `proposer`, if remembered.
    func ballot(of proposer: NodeID) -> Ballot? {
        for index in ballots.indices where ballots[index] != .zero && ballots[index].proposer == proposer {
            return ballots[index]
        }
        return nil
    }

    /// Records `ballot`, just displaced, in place of its proposer's older
    /// one, and forgets the one of `current`, whose ballot displaced it
    /// (current now, so no longer displaced); past ``capacity`` the oldest
    /// goes.
    mutating func record(_ ballot: Ballot, current: NodeID) {
        var kept = Storage(repeating: .zero)
        var count = 0
        for index in ballots.indices {
            let old = ballots[index]
            guard old != .zero, old.proposer != ballot.proposer, old.proposer != current else { continue }
            kept[count] = old
            count += 1
        }
        if count == Self.capacity {
            for index in 1..<count { kept[index - 1] = kept[index] }
            count -= 1
        }
        kept[count] = ballot
        ballots = kept
    }
}
