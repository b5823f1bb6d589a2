import EventCore

/// The proposer role of CASPaxos as a sans-IO state machine: it turns
/// ``propose(key:change:now:into:)`` into prepare and accept rounds against
/// the acceptors of its ``AcceptorQuorums``, retries refused or unanswered
/// attempts with a higher ballot after a jittered exponential back-off,
/// and ends every proposal with ``CASPaxosEffect/proposalCompleted(id:result:)``.
///
/// - Ballots are (counter, proposer ID). A refusal names the highest ballot
///   the acceptor saw and the counter jumps past it, so the next attempt
///   can win.
/// - A maintenance proposal (a membership change's or a garbage
///   collection's) whose prepare is refused again after a back-off learns
///   how far the proposer's counter moved while it waited (other
///   proposers writing the key in one round trip each raise its promise by
///   one per write), and its next attempt's counter goes past the highest
///   seen by four times that (the next back-off may be up to four times as
///   long), at most 2¹⁶. Otherwise, having failed a few times, it waits up
///   to ``CASPaxosConfiguration/maximumBackoff`` and prepares with the
///   ballot it learned that long ago, below the promise again: on a key
///   others keep writing it never wins, and the change or collection waits
///   on it until its deadline. Clients' proposals keep the plain rule: the
///   jump wins by preempting other writers' accepts, and under contention
///   (the CASPaxos demo) it multiplied failed attempts and indeterminate
///   results; a client's proposal that fails is retried by its client.
/// - An attempt sends its request (a prepare, an accept) again, with the
///   same ballot and request ID, to the acceptors that have not answered
///   it after each ``CASPaxosConfiguration/resendInterval``, until a
///   quorum answers or ``CASPaxosConfiguration/attemptTimeout`` abandons
///   it: a lost datagram costs an interval, not an attempt. Both are safe
///   to repeat (an acceptor answers a copy of what it promised or still
///   holds accepted as it answered the first), and on a key others write,
///   an accept abandoned for want of answers ends the proposal
///   indeterminate more often than not.
/// - Phase 1 needs ``AcceptorQuorums/prepareQuorum`` promises; the current
///   value is that of the highest accepted ballot among them (nil if none).
///   The change runs on it; phase 2 needs ``AcceptorQuorums/acceptQuorum``
///   acceptances of the new value.
/// - Proposals on one key run one at a time, in order (later ones queue):
///   they would only refuse each other's ballots otherwise.
/// - Retries never apply a change twice. Until an accept was sent, nothing
///   was written and a retry simply starts over. Once one was, the value
///   may be accepted somewhere and picked up later, so the retry's prepare
///   decides: if the highest accepted ballot in its quorum is one of this
///   proposal's own accepts, it proposes that value again (finishing the
///   write instead of repeating it); if it is another proposer's ballot
///   above this proposal's first accept, that proposer may have built on
///   this proposal's value, and the proposal fails with an indeterminate
///   ``CASPaxosError/Code/conflict``; otherwise (every ballot seen is older)
///   the earlier accepts can no longer be chosen once this one is, and the
///   change is applied afresh. Another proposer's value above the first
///   accept is decided by its parent (``RegisterState/parent``, which
///   accepts name and promises report,
///   ``CASPaxosConfiguration/isParentBallotEnabled``): the ballot of the
///   value it was computed from. A parent that is one of this proposal's
///   accepts means the change took effect, once, inside that value: the
///   proposal writes it back and returns its own result
///   (``ProposerCounters/rivalValuesBuiltOnOwn``). A parent below the first
///   accept means no value built on this proposal's is in its history
///   (parents are always below their value's ballot): the change is
///   applied afresh to it (``ProposerCounters/rivalValuesBuiltOnOlder``).
///   Only a parent in between, or none named, leaves the `.conflict`.
///   Garbage collection would break the last
///   case: a value chosen, read, deleted and collected leaves no ballot
///   behind. But an acceptor that removed accepted ballots keeps a floor
///   above them, and its promise of a key it accepted nothing for names
///   that floor: a floor above this proposal's first accept fails the
///   proposal indeterminate too.
/// - An accept refused by every acceptor, each knowing it never accepted
///   it, was written nowhere and no longer counts as sent. A retry's prepare
///   often reaches its quorum before the last of those refusals arrives
///   (the attempt was abandoned at a quorum of refusals): when its only
///   obstacle is that accept, a quorum of such refusals came and every
///   answer to it so far was one, the proposal waits for the missing
///   answers, as long again as the accept has been out
///   (``Proposal/Phase/awaitingLastAccept``). The last refusal lets the
///   change apply afresh; an acceptance, a refusal that proves nothing, or
///   the deadline fails it indeterminate, as it would have failed at once.
///   A refused one-round-trip accept after another proposer's write is the
///   common case.
/// - One-round-trip optimization: an accept carries the next ballot,
///   which acceptors promise as they accept. When a prepare quorum did, the
///   proposer caches (next ballot, new value) for the key, and its next
///   proposal on the key goes straight to the accept phase with them. A
///   refusal drops the entry and the retry takes both phases. An accept
///   carries the next ballot only when this proposer wrote the key last
///   (its accept took the cached ballot, or the prepare's highest accepted
///   ballot is its own, or the key was never written), and while at least
///   three quarters of its recent writes (clients' writes, not reads or
///   maintenance) followed its own (``LastWriterShare``): on keys that
///   proposers write in turn, a promised next ballot would refuse the
///   next writer's prepare, and the cached accept would be refused once
///   another proposer wrote the key, each costing a round trip and a
///   back-off (and an indeterminate result when an acceptor is down).
///   Such writes take two round trips, as without the optimization.
/// - Garbage collection and membership change run here too
///   (``Proposer+Maintenance``): a proposer answers invalidations and
///   reconfigurations, and can drive either procedure.
///
/// Reads (``read(key:now:into:)``) are proposals with the identity change.
/// A read whose promises prove the value chosen ends at them, without an
/// accept; otherwise it writes the value back, which is what makes a read
/// after an interrupted write linearizable.
public struct Proposer {
    /// This proposer's ID, the tiebreaker of its ballots; unique per
    /// incarnation (a restarted proposer must not reuse its ballots).
    public let id: NodeID
    /// The validated configuration.
    public let configuration: CASPaxosConfiguration
    /// The acceptors and quorums in use.
    public internal(set) var quorums: AcceptorQuorums {
        didSet {
            acceptors = AcceptorDirectory(quorums)
            configurationVersion = quorums.configurationVersion
        }
    }
    /// ``quorums``' version and digest, which every prepare and accept
    /// carries (kept, not hashed per message).
    private(set) var configurationVersion: ConfigurationVersion
    /// Grows with each garbage-collection invalidation; sent with every
    /// prepare and accept.
    public internal(set) var age: UInt64 = 0
    /// What the proposer has done so far.
    public internal(set) var counters = ProposerCounters()

    /// The ballot counter: follows the ballots answers name, up to
    /// ``Ballot/followedCounterLimit``, and draws up to
    /// ``Ballot/ownCounterLimit``.
    var counter: UInt64 = 0
    /// The counter of ballots that beat one above
    /// ``Ballot/followedCounterLimit`` (0 until one is met), above
    /// ``Ballot/ownCounterLimit``: kept apart, so that such a ballot
    /// touches only the keys it was met on, and never gives a ballot
    /// ``counter`` gives.
    var counterAboveLimit: UInt64 = 0
    var random: SeededRandomGenerator
    /// Starts where this proposer's ID puts it (``firstProposalID(for:)``);
    /// never 0.
    var nextProposalID: UInt64
    /// Starts where this proposer's ID puts it (``firstRequestID(for:)``).
    var nextRequestID: UInt64
    var proposals = ProposalTable()
    /// How long phases take to reach their quorum (resends wait for twice
    /// that at least).
    var roundTrips = RoundTripEstimate()
    /// How often this proposer wrote last the keys it writes.
    var lastWriters = LastWriterShare()
    /// Per key: the running proposal, the queued ones, the cached ballot.
    var keys: KeyTable
    /// The proposal waiting for each request's answers (the current
    /// request of every attempt in flight, and the last accept of each
    /// proposal that sent one).
    var proposalByRequest = IdentifierIndex()
    /// ``quorums`` by acceptor position.
    var acceptors: AcceptorDirectory
    /// ``CASPaxosConfiguration/attemptTimeout``,
    /// ``CASPaxosConfiguration/proposalTimeout`` and
    /// ``CASPaxosConfiguration/resendInterval`` in nanoseconds (reading a
    /// `Duration`'s nanoseconds divides 128-bit integers, several times
    /// per proposal otherwise).
    let timeouts: (attempt: UInt64, proposal: UInt64, resend: UInt64)
    /// Garbage collections and membership changes this proposer drives.
    var tasks: [UInt64: MaintenanceTask] = [:]
    var taskByRequest: [UInt64: UInt64] = [:]

