import EventCore

/// A change function: maps a register's current value (nil: empty) to the
/// new one. Applied on the proposer, once per attempt, so it must be
/// deterministic and free of side effects.
public typealias CASPaxosChange = @Sendable ([UInt8]?) -> [UInt8]?

/// One pending proposal of a ``Proposer``: its key, change and deadline,
/// and the state of its current attempt.
struct Proposal {
    enum Phase: Equatable {
        /// Waiting for earlier proposals on the same key to finish.
        case queued
        /// Waiting to retry after a failed attempt.
        case backingOff(until: Instant)
        /// Prepare sent; collecting promises.
        case preparing
        /// Accept sent; collecting acceptances.
        case accepting
    }

    let id: UInt64
    let key: [UInt8]
    let change: CASPaxosChange
    let deadline: Instant
    /// Garbage collection's re-write of a tombstone: the accept phase needs
    /// every acceptor of the accept set, not a quorum.
    let needsEveryAcceptor: Bool
    /// The identity change (a read, or maintenance's re-write): applying it
    /// again after one of its accepts was sent is harmless, so a retry
    /// never fails for fear of applying it twice.
    let isIdentity: Bool
    var phase = Phase.queued
    var failures = 0
    var lastFailure = CASPaxosError.Code.timeout
    var ballot = Ballot.zero
    var requestID: UInt64 = 0
    var attemptDeadline = Instant.distantFuture
    /// Acceptors that answered this phase positively, and those that refused.
    var granted: Set<Endpoint> = []
    var refused: Set<Endpoint> = []
    /// The highest accepted (ballot, value) among the promises.
    var highestAccepted = Ballot.zero
    var current: [UInt8]?
    /// The value sent in the accept phase, and the piggybacked next ballot.
    var newValue: [UInt8]?
    var nextBallot: Ballot?
    /// Every (ballot, value) this proposal sent in an accept: once one was
    /// sent, the change may have taken effect, so a retry must not apply it
    /// again blindly (see ``Proposer``).
    var sentAccepts: [(ballot: Ballot, value: [UInt8]?)] = []
    /// The request ID of the last accept sent and the acceptors that refused
    /// it, counted even after the attempt was abandoned: refused by every
    /// acceptor, it was written nowhere and leaves ``sentAccepts``.
    var lastAccept: (requestID: UInt64, ballot: Ballot)?
    var lastAcceptRefusals: Set<Endpoint> = []

    /// Whether an attempt is waiting for answers.
    var isInFlight: Bool { phase == .preparing || phase == .accepting }

    /// When the proposer must next look at this proposal: its deadline, or
    /// earlier the end of its attempt or of its back-off.
    var wakeUp: Instant {
        switch phase {
        case .preparing, .accepting: min(deadline, attemptDeadline)
        case .backingOff(let until): min(deadline, until)
        case .queued: deadline
        }
    }

    /// What the deadline reports if the proposal fails now.
    var failureReason: CASPaxosError.Code {
        if isInFlight { return refused.isEmpty ? .noQuorum : .conflict }
        return failures == 0 ? .timeout : lastFailure
    }
}

/// The ballot and value a proposer's last write of a key left promised on a
/// prepare quorum (the one-round-trip optimization).
struct CachedBallot {
    var ballot: Ballot
    var value: [UInt8]?
    /// Insertion order, for evicting the oldest at the cache's limit.
    var stamp: UInt64
}
