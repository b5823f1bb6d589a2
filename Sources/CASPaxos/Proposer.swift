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
///   change is applied afresh.
/// - One-round-trip optimization: every accept carries the next ballot,
///   which acceptors promise as they accept. When a prepare quorum did, the
///   proposer caches (next ballot, new value) for the key, and its next
///   proposal on the key goes straight to the accept phase with them. A
///   refusal drops the entry and the retry takes both phases.
/// - Garbage collection and membership change run here too
///   (``Proposer+Maintenance``): a proposer answers invalidations and
///   reconfigurations, and can drive either procedure.
///
/// Reads (``read(key:now:into:)``) are proposals with the identity change:
/// they cost the same round trips as a write (and write the value back,
/// which is what makes a read after an interrupted write linearizable).
public struct Proposer {
    /// This proposer's ID, the tiebreaker of its ballots; unique per
    /// incarnation (a restarted proposer must not reuse its ballots).
    public let id: NodeID
    /// The validated configuration.
    public let configuration: CASPaxosConfiguration
    /// The acceptors and quorums in use.
    public internal(set) var quorums: AcceptorQuorums
    /// Grows with each garbage-collection invalidation; sent with every
    /// prepare and accept.
    public internal(set) var age: UInt64 = 0
    /// What the proposer has done so far.
    public internal(set) var counters = ProposerCounters()