    /// Creates a proposer.
    ///
    /// - Parameters:
    ///   - id: unique per incarnation (draw a random one on every start).
    ///   - quorums: the acceptors to use.
    ///   - seed: seeds the back-off jitter.
    /// - Throws: `ConfigurationError` if `configuration` or `quorums` is
    ///   invalid.
    public init(
        id: NodeID, quorums: AcceptorQuorums, configuration: CASPaxosConfiguration, seed: UInt64
    ) throws(ConfigurationError) {
        try configuration.validate()
        try quorums.validate()
        self.id = id
        nextRequestID = Self.firstRequestID(for: id)
        nextProposalID = Self.firstProposalID(for: id)
        self.quorums = quorums
        self.configuration = configuration
        random = SeededRandomGenerator(seed: seed)
        keys = KeyTable(maximumCached: configuration.maximumCachedKeys)
        // validate() keeps them within 1 ms ... 1 h.
        timeouts = (
            UInt64(clamping: configuration.attemptTimeout.nanoseconds),
            UInt64(clamping: configuration.proposalTimeout.nanoseconds),
            UInt64(clamping: configuration.resendInterval.nanoseconds)
        )
        acceptors = AcceptorDirectory(quorums)
        configurationVersion = quorums.configurationVersion
    }

    /// Proposals pending (running or queued).
    public var pendingCount: Int { proposals.count }
    /// Keys whose ballot is cached for the one-round-trip path.
    public var cachedKeyCount: Int { keys.cachedCount }

    /// Whether pending proposal `proposalID` has sent accepts, so that its
    /// change may have been written whatever becomes of it (false for an
    /// unknown ID). A driver that abandons its proposals (stopping) fails
    /// such a one as indeterminate.
    public func mayHaveWritten(_ proposalID: UInt64) -> Bool {
        proposals[proposalID].map { !$0.sentAccepts.isEmpty } ?? false
    }

    // MARK: Inputs

    /// Starts a proposal to change `key`'s value with `change`; returns its
    /// ID, which the ``CASPaxosEffect/proposalCompleted(id:result:)`` effect
    /// carries when it ends. IDs are nonzero and unique to this proposer:
    /// they count up from a start its ``id`` picks, so another incarnation
    /// (another ID) issues none of them, but for odds of about proposals /
    /// 2⁶⁴ with random IDs.
    ///
    /// - Throws: ``CASPaxosError`` `.tooLarge` for a key above
    ///   ``CASPaxosConfiguration/maximumKeySize``, `.overloaded` with
    ///   ``CASPaxosConfiguration/maximumPendingProposals`` pending,
    ///   `.invalidRequest` for the key membership changes reserve (a 0xFF
    ///   byte, then `chorus.membership-change`; it may be read).
    @discardableResult
    public mutating func propose(
        key: [UInt8], change: @escaping CASPaxosChange, now: Instant, into effects: inout [CASPaxosEffect]
    ) throws(CASPaxosError) -> UInt64 {
        try Self.refuseReserved(key)
        return try propose(
            key: key, change: change, isIdentity: false, needsEveryAcceptor: false, now: now, into: &effects)
    }

    /// Throws `.invalidRequest` for ``MembershipChangeRecord/key``, which
    /// only membership changes write.
    static func refuseReserved(_ key: [UInt8]) throws(CASPaxosError) {
        guard key != MembershipChangeRecord.key else {
            throw CASPaxosError(.invalidRequest, detail: "the key is reserved for membership changes")
        }
    }

    /// Starts a read of `key`: a proposal with the identity change, whose
    /// last attempt takes one round trip when the key's value is settled.
    ///
    /// - With a cached ballot (this proposer wrote or read the key last),
    ///   the read is an accept of the cached value: one round trip, and
    ///   the value written back.
    /// - Otherwise it sends a prepare. If every promise of the quorum names
    ///   the same accepted ballot, and an accept quorum of the acceptors
    ///   holds it, that value was chosen and nothing newer was: the read
    ///   returns it at the promises, one round trip, with no accept and no
    ///   write (``ProposerCounters/readsEndedAtPromises``), and caches the
    ///   promised ballot for the key's next proposal.
    /// - When the promises disagree (a write interrupted after some
    ///   acceptors took it), the read writes the highest value back in an
    ///   accept phase, two round trips, so that it agrees with every later
    ///   read. So does a read in the intermediate configuration between
    ///   2F+1 and 2F+2 acceptors: its prepare quorum (F+1) is smaller than
    ///   its accept quorum (F+2). (Between 2F+2 and 2F+3 both are F+2, and
    ///   F+2 promises from the 2F+2 that agree are an accept quorum.)
    ///
    /// A key another proposer keeps writing usually refuses the first
    /// prepare (that proposer's cached next ballot is promised, and
    /// higher): the read then retries with a ballot past it after a short
    /// back-off, so it takes two prepare rounds. Once this proposer has
    /// the key's ballot cached, its reads and writes of the key take one
    /// round trip each.
    ///
    /// Every prepare and accept costs each acceptor a write and a sync, as
    /// a write does, but one: a read prepares with
    /// ``CASPaxosMessage/readPrepare(requestID:key:ballot:age:version:)``
    /// (``CASPaxosConfiguration/isReadPrepareEnabled``), which an acceptor
    /// holding no register for the key promises without storing. When no
    /// promise of the quorum names an accepted ballot, the read returns nil
    /// and caches no ballot (in any configuration: such a quorum meets the
    /// accept quorum of every chosen write); acceptors with no register for
    /// the key stored nothing (one with a register that accepted nothing,
    /// left by a write's prepare, stores the new promise). A read that must
    /// write a value back while some of its quorum's promises were not
    /// stored prepares again at once with plain prepares
    /// (``ProposerCounters/readsPreparedAgain``): an older accept taken
    /// after a promise not stored may have been chosen since, and the
    /// write-back would overwrite it. Unlike an arbitrary change, a retried
    /// read never fails for fear of applying itself twice. Returns the proposal's ID, as
    /// ``propose(key:change:now:into:)``.
    ///
    /// - Throws: as ``propose(key:change:now:into:)``.
    @discardableResult
    public mutating func read(key: [UInt8], now: Instant, into effects: inout [CASPaxosEffect]) throws(CASPaxosError)
        -> UInt64
    {
        try propose(
            key: key, change: { $0 }, isIdentity: true, isRead: true, needsEveryAcceptor: false, now: now,
            into: &effects)
    }

    /// Starts a proposal; returns its ID: `id` if given (one the caller
    /// took with ``takeProposalID()``, to record before the proposal can
    /// end), else the next.
    mutating func propose(
        key: [UInt8], change: @escaping CASPaxosChange, isIdentity: Bool, isRead: Bool = false,
        needsEveryAcceptor: Bool, exemptFromPendingLimit: Bool = false, id: UInt64? = nil, now: Instant,
        into effects: inout [CASPaxosEffect]
    ) throws(CASPaxosError) -> UInt64 {
        guard key.count <= configuration.maximumKeySize else {
            throw CASPaxosError(
                .tooLarge, detail: "key of \(key.count) bytes, limit \(configuration.maximumKeySize)")
        }
        guard exemptFromPendingLimit || proposals.count < configuration.maximumPendingProposals else {
            throw CASPaxosError(
                .overloaded, detail: "\(proposals.count) proposals pending, limit \(configuration.maximumPendingProposals)")
        }
        let proposalID = id ?? takeProposalID()
        var proposal = Proposal(
            id: proposalID, key: key, change: change, deadline: now.advanced(by: timeouts.proposal),
            needsEveryAcceptor: needsEveryAcceptor, isIdentity: isIdentity)
        proposal.isRead = isRead
        proposal.isMaintenance = exemptFromPendingLimit
        proposals.insert(proposal)
        let (runs, cached) = keys.add(proposalID, key: key)
        if runs { beginAttempt(proposalID, cached: cached, now: now, into: &effects) }
        return proposalID
    }

    /// Withdraws pending proposal `proposalID` (a write or a read) if
    /// nothing it sent can have been written: it is queued behind others
    /// on its key, backing off, or preparing, and no accept it sent may
    /// have been taken. It then ends at once with
    /// ``CASPaxosError/Code/withdrawn`` (definite), and the next proposal
    /// queued on its key starts. Answers to its prepare that come later
    /// are counted as stale replies.
    ///
    /// Returns false, changing nothing, for an unknown ID, a proposal that
    /// sent an accept (it runs on until it succeeds or its deadline
    /// passes: the accept may have been taken), or a garbage collection's
    /// or membership change's own proposal.
    @discardableResult
    public mutating func withdraw(_ proposalID: UInt64, now: Instant, into effects: inout [CASPaxosEffect]) -> Bool {
        guard let proposal = proposals[proposalID], proposal.sentAccepts.isEmpty, !proposal.isMaintenance else {
            return false
        }
        let detail = "proposal \(proposalID) was withdrawn before it sent an accept"
        counters.proposalsWithdrawn += 1
        complete(proposalID, .failure(CASPaxosError(.withdrawn, detail: detail)), now: now, into: &effects)
        return true
    }

