import EventCore

/// One replica of a Raft group as a sans-IO state machine, in the manner of
/// etcd raft's `RawNode`: leader election with randomized timeouts, PreVote
/// and CheckQuorum; log replication with per-follower flow control
/// (probe and replicate states, a bounded window of pipelined appends),
/// batched proposals, fast backtracking and heartbeats carrying the commit
/// index; commitment of current-term entries by quorum (Raft §5.4.2).
///
/// The replica does no I/O and reads no clock. Inputs are ``step(_:now:)``
/// (a message arrived), ``tick(now:)`` (time passed; ``nextDeadline`` says
/// when it is next needed) and ``propose(_:)``. Their consequences
/// collect in a ``RaftReady`` (``hasReady``, ``ready()``), which the driver
/// performs (persist, then send, then apply) before calling
/// ``advance(_:)``. ``RaftNode`` is that driver.
///
/// The group starts with the members its replicas are created with (each
/// replica and its `peers`); ``proposeMembershipChange(_:)`` then adds or
/// removes one member at a time through the log (Raft dissertation §4.1).
/// A replica uses the latest membership its log holds, committed or not.
public struct RaftReplica {
    /// This replica's identity.
    public let id: NodeID
    /// The group this replica belongs to: every message carries it.
    public let group: UInt64
    /// The other voting members of the group, in ascending order (this
    /// replica's own ``membership``'s voters less itself).
    public internal(set) var peers: [NodeID]
    /// The group's learners but this replica, in ascending order: sent the
    /// log by a leader, never counted.
    public internal(set) var learners: [NodeID]
    /// ``peers`` and ``learners``: the replicas a leader sends the log to.
    var recipients: [NodeID]
    /// Whether this replica is a voter of its own ``membership``: one
    /// that is not (created `joining`, a learner, or removed) never
    /// campaigns, and a leader that is not counts no vote of its own.
    public internal(set) var isMember: Bool
    /// The settings.
    public let configuration: RaftConfiguration
    /// What the replica has done so far.
    public internal(set) var counters = RaftCounters()

    /// The replica's current term.
    public internal(set) var term: UInt64
    /// The candidate voted for in ``term``, if any.
    public internal(set) var votedFor: NodeID?
    /// The replica's role.
    public internal(set) var role: RaftRole = .follower
    /// The leader of ``term``, if known (this replica when it leads).
    public internal(set) var leader: NodeID?

    var log: RaftLog
    var memberships: MembershipHistory
    /// Counts changes of ``membership`` (for a driver to notice them).
    public internal(set) var membershipVersion: UInt64 = 0
    var generator: SeededRandomGenerator
    var outbox: [RaftMessage] = []
    var lastReadyHardState: RaftHardState
    /// When a follower or candidate campaigns next.
    var electionDeadline: Instant
    /// When this replica last heard from the leader of its term.
    var lastLeaderContact: Instant?
    /// Votes received in the current (pre-)election, by voter.
    var votes: [NodeID: Bool] = [:]

    // Leader state.
    /// Each follower's progress (a ``PeerMap``: a `Dictionary`'s interface,
    /// without hashing).
    var progress: PeerMap<FollowerProgress> = [:]
    var heartbeatDeadline: Instant = .distantFuture
    var quorumCheckDeadline: Instant = .distantFuture
    /// Command bytes this leader appended and has not yet handed out for
    /// applying: committed entries are released by the ``ready()`` that
    /// hands them out (as etcd raft does), not read back from the log.
    var uncommittedBytes = 0
    /// Entries were proposed since the last ready: send them in one append.
    var appendPending = false
    /// Leader state (ReadIndex, §6.4): the latest read round started (its
    /// heartbeats carry it), the reads waiting for a majority to answer
    /// their round (in round order), and whether a read came since the
    /// latest round started.
    var readRound: UInt64 = 0
    var pendingReads: [PendingRead] = []
    var readRoundWanted = false
    /// Reads confirmed since the last ready.
    var readStates: [RaftReadState] = []
    /// Follower state: the leader's snapshot being received.
    var incomingSnapshot: IncomingSnapshot?
    /// Leader state: the leadership transfer in progress.
    var transfer: LeadershipTransfer?

