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
        /// The prepare reached its quorum, which holds another proposer's
        /// ballot (or a removal floor) above the proposal's last accept,
        /// the only one it may have written, while a quorum of refusals of
        /// that accept, and every answer to it so far, proved it unwritten:
        /// waiting for the others' answers, which may prove it written
        /// nowhere, before deciding between a fresh change and an
        /// indeterminate failure (see ``Proposer``).
        /// ``Proposal/attemptDeadline`` bounds the wait.
        case awaitingLastAccept
    }

    let id: UInt64
    private(set) var key: [UInt8]
    private(set) var change: CASPaxosChange
    /// When the proposal fails if it has not ended. A maintenance
    /// proposal's starts again when it leaves its key's queue
    /// (``Proposer``'s `startQueued`).
    var deadline: Instant
    /// Garbage collection's re-write of a tombstone: the accept phase of a
    /// tombstone needs every acceptor of the accept set, not a quorum
    /// (``acceptNeedsEveryAcceptor``).
    let needsEveryAcceptor: Bool
    /// The identity change (a read, or maintenance's re-write): applying it
    /// again after one of its accepts was sent is harmless, so a retry
    /// never fails for fear of applying it twice.
    let isIdentity: Bool
    /// A client's read (``Proposer/read(key:now:into:)``), not
    /// maintenance's re-write: it may end at the promises, without an
    /// accept, when they prove the value chosen (see ``Proposer``).
    var isRead = false
    /// A proposal of garbage collection or of a membership change, not a
    /// client's.
    var isMaintenance = false
    /// Whether the accept phase needs every acceptor: a collection's
    /// re-write of a tombstone. A value written since the delete needs a
    /// quorum, as a read's write-back does: the collection then ends with
    /// nothing removed, and a full acceptor that does not hold the key
    /// would refuse the value at every run.
    var acceptNeedsEveryAcceptor: Bool { needsEveryAcceptor && newValue == nil }
    var phase = Phase.queued
    /// The attempt in flight took the key's cached ballot: its accept
    /// went out at once, with no prepare (the one-round-trip path).
    var tookCachedBallot = false
    var failures = 0
    /// The proposer's age when the attempt in flight began: an invalidation
    /// since (a garbage collection of the key, or of any key, re-wrote it
    /// above this attempt's ballots) leaves nothing of the attempt to cache.
    var attemptAge: UInt64 = 0
    /// The age the request of the phase in flight carries: the attempt's,
    /// or, for an accept sent after a stale-age refusal aged the proposer
    /// mid-prepare, the age it went out at. Its copies carry it too: each
    /// is the same message as the request.
    var requestAge: UInt64 = 0
    /// A maintenance proposal: the proposer's counter when its last prepare
    /// was refused for a ballot below a promise (0: none was), to tell how
    /// far the key's promise moves during a back-off (see ``Proposer``).
    var outbidAt: UInt64 = 0
    var lastFailure = CASPaxosError.Code.timeout
    /// The highest counter above ``Ballot/followedCounterLimit`` the
    /// proposal's answers named (0: none did): its next ballot must beat
    /// it, drawn from the proposer's counter above the limit.
    var ballotFloor: UInt64 = 0
    var ballot = Ballot.zero
    var requestID: UInt64 = 0
    var attemptDeadline = Instant.distantFuture
    /// When the attempt's request goes again to the acceptors that have
    /// not answered it (``CASPaxosConfiguration/resendInterval``).
    var resendAt = Instant.distantFuture
    /// Acceptors that answered this phase positively, and those that
    /// refused (positions in the proposer's ``AcceptorDirectory``).
    var granted = AcceptorSet()
    var refused = AcceptorSet()
    /// Of ``refused``, the acceptors whose registers are full
    /// (``CASPaxosMessage/registersFull(requestID:)``).
    var refusedFull = AcceptorSet()
    /// Of ``granted``, the acceptors that did not store their promise
    /// (``CASPaxosMessage/unrecordedPromise(requestID:removalFloor:)``).
    var unrecorded = AcceptorSet()
    /// A read's attempts send ``CASPaxosMessage/readPrepare(requestID:key:ballot:age:version:)``
    /// until one of them must write the value back with some promises
    /// unstored; from then on, plain prepares.
    var needsStoredPromises = false
    /// The highest accepted (ballot, value) among the promises, with the
    /// value's parent if a promise named it (``RegisterState/parent``),
    /// and the lowest accepted ballot (nil before the first promise).
    var highestAccepted = Ballot.zero
    var current: [UInt8]?
    var currentParent: Ballot?
    var lowestAccepted: Ballot?
    /// The value sent in the accept phase, and the piggybacked next ballot.
    var newValue: [UInt8]?
    var nextBallot: Ballot?
    /// Every accept this proposal sent: once one was
    /// sent, the change may have taken effect, so a retry must not apply it
    /// again blindly (see ``Proposer``).
    var sentAccepts = SentAccepts()
    /// The highest removal floor among this proposal's promises (those of
    /// acceptors that accepted nothing for the key): every ballot an
    /// acceptor accepted for a key it then removed is below its floor, so
    /// an accept of this proposal's below it may have been chosen and
    /// collected since (see ``Proposer``).
    var highestRemovalFloor = Ballot.zero
    /// The last accept sent, and what its answers said, counted even after
    /// the attempt was abandoned: refused by every acceptor knowing it
    /// never accepted it, it was written nowhere and leaves
    /// ``sentAccepts``. A new configuration forgets it (refusals are
    /// counted by position in the directory, which it changes), which at
    /// worst keeps an accept that was written nowhere.
    var lastAccept: LastAccept?

    /// The request ID the attempt leaves behind when its phase ends, if no
    /// reply to it matters any more: not the last accept's, whose refusals
    /// are still counted.
    var retiredRequestID: UInt64? { lastAccept?.requestID != requestID ? requestID : nil }

    /// Whether an attempt is waiting for answers.
    var isInFlight: Bool { phase == .preparing || phase == .accepting || phase == .awaitingLastAccept }

    /// When the proposer must next look at this proposal: its deadline, or
    /// earlier the end of its attempt or of its back-off, or a resend of
    /// its request.
    var wakeUp: Instant {
        switch phase {
        case .preparing, .accepting: min(deadline, attemptDeadline, resendAt)
        case .awaitingLastAccept: min(deadline, attemptDeadline)
        case .backingOff(let until): min(deadline, until)
        case .queued: deadline
        }
    }

    /// Drops, in place, what the proposal holds references to (its key,
    /// change and values), for its slot in ``ProposalTable`` once it
    /// ended: the user's change closure, and what it captures, must not
    /// live on in a free slot. Cheaper than assigning an empty proposal
    /// over it, a copy of some 600 bytes through its value witness (about
    /// 800 instructions a write, callgrind). A field added that holds a
    /// reference belongs here too.
    mutating func releaseReferences() {
        key = []
        change = Self.noChange
        current = nil
        newValue = nil
        sentAccepts = SentAccepts()
    }

    private static let noChange: CASPaxosChange = { $0 }

    /// What the deadline reports if the proposal fails now.
    var failureReason: CASPaxosError.Code {
        if phase == .awaitingLastAccept { return .conflict }
        if isInFlight { return refused.isEmpty ? .noQuorum : .conflict }
        return failures == 0 ? .timeout : lastFailure
    }
}