    /// Handles a message from `sender`.
    public mutating func receive(
        _ message: CASPaxosMessage, from sender: Endpoint, now: Instant, into effects: inout [CASPaxosEffect]
    ) {
        switch message {
        case .promise(let requestID, let accepted, let value, let removalFloor):
            receivePromise(requestID, accepted, value, removalFloor, nil, from: sender, now: now, into: &effects)
        case .promiseWithParent(let requestID, let accepted, let value, let removalFloor, let parent):
            receivePromise(requestID, accepted, value, removalFloor, parent, from: sender, now: now, into: &effects)
        case .unrecordedPromise(let requestID, let removalFloor):
            receivePromise(requestID, .zero, nil, removalFloor, nil, isStored: false, from: sender, now: now, into: &effects)
        case .accepted(let requestID):
            receiveAccepted(requestID, from: sender, now: now, into: &effects)
        case .conflict(let requestID, let highest, let neverAccepted):
            // Fast-forward only for an acceptor's answer to a request of
            // ours: one datagram from anywhere, with any request ID, must
            // not move the counter.
            if acceptors.position(of: sender) != nil, let proposalID = proposalID(of: requestID) {
                follow(highest.counter, for: proposalID)
            }
            receiveRefusal(requestID, from: sender, isConflict: true, provesUnwritten: neverAccepted, now: now, into: &effects)
        case .staleAge(let requestID, let minimumAge):
            // Garbage collection aged this proposer while the refused message
            // was on its way (or before a restart): forget every cached
            // ballot and retry at the age the acceptors require.
            if minimumAge > age, acceptors.position(of: sender) != nil, proposalID(of: requestID) != nil {
                age = minimumAge
                keys.removeAllCached()
            }
            receiveRefusal(requestID, from: sender, isConflict: false, provesUnwritten: false, now: now, into: &effects)
        case .staleConfiguration(let requestID, let minimumVersion):
            receiveStaleConfiguration(requestID, minimumVersion, from: sender, now: now, into: &effects)
        case .registersFull(let requestID):
            // The acceptor stored nothing, but proves nothing of the
            // future: unlike a promise, which only rises, room may free,
            // and a repeated copy of the refused accept then be taken.
            receiveRefusal(
                requestID, from: sender, isConflict: false, provesUnwritten: false, isFull: true, now: now,
                into: &effects)
        case .invalidate, .reconfigure, .configurationRefused, .invalidated, .acknowledged, .keyList:
            receiveMaintenance(message, from: sender, now: now, into: &effects)
        case .prepare, .readPrepare, .collectionPrepare, .accept, .acceptWithParent, .rewriteTombstone, .setMinimumAges,
            .removeTombstone, .listKeys, .setMinimumVersion:
            counters.unexpectedMessages += 1
        }
    }

    /// Retries attempts that timed out or finished backing off, fails
    /// proposals past their deadline, and advances maintenance tasks.
    public mutating func tick(now: Instant, into effects: inout [CASPaxosEffect]) {
        // Only the proposals due now, in ID order: handling
        // them moves no other proposal's wake-up to `now` or before (new
        // attempts and back-offs end after `now`, deadlines never move, new
        // proposals' deadlines are ahead), so none is missed.
        for proposalID in proposals.due(at: now) {
            guard let proposal = proposals[proposalID] else { continue }
            if now >= proposal.deadline {
                fail(proposalID, proposal.failureReason, now: now, into: &effects)
                continue
            }
            switch proposal.phase {
            case .preparing, .accepting:
                if now >= proposal.attemptDeadline {
                    abandonAttempt(proposalID, proposal.refused.isEmpty ? .noQuorum : .conflict, now: now, into: &effects)
                } else if now >= proposal.resendAt {
                    resend(proposal, now: now, into: &effects)
                }
            case .awaitingLastAccept:
                // The last accept's missing answers did not come: it may
                // have been written, as its prepare found.
                if now >= proposal.attemptDeadline { fail(proposalID, .conflict, now: now, into: &effects) }
            case .backingOff(let until):
                if now >= until {
                    beginAttempt(proposalID, cached: keys.takeCached(proposal.key), now: now, into: &effects)
                }
            case .queued:
                break
            }
        }
        tickMaintenance(now: now, into: &effects)
    }

    /// When ``tick(now:into:)`` must next be called: O(1) in the pending
    /// proposals (their wake-up instants are kept in a heap) plus a look at
    /// each maintenance task (at most
    /// ``CASPaxosConfiguration/maximumGarbageCollections`` and one
    /// membership change).
    public var nextDeadline: Instant {
        min(maintenanceDeadline, proposals.earliestWakeUp ?? .distantFuture)
    }

    // MARK: Attempts

    /// The next ballot above `floor` (a proposal's ``Proposal/ballotFloor``,
    /// or its ballot), or nil if none is left. A floor above ``counter``
    /// is an absurd ballot's (the counter follows none above
    /// ``Ballot/followedCounterLimit``), or one drawn above
    /// ``Ballot/ownCounterLimit``: the ballot comes from
    /// ``counterAboveLimit``, raised past the floor and that limit, up to
    /// ``Ballot/maximumCounter`` (a ballot above it would not decode: every
    /// acceptor would refuse the message carrying it). Otherwise from
    /// ``counter``, up to ``Ballot/ownCounterLimit``: the two counters
    /// never give one ballot twice.
    mutating func newBallot(above floor: UInt64 = 0) -> Ballot? {
        if floor > counter {
            let base = max(floor, counterAboveLimit, Ballot.ownCounterLimit)
            guard base < Ballot.maximumCounter else {
                counters.ballotsExhausted += 1
                return nil
            }
            counterAboveLimit = base + 1
            return Ballot(counter: counterAboveLimit, proposer: id)
        }
        guard counter < Ballot.ownCounterLimit else {
            counters.ballotsExhausted += 1
            return nil
        }
        counter += 1
        return Ballot(counter: counter, proposer: id)
    }

    /// Follows `seen`, a counter an answer to `proposalID` named: the
    /// counter moves to it, up to ``Ballot/followedCounterLimit``; above,
    /// only the proposal's ``Proposal/ballotFloor`` does (counted in
    /// ``ProposerCounters/absurdBallots``).
    mutating func follow(_ seen: UInt64, for proposalID: UInt64?) {
        guard seen > Ballot.followedCounterLimit else {
            counter = max(counter, seen)
            return
        }
        counters.absurdBallots += 1
        if let proposalID { proposals.update(proposalID) { $0.ballotFloor = max($0.ballotFloor, seen) } }
    }

    /// The next request ID, never 0: ``IdentifierIndex`` holds no 0 (its
    /// empty mark), so the replies to a request 0 would all be stale. The
    /// first is 0 for a proposer of ID 0 (``firstRequestID(for:)``), and
    /// any proposer's IDs pass 0 when they wrap.
    mutating func newRequestID() -> UInt64 {
        if nextRequestID == 0 { nextRequestID = 1 }
        defer { nextRequestID &+= 1 }
        return nextRequestID
    }

    /// Where the request IDs of the proposer `id` start. Replies name only
    /// the request they answer, so a reply delayed past a restart must not
    /// match a request of the next incarnation at the same endpoint: each
    /// incarnation has its own ID (``CASPaxosNode``'s default is random), and
    /// its request IDs start at that ID scrambled by an odd multiplier, a
    /// bijection, so two incarnations' runs of IDs lie far apart (for
    /// random IDs, they meet with odds of about requests / 2⁶⁴).
    static func firstRequestID(for id: NodeID) -> UInt64 {
        id.rawValue &* 0x9E37_79B9_7F4A_7C15
    }

    /// Where the proposal (and maintenance task) IDs of the proposer `id`
    /// start, never 0: as its request IDs (``firstRequestID(for:)``), at
    /// its ID scrambled by an odd multiplier (another one, so that a
    /// proposal's ID is not its first request's), so that an ID kept past
    /// a restart names no proposal of the next incarnation
    /// (``CASPaxosNode/withdraw(_:)``).
    static func firstProposalID(for id: NodeID) -> UInt64 {
        max(1, id.rawValue &* 0xC2B2_AE3D_27D4_EB4F)
    }

    /// The next proposal or maintenance task ID; ``nextProposalID`` is
    /// never 0 (``IdentifierIndex``'s empty mark), even when the IDs wrap.
    mutating func takeProposalID() -> UInt64 {
        defer { nextProposalID = nextProposalID == .max ? 1 : nextProposalID + 1 }
        return nextProposalID
    }