    /// Creates a replica from what `storage` holds (a new group's replicas
    /// start from empty storage).
    ///
    /// - Parameters:
    ///   - peers: the other members of the group (this replica's `id`
    ///     excluded): the group's first membership, which the log's
    ///     membership entries and the stored snapshot's membership
    ///     override.
    ///   - joining: this replica joins a running group, to be added by a
    ///     membership change: `peers` are the group's current members,
    ///     this replica is not among them until its log holds the change
    ///     that adds it (until then it does not campaign).
    ///   - applied: the last index already applied to the state machine
    ///     (0 for a state machine that starts empty).
    ///   - seed: seeds the randomized election timeouts.
    ///   - now: the current time.
    /// - Throws: `ConfigurationError` if `configuration` is invalid or
    ///   `peers` contains `id` or a duplicate.
    public init(
        id: NodeID, group: UInt64, peers: [NodeID], joining: Bool = false, storage: any RaftStorage,
        configuration: RaftConfiguration = RaftConfiguration(), applied: UInt64 = 0, seed: UInt64, now: Instant
    ) throws(ConfigurationError) {
        try self.init(
            id: id, group: group, peers: peers.map { RaftMembership.Member(id: $0) }, joining: joining,
            storage: storage, configuration: configuration, applied: applied, seed: seed, now: now)
    }

    /// As the public initializer, with the endpoints of the group's first
    /// members (``RaftNode``'s peers), which membership entries then carry.
    init(
        id: NodeID, group: UInt64, peers: [RaftMembership.Member], joining: Bool, storage: any RaftStorage,
        configuration: RaftConfiguration, applied: UInt64, seed: UInt64, now: Instant
    ) throws(ConfigurationError) {
        try configuration.validate()
        let ids = peers.map(\.id).sorted()
        guard !ids.contains(id), Set(ids).count == ids.count, joining || ids.count < RaftMembership.maximumMembers,
            !(joining && ids.isEmpty)
        else {
            throw ConfigurationError(
                field: "peers", value: "\(ids)",
                allowedRange: "distinct IDs, not including the replica's own \(id) (at least one when joining)")
        }
        let initial = try RaftMembership(joining ? peers : peers + [RaftMembership.Member(id: id)])
        self.id = id
        self.group = group
        self.configuration = configuration
        let hardState = storage.hardState
        term = hardState.term
        votedFor = hardState.votedFor
        lastReadyHardState = hardState
        log = RaftLog(storage: storage, applied: applied)
        memberships = MembershipHistory(initial: initial, base: storage.snapshot?.membership)
        self.peers = []
        learners = []
        recipients = []
        isMember = false
        generator = SeededRandomGenerator(seed: seed)
        electionDeadline = .distantFuture
        _ = memberships.appended(Self.storedMembershipEntries(storage), from: storage.firstIndex)
        membershipChanged()
        resetElectionDeadline(now: now)
    }

    /// The membership entries `storage` holds, read a megabyte of entries
    /// at a time.
    private static func storedMembershipEntries(_ storage: any RaftStorage) -> [RaftEntry] {
        var found: [RaftEntry] = []
        var next = storage.firstIndex
        while next <= storage.lastIndex {
            let batch = storage.entries(from: next, through: storage.lastIndex, maximumBytes: 1 << 20)
            guard let last = batch.last else { break }
            found += batch.lazy.filter { $0.kind == .membership }
            next = last.index + 1
        }
        return found
    }

    // MARK: Queries

    /// The highest index known committed.
    public var commitIndex: UInt64 { log.committed }
    /// The highest index the driver reported applied.
    public var appliedIndex: UInt64 { log.applied }
    /// The index of the last entry of the log (durable or not).
    public var lastIndex: UInt64 { log.lastIndex }
    /// The term of the last entry of the log (0 if empty).
    public var lastTerm: UInt64 { log.lastTerm }
    /// The term of the entry at `index`, if the replica holds it.
    public func term(at index: UInt64) -> UInt64? { log.term(at: index) }
    /// The hard state as it is now (persisted once the next ready is).
    public var hardState: RaftHardState {
        RaftHardState(term: term, votedFor: votedFor, commitIndex: log.committed)
    }
    /// The group's voting members as this replica knows them: the latest
    /// membership its log holds, committed or not.
    public var membership: RaftMembership { memberships.current }
    /// Voting members of the group (this replica included if it is one).
    public var groupSize: Int { memberships.current.count }
    /// Votes needed to win an election or entries replicated to commit.
    var quorum: Int { groupSize / 2 + 1 }