/// The accepts a proposal sent, oldest first: each one's ballot, value and
/// result (what the proposal returns if that accept is chosen: the value
/// its change produced). Most proposals send one, which is held inline.
struct SentAccepts {
    typealias Accept = (ballot: Ballot, value: Written)
    /// A value sent and the proposal's result with it.
    typealias Written = (value: [UInt8]?, result: [UInt8]?)

    /// The ballot of the first accept sent, if one was.
    private(set) var firstBallot: Ballot?
    private var firstValue: Written = (nil, nil)
    private var later: [Accept] = []

    var isEmpty: Bool { firstBallot == nil }

    /// Whether the only accept sent (and not proved unwritten) is the one
    /// at `ballot`.
    func holdsOnly(_ ballot: Ballot) -> Bool { firstBallot == ballot && later.isEmpty }

    mutating func append(_ accept: Accept) {
        if firstBallot == nil {
            firstBallot = accept.ballot
            firstValue = accept.value
        } else {
            later.append(accept)
        }
    }

    /// The value sent at `ballot` and its result, if an accept was sent at
    /// it.
    func value(at ballot: Ballot) -> Written? {
        if firstBallot == ballot { return firstValue }
        guard let index = later.firstIndex(where: { $0.ballot == ballot }) else { return nil }
        return later[index].value
    }

    /// Forgets the accepts sent at `ballot`.
    mutating func remove(_ ballot: Ballot) {
        later.removeAll { $0.ballot == ballot }
        guard firstBallot == ballot else { return }
        if later.isEmpty {
            firstBallot = nil
            firstValue = (nil, nil)
        } else {
            let next = later.removeFirst()
            firstBallot = next.ballot
            firstValue = next.value
        }
    }
}

/// A proposal's last accept (``Proposal/lastAccept``) and its answers so
/// far.
struct LastAccept {
    let requestID: UInt64
    let ballot: Ballot
    /// When it left.
    let sentAt: Instant
    /// The acceptors that refused it knowing they never accepted it
    /// (positions in the proposer's ``AcceptorDirectory``).
    var refusals = AcceptorSet()
    /// Whether an acceptor answered it without proving it unwritten there
    /// (it took it, or refused without knowing, as a stale age does): a
    /// prepare stops waiting for its other answers
    /// (``Proposal/Phase/awaitingLastAccept``), which could prove it
    /// written nowhere only if that acceptor refused a later copy knowing.
    var mayBeWritten = false
}

/// The ballot and value a proposer's last write of a key left promised on a
/// prepare quorum (the one-round-trip optimization), and the ballot that
/// value was accepted at: the parent of the value the next write computes
/// from it (``RegisterState/parent``); nil, unknown, for a read's value
/// found below a removal floor (the key collected: nothing accepted, and
/// a history the floor hides).
struct CachedBallot {
    var ballot: Ballot
    var value: [UInt8]?
    var acceptedAt: Ballot?
}