    /// Starts an attempt: the accept phase at once with `cached` (the
    /// key's cached ballot, taken out of the cache), else a prepare with a
    /// new ballot.
    private mutating func beginAttempt(
        _ proposalID: UInt64, cached: CachedBallot?, now: Instant, into effects: inout [CASPaxosEffect]
    ) {
        guard let needsEveryAcceptor = proposals.update(proposalID, { $0.needsEveryAcceptor }) else { return }
        if failedAtTheLargestAge(proposalID, now: now, into: &effects) { return }
        counters.attempts += 1
        let startAge = age
        if configuration.isOneRoundTripEnabled, !needsEveryAcceptor, let cached {
            counters.oneRoundTripAttempts += 1
            proposals.update(proposalID) { proposal in
                proposal.attemptAge = startAge
                proposal.ballot = cached.ballot
                proposal.current = cached.value
                proposal.currentParent = cached.acceptedAt
                proposal.tookCachedBallot = true
            }
            sendAccept(proposalID, now: now, into: &effects)
            return
        }
        // A floor no ballot can beat (a promise at the maximum, forged or
        // corrupt) is an acceptor lost to the key, as a crashed one is: a
        // ballot from the counter, which the others may take, instead.
        let floor = proposals.update(proposalID, { $0.ballotFloor }) ?? 0
        guard let ballot = newBallot(above: floor) ?? (floor > counter ? newBallot() : nil) else {
            return failExhausted(
                proposalID,
                "the ballot counter reached its limit \(Ballot.ownCounterLimit)",
                now: now, into: &effects)
        }
        let requestID = newRequestID()
        let times = phaseTimes(from: now)
        guard
            let (key, retired, isReadPrepare, isCollection) = proposals.update(proposalID, { proposal in
                proposal.attemptAge = startAge
                proposal.requestAge = startAge
                proposal.ballot = ballot
                proposal.tookCachedBallot = false
                proposal.highestAccepted = .zero
                proposal.lowestAccepted = nil
                proposal.current = nil
                proposal.currentParent = nil
                let retired = Self.startPhase(&proposal, .preparing, requestID, times)
                return (proposal.key, retired, proposal.isRead && !proposal.needsStoredPromises, proposal.needsEveryAcceptor)
            })
        else { return }
        retire(retired, startedFor: proposalID, requestID)
        counters.requestsSent += quorums.prepareAcceptors.count
        let prepare = prepareMessage(
            requestID: requestID, key: key, ballot: ballot, age: startAge, isReadPrepare: isReadPrepare,
            isCollection: isCollection)
        effects.append(.sendToEach(prepare, quorums.prepareAcceptors))
    }

    /// A prepare at `ballot` and `age`: a read's (``CASPaxosMessage/readPrepare(requestID:key:ballot:age:version:)``,
    /// while its promises need not be stored), a garbage collection's
    /// (``CASPaxosMessage/collectionPrepare(requestID:key:ballot:age:version:)``),
    /// or a plain one, each where the configuration enables it.
    private func prepareMessage(
        requestID: UInt64, key: [UInt8], ballot: Ballot, age: UInt64, isReadPrepare: Bool, isCollection: Bool
    ) -> CASPaxosMessage {
        let version = configurationVersion
        return if isReadPrepare && configuration.isReadPrepareEnabled {
            .readPrepare(requestID: requestID, key: key, ballot: ballot, age: age, version: version)
        } else if isCollection && configuration.isTombstoneRewriteEnabled {
            .collectionPrepare(requestID: requestID, key: key, ballot: ballot, age: age, version: version)
        } else {
            .prepare(requestID: requestID, key: key, ballot: ballot, age: age, version: version)
        }
    }

    /// An accept of `value` (computed from `parent`'s) at `ballot` and `age`, carrying
    /// `nextBallot`, or a collection's re-write of a tombstone (an
    /// acceptor that holds no register for the key takes it without
    /// storing one), where the configuration enables it (and names the
    /// parent where it enables that).
    private func acceptMessage(
        requestID: UInt64, key: [UInt8], ballot: Ballot, age: UInt64, value: [UInt8]?, parent: Ballot?,
        nextBallot: Ballot?, rewritesTombstone: Bool
    ) -> CASPaxosMessage {
        if rewritesTombstone && configuration.isTombstoneRewriteEnabled {
            return .rewriteTombstone(requestID: requestID, key: key, ballot: ballot, age: age, version: configurationVersion)
        }
        if let parent, configuration.isParentBallotEnabled {
            return .acceptWithParent(
                requestID: requestID, key: key, ballot: ballot, age: age, value: value, version: configurationVersion,
                parent: parent, nextBallot: nextBallot)
        }
        return .accept(
            requestID: requestID, key: key, ballot: ballot, age: age, value: value, nextBallot: nextBallot,
            version: configurationVersion)
    }

    /// When a phase starting `now` ends (``CASPaxosConfiguration/attemptTimeout``)
    /// and first sends its request again: after
    /// ``CASPaxosConfiguration/resendInterval``, or twice the phases'
    /// usual time to their quorum if longer (``roundTrips``).
    private func phaseTimes(from now: Instant) -> (deadline: Instant, resendAt: Instant) {
        let (twice, overflow) = roundTrips.smoothed.multipliedReportingOverflow(by: 2)
        return (now.advanced(by: timeouts.attempt), now.advanced(by: overflow ? .max : max(timeouts.resend, twice)))
    }

    /// How long, in nanoseconds, the phase whose attempt deadline is
    /// `attemptDeadline` has run at `now` (it started `attempt`
    /// nanoseconds, ``CASPaxosConfiguration/attemptTimeout``, before).
    private static func elapsed(since attemptDeadline: Instant, attempt: UInt64, now: Instant) -> UInt64 {
        let started = attemptDeadline.nanoseconds &- attempt
        return now.nanoseconds >= started ? now.nanoseconds - started : 0
    }

    /// Sends the request of `proposal`'s attempt again, with its request
    /// ID and ballot, to the acceptors of its phase that have not answered
    /// it, and waits as long as the phase has run before the next copy
    /// (the waits double: a slow acceptor is not sent ever more copies).
    /// A copy carries the age the request went out at: it is the same
    /// message, as safe as a duplicate on the network, whatever aged the
    /// proposer since (a stale-age refusal, a garbage collection's
    /// invalidation). Its configuration version is the request's too: a
    /// proposer that adopts a new configuration sends its attempts in
    /// flight back to back-off (`adopt`), so none is copied across one.
    private mutating func resend(_ proposal: Proposal, now: Instant, into effects: inout [CASPaxosEffect]) {
        let elapsed = Self.elapsed(since: proposal.attemptDeadline, attempt: timeouts.attempt, now: now)
        let resendAt = now.advanced(by: max(timeouts.resend, elapsed))
        proposals.update(proposal.id) { $0.resendAt = resendAt }
        // At the largest age a proposer sends nothing, not even a copy of
        // an older request (``failedAtTheLargestAge(_:now:into:)``).
        guard age < ProposerAge.maximumAge else { return }
        let isPreparing = proposal.phase == .preparing
        let unanswered = unansweredAcceptors(of: proposal, preparing: isPreparing)
        guard !unanswered.isEmpty else { return }
        counters.requestsResent += unanswered.count
        let message =
            isPreparing
            ? prepareMessage(
                requestID: proposal.requestID, key: proposal.key, ballot: proposal.ballot, age: proposal.requestAge,
                isReadPrepare: proposal.isRead && !proposal.needsStoredPromises,
                isCollection: proposal.needsEveryAcceptor)
            : acceptMessage(
                requestID: proposal.requestID, key: proposal.key, ballot: proposal.ballot, age: proposal.requestAge,
                value: proposal.newValue, parent: Self.parent(of: proposal), nextBallot: proposal.nextBallot,
                rewritesTombstone: proposal.acceptNeedsEveryAcceptor)
        effects.append(.sendToEach(message, unanswered))
    }

    /// Starts a phase of `proposal`'s attempt with `requestID`; returns the
    /// request ID it leaves behind (``Proposal/retiredRequestID``).
    private static func startPhase(
        _ proposal: inout Proposal, _ phase: Proposal.Phase, _ requestID: UInt64,
        _ times: (deadline: Instant, resendAt: Instant)
    ) -> UInt64? {
        let retired = proposal.retiredRequestID
        proposal.phase = phase
        proposal.requestID = requestID
        proposal.granted.removeAll()
        proposal.unrecorded.removeAll()
        proposal.refused.removeAll()
        proposal.refusedFull.removeAll()
        proposal.attemptDeadline = times.deadline
        proposal.resendAt = times.resendAt
        return retired
    }

    /// Stops routing answers to `retired` and routes those to `requestID`
    /// to the proposal.
    private mutating func retire(_ retired: UInt64?, startedFor proposalID: UInt64, _ requestID: UInt64) {
        if let retired { proposalByRequest.remove(retired) }
        proposalByRequest.set(requestID, Int(truncatingIfNeeded: proposalID))
    }