    /// A leader's view of `peer`'s log: (match index, next index), for
    /// tests and status pages. Nil if this replica does not lead.
    public func replicationProgress(of peer: NodeID) -> (match: UInt64, next: UInt64)? {
        progress[peer].map { ($0.match, $0.next) }
    }

    /// A leader's last contact with `peer`: when it last had an answer
    /// from it in this term (hashicorp/raft's `LastContact`; a membership
    /// policy counts on the voters it heard from lately). Nil if this
    /// replica does not lead, or has had no answer from `peer` yet.
    public func lastContact(with peer: NodeID) -> Instant? {
        progress[peer]?.lastHeard
    }

    /// The instant the replica next needs ``tick(now:)``.
    public var nextDeadline: Instant {
        switch role {
        case .leader:
            min(
                configuration.checkQuorum ? min(heartbeatDeadline, quorumCheckDeadline) : heartbeatDeadline,
                transfer?.deadline ?? .distantFuture)
        case .follower, .preCandidate, .candidate: electionDeadline
        }
    }

    // MARK: Inputs

    /// Lets time pass: a follower or candidate whose election timeout has
    /// run out campaigns (a PreVote first, if configured; not once a forged
    /// message took its term or log beyond 2⁶¹, see
    /// ``RaftCounters/campaignsForgone``), and one outside the voters (a
    /// learner, a replica joining) forgets its leader; a leader sends
    /// heartbeats when due and, with CheckQuorum, steps down if it has not
    /// heard from a majority since the check one election timeout before
    /// (so up to two timeouts after it lost its majority).
    public mutating func tick(now: Instant) {
        switch role {
        case .leader:
            if isRemovedLeader {
                // Removed, and the change committed (§4.2.2): the last
                // heartbeats carry the commit, then the members elect.
                sendHeartbeats()
                counters.stepDownsOnRemoval += 1
                becomeFollower(term: term, leader: nil, now: now)
                return
            }
            expireTransfer(now: now)
            if configuration.checkQuorum && now >= quorumCheckDeadline {
                quorumCheckDeadline = now + configuration.electionTimeout
                if !checkQuorum() {
                    counters.quorumLosses += 1
                    becomeFollower(term: term, leader: nil, now: now)
                    return
                }
            }
            if now >= heartbeatDeadline {
                heartbeatDeadline = nextHeartbeat(after: now)
                broadcastHeartbeat()
            }
        case .follower, .preCandidate, .candidate:
            guard now >= electionDeadline else { return }
            if isMember {
                campaign(preVote: configuration.preVote, now: now)
            } else {
                // A learner (or a replica joining, or one removed) never
                // campaigns; silent for an election timeout, its leader
                // is no longer one it knows.
                becomeFollower(term: term, leader: nil, now: now)
            }
        }
    }

    /// Proposes `command` for the log. On the leader it is appended at once
    /// and replicated with the next ready (proposals made between two
    /// readies share one AppendEntries per follower).
    ///
    /// - Returns: where the entry was appended: the proposal took effect if
    ///   the entry committed at that index has that term.
    /// - Throws: ``RaftError/notLeader(leaderHint:)`` on a follower or
    ///   candidate, ``RaftError/commandTooLarge(size:limit:)``,
    ///   ``RaftError/uncommittedLimitExceeded(uncommittedBytes:limit:)``.
    @discardableResult
    public mutating func propose(_ command: [UInt8]) throws(RaftError) -> RaftEntryID {
        guard role == .leader, !isRemovedLeader, transfer == nil else {
            counters.proposalsRefused += 1
            throw .notLeader(leaderHint: refusalHint)
        }
        guard command.count <= configuration.maximumCommandSize else {
            counters.proposalsRefused += 1
            throw .commandTooLarge(size: command.count, limit: configuration.maximumCommandSize)
        }
        guard uncommittedBytes == 0 || uncommittedBytes + command.count <= configuration.maximumUncommittedBytes
        else {
            counters.proposalsRefused += 1
            throw .uncommittedLimitExceeded(
                uncommittedBytes: uncommittedBytes, limit: configuration.maximumUncommittedBytes)
        }
        let entry = RaftEntry(term: term, index: log.lastIndex + 1, kind: .command, command: command)
        appendAsLeader(entry)
        return RaftEntryID(term: entry.term, index: entry.index)
    }