    var counter: UInt64 = 0
    var random: SeededRandomGenerator
    var nextProposalID: UInt64 = 1
    var nextRequestID: UInt64 = 1
    var proposals = ProposalTable()
    var activeByKey: [[UInt8]: UInt64] = [:]
    var queuedByKey: [[UInt8]: [UInt64]] = [:]
    var proposalByRequest: [UInt64: UInt64] = [:]
    var cache: [[UInt8]: CachedBallot] = [:]
    var nextCacheStamp: UInt64 = 0
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
        self.quorums = quorums
        self.configuration = configuration
        random = SeededRandomGenerator(seed: seed)
    }

    /// Proposals pending (running or queued).
    public var pendingCount: Int { proposals.count }
    /// Keys whose ballot is cached for the one-round-trip path.
    public var cachedKeyCount: Int { cache.count }

    // MARK: Inputs

    /// Starts a proposal to change `key`'s value with `change`; returns its
    /// ID, which the ``CASPaxosEffect/proposalCompleted(id:result:)`` effect
    /// carries when it ends.
    ///
    /// - Throws: ``CASPaxosError`` `.tooLarge` for a key above
    ///   ``CASPaxosConfiguration/maximumKeySize``, `.overloaded` with
    ///   ``CASPaxosConfiguration/maximumPendingProposals`` pending.
    @discardableResult
    public mutating func propose(
        key: [UInt8], change: @escaping CASPaxosChange, now: Instant, into effects: inout [CASPaxosEffect]
    ) throws(CASPaxosError) -> UInt64 {
        try propose(key: key, change: change, isIdentity: false, needsEveryAcceptor: false, now: now, into: &effects)
    }

    /// Starts a read of `key`: a proposal with the identity change, which
    /// costs what a write costs (two round trips, or one with a cached
    /// ballot) and writes the value back, so that a read after an
    /// interrupted write agrees with every later read. Unlike an arbitrary
    /// change, a retried read never fails for fear of applying itself
    /// twice. Returns the proposal's ID, as ``propose(key:change:now:into:)``.
    ///
    /// - Throws: as ``propose(key:change:now:into:)``.
    @discardableResult
    public mutating func read(key: [UInt8], now: Instant, into effects: inout [CASPaxosEffect]) throws(CASPaxosError)
        -> UInt64
    {
        try propose(key: key, change: { $0 }, isIdentity: true, needsEveryAcceptor: false, now: now, into: &effects)
    }

    mutating func propose(
        key: [UInt8], change: @escaping CASPaxosChange, isIdentity: Bool, needsEveryAcceptor: Bool, now: Instant,
        into effects: inout [CASPaxosEffect]
    ) throws(CASPaxosError) -> UInt64 {
        guard key.count <= configuration.maximumKeySize else {
            throw CASPaxosError(
                .tooLarge, detail: "key of \(key.count) bytes, limit \(configuration.maximumKeySize)")
        }
        guard proposals.count < configuration.maximumPendingProposals else {
            throw CASPaxosError(
                .overloaded, detail: "\(proposals.count) proposals pending, limit \(configuration.maximumPendingProposals)")
        }
        let proposalID = nextProposalID
        nextProposalID += 1
        proposals[proposalID] = Proposal(
            id: proposalID, key: key, change: change, deadline: now + configuration.proposalTimeout,
            needsEveryAcceptor: needsEveryAcceptor, isIdentity: isIdentity)
        if activeByKey[key] == nil {
            activeByKey[key] = proposalID
            beginAttempt(proposalID, now: now, into: &effects)
        } else {
            queuedByKey[key, default: []].append(proposalID)
        }
        return proposalID
    }

    /// Handles a message from `sender`.
    public mutating func receive(
        _ message: CASPaxosMessage, from sender: Endpoint, now: Instant, into effects: inout [CASPaxosEffect]
    ) {
        switch message {
        case .promise(let requestID, let accepted, let value):
            receivePromise(requestID, accepted, value, from: sender, now: now, into: &effects)
        case .accepted(let requestID):
            receiveAccepted(requestID, from: sender, now: now, into: &effects)
        case .conflict(let requestID, let highest):
            counter = max(counter, highest.counter)
            receiveRefusal(requestID, from: sender, now: now, into: &effects)
        case .staleAge(let requestID, let minimumAge):
            // Garbage collection aged this proposer while the refused message
            // was on its way (or before a restart): forget every cached
            // ballot and retry at the age the acceptors require.
            if minimumAge > age {
                age = minimumAge
                cache.removeAll()
            }
            receiveRefusal(requestID, from: sender, now: now, into: &effects)
        case .invalidate, .reconfigure, .invalidated, .acknowledged, .keyList:
            receiveMaintenance(message, from: sender, now: now, into: &effects)
        case .prepare, .accept, .setMinimumAges, .removeTombstone, .listKeys:
            counters.unexpectedMessages += 1
        }
    }

    /// Retries attempts that timed out or finished backing off, fails
    /// proposals past their deadline, and advances maintenance tasks.
    public mutating func tick(now: Instant, into effects: inout [CASPaxosEffect]) {
        // Only the proposals due now, in the order they were made: handling
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
                }
            case .backingOff(let until):
                if now >= until { beginAttempt(proposalID, now: now, into: &effects) }
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

    mutating func newBallot() -> Ballot {
        counter += 1
        return Ballot(counter: counter, proposer: id)
    }

    mutating func newRequestID() -> UInt64 {
        defer { nextRequestID += 1 }
        return nextRequestID
    }

    /// Starts an attempt: the accept phase at once with a cached ballot,
    /// else a prepare with a new ballot.
    private mutating func beginAttempt(_ proposalID: UInt64, now: Instant, into effects: inout [CASPaxosEffect]) {
        guard var proposal = proposals[proposalID] else { return }
        counters.attempts += 1
        if configuration.isOneRoundTripEnabled, !proposal.needsEveryAcceptor,
            let cached = cache.removeValue(forKey: proposal.key)
        {
            counters.oneRoundTripAttempts += 1
            proposal.ballot = cached.ballot
            proposal.current = cached.value
            proposals[proposalID] = proposal
            sendAccept(proposalID, now: now, into: &effects)
            return
        }
        cache[proposal.key] = nil
        proposal.ballot = newBallot()
        proposal.highestAccepted = .zero
        proposal.current = nil
        startPhase(&proposal, .preparing, now: now)
        proposals[proposalID] = proposal
        for acceptor in quorums.prepareAcceptors {
            counters.requestsSent += 1
            effects.append(
                .send(.prepare(requestID: proposal.requestID, key: proposal.key, ballot: proposal.ballot, age: age), to: acceptor))
        }
    }

    private mutating func startPhase(_ proposal: inout Proposal, _ phase: Proposal.Phase, now: Instant) {
        if proposal.lastAccept?.requestID != proposal.requestID { proposalByRequest[proposal.requestID] = nil }
        proposal.phase = phase
        proposal.requestID = newRequestID()
        proposal.granted.removeAll()
        proposal.refused.removeAll()
        proposal.attemptDeadline = now + configuration.attemptTimeout
        proposalByRequest[proposal.requestID] = proposal.id
    }

    /// Applies the change to the current value (or re-sends `repeating`,
    /// a value this proposal already sent) and sends the accept.
    private mutating func sendAccept(
        _ proposalID: UInt64, repeating: [UInt8]?? = nil, now: Instant, into effects: inout [CASPaxosEffect]
    ) {
        guard var proposal = proposals[proposalID] else { return }
        let newValue = repeating ?? proposal.change(proposal.current)
        if let newValue, newValue.count > configuration.maximumValueSize {
            // Definite if no accept was sent before: only promises were made.
            let code: CASPaxosError.Code = proposal.sentAccepts.isEmpty ? .tooLarge : .conflict
            return complete(
                proposalID,
                .failure(CASPaxosError(code, detail: "the change produced \(newValue.count) bytes, limit \(configuration.maximumValueSize)")),
                now: now, into: &effects)
        }
        proposal.newValue = newValue
        proposal.sentAccepts.append((proposal.ballot, newValue))
        if let last = proposal.lastAccept { proposalByRequest[last.requestID] = nil }
        proposal.nextBallot = configuration.isOneRoundTripEnabled && !proposal.needsEveryAcceptor ? newBallot() : nil
        startPhase(&proposal, .accepting, now: now)
        proposal.lastAccept = (proposal.requestID, proposal.ballot)
        proposal.lastAcceptRefusals = []
        proposals[proposalID] = proposal
        for acceptor in quorums.acceptAcceptors {
            counters.requestsSent += 1
            effects.append(
                .send(
                    .accept(
                        requestID: proposal.requestID, key: proposal.key, ballot: proposal.ballot, age: age,
                        value: newValue, nextBallot: proposal.nextBallot), to: acceptor))
        }
    }

    /// The in-flight proposal waiting for `requestID` in `phase`, or nil
    /// (counted) if none is.
    private mutating func waiting(_ requestID: UInt64, _ phase: Proposal.Phase) -> Proposal? {
        guard let proposalID = proposalByRequest[requestID], let proposal = proposals[proposalID],
            proposal.phase == phase, proposal.requestID == requestID
        else {
            if taskByRequest[requestID] == nil { counters.staleReplies += 1 }
            return nil
        }
        return proposal
    }

    private mutating func receivePromise(
        _ requestID: UInt64, _ accepted: Ballot, _ value: [UInt8]?, from sender: Endpoint, now: Instant,
        into effects: inout [CASPaxosEffect]
    ) {
        guard var proposal = waiting(requestID, .preparing) else { return }
        guard quorums.prepareAcceptors.contains(sender), !proposal.refused.contains(sender) else {
            counters.unexpectedMessages += 1
            return
        }
        counter = max(counter, accepted.counter)
        proposal.granted.insert(sender)
        if accepted > proposal.highestAccepted {
            proposal.highestAccepted = accepted
            proposal.current = value
        }
        proposals[proposal.id] = proposal
        guard proposal.granted.count >= quorums.prepareQuorum else { return }
        if let own = proposal.sentAccepts.first(where: { $0.ballot == proposal.highestAccepted }) {
            sendAccept(proposal.id, repeating: own.value, now: now, into: &effects)
        } else if !proposal.isIdentity, let first = proposal.sentAccepts.first, proposal.highestAccepted > first.ballot {
            fail(proposal.id, .conflict, now: now, into: &effects)
        } else {
            sendAccept(proposal.id, now: now, into: &effects)
        }
    }

    private mutating func receiveAccepted(
        _ requestID: UInt64, from sender: Endpoint, now: Instant, into effects: inout [CASPaxosEffect]
    ) {
        guard var proposal = waiting(requestID, .accepting) else { return }
        guard quorums.acceptAcceptors.contains(sender), !proposal.refused.contains(sender) else {
            counters.unexpectedMessages += 1
            return
        }
        proposal.granted.insert(sender)
        proposals[proposal.id] = proposal
        guard proposal.granted.count >= acceptQuorum(for: proposal) else { return }
        if let next = proposal.nextBallot,
            proposal.granted.filter({ quorums.prepareAcceptors.contains($0) }).count >= quorums.prepareQuorum
        {
            remember(proposal.key, CachedBallot(ballot: next, value: proposal.newValue, stamp: nextCacheStamp))
        }
        complete(proposal.id, .success(proposal.newValue), now: now, into: &effects)
    }

    private func acceptQuorum(for proposal: Proposal) -> Int {
        proposal.needsEveryAcceptor ? quorums.acceptAcceptors.count : quorums.acceptQuorum
    }

    private mutating func receiveRefusal(
        _ requestID: UInt64, from sender: Endpoint, now: Instant, into effects: inout [CASPaxosEffect]
    ) {
        if let proposalID = proposalByRequest[requestID], var proposal = proposals[proposalID],
            let last = proposal.lastAccept, last.requestID == requestID, quorums.acceptAcceptors.contains(sender)
        {
            proposal.lastAcceptRefusals.insert(sender)
            if proposal.lastAcceptRefusals.count == quorums.acceptAcceptors.count {
                proposal.sentAccepts.removeAll { $0.ballot == last.ballot }
            }
            proposals[proposalID] = proposal
        }
        guard let proposalID = proposalByRequest[requestID], var proposal = proposals[proposalID],
            proposal.isInFlight, proposal.requestID == requestID
        else {
            if taskByRequest[requestID] == nil { counters.staleReplies += 1 }
            return
        }
        let (set, quorum) =
            proposal.phase == .preparing
            ? (quorums.prepareAcceptors, quorums.prepareQuorum) : (quorums.acceptAcceptors, acceptQuorum(for: proposal))
        guard set.contains(sender), !proposal.granted.contains(sender) else { return }
        proposal.refused.insert(sender)
        proposals[proposalID] = proposal
        if set.count - proposal.refused.count < quorum {
            abandonAttempt(proposalID, .conflict, now: now, into: &effects)
        }
    }

    /// Gives up the current attempt; retries after a back-off, or fails the
    /// proposal if the back-off would pass its deadline.
    mutating func abandonAttempt(
        _ proposalID: UInt64, _ reason: CASPaxosError.Code, now: Instant, into effects: inout [CASPaxosEffect]
    ) {
        guard var proposal = proposals[proposalID] else { return }
        counters.failedAttempts += 1
        if proposal.lastAccept?.requestID != proposal.requestID { proposalByRequest[proposal.requestID] = nil }
        cache[proposal.key] = nil
        proposal.failures += 1
        proposal.lastFailure = reason
        let retryAt =
            now
            + jitteredBackoff(
                initial: configuration.initialBackoff, maximum: configuration.maximumBackoff, failures: proposal.failures)
        guard retryAt < proposal.deadline else {
            proposals[proposalID] = proposal
            return fail(proposalID, reason, now: now, into: &effects)
        }
        proposal.phase = .backingOff(until: retryAt)
        proposals[proposalID] = proposal
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

    private mutating func fail(
        _ proposalID: UInt64, _ code: CASPaxosError.Code, now: Instant, into effects: inout [CASPaxosEffect]
    ) {
        guard let proposal = proposals[proposalID] else { return }
        let detail = "proposal \(proposalID) on a \(proposal.key.count)-byte key after \(proposal.failures) failed attempts"
        complete(proposalID, .failure(CASPaxosError(code, detail: detail)), now: now, into: &effects)
    }

    /// Ends a proposal and starts the next one queued on its key.
    private mutating func complete(
        _ proposalID: UInt64, _ result: Result<[UInt8]?, CASPaxosError>, now: Instant,
        into effects: inout [CASPaxosEffect]
    ) {
        guard let proposal = proposals.removeValue(forKey: proposalID) else { return }
        proposalByRequest[proposal.requestID] = nil
        if let last = proposal.lastAccept { proposalByRequest[last.requestID] = nil }
        switch result {
        case .success: counters.proposalsSucceeded += 1
        case .failure: counters.proposalsFailed += 1
        }
        if activeByKey[proposal.key] == proposalID {
            activeByKey[proposal.key] = nil
            if var queue = queuedByKey[proposal.key], !queue.isEmpty {
                let next = queue.removeFirst()
                queuedByKey[proposal.key] = queue.isEmpty ? nil : queue
                activeByKey[proposal.key] = next
                beginAttempt(next, now: now, into: &effects)
            }
        } else if var queue = queuedByKey[proposal.key] {
            queue.removeAll { $0 == proposalID }
            queuedByKey[proposal.key] = queue.isEmpty ? nil : queue
        }
        effects.append(.proposalCompleted(id: proposalID, result: result))
        proposalFinished(proposalID, result, ballot: proposal.ballot, now: now, into: &effects)
    }

    /// Caches a ballot, evicting the oldest entry at the limit.
    private mutating func remember(_ key: [UInt8], _ entry: CachedBallot) {
        nextCacheStamp += 1
        cache[key] = entry
        if cache.count > configuration.maximumCachedKeys,
            let oldest = cache.min(by: { $0.value.stamp < $1.value.stamp })?.key
        {
            cache[oldest] = nil
        }
    }
}