    /// Applies the change to the current value (or sends `repeating`, the
    /// current value with the result it brings: a value this proposal
    /// already sent, or another's built on one) and sends the accept.
    private mutating func sendAccept(
        _ proposalID: UInt64, repeating: SentAccepts.Written? = nil, now: Instant, into effects: inout [CASPaxosEffect]
    ) {
        // The change is called where it is stored: taken out of the table
        // (a generic result), it would be wrapped in a thunk, allocated on
        // every accept.
        guard
            let next = proposals.update(
                proposalID,
                {
                    NextAccept(
                        sentNothing: $0.sentAccepts.isEmpty, needsEveryAcceptor: $0.needsEveryAcceptor,
                        lastAccepted: $0.highestAccepted, tookCachedBallot: $0.tookCachedBallot,
                        ballotFloor: max($0.ballotFloor, $0.ballot.counter),
                        newValue: repeating.map(\.value) ?? $0.change($0.current))
                })
        else { return }
        let newValue = next.newValue
        // A stale-age refusal may have brought the age there mid-attempt.
        if failedAtTheLargestAge(proposalID, now: now, into: &effects) { return }
        if let newValue, newValue.count > configuration.maximumValueSize {
            // Definite if no accept was sent before: only promises were made.
            let code: CASPaxosError.Code = next.sentNothing ? .tooLarge : .conflict
            complete(
                proposalID,
                .failure(CASPaxosError(code, detail: "the change produced \(newValue.count) bytes, limit \(configuration.maximumValueSize)")),
                now: now, into: &effects)
            return
        }
        let nextBallot =
            !next.needsEveryAcceptor
                && claimsNextBallot(lastAccepted: next.lastAccepted, tookCachedBallot: next.tookCachedBallot)
            ? newBallot(above: next.ballotFloor) : nil
        let requestID = newRequestID()
        let times = phaseTimes(from: now)
        let requestAge = age
        guard
            let (key, ballot, parent, previous, retired, rewritesTombstone) = proposals.update(proposalID, { proposal in
                proposal.requestAge = requestAge
                proposal.newValue = newValue
                proposal.sentAccepts.append((proposal.ballot, (newValue, repeating.map(\.result) ?? newValue)))
                let previous = proposal.lastAccept?.requestID
                proposal.nextBallot = nextBallot
                let retired = Self.startPhase(&proposal, .accepting, requestID, times)
                proposal.lastAccept = LastAccept(requestID: requestID, ballot: proposal.ballot, sentAt: now)
                return (
                    proposal.key, proposal.ballot, Self.parent(of: proposal), previous, retired,
                    proposal.acceptNeedsEveryAcceptor
                )
            })
        else { return }
        if let previous { proposalByRequest.remove(previous) }
        retire(retired, startedFor: proposalID, requestID)
        counters.requestsSent += quorums.acceptAcceptors.count
        let message = acceptMessage(
            requestID: requestID, key: key, ballot: ballot, age: requestAge, value: newValue, parent: parent,
            nextBallot: nextBallot, rewritesTombstone: rewritesTombstone)
        effects.append(.sendToEach(message, quorums.acceptAcceptors))
    }

    /// What ``sendAccept(_:repeating:now:into:)`` reads of a proposal
    /// before its accept: a named type, as a tuple's optional, the result
    /// of ``ProposalTable/update(_:_:)``, was copied through type metadata.
    private struct NextAccept {
        var sentNothing: Bool
        var needsEveryAcceptor: Bool
        var lastAccepted: Ballot
        var tookCachedBallot: Bool
        /// What the next ballot must beat: the proposal's ballot, or its
        /// ``Proposal/ballotFloor`` if higher.
        var ballotFloor: UInt64
        /// The value to accept: the change's, or the one repeated.
        var newValue: [UInt8]?
    }

    /// The parent of the value `proposal` sends next
    /// (``RegisterState/parent``): the ballot its cached value was accepted
    /// at (if known), or ``parentBelowFloors(of:)``.
    private static func parent(of proposal: Proposal) -> Ballot? {
        proposal.tookCachedBallot ? proposal.currentParent : parentBelowFloors(of: proposal)
    }

    /// The highest accepted ballot among `proposal`'s promises, the parent
    /// of a value computed from theirs; nil (unknown) when a removal floor
    /// above it says the key was collected since: the value may descend
    /// from a history the floor hides, and a parent below it would let the
    /// retry of a write chosen and collected since apply its change again.
    private static func parentBelowFloors(of proposal: Proposal) -> Ballot? {
        proposal.highestRemovalFloor > proposal.highestAccepted ? nil : proposal.highestAccepted
    }

    /// Whether an accept carries the next ballot (the one-round-trip
    /// optimization), keeping the key promised to this proposer: only
    /// when this proposer wrote the key last, and while at least three
    /// quarters of its recent writes followed its own
    /// (``LastWriterShare``). It wrote last when the attempt took the
    /// key's cached ballot (with no prepare), or when `lastAccepted`, the
    /// highest ballot its prepare quorum had accepted, is its own or
    /// ``Ballot/zero`` (never written). A key another proposer wrote last
    /// is shared, and its next write is as likely to come from elsewhere:
    /// a promise of this proposer's next ballot would refuse that write's
    /// prepare, and this proposer's cached ballot would be refused in
    /// turn.
    private func claimsNextBallot(lastAccepted: Ballot, tookCachedBallot: Bool) -> Bool {
        configuration.isOneRoundTripEnabled && lastWriters.isMostlyThisProposer
            && (tookCachedBallot || lastAccepted == .zero || lastAccepted.proposer == id)
    }

    /// The proposal `requestID` was sent for, if it still routes answers to
    /// one.
    private func proposalID(of requestID: UInt64) -> UInt64? {
        proposalByRequest[requestID].map { UInt64(truncatingIfNeeded: $0) }
    }

    /// The proposal waiting for `requestID` in `phase`, or nil (counted) if
    /// none is.
    private mutating func waiting(_ requestID: UInt64, _ phase: Proposal.Phase) -> UInt64? {
        if let proposalID = proposalID(of: requestID),
            proposals.update(proposalID, { $0.phase == phase && $0.requestID == requestID }) == true
        {
            return proposalID
        }
        countStaleReply(requestID)
        return nil
    }

    /// Counts a reply to `requestID` as stale unless it is a maintenance
    /// task's (no hashing while no task runs).
    private mutating func countStaleReply(_ requestID: UInt64) {
        if taskByRequest.isEmpty || taskByRequest[requestID] == nil { counters.staleReplies += 1 }
    }

    private mutating func receivePromise(
        _ requestID: UInt64, _ accepted: Ballot, _ value: [UInt8]?, _ removalFloor: Ballot?, _ parent: Ballot?,
        isStored: Bool = true,
        from sender: Endpoint, now: Instant, into effects: inout [CASPaxosEffect]
    ) {
        guard let proposalID = waiting(requestID, .preparing) else { return }
        guard let position = acceptors.position(of: sender), acceptors.prepare.contains(position),
            proposals.update(proposalID, { !$0.refused.contains(position) }) == true
        else {
            counters.unexpectedMessages += 1
            return
        }
        follow(accepted.counter, for: proposalID)
        let (quorum, acceptQuorum, acceptSet) = (quorums.prepareQuorum, quorums.acceptQuorum, acceptors.accept)
        let refusalsToAbandon = refusalsToAbandonAccept
        // At the quorum, a client's write learns who wrote the key before
        // it (a key never written tells nothing).
        var lastAccepted = Ballot.zero
        var quorumReached: Instant?  // the phase's attempt deadline, at its quorum
        guard
            let outcome = proposals.update(
                proposalID,
                { proposal -> PrepareOutcome? in
                    // Only a read's prepare is answered so; a prepare's never.
                    guard isStored || (proposal.isRead && !proposal.needsStoredPromises) else { return nil }
                    proposal.granted.insert(position)
                    if !isStored { proposal.unrecorded.insert(position) }
                    if accepted > proposal.highestAccepted {
                        proposal.highestAccepted = accepted
                        proposal.current = value
                        proposal.currentParent = parent
                    } else if accepted == proposal.highestAccepted, proposal.currentParent == nil {
                        // One accept's copies: the same parent, if named.
                        proposal.currentParent = parent
                    }
                    proposal.lowestAccepted = min(proposal.lowestAccepted ?? accepted, accepted)
                    if let removalFloor { proposal.highestRemovalFloor = max(proposal.highestRemovalFloor, removalFloor) }
                    guard proposal.granted.count >= quorum else { return nil }
                    quorumReached = proposal.attemptDeadline
                    if !proposal.isIdentity && !proposal.isMaintenance { lastAccepted = proposal.highestAccepted }
                    // A read ends here if it can: every promise names the
                    // same accepted ballot, and an accept quorum holds it.
                    // (A promise not stored accepted nothing: then none did,
                    // the key is absent, and the read ends with nothing to
                    // cache.)
                    if proposal.isRead && proposal.lowestAccepted == proposal.highestAccepted
                        && proposal.granted.countInCommon(with: acceptSet) >= acceptQuorum
                    {
                        return .endRead(
                            ballot: proposal.unrecorded.isEmpty ? proposal.ballot : nil, value: proposal.current,
                            acceptedAt: Self.parentBelowFloors(of: proposal))
                    }
                    // A prepare quorum that accepted nothing meets the accept
                    // quorum of every write chosen: none was, and the read
                    // returns nil (between 2F+1 and 2F+2 acceptors too, where
                    // the prepare quorum is no accept quorum), caching nothing.
                    if proposal.isRead && proposal.highestAccepted == .zero {
                        return .endRead(ballot: nil, value: nil, acceptedAt: nil)
                    }
                    // A write-back needs every promise of its quorum stored:
                    // one not stored lets an older accept be taken, and
                    // perhaps chosen, before the write-back overwrites it.
                    if !proposal.unrecorded.isEmpty {
                        proposal.needsStoredPromises = true
                        return .prepareAgain
                    }
                    return Self.decide(&proposal, refusalsToAbandon: refusalsToAbandon, now: now)
                }) ?? nil
        else { return }
        if let quorumReached { roundTrips.record(Self.elapsed(since: quorumReached, attempt: timeouts.attempt, now: now)) }
        proceed(proposalID, outcome, now: now, into: &effects)
        if lastAccepted != .zero { lastWriters.record(lastAccepted.proposer == id) }
    }