    /// Handles a message from another replica of the group. Messages for
    /// another group or replica, with out-of-range fields (among them a
    /// term above 2⁶¹ + 1, which no replica reaches: see
    /// ``RaftCounters/messagesDropped``), or meant for the driver
    /// (forwarded proposals) are dropped and counted, and so are answers
    /// from a replica not in this one's ``membership`` (voters and
    /// learners). A leader's messages
    /// and vote requests are taken from any replica: this one's membership
    /// may be behind the group's (a leader or candidate added by a change
    /// it has not yet appended, as etcd raft takes them).
    public mutating func step(_ message: RaftMessage, now: Instant) {
        guard message.group == group, message.to == id, message.from != id, message.isWellFormed,
              !message.isForwarding, message.term <= Self.maximumReachableTerm,
              message.isLeaderOrCandidateMessage || recipients.contains(message.from) else {
            counters.messagesDropped += 1
            return
        }
        if message.term > term {
            guard acceptHigherTerm(message, now: now) else { return }
        } else if message.term < term {
            counters.staleTermMessages += 1
            answerStale(message)
            return
        }
        switch message.body {
        case .voteRequest(let lastLogIndex, let lastLogTerm, let isPreVote, _):
            handleVoteRequest(from: message.from, term: message.term, lastLogIndex: lastLogIndex,
                              lastLogTerm: lastLogTerm, isPreVote: isPreVote, now: now)
        case .voteResponse(let granted, let isPreVote):
            handleVoteResponse(from: message.from, granted: granted, isPreVote: isPreVote, now: now)
        case .append where role == .leader, .heartbeat where role == .leader, .snapshotChunk where role == .leader:
            // Two leaders in one term: only a faulty or forged peer sends this.
            counters.messagesDropped += 1
        case .append(let previousIndex, let previousTerm, let entries, let leaderCommit):
            hearFromLeader(message.from, now: now)
            handleAppend(from: message.from, previousIndex: previousIndex, previousTerm: previousTerm,
                         entries: entries, leaderCommit: leaderCommit)
        case .heartbeat(let commitIndex, let readRound):
            hearFromLeader(message.from, now: now)
            log.commit(to: min(commitIndex, log.lastIndex))
            send(.heartbeatResponse(readRound: readRound), to: message.from)
        case .appendResponse(let result):
            guard role == .leader else { return }
            handleAppendResponse(from: message.from, result: result, now: now)
        case .heartbeatResponse(let readRound):
            guard role == .leader else { return }
            handleHeartbeatResponse(from: message.from, readRound: readRound, now: now)
        case .snapshotChunk(let snapshotIndex, let snapshotTerm, let totalSize, let offset, let data):
            hearFromLeader(message.from, now: now)
            handleSnapshotChunk(from: message.from, snapshotIndex: snapshotIndex, snapshotTerm: snapshotTerm,
                                totalSize: totalSize, offset: offset, data: data)
        case .snapshotProgress(let snapshotIndex, let receivedBytes, let outOfOrder):
            guard role == .leader else { return }
            handleSnapshotProgress(from: message.from, snapshotIndex: snapshotIndex, receivedBytes: receivedBytes,
                                   outOfOrder: outOfOrder, now: now)
        case .snapshotRefused(let snapshotIndex, let maximumSize):
            guard role == .leader else { return }
            handleSnapshotRefusal(from: message.from, snapshotIndex: snapshotIndex, maximumSize: maximumSize, now: now)
        case .timeoutNow:
            handleTimeoutNow(from: message.from, now: now)
        case .forwardedProposal, .forwardOutcome, .forwardedRead, .readOutcome, .forwardedChange:
            break  // refused above
        }
    }

    // MARK: Ready

    /// Whether there is something to persist, send or apply.
    public var hasReady: Bool {
        appendPending || !outbox.isEmpty || !log.unstable.isEmpty || log.hasEntriesToApply
            || hardState != lastReadyHardState || log.pendingSnapshot != nil || readRoundWanted
            || !readStates.isEmpty
    }

    /// Takes what is to be persisted, sent and applied. Perform it in the
    /// documented order (see ``RaftReady``), then call ``advance(_:)``
    /// before the next call.
    public mutating func ready() -> RaftReady {
        if appendPending {
            appendPending = false
            if role == .leader { for peer in recipients { sendAllAppends(to: peer) } }
        }
        if readRoundWanted { startReadRound() }
        let reads = readStates
        readStates.removeAll(keepingCapacity: true)
        let state = hardState
        let changed = state != lastReadyHardState
        lastReadyHardState = state
        let messages = outbox
        outbox.removeAll(keepingCapacity: true)
        let committed = log.takeEntriesToApply()
        releaseUncommitted(committed)
        return RaftReady(
            snapshot: log.pendingSnapshot, hardState: changed ? state : nil, entries: log.unstable,
            messages: messages, committedEntries: committed, readStates: reads)
    }

    /// Tells the replica that `ready` was performed: its snapshot saved
    /// and restored, its entries and hard state durable, and its committed
    /// entries applied.
    public mutating func advance(_ ready: RaftReady) {
        if let snapshot = ready.snapshot { log.snapshotSaved(snapshot) }
        if let last = ready.entries.last { log.stable(through: last.index, term: last.term) }
        if let last = ready.committedEntries.last { log.applied(through: last.index) }
    }

    // MARK: Roles

    mutating func resetElectionDeadline(now: Instant) {
        let base = configuration.electionTimeout.nanoseconds
        let jitter = Int64.random(in: 0..<max(1, base), using: &generator)
        // `now + .nanoseconds(base + jitter)` without building a Duration
        // (this runs on every message from the leader).
        let (deadline, overflow) = now.nanoseconds.addingReportingOverflow(UInt64(base + jitter))
        electionDeadline = Instant(nanoseconds: overflow ? .max : deadline)
    }

    mutating func becomeFollower(term newTerm: UInt64, leader newLeader: NodeID?, now: Instant) {
        if newTerm != term {
            term = newTerm
            votedFor = nil
        }
        role = .follower
        // A snapshot half-received from another leader will not be
        // finished. Its own leader, silent for a while (a learner forgets
        // it) or leading again, may finish it.
        if let newLeader, let incoming = incomingSnapshot, incoming.leader != newLeader { incomingSnapshot = nil }
        leader = newLeader
        votes = [:]
        progress = [:]
        heartbeatDeadline = .distantFuture
        quorumCheckDeadline = .distantFuture
        uncommittedBytes = 0
        appendPending = false
        // Unconfirmed reads are dropped; the driver fails them when it sees
        // this replica no longer lead. Confirmed ones stay good.
        pendingReads.removeAll()
        readRoundWanted = false
        transfer = nil
        resetElectionDeadline(now: now)
    }

    /// A message from the leader of the current term arrived.
    mutating func hearFromLeader(_ sender: NodeID, now: Instant) {
        if role != .follower || leader != sender {
            becomeFollower(term: term, leader: sender, now: now)
        }
        lastLeaderContact = now
        resetElectionDeadline(now: now)
    }

    /// Queues a message to `peer` with the current term (or `messageTerm`).
    mutating func send(_ body: RaftMessage.Body, to peer: NodeID, term messageTerm: UInt64? = nil) {
        outbox.append(RaftMessage(group: group, from: id, to: peer, term: messageTerm ?? term, body: body))
    }
}