    /// Where a prepare that reached its quorum leads.
    private enum PrepareOutcome {
        /// A read's promises prove the value chosen (accepted at
        /// `acceptedAt`); `ballot`, if every promise was stored, may be
        /// cached.
        case endRead(ballot: Ballot?, value: [UInt8]?, acceptedAt: Ballot?)
        /// A read must write the value back, and some of its promises were
        /// not stored: prepare again, at once, with stored ones.
        case prepareAgain
        /// The highest accepted ballot is one of the proposal's own
        /// accepts: finish that write with the value it sent (and its
        /// result).
        case repeatAccept(SentAccepts.Written)
        /// Another proposer's value above the proposal's first accept, built
        /// on one of its accepts: write it back with that accept's result
        /// (the change took effect, once).
        case writeBack(SentAccepts.Written)
        /// Another proposer's value above the proposal's first accept, built
        /// on a value older than that accept: apply the change to it.
        case applyChangeOverOlder
        /// Another proposer's ballot, or a removal floor, above the
        /// proposal's first accept rules a fresh change out: the change may
        /// have taken effect.
        case conflict
        /// As `.conflict`, unless the last accept's missing answers prove it
        /// written nowhere: wait for them (``Proposal/Phase/awaitingLastAccept``).
        case awaitLastAccept
        /// Apply the change to the current value.
        case applyChange
    }

    /// Decides a write's prepare that reached its quorum (again when it
    /// waits for its last accept's answers): see ``Proposer`` on retries.
    /// It waits only once `refusalsToAbandon` acceptors (enough to abandon
    /// an accept attempt) refused the last accept knowing, and as long again
    /// as that accept has been out, at most until the attempt's deadline:
    /// the answers that did come took less, and an acceptor that is down is
    /// not waited for long.
    private static func decide(_ proposal: inout Proposal, refusalsToAbandon: Int, now: Instant) -> PrepareOutcome {
        if let own = proposal.sentAccepts.value(at: proposal.highestAccepted) { return .repeatAccept(own) }
        guard !proposal.isIdentity, let first = proposal.sentAccepts.firstBallot,
            proposal.highestAccepted > first || proposal.highestRemovalFloor > first
        else { return .applyChange }
        // Another proposer's value above the first accept, whose parent its
        // promises name (and no removal floor above that accept): built on
        // one of this proposal's accepts, it holds the change, applied
        // once; built on an older value, no value built on one of them is
        // in its history (parents are always below their value's ballot),
        // and none can be chosen once this retry's value is.
        // The floor condition is conservative: a collection that erased one
        // of this proposal's accepts re-wrote the key on every acceptor
        // above it first, so every value since names no parent or one at
        // or above that re-write, which the rule does not act on (a review
        // found no case where it matters, over 2,400 seeds of collections).
        // It is kept for what that argument does not cover: a collection
        // during a membership change, with an old accept still on its way.
        if proposal.highestRemovalFloor <= first, let parent = proposal.currentParent {
            if let own = proposal.sentAccepts.value(at: parent) { return .writeBack((proposal.current, own.result)) }
            if parent < first { return .applyChangeOverOlder }
        }
        guard let last = proposal.lastAccept, proposal.sentAccepts.holdsOnly(last.ballot), !last.mayBeWritten,
            last.refusals.count >= refusalsToAbandon
        else { return .conflict }
        if proposal.phase != .awaitingLastAccept {
            proposal.phase = .awaitingLastAccept
            proposal.attemptDeadline = min(proposal.attemptDeadline, now + (now - last.sentAt))
        }
        return .awaitLastAccept
    }

    /// How many acceptors of the accept set refusing an accept abandon its
    /// attempt (no accept quorum is left).
    private var refusalsToAbandonAccept: Int { acceptors.accept.count - quorums.acceptQuorum + 1 }

    /// Acts on `outcome`, the decision of `proposalID`'s prepare.
    private mutating func proceed(
        _ proposalID: UInt64, _ outcome: PrepareOutcome, now: Instant, into effects: inout [CASPaxosEffect]
    ) {
        switch outcome {
        case .endRead(let ballot, let value, let acceptedAt):
            endReadAtPromises(proposalID, ballot: ballot, value: value, acceptedAt: acceptedAt, now: now, into: &effects)
        case .prepareAgain:
            counters.readsPreparedAgain += 1
            beginAttempt(proposalID, cached: nil, now: now, into: &effects)
        case .repeatAccept(let own): sendAccept(proposalID, repeating: own, now: now, into: &effects)
        case .writeBack(let rival):
            counters.rivalValuesBuiltOnOwn += 1
            sendAccept(proposalID, repeating: rival, now: now, into: &effects)
        case .applyChangeOverOlder:
            counters.rivalValuesBuiltOnOlder += 1
            sendAccept(proposalID, now: now, into: &effects)
        case .conflict: fail(proposalID, .conflict, now: now, into: &effects)
        case .awaitLastAccept: counters.awaitedLastAccepts += 1
        case .applyChange: sendAccept(proposalID, now: now, into: &effects)
        }
    }

    /// Records an answer from `position` to `proposal`'s last accept, if
    /// `requestID` is that accept: a refusal that `provesUnwritten` (refused
    /// so by every acceptor, the accept was written nowhere and leaves
    /// ``Proposal/sentAccepts``), or any other answer, after which the
    /// accept may be written. Returns the new decision of a prepare that
    /// was waiting for the answer.
    private static func recordAnswer(
        to requestID: UInt64, from position: Int?, provesUnwritten: Bool, in proposal: inout Proposal,
        acceptSet: AcceptorSet, refusalsToAbandon: Int, now: Instant
    ) -> PrepareOutcome? {
        guard let last = proposal.lastAccept, last.requestID == requestID, let position, acceptSet.contains(position)
        else { return nil }
        if provesUnwritten {
            proposal.lastAccept?.refusals.insert(position)
            if proposal.lastAccept?.refusals.count == acceptSet.count { proposal.sentAccepts.remove(last.ballot) }
        } else {
            proposal.lastAccept?.mayBeWritten = true
        }
        guard proposal.phase == .awaitingLastAccept else { return nil }
        let outcome = decide(&proposal, refusalsToAbandon: refusalsToAbandon, now: now)
        if case .awaitLastAccept = outcome { return nil }
        return outcome
    }

    /// Ends a read with `value`, which its promises prove chosen: accepted
    /// at one ballot by an accept quorum, and nothing higher accepted by the
    /// prepare quorum, which meets every accept quorum of a later write that
    /// ended before the read began. The write-back would change nothing.
    /// The quorum promised the read's `ballot` and accepted nothing at it,
    /// so with the one-round-trip optimization the key's next proposal may
    /// take the accept phase at once with that ballot, as after a write.
    /// Unlike a piggybacked next ballot, this promise was the read's own
    /// prepare: caching it costs other proposers nothing, and a write that
    /// follows the read (read, then compare-and-set) takes one round trip.
    /// The read caches it whoever wrote the key last.
    private mutating func endReadAtPromises(
        _ proposalID: UInt64, ballot: Ballot?, value: [UInt8]?, acceptedAt: Ballot?, now: Instant,
        into effects: inout [CASPaxosEffect]
    ) {
        counters.readsEndedAtPromises += 1
        let caching =
            configuration.isOneRoundTripEnabled
            ? ballot.map { CachedBallot(ballot: $0, value: value, acceptedAt: acceptedAt) } : nil
        complete(proposalID, .success(value), caching: caching, now: now, into: &effects)
    }

    private mutating func receiveAccepted(
        _ requestID: UInt64, from sender: Endpoint, now: Instant, into effects: inout [CASPaxosEffect]
    ) {
        guard let proposalID = waiting(requestID, .accepting) else {
            receiveLateAcceptance(requestID, from: sender, now: now, into: &effects)
            return
        }
        guard let position = acceptors.position(of: sender), acceptors.accept.contains(position) else {
            counters.unexpectedMessages += 1
            return
        }
        let (acceptQuorum, prepareQuorum, prepareSet) = (quorums.acceptQuorum, quorums.prepareQuorum, acceptors.prepare)
        let everyAcceptor = acceptors.accept.count
        let attempt = timeouts.attempt
        // At the quorum: the ballot to cache, if the prepare quorum also
        // promised the next one.
        guard
            let outcome = proposals.update(
                proposalID,
                { proposal -> Acceptance? in
                // A refusal from this acceptor may have overtaken its
                // acceptance: of a repeated copy of the accept, refused
                // once the acceptor took a later ballot's accept. The
                // acceptance proves the accept taken.
                proposal.refused.remove(position)
                proposal.refusedFull.remove(position)
                proposal.granted.insert(position)
                proposal.lastAccept?.mayBeWritten = true
                let needed = proposal.acceptNeedsEveryAcceptor ? everyAcceptor : acceptQuorum
                guard proposal.granted.count >= needed else { return nil }
                let promised = proposal.nextBallot.flatMap {
                    proposal.granted.countInCommon(with: prepareSet) >= prepareQuorum
                        ? CachedBallot(ballot: $0, value: proposal.newValue, acceptedAt: proposal.ballot) : nil
                }
                // A client's write that took the cached ballot: no one
                // wrote the key since this proposer did.
                let wroteLast = proposal.tookCachedBallot && !proposal.isIdentity && !proposal.isMaintenance
                // What the change produced: the value sent, unless it wrote
                // back another proposer's value built on its own.
                let result = if let sent = proposal.sentAccepts.value(at: proposal.ballot) { sent.result } else { proposal.newValue }
                return Acceptance(
                    cache: promised, result: result, wroteLast: wroteLast,
                    elapsed: Self.elapsed(since: proposal.attemptDeadline, attempt: attempt, now: now))
            }) ?? nil
        else { return }
        roundTrips.record(outcome.elapsed)
        if outcome.wroteLast { lastWriters.record(true) }
        complete(proposalID, .success(outcome.result), caching: outcome.cache, now: now, into: &effects)
    }

    /// What an acceptance that completes a proposal takes from it: a named
    /// type, as a tuple's optional, the result of
    /// ``ProposalTable/update(_:_:)``, was copied through type metadata
    /// (3.6% of a write's instructions, callgrind).
    private struct Acceptance {
        /// The ballot to cache, if the prepare quorum also promised the next one.
        var cache: CachedBallot?
        var result: [UInt8]?
        var wroteLast: Bool
        var elapsed: UInt64
    }

    /// An acceptance of a proposal's last accept after its attempt was
    /// abandoned: recorded, and a prepare waiting for the accept's answers
    /// fails indeterminate.
    private mutating func receiveLateAcceptance(
        _ requestID: UInt64, from sender: Endpoint, now: Instant, into effects: inout [CASPaxosEffect]
    ) {
        guard let proposalID = proposalID(of: requestID) else { return }
        let (position, acceptSet, refusalsToAbandon) = (acceptors.position(of: sender), acceptors.accept, refusalsToAbandonAccept)
        guard
            let outcome = proposals.update(proposalID, { proposal in
                Self.recordAnswer(
                    to: requestID, from: position, provesUnwritten: false, in: &proposal, acceptSet: acceptSet,
                    refusalsToAbandon: refusalsToAbandon, now: now)
            }) ?? nil
        else { return }
        proceed(proposalID, outcome, now: now, into: &effects)
    }

    /// A refusal: a ballot `isConflict` (else a stale age, or registers
    /// full); `provesUnwritten` if the acceptor knows it never accepted the
    /// refused ballot (a conflict says; a stale age does not). `isFull`: the
    /// acceptor's registers are full; once such refusals alone leave the
    /// attempt short of its quorum, the proposal fails at once (no retry
    /// can succeed before keys are collected), with
    /// ``CASPaxosError/Code/registersFull`` if it never sent an accept, else
    /// indeterminate (a refused accept may still be taken, once room
    /// frees, from a repeated copy).
    private mutating func receiveRefusal(
        _ requestID: UInt64, from sender: Endpoint, isConflict: Bool, provesUnwritten: Bool, isFull: Bool = false,
        now: Instant, into effects: inout [CASPaxosEffect]
    ) {
        guard let proposalID = proposalID(of: requestID) else {
            countStaleReply(requestID)
            return
        }
        let position = acceptors.position(of: sender)
        let directory = acceptors
        let (prepareQuorum, acceptQuorum, refusalsToAbandon) =
            (quorums.prepareQuorum, quorums.acceptQuorum, refusalsToAbandonAccept)
        // Records a refusal of the last accept (a prepare waiting for it
        // may decide now), then counts one of the attempt in flight.
        var wasPreparing = false
        var decided: PrepareOutcome?
        let outcome = proposals.update(proposalID) { proposal -> RefusalOutcome in
            decided = Self.recordAnswer(
                to: requestID, from: position, provesUnwritten: provesUnwritten, in: &proposal,
                acceptSet: directory.accept, refusalsToAbandon: refusalsToAbandon, now: now)
            guard decided == nil, proposal.isInFlight, proposal.requestID == requestID else { return .stale }
            let (set, quorum) =
                proposal.phase == .accepting
                ? (directory.accept, proposal.acceptNeedsEveryAcceptor ? directory.accept.count : acceptQuorum)
                : (directory.prepare, prepareQuorum)
            guard let position, set.contains(position), !proposal.granted.contains(position) else { return .pending }
            proposal.refused.insert(position)
            wasPreparing = proposal.phase == .preparing
            if isFull {
                proposal.refusedFull.insert(position)
                if set.count - proposal.refusedFull.count < quorum {
                    return .registersFull(sentNothing: proposal.sentAccepts.isEmpty)
                }
            }
            return set.count - proposal.refused.count < quorum ? .abandon : .pending
        }
        if let decided { return proceed(proposalID, decided, now: now, into: &effects) }
        switch outcome ?? .stale {
        case .stale:
            countStaleReply(requestID)
        case .abandon:
            abandonAttempt(proposalID, .conflict, outbid: wasPreparing && isConflict, now: now, into: &effects)
        case .pending:
            break
        case .registersFull(let sentNothing):
            counters.registersFullFailures += 1
            let detail =
                "acceptors hold as many registers as maximumRegisters allows and refused to store the key "
                + "(\(sender) last): delete keys and collect them, or raise maximumRegisters on the acceptors"
            complete(
                proposalID, .failure(CASPaxosError(sentNothing ? .registersFull : .conflict, detail: detail)), now: now,
                into: &effects)
        }
    }

    /// What one refusal did to the attempt in flight.
    private enum RefusalOutcome {
        /// It answers no attempt in flight.
        case stale
        /// The attempt may still reach its quorum.
        case pending
        /// The attempt can no longer reach its quorum: retry.
        case abandon
        /// Acceptors with full registers alone leave the attempt short of
        /// its quorum: fail (definite if the proposal `sentNothing`).
        case registersFull(sentNothing: Bool)
    }

    /// An acceptor refused this proposer's configuration as older than a
    /// membership change's fence, or as another configuration of the
    /// fence's version: no attempt can succeed until the proposer is given
    /// the cluster's, so the proposal the refused request belongs to fails
    /// at once, with ``CASPaxosError/Code/staleConfiguration`` if it sent
    /// no accept (definite), else with an indeterminate
    /// ``CASPaxosError/Code/conflict``. A refusal that the proposer's
    /// configuration now passes (a delayed reply, from before it adopted a
    /// newer one) changes nothing.
    private mutating func receiveStaleConfiguration(
        _ requestID: UInt64, _ minimumVersion: ConfigurationVersion, from sender: Endpoint, now: Instant,
        into effects: inout [CASPaxosEffect]
    ) {
        guard !configurationVersion.passes(minimumVersion), acceptors.position(of: sender) != nil,
            let proposalID = proposalID(of: requestID),
            let sentNothing = proposals.update(proposalID, { $0.sentAccepts.isEmpty })
        else {
            countStaleReply(requestID)
            return
        }
        counters.staleConfigurationRefusals += 1
        let code: CASPaxosError.Code = sentNothing ? .staleConfiguration : .conflict
        let number = minimumVersion.number
        let detail =
            number > quorums.version
            ? "acceptor \(sender) refuses configurations older than version \(number), and this proposer's is version \(quorums.version): "
                + "the cluster's membership changed without it. If a membership change is running, wait: it sends its configuration to the proposers it lists. "
                + "Otherwise restart this proposer with the configuration a running proposer holds (its quorums exactly, not a majority rebuilt at version \(number)), "
                + "or call changeMembership(to:) with the current acceptors on a proposer in it, listing this one"
            : "acceptor \(sender) holds another configuration of version \(number) than this proposer's (\(quorums), digest \(String(configurationVersion.digest, radix: 16)), "
                + "where the acceptor's digest is \(String(minimumVersion.digest, radix: 16))): this proposer was given quorums by hand that the cluster's need not meet. "
                + "Restart it with the configuration a running proposer holds, its quorums exactly (a change that lists it stops there: it refuses another configuration of its own version)"
        complete(proposalID, .failure(CASPaxosError(code, detail: detail)), now: now, into: &effects)
    }

    /// Gives up the current attempt; retries after a back-off, or fails the
    /// proposal if the back-off would pass its deadline. `outbid`: its
    /// prepare was refused for a ballot below a promise (a maintenance
    /// proposal's next ballot may jump; see ``Proposer``).
    mutating func abandonAttempt(
        _ proposalID: UInt64, _ reason: CASPaxosError.Code, outbid: Bool = false, now: Instant,
        into effects: inout [CASPaxosEffect]
    ) {
        let seen = counter
        guard let (failures, moved) = proposals.update(proposalID, { proposal -> (Int, UInt64) in
            proposal.failures += 1
            proposal.lastFailure = reason
            guard outbid, proposal.isMaintenance else { return (proposal.failures, 0) }
            defer { proposal.outbidAt = seen }
            return (proposal.failures, proposal.outbidAt == 0 ? 0 : seen - min(seen, proposal.outbidAt))
        }) else { return }
        if moved > 0 { counter = max(counter, min(seen + min(moved, 1 << 14) * 4, Ballot.followedCounterLimit)) }
        counters.failedAttempts += 1
        let retryAt =
            now + jitteredBackoff(initial: configuration.initialBackoff, maximum: configuration.maximumBackoff, failures: failures)
        guard
            let (key, retired, backsOff) = proposals.update(proposalID, { proposal in
                let retired = proposal.retiredRequestID
                let backsOff = retryAt < proposal.deadline
                if backsOff { proposal.phase = .backingOff(until: retryAt) }
                return (proposal.key, retired, backsOff)
            })
        else { return }
        if let retired { proposalByRequest.remove(retired) }
        keys.dropCached(key)
        if !backsOff { fail(proposalID, reason, now: now, into: &effects) }
    }

    /// `initial · 2^(failures-1)`, capped at `maximum`, then scaled by a
    /// random 50–100%.
    mutating func jitteredBackoff(initial: Duration, maximum: Duration, failures: Int) -> Duration {
        let initial = max(1, initial.nanoseconds)
        let maximum = max(initial, maximum.nanoseconds)
        let shift = min(failures - 1, 40)
        let (scaled, overflow) = initial.multipliedReportingOverflow(by: Int64(1) << shift)
        let capped = overflow ? maximum : min(scaled, maximum)
        return .nanoseconds(capped / 2 + Int64.random(in: 0...(capped - capped / 2), using: &random))
    }

    /// Fails `proposalID` (``failExhausted(_:_:now:into:)``) if the proposer
    /// is at the largest age, where it sends no prepare or accept: an
    /// invalidation cannot age it further (its answer must decode), so a
    /// message sent at this age would pass the collection that made it.
    /// Returns whether it did.
    private mutating func failedAtTheLargestAge(
        _ proposalID: UInt64, now: Instant, into effects: inout [CASPaxosEffect]
    ) -> Bool {
        guard age >= ProposerAge.maximumAge else { return false }
        failExhausted(proposalID, "the proposer's age reached its limit \(ProposerAge.maximumAge)", now: now, into: &effects)
        return true
    }

    /// Fails a proposal that cannot make another attempt, its ballot
    /// counter or its age at its limit (see
    /// ``CASPaxosError/Code/notAvailable``), and the proposals queued
    /// behind it on its key, which could not either. Indeterminate (a
    /// conflict) for a proposal whose earlier attempt sent accepts.
    private mutating func failExhausted(
        _ proposalID: UInt64, _ detail: String, now: Instant, into effects: inout [CASPaxosEffect]
    ) {
        var failing: UInt64? = proposalID
        while let id = failing {
            let sentNothing = proposals.update(id, { $0.sentAccepts.isEmpty }) ?? true
            failing = complete(
                id, .failure(CASPaxosError(sentNothing ? .notAvailable : .conflict, detail: detail)),
                startingNext: false, now: now, into: &effects)
        }
    }

    private mutating func fail(
        _ proposalID: UInt64, _ code: CASPaxosError.Code, now: Instant, into effects: inout [CASPaxosEffect]
    ) {
        guard let proposal = proposals[proposalID] else { return }
        // Who was silent, where silence is why it failed (a refusal
        // quorum does not need the others).
        var detail = "proposal \(proposalID) on a \(proposal.key.count)-byte key after \(proposal.failures) failed attempts"
            + (code == .noQuorum || code == .timeout ? silent(in: proposal) : "")
        var code = code
        if proposal.ballotFloor >= Ballot.maximumCounter {
            // Definite if no accept went out, as for any proposer that has
            // no ballot left.
            if proposal.sentAccepts.isEmpty { code = .notAvailable }
            detail += "; an acceptor promised the key a ballot at the limit \(Ballot.maximumCounter) (forged, or corrupted): "
                + "no ballot beats it there, so the key is written only where a quorum of the others answers"
        }
        complete(proposalID, .failure(CASPaxosError(code, detail: detail)), now: now, into: &effects)
    }

    /// For a failing proposal: which acceptors had not answered its phase
    /// in flight, or its last attempt's last phase if it is backing off
    /// (`; its last accept: no answer from ...`), so that a `.noQuorum`
    /// names where to look; empty otherwise.
    private func silent(in proposal: Proposal) -> String {
        let preparing: Bool
        switch proposal.phase {
        case .preparing: preparing = true
        case .accepting: preparing = false
        // The last phase was an accept if the request is the last accept's.
        case .backingOff: preparing = proposal.lastAccept?.requestID != proposal.requestID
        default: return ""
        }
        let silent = unansweredAcceptors(of: proposal, preparing: preparing)
        guard !silent.isEmpty else { return "" }
        let phase = preparing ? "prepare" : "accept"
        return "; its last \(phase): no answer from \(silent.map(\.description).joined(separator: ", "))"
    }

    /// The acceptors of `proposal`'s prepare (or accept) phase that have
    /// not answered it.
    private func unansweredAcceptors(of proposal: Proposal, preparing: Bool) -> [Endpoint] {
        (preparing ? quorums.prepareAcceptors : quorums.acceptAcceptors).filter { endpoint in
            guard let position = acceptors.position(of: endpoint) else { return false }
            return !proposal.granted.contains(position) && !proposal.refused.contains(position)
        }
    }

    /// Ends a proposal, caches `caching` (the ballot and value it left
    /// promised) for its key, and starts the next proposal queued on the
    /// key.
    ///
    /// With `startingNext` false the next proposal queued on the key is not
    /// started but returned (its cached ballot dropped), so that a caller
    /// failing every proposal of a key does so in a loop, not by recursion
    /// as deep as the queue.
    @discardableResult
    private mutating func complete(
        _ proposalID: UInt64, _ result: Result<[UInt8]?, CASPaxosError>,
        caching: CachedBallot? = nil, startingNext: Bool = true, now: Instant,
        into effects: inout [CASPaxosEffect]
    ) -> UInt64? {
        var proposal = EndedProposal()
        guard proposals.remove(proposalID, reading: { proposal = EndedProposal($0) }) else { return nil }
        // An invalidation came while the attempt ran: the collection that
        // sent it re-wrote the key at a ballot above this attempt's, and a
        // cached ballot would be refused at the next write, which could then
        // fail indeterminate though written nowhere (the doc of
        // `invalidate` promises the cache forgotten).
        let caching = proposal.attemptAge == age ? caching : nil
        proposalByRequest.remove(proposal.requestID)
        if let last = proposal.lastAcceptRequestID { proposalByRequest.remove(last) }
        switch result {
        case .success: counters.proposalsSucceeded += 1
        case .failure: counters.proposalsFailed += 1
        }
        var waiting: UInt64?
        if let (next, cached) = keys.finish(proposalID, key: proposal.key, caching: caching) {
            if startingNext { startQueued(next, cached: cached, now: now, into: &effects) } else { waiting = next }
        }
        effects.append(.proposalCompleted(id: proposalID, result: result))
        proposalFinished(proposalID, result, ballot: proposal.ballot, now: now, into: &effects)
        return waiting
    }

    /// What ``complete(_:_:caching:startingNext:now:into:)`` needs of a
    /// proposal it removes.
    private struct EndedProposal {
        var key: [UInt8] = []
        var ballot = Ballot.zero
        var attemptAge: UInt64 = 0
        var requestID: UInt64 = 0
        var lastAcceptRequestID: UInt64?

        init() {}

        init(_ proposal: borrowing Proposal) {
            key = proposal.key
            ballot = proposal.ballot
            attemptAge = proposal.attemptAge
            requestID = proposal.requestID
            lastAcceptRequestID = proposal.lastAccept?.requestID
        }
    }

    /// Starts `proposalID`, queued on its key, with `cached`. A queued
    /// client's proposal whose deadline passed while it waited fails
    /// instead, with ``CASPaxosError/Code/timeout``, and so do those behind
    /// it, in a loop: started, each would send a prepare (or, with a cached
    /// ballot, an accept) after its deadline, to fail in the same tick. A
    /// maintenance proposal's deadline starts as it runs.
    private mutating func startQueued(
        _ proposalID: UInt64, cached: CachedBallot?, now: Instant, into effects: inout [CASPaxosEffect]
    ) {
        var next: UInt64? = proposalID
        let timeout = timeouts.proposal
        while let id = next {
            guard
                let deadline = proposals.update(id, { proposal in
                    // A maintenance proposal's deadline starts when it runs:
                    // queued behind a client's proposal on a hot key, which
                    // may retry until its own deadline, it would start with
                    // little time left, or none. Its task's
                    // maintenanceTimeout bounds it still.
                    if proposal.isMaintenance { proposal.deadline = now.advanced(by: timeout) }
                    return proposal.deadline
                }), now >= deadline
            else {
                return beginAttempt(id, cached: cached, now: now, into: &effects)
            }
            let error = CASPaxosError(.timeout, detail: "proposal \(id) waited behind earlier ones on its key past its deadline")
            next = complete(id, .failure(error), startingNext: false, now: now, into: &effects)
        }
    }
}

extension Instant {
    /// `nanoseconds` later, or ``distantFuture`` past it.
    fileprivate func advanced(by nanoseconds: UInt64) -> Instant {
        let (sum, overflow) = self.nanoseconds.addingReportingOverflow(nanoseconds)
        return overflow ? .distantFuture : Instant(nanoseconds: sum)
    }
}
