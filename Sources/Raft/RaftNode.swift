import EventCore
import WireCodec

/// Runs one ``RaftReplica`` on a `Transport` and a `Scheduler`: decodes
/// incoming frames, feeds the replica, performs each ``RaftReady`` in order
/// (restore the state machine from a received snapshot, make the new term
/// and vote durable and save the snapshot, persist to the
/// ``RaftStorage``, then send, then apply to the ``RaftStateMachine``),
/// reports proposals' outcomes, and keeps one timer armed for the
/// replica's ``RaftReplica/nextDeadline``.
///
/// Every ``RaftConfiguration/snapshotInterval`` applied entries it takes a
/// snapshot of the state machine, saves it and compacts the log, keeping
/// ``RaftConfiguration/entriesKeptAfterSnapshot`` entries.
///
/// The same node runs on real sockets (`UDPSocketTransport` on an
/// `EventLoop`) and in the simulator. It is confined to its scheduler's
/// loop: create and call it there only.
///
/// Keep the node (here, its `LoopBound`) for as long as it should run:
/// its transport and timer hold it weakly, so a node no one holds is
/// released at once, and silently does nothing more.
///
/// ```swift
/// // In an async context; `loop` is a started EventLoop.
/// let node = try await loop.submit {
///     let node = try RaftNode(
///         id: NodeID(1), group: 7, peers: [NodeID(2): endpoint2, NodeID(3): endpoint3],
///         storage: InMemoryRaftStorage(), stateMachine: KeyValueStateMachine(),
///         transport: try UDPSocketTransport.bind(to: endpoint1, on: loop), scheduler: loop)
///     return LoopBound(node, on: loop)
/// }
/// // Once the group has elected a leader (until then a proposal fails
/// // at once with .notLeader(leaderHint: nil): watch `leader`):
/// let result = try await node.propose(KeyValueCommand.put(key: "k", value: [1]).encoded)
/// ```
public final class RaftNode {
    private struct Pending {
        var term: UInt64
        var completion: (Result<[UInt8], RaftError>) -> Void
    }

    /// A proposal forwarded to the leader, waiting for where it went.
    private struct Forward {
        var leader: NodeID
        var deadline: Instant
        var completion: (Result<[UInt8], RaftError>) -> Void
    }

    /// A read forwarded to the leader, waiting for its answer.
    private struct ForwardedRead {
        var leader: NodeID
        var deadline: Instant
        var completion: ReadQueue.Completion
    }

    /// This replica's identity.
    public var id: NodeID { replica.id }
    /// The group the node belongs to.
    public var group: UInt64 { replica.group }
    /// The transport the node speaks through.
    public let transport: any Transport
    /// The scheduler its timer runs on.
    public let scheduler: any Scheduler
    /// Where the log and hard state are kept.
    public let storage: any RaftStorage
    /// Where committed commands are applied.
    public let stateMachine: any RaftStateMachine

    private var replica: RaftReplica
    /// Where each replica is reached: the peers given at creation, those
    /// the membership entries name (``refreshEndpoints()``), and the
    /// source of a leader's or candidate's message from a replica not
    /// known yet.
    private var endpoints: [NodeID: Endpoint]
    private var knownMembershipVersion: UInt64 = 0
    private var pending: [UInt64: Pending] = [:]
    /// Proposals waiting at an index where one of a later term waits too
    /// (see ``waitForApply(_:_:)``): rare, so kept apart from ``pending``.
    private var displaced: [RaftEntryID: Pending] = [:]
    private var forwards: [UInt64: Forward] = [:]
    private var reads = ReadQueue()
    private var forwardedReads: [UInt64: ForwardedRead] = [:]
    /// The ID of the last proposal forwarded. The IDs start where the seed
    /// puts them (scrambled by an odd multiplier), not at 0: an answer to
    /// the previous incarnation's forward, delayed past a restart, must not
    /// match this one's (by default the seed is random).
    private var lastForwardID: UInt64
    /// The forwarded proposals this node handled lately, per forwarder: a
    /// duplicate is dropped, not proposed again (its command would be
    /// applied twice), whatever this node's role when each copy came.
    private var handledForwards: [NodeID: RecentlySeen<UInt64>] = [:]
    /// Request IDs remembered per forwarder: far more than a node has in
    /// flight (UDP's duplicates arrive close behind the original).
    static let rememberedForwardsPerPeer = 1_024
    /// The term this node started at (its stored one). A forwarded
    /// proposal sent at this term or before may have been handled by an
    /// earlier incarnation, whose ``handledForwards`` are gone: it is
    /// dropped unanswered (see ``handleForwarding(_:)``).
    private let startTerm: UInt64
    private var forwardCounters = RaftCounters()
    /// The role, term and leader last logged.
    private var observed: (role: RaftRole, term: UInt64, leader: NodeID?) = (.follower, 0, nil)
    /// When the waits for a leader's word are abandoned (``abandonWaits()``):
    /// ``abandonDelay`` after this node lost its leader, unless it knows
    /// one again by then.
    private var abandonWaitsAt: Instant?
    private let timer: DeadlineTimer
    private var isProcessing = false
    private var isProcessScheduled = false
    private var isStopped = false
    /// The loop's shutdown handler that stops the node, removed when the
    /// node stops first (one per node otherwise, on a loop that runs many).
    private var shutdownHook: LoopHook?
    private var sender: FrameSender
    private var receiver: FrameReceiver
    private let logger: any LogSink
    /// The index of the latest snapshot saved or restored.
    public private(set) var snapshotIndex: UInt64
    /// Sends the transport refused (too large, closed).
    public var sendFailureCount: Int { sender.failures }

    /// Creates the node, takes `transport`'s receive handler and arms its
    /// timer: it starts as a follower of whatever `storage` holds.
    ///
    /// The state machine must be empty: the node restores the storage's
    /// snapshot into it, if there is one, then applies every committed
    /// entry after it, which after a restart rebuilds it from what is
    /// durable.
    ///
    /// - Parameters:
    ///   - peers: the other members of the group and where to reach them:
    ///     the group's first members, or with `joining` its members now.
    ///     The membership entries of the log (and the stored snapshot's
    ///     membership) override them, and tell where members added later
    ///     are reached.
    ///   - joining: the node joins a running group: it is not a member
    ///     (and never campaigns) until the leader adds it
    ///     (``changeMembership(_:completion:)`` with `.add(id, endpoint:)`
    ///     on the leader) and the change reaches it.
    ///   - seed: seeds the randomized election timeouts and where the IDs
    ///     of forwarded proposals start (pass one to replay a run; by
    ///     default a random one). A node restarted in a live group needs
    ///     a new seed: with the old one its forwards would repeat the IDs
    ///     of its previous run's, which the leader drops as duplicates,
    ///     and a late answer to an old forward could complete a new one.
    ///   - logger: where dropped frames, send and storage failures go.
    /// - Throws: `ConfigurationError` if `configuration` is invalid, its
    ///   largest frame (``RaftConfiguration/largestFrameLength``) is above
    ///   the transport's `maximumMessageSize`, or `peers` contains `id`; whatever the state machine's
    ///   ``RaftStateMachine/restore(from:)`` throws for the stored snapshot.
    public init(
        id: NodeID, group: UInt64, peers: [NodeID: Endpoint], joining: Bool = false, storage: any RaftStorage,
        stateMachine: any RaftStateMachine, transport: any Transport, scheduler: any Scheduler,
        configuration: RaftConfiguration = RaftConfiguration(), seed: UInt64? = nil,
        logger: any LogSink = DiscardingLogSink()
    ) throws {
        // A frame the transport refuses would never leave: an entry that
        // cannot be sent blocks every entry after it.
        let (field, value) = configuration.largestFrameSetting
        try transport.checkCarries(frameLength: configuration.largestFrameLength, setBy: field, value: value)
        var system = SystemRandomNumberGenerator()
        let seed = seed ?? system.next()
        lastForwardID = seed &* 0x9E37_79B9_7F4A_7C15
        let snapshot = storage.snapshot
        if let snapshot { try stateMachine.restore(from: snapshot.data) }
        snapshotIndex = snapshot?.index ?? 0
        replica = try RaftReplica(
            id: id, group: group, peers: peers.map { RaftMembership.Member(id: $0.key, endpoint: $0.value) },
            joining: joining, storage: storage, configuration: configuration, applied: snapshotIndex, seed: seed,
            now: scheduler.now)
        startTerm = replica.term
        if startTerm > RaftReplica.maximumReachableTerm {
            // Only a forged term adopted by an older build (before terms
            // above the last reachable one were dropped) gets here.
            logger.log(
                .error, source: "raft",
                "stored term \(startTerm) is above \(RaftReplica.maximumReachableTerm), the last a replica reaches: "
                    + "the others drop this replica's messages, and it refuses theirs as stale; it is cut off from "
                    + "group \(group)")
        }
        endpoints = peers
        self.storage = storage
        self.stateMachine = stateMachine
        self.transport = transport
        self.scheduler = scheduler
        self.logger = logger
        sender = FrameSender(transport: transport, capacity: 2_048, logger: logger, source: "raft")
        timer = DeadlineTimer(scheduler: scheduler)
        receiver = FrameReceiver(
            protocolID: .raft, limits: RaftMessage.decodingLimits, logger: logger, source: "raft")
        timer.onFire = { [weak self] in self?.tick() }
        transport.setReceiveHandler { [weak self] bytes, sender, now in
            self?.receive(bytes, from: sender, now: now)
        }
        // On an event loop, the loop's shutdown stops the node, so that no
        // proposal waits forever for an outcome no timer will bring.
        shutdownHook = (scheduler as? EventLoop)?.addShutdownHandler { [weak self] in self?.stop() }
        refreshEndpoints()
        process()
    }

    /// The node's configuration.
    public var configuration: RaftConfiguration { replica.configuration }
    /// The replica's role now.
    public var role: RaftRole { replica.role }
    /// The leader of the current term, if known.
    public var leader: NodeID? { replica.leader }
    /// The current term.
    public var term: UInt64 { replica.term }
    /// The highest index known committed.
    public var commitIndex: UInt64 { replica.commitIndex }
    /// The highest index applied to the state machine.
    public var appliedIndex: UInt64 { replica.appliedIndex }
    /// The index of the last entry of the log.
    public var lastIndex: UInt64 { replica.lastIndex }
    /// The group's members (voters and learners) as this node knows them:
    /// the latest membership its log holds, committed or not.
    public var membership: RaftMembership { replica.membership }
    /// On the leader, `peer`'s replication progress: the last index it is
    /// known to hold (match) and the next one to send it; nil elsewhere,
    /// or for a replica the leader does not send the log to. A learner
    /// whose match is near ``lastIndex`` has caught up: promote it.
    public func replicationProgress(of peer: NodeID) -> (match: UInt64, next: UInt64)? {
        replica.replicationProgress(of: peer)
    }
    /// On the leader, when it last had an answer from `peer` (nil
    /// elsewhere, or before the first answer of this term).
    public func lastContact(with peer: NodeID) -> Instant? {
        replica.lastContact(with: peer)
    }
    /// Proposals waiting for their outcome (forwarded ones included).
    public var pendingProposalCount: Int { pending.count + displaced.count + forwards.count }
    /// Reads (``read(completion:)``) not yet served or failed.
    public var pendingReadCount: Int { reads.count + forwardedReads.count }
    /// Whether the node has stopped: ``stop()`` was called, or its storage
    /// or a snapshot failed (logged to the node's logger); it then sends,
    /// applies and stores nothing more.
    public var stopped: Bool { isStopped }
    /// What the node has done so far.
    public var counters: RaftCounters {
        var counters = replica.counters
        counters.malformedFramesDropped = receiver.malformedFramesDropped
        counters.proposalsForwarded = forwardCounters.proposalsForwarded
        counters.forwardedProposalsReceived = forwardCounters.forwardedProposalsReceived
        counters.forwardsTimedOut = forwardCounters.forwardsTimedOut
        counters.waitsAbandoned = forwardCounters.waitsAbandoned
        counters.duplicateForwardsDropped = forwardCounters.duplicateForwardsDropped
        counters.outsiderForwardsRefused = forwardCounters.outsiderForwardsRefused
        counters.staleForwardsDropped = forwardCounters.staleForwardsDropped
        counters.messagesDropped += forwardCounters.messagesDropped
        return counters
    }

    /// Proposes `command`. `completion` runs on the loop exactly once:
    /// with the state machine's result once the command is committed and
    /// applied here, or with a ``RaftError``.
    ///
    /// On a follower that knows the leader, with
    /// ``RaftConfiguration/forwardProposals`` (the default), the command
    /// goes to the leader, which appends it and says where; the outcome is
    /// then known here as on the leader, once this node applies that
    /// index. The leader's refusal comes back as the same error; no answer
    /// within ``RaftConfiguration/forwardTimeout`` fails the proposal with
    /// ``RaftError/outcomeUnknown``.
    ///
    /// Errors: at once for ``RaftError/notLeader(leaderHint:)`` (no
    /// forwarding, or no leader known),
    /// ``RaftError/commandTooLarge(size:limit:)``,
    /// ``RaftError/uncommittedLimitExceeded(uncommittedBytes:limit:)`` and
    /// ``RaftError/stopped``; ``RaftError/proposalDropped`` once another
    /// entry commits at its index, or one of a later term below it (not
    /// when one is merely appended there: it need not commit, and a later
    /// leader that holds the proposal's entry may commit it).
    ///
    /// An outcome is known only as the log is committed and applied here.
    /// A node that loses its leader (a follower that hears from none for an
    /// election timeout, a leader that steps down) and knows none again
    /// within ``RaftConfiguration/forwardTimeout`` (or two election
    /// timeouts, if longer) fails its proposals not yet committed here with
    /// ``RaftError/outcomeUnknown``, as hashicorp/raft fails them with
    /// `ErrLeadershipLost`: cut off, it may never learn their outcome (a
    /// replica removed from the group is sent nothing more, and would
    /// learn of its removal only from the entries it waits for). One that
    /// finds a leader in time waits on, and learns the outcome from its
    /// log (``RaftCounters/waitsAbandoned`` counts those given up).
    public func propose(_ command: [UInt8], completion: @escaping (Result<[UInt8], RaftError>) -> Void) {
        guard !isStopped else { return completion(.failure(.stopped)) }
        let entry: RaftEntryID
        do throws(RaftError) {
            entry = try replica.propose(command)
        } catch {
            if case .notLeader(let hint?) = error, configuration.forwardProposals, endpoints[hint] != nil {
                return forward(command, to: hint, completion: completion)
            }
            return completion(.failure(error))
        }
        waitForApply(entry, Pending(term: entry.term, completion: completion))
        processAtEndOfTurn()
    }

    /// Adds, promotes or removes one member of the group (Raft
    /// dissertation §4.1: one at a time, through the log). `completion` runs on the loop
    /// exactly once: with success once the change is committed and
    /// applied here, or with a ``RaftError``.
    ///
    /// Only the leader changes the membership: on a follower that knows
    /// the leader, with ``RaftConfiguration/forwardProposals`` (the
    /// default), the change is forwarded to it as a proposal is (and
    /// fails as one does: its refusal comes back, and no answer within
    /// ``RaftConfiguration/forwardTimeout`` fails it
    /// ``RaftError/outcomeUnknown``); otherwise a follower refuses with
    /// ``RaftError/notLeader(leaderHint:)``. To
    /// add a node, start it first with `joining: true` and the group's
    /// members as its `peers`, then add it with the endpoint it is reached
    /// at: the leader sends it the log (or its snapshot) from then on, and
    /// every member learns the endpoint from the change. A node far behind
    /// is better added as a learner (`.addLearner`): sent the log and not
    /// counted, so the group keeps its fault tolerance while it catches
    /// up; then `.promote` it (watch ``replicationProgress(of:)`` on the
    /// leader). To remove one,
    /// remove it, then stop it once the change completes (a removed node
    /// that never learns of its removal campaigns in vain: the members
    /// drop its messages). Removing the leader itself is allowed: it
    /// steps down once the change commits, and the others elect a leader.
    /// Grow a group of 1 to 3 in two changes; each change keeps a majority
    /// of the old membership in every majority of the new one.
    ///
    /// Errors: at once for ``RaftError/notLeader(leaderHint:)``,
    /// ``RaftError/membershipChangePending`` (retry shortly),
    /// ``RaftError/invalidMembershipChange(_:)`` (among them `.add` with
    /// no endpoint), ``RaftError/stopped``; later as for a proposal
    /// (``propose(_:completion:)``: ``RaftError/proposalDropped`` if
    /// another leader's entry took its index, and so on).
    public func changeMembership(
        _ change: RaftMembershipChange, completion: @escaping (Result<Void, RaftError>) -> Void
    ) {
        guard !isStopped else { return completion(.failure(.stopped)) }
        switch change {
        case .add(let id, nil), .addLearner(let id, nil):
            return completion(.failure(.invalidMembershipChange("adding \(id) needs the endpoint it is reached at")))
        case .add, .addLearner, .promote, .remove:
            break
        }
        let entry: RaftEntryID
        let done: (Result<[UInt8], RaftError>) -> Void = { completion($0.map { _ in () }) }
        do throws(RaftError) {
            entry = try replica.proposeMembershipChange(change)
        } catch {
            if case .notLeader(let hint?) = error, configuration.forwardProposals, endpoints[hint] != nil {
                let requestID = nextForwardID()
                return forward(
                    .forwardedChange(requestID: requestID, change: change), as: requestID, to: hint, completion: done)
            }
            return completion(.failure(error))
        }
        waitForApply(entry, Pending(term: entry.term, completion: done))
        processAtEndOfTurn()
    }

    /// The replica this node, as leader, hands leadership to, if it is
    /// doing so (``transferLeadership(to:)``).
    public var transferTarget: NodeID? { replica.transferTarget }

    /// Hands leadership to voter `target` (Raft dissertation §3.10): this
    /// node, the leader, stops taking proposals and membership changes
    /// (its replica refuses them with ``RaftError/notLeader(leaderHint:)``
    /// naming `target`, so this node forwards them there: taken once
    /// `target` leads, refused before),
    /// brings `target` up to date and tells it to campaign at once; it
    /// usually leads a round trip later, without the election timeout a
    /// stopped leader costs. Watch ``leader`` for the outcome: if `target`
    /// has not taken over within an election timeout, the transfer is given
    /// up and this node takes proposals again. Use it before stopping or
    /// removing the leader.
    ///
    /// - Throws: ``RaftError/notLeader(leaderHint:)`` unless this node
    ///   leads; ``RaftError/invalidTransfer(_:)`` for a target that is
    ///   this node, a learner or not a member; ``RaftError/stopped``.
    public func transferLeadership(to target: NodeID) throws(RaftError) {
        guard !isStopped else { throw .stopped }
        try replica.transferLeadership(to: target, now: scheduler.now)
        processAtEndOfTurn()
    }

    /// Takes the endpoints the membership names (a member added later is
    /// reached there) over those known. None is forgotten: a removed
    /// leader still sends its last heartbeats, and a replica answers a
    /// leader its membership does not name yet.
    private func refreshEndpoints() {
        knownMembershipVersion = replica.membershipVersion
        let membership = replica.membership
        for member in membership.members + membership.learners where member.id != id {
            if let endpoint = member.endpoint { endpoints[member.id] = endpoint }
        }
    }

    /// Runs `completion` on the loop exactly once: with success once this
    /// node may serve a linearizable read from its state machine (read it
    /// in the completion: it then reflects every write acknowledged
    /// anywhere before this call), or with a ``RaftError``. No entry is
    /// appended: the leader confirms it still leads with a round of
    /// heartbeats, then waits until it has applied its commit index
    /// (ReadIndex, Raft dissertation §6.4). Reads made in one loop turn
    /// share one round: a read costs one round trip to a majority, and no
    /// disk write.
    ///
    /// On a follower that knows the leader, with
    /// ``RaftConfiguration/forwardProposals`` (the default), the read goes
    /// to the leader, which confirms it and answers with an index it has
    /// applied; the follower serves it once it has applied that far (so a
    /// follower's read costs a round trip more, and still no entry).
    ///
    /// Errors: ``RaftError/notLeader(leaderHint:)`` at once on a node that
    /// neither leads nor forwards (no forwarding, or no leader known); or
    /// later if the leader (this node, or the one the read was forwarded
    /// to) could not confirm it: it stopped leading first (cut off, it
    /// learns so at the latest at CheckQuorum's next check), or a
    /// forwarded read went unanswered for
    /// ``RaftConfiguration/forwardTimeout`` or the leader changed, or (its
    /// index not yet committed here) this node lost its leader and found
    /// none in time, as a proposal (above); ``RaftError/stopped``. A failed
    /// read did nothing: try it again.
    public func read(completion: @escaping (Result<Void, RaftError>) -> Void) {
        guard !isStopped else { return completion(.failure(.stopped)) }
        do throws(RaftError) {
            try readHere(completion: completion)
        } catch {
            if case .notLeader(let hint?) = error, configuration.forwardProposals, endpoints[hint] != nil {
                return forwardRead(to: hint, completion: completion)
            }
            completion(.failure(error))
        }
    }

    /// A read this node confirms as leader.
    ///
    /// - Throws: ``RaftError/notLeader(leaderHint:)`` unless it leads.
    private func readHere(completion: @escaping ReadQueue.Completion) throws(RaftError) {
        let id = reads.nextID()
        try replica.readIndex(id)
        reads.wait(id, completion)
        processAtEndOfTurn()
    }

    private func forwardRead(to leader: NodeID, completion: @escaping ReadQueue.Completion) {
        let requestID = nextForwardID()
        forwardedReads[requestID] = ForwardedRead(
            leader: leader, deadline: scheduler.now + configuration.forwardTimeout, completion: completion)
        send(RaftMessage(group: group, from: id, to: leader, term: replica.term,
                         body: .forwardedRead(requestID: requestID)))
        armTimer()
    }

    /// Serves the confirmed reads whose index this node has applied.
    private func serveReads() {
        complete(reads.takeServable(applied: replica.appliedIndex), with: .success(()))
    }

    /// Completes each of `taken`, reads just taken from the queue, with
    /// `result`; once a completion has stopped the node, the rest with
    /// ``RaftError/stopped``, as ``stop()`` completes those it finds
    /// (each completion runs once, these being no longer in the queue).
    private func complete(_ taken: [ReadQueue.Completion], with result: Result<Void, RaftError>) {
        for read in taken { read(isStopped ? .failure(.stopped) : result) }
    }

    /// Waits for the entry at `entry` to be applied. Proposals of
    /// different terms may wait at one index: the entry of the later term
    /// took the earlier one's place in this node's log, but it need not
    /// commit, and a later leader that still holds the earlier entry may
    /// commit it (Figure 8 of the Raft paper). Each waits until the index
    /// is applied, an entry of a later term is committed, or a snapshot
    /// covers it; the earlier in ``displaced``.
    ///
    /// Every completion here and below runs after its proposal left the
    /// table: a completion may stop the node or propose again, and must
    /// find the table as it is, nor be called twice.
    private func waitForApply(_ entry: RaftEntryID, _ proposal: Pending) {
        guard let existing = pending[entry.index] else {
            // One entry proposed twice (see below), the first aside.
            if displaced[entry] != nil { return proposal.completion(.failure(.proposalDropped)) }
            pending[entry.index] = proposal
            return
        }
        // One entry proposed twice: no leader appends two at one place.
        if existing.term == proposal.term { return proposal.completion(.failure(.proposalDropped)) }
        let (later, earlier) = existing.term > proposal.term ? (existing, proposal) : (proposal, existing)
        let aside = RaftEntryID(term: earlier.term, index: entry.index)
        // As above: a second proposal of one earlier entry (a forged or
        // repeated answer to a forward) must not take the first's place.
        if displaced[aside] != nil { return proposal.completion(.failure(.proposalDropped)) }
        pending[entry.index] = later
        displaced[aside] = earlier
    }

    private func forward(
        _ command: [UInt8], to leader: NodeID, completion: @escaping (Result<[UInt8], RaftError>) -> Void
    ) {
        guard command.count <= configuration.maximumCommandSize else {
            return completion(.failure(.commandTooLarge(size: command.count, limit: configuration.maximumCommandSize)))
        }
        let requestID = nextForwardID()
        forward(.forwardedProposal(requestID: requestID, command: command), as: requestID, to: leader, completion: completion)
    }

    /// The ID of the next forward (a proposal, a change or a read).
    private func nextForwardID() -> UInt64 {
        lastForwardID &+= 1
        return lastForwardID
    }

    /// Sends `body`, a forwarded proposal or change carrying `requestID`,
    /// to `leader`, and waits for its outcome.
    private func forward(
        _ body: RaftMessage.Body, as requestID: UInt64, to leader: NodeID,
        completion: @escaping (Result<[UInt8], RaftError>) -> Void
    ) {
        forwards[requestID] = Forward(
            leader: leader, deadline: scheduler.now + configuration.forwardTimeout, completion: completion)
        forwardCounters.proposalsForwarded += 1
        send(RaftMessage(group: group, from: id, to: leader, term: replica.term, body: body))
        armTimer()
    }

    /// Whether to handle forward `requestID` (a proposal or a membership
    /// change) as leader; counts it either way.
    private func admitsForward(_ message: RaftMessage, _ requestID: UInt64) -> Bool {
        // Its term is the forwarder's when it sent it. An incarnation
        // handles only forwards sent at its term or before (below), so one
        // sent after this node started cannot have been proposed by an
        // earlier incarnation; one sent before may have been (a copy
        // delayed past a restart), and is dropped unanswered: proposed, its
        // command would be applied twice, and refused, its forwarder would
        // report "not proposed" about a command that may commit. Its
        // forwarder fails it as `outcomeUnknown` (time out, or a change of
        // leader).
        guard message.term > startTerm else {
            forwardCounters.staleForwardsDropped += 1
            return false
        }
        // A forwarder sends to the leader of its own term, whose term can
        // only have grown since: a later term is forged or corrupt.
        // Dropped, not refused: a later incarnation started below that
        // term could otherwise propose a copy of what this one refused.
        guard message.term <= replica.term else {
            forwardCounters.messagesDropped += 1
            return false
        }
        guard
            handledForwards[message.from, default: RecentlySeen(capacity: Self.rememberedForwardsPerPeer)]
                .insert(requestID)
        else {
            forwardCounters.duplicateForwardsDropped += 1
            return false
        }
        forwardCounters.forwardedProposalsReceived += 1
        return true
    }

    /// On the leader, refuses (`.notLeader` with no hint) a forward from
    /// `sender` if it is neither a voter nor a learner of the group: a
    /// replica removed from the group hears from no leader, but until it
    /// forgets the one it knew (an election timeout) it forwards there, and
    /// would wait for entries it is no longer sent. Checked once a forward is admitted (a duplicate of one
    /// proposed while its sender was a member is dropped as such, never
    /// refused). A replica that does not lead refuses the forward anyway,
    /// with its own hint.
    private func refuseOutsider(_ sender: NodeID) throws(RaftError) {
        guard replica.role == .leader, !replica.membership.includes(sender) else { return }
        forwardCounters.outsiderForwardsRefused += 1
        throw .notLeader(leaderHint: nil)
    }

    /// Proposes a forward with `propose` and answers its forwarder with
    /// where the entry went, or the refusal.
    private func answerForward(
        _ message: RaftMessage, _ requestID: UInt64, _ propose: () throws(RaftError) -> RaftEntryID
    ) {
        let outcome: RaftMessage.ForwardOutcome
        do throws(RaftError) {
            let entry = try propose()
            outcome = .appended(term: entry.term, index: entry.index)
        } catch {
            outcome = .refused(error)
        }
        send(RaftMessage(group: group, from: id, to: message.from, term: replica.term,
                         body: .forwardOutcome(requestID: requestID, outcome: outcome)))
    }

    /// A forwarded proposal or membership change (as leader), or the
    /// leader's answer to one.
    private func handleForwarding(_ message: RaftMessage) {
        guard message.group == group, message.to == id, endpoints[message.from] != nil else {
            forwardCounters.messagesDropped += 1
            return
        }
        switch message.body {
        case .forwardedProposal(let requestID, let command):
            guard admitsForward(message, requestID) else { return }
            answerForward(message, requestID) { () throws(RaftError) in
                try refuseOutsider(message.from)
                return try replica.propose(command)
            }
        case .forwardedChange(let requestID, let change):
            guard admitsForward(message, requestID) else { return }
            answerForward(message, requestID) { () throws(RaftError) in
                try refuseOutsider(message.from)
                return try replica.proposeMembershipChange(change)
            }
        case .forwardOutcome(let requestID, let outcome):
            // Late, repeated, or from another node than the one asked (the
            // answer to an earlier incarnation's forward).
            guard let forward = forwards[requestID], forward.leader == message.from else { return }
            forwards[requestID] = nil
            switch outcome {
            case .refused(let error):
                forward.completion(.failure(error))
            case .appended(_, let index) where index <= replica.appliedIndex:
                // Applied here before the answer came: its result is gone.
                forward.completion(.failure(.outcomeUnknown))
            case .appended(let term, let index):
                waitForApply(RaftEntryID(term: term, index: index), Pending(term: term, completion: forward.completion))
            }
        case .forwardedRead(let requestID):
            // A read changes nothing, so a copy delayed past a restart may
            // be answered; a term above this node's is forged or corrupt.
            guard message.term <= replica.term else {
                forwardCounters.messagesDropped += 1
                return
            }
            let follower = message.from
            let answer = { [weak self] (index: UInt64?) in
                guard let self, !isStopped else { return }
                send(RaftMessage(group: group, from: id, to: follower, term: replica.term,
                                 body: .readOutcome(requestID: requestID, index: index)))
            }
            do throws(RaftError) {
                try refuseOutsider(follower)
                try readHere { [weak self] result in
                    guard let self else { return }
                    // Removed meanwhile, the follower would not be sent
                    // the entries up to the index: it would wait for ever.
                    if case .success = result, replica.membership.includes(follower) { answer(replica.appliedIndex) } else { answer(nil) }
                }
            } catch {
                answer(nil)
            }
        case .readOutcome(let requestID, let index):
            // As a forward's outcome: only from the leader asked.
            guard let read = forwardedReads[requestID], read.leader == message.from else { return }
            forwardedReads[requestID] = nil
            guard let index else {
                // Not back to the leader that just refused it.
                let hint = replica.refusalHint
                return read.completion(.failure(.notLeader(leaderHint: hint == message.from ? nil : hint)))
            }
            reads.confirmed(at: index, read.completion)
            serveReads()
        default:
            break
        }
    }

    /// Fails, oldest first, the forwarded proposals (then reads) whose
    /// leader did not answer in time or is no longer the leader this node
    /// knows (its answer may never come).
    private func expireForwards(now: Instant) {
        let leader = replica.leader
        let expired = forwards.filter { $0.value.deadline <= now || $0.value.leader != leader }
            .sorted { $0.key < $1.key }
        for (requestID, forward) in expired {
            // Settled meanwhile by a completion that stopped the node.
            guard forwards.removeValue(forKey: requestID) != nil else { continue }
            forwardCounters.forwardsTimedOut += 1
            forward.completion(.failure(.outcomeUnknown))
        }
        let unanswered = forwardedReads.filter { $0.value.deadline <= now || $0.value.leader != leader }
            .sorted { $0.key < $1.key }
        for (requestID, read) in unanswered {
            guard forwardedReads.removeValue(forKey: requestID) != nil else { continue }
            read.completion(.failure(.notLeader(leaderHint: replica.refusalHint)))
        }
    }

    /// Stops at once (to the others, a crash): the timer is cancelled,
    /// incoming messages are ignored and pending proposals fail with
    /// ``RaftError/stopped``. The transport and the storage stay open: to
    /// restart the replica in this process, close a ``FileRaftStorage``
    /// (``FileRaftStorage/close()``) before opening its directory again.
    /// A node on an `EventLoop` stops when the loop shuts down.
    public func stop() {
        guard !isStopped else { return }
        isStopped = true
        if let shutdownHook, let loop = scheduler as? EventLoop { loop.removeHandler(shutdownHook) }
        shutdownHook = nil
        timer.cancel()
        transport.removeReceiveHandler()
        settle(where: { _ in true }) { _ in .failure(.stopped) }
        let forwarded = forwards.sorted { $0.key < $1.key }
        forwards = [:]
        for (_, forward) in forwarded { forward.completion(.failure(.stopped)) }
        let readsForwarded = forwardedReads.sorted { $0.key < $1.key }
        forwardedReads = [:]
        for (_, read) in readsForwarded { read.completion(.failure(.stopped)) }
        complete(reads.takeAll(), with: .failure(.stopped))
    }

    // MARK: Driving

    private func receive(_ bytes: UnsafeRawBufferPointer, from sender: Endpoint, now: Instant) {
        guard !isStopped else { return }
        if RaftFrameBatch.isBatch(bytes) {
            // From a multiplexed peer: each frame as if it came alone.
            guard let frames = receiver.decode(bytes, from: sender, { body, _ throws(WireError) in try RaftFrameBatch(body: body) })
            else { return }
            for frame in frames { receive(frame, from: sender, now: now) }
            return
        }
        guard let message = receiver.decode(bytes, from: sender, RaftMessage.init(decoding:limits:)) else { return }
        if message.isForwarding {
            handleForwarding(message)
        } else {
            if endpoints[message.from] == nil, message.isLeaderOrCandidateMessage, message.group == group,
                message.to == id, message.from != id
            {
                // A leader or candidate this node's membership does not
                // name yet (added by a change it has not appended): its
                // answers go where the message came from.
                endpoints[message.from] = sender
            }
            let refusals = (replica.counters.snapshotsRefused, replica.counters.snapshotsRefusedByFollowers)
            replica.step(message, now: now)
            logSnapshotRefusal(message, after: refusals)
        }
        processAtEndOfTurn()
    }

    /// Logs an error when `message` made this replica refuse a snapshot too
    /// large for it (at a transfer's first chunk, not at every chunk), or,
    /// as leader, learn that a follower refused one: the two replicas'
    /// ``RaftConfiguration/maximumSnapshotSize`` differ, and the follower
    /// cannot catch up until its limit is raised.
    private func logSnapshotRefusal(_ message: RaftMessage, after refusals: (chunks: Int, byFollowers: Int)) {
        switch message.body {
        case .snapshotChunk(let index, _, let totalSize, 0, _) where replica.counters.snapshotsRefused > refusals.chunks:
            logger.log(
                .error, source: "raft",
                "\(id): refused the snapshot through index \(index) from leader \(message.from): "
                    + "\(totalSize) bytes, above maximumSnapshotSize (\(configuration.maximumSnapshotSize)); "
                    + "this replica cannot catch up until its limit is raised")
        case .snapshotRefused(let index, let maximumSize)
        where replica.counters.snapshotsRefusedByFollowers > refusals.byFollowers:
            logger.log(
                .error, source: "raft",
                "\(id): follower \(message.from) refused the snapshot through index \(index), above its "
                    + "maximumSnapshotSize (\(maximumSize)); it cannot catch up until its limit is raised "
                    + "(retried in \(SnapshotRefusal.heartbeats) heartbeats)")
        default:
            break
        }
    }

    /// Performs the readies once the scheduler's current work is done, so
    /// that every message and proposal of a burst (a batch of datagrams, a
    /// run of `propose` calls) shares one ready: one storage write and one
    /// sync (group commit), one append per follower.
    private func processAtEndOfTurn() {
        guard !isProcessScheduled else { return }
        isProcessScheduled = true
        scheduler.atEndOfTurn { [weak self] in
            guard let self else { return }
            isProcessScheduled = false
            process()
        }
    }

    private func tick() {
        guard !isStopped else { return }
        let now = scheduler.now
        replica.tick(now: now)
        if !forwards.isEmpty || !forwardedReads.isEmpty { expireForwards(now: now) }
        if let deadline = abandonWaitsAt, deadline <= now {
            abandonWaitsAt = nil
            // A leader heard from in this very turn is noticed only at its
            // end: the wait goes on.
            if replica.role != .leader && replica.leader == nil {
                abandonWaits()
                if isStopped { return }
            }
        }
        process()
    }

    /// Logs a change of role, term or leader, and fails the forwards that
    /// went to a leader this node no longer knows and the reads it took as
    /// a leader and did not confirm (its replica dropped them); having
    /// lost its leader, it sets when to stop waiting for one
    /// (``abandonWaitsAt``).
    private func noticeLeadership() {
        let now = (role: replica.role, term: replica.term, leader: replica.leader)
        guard now != observed else { return }
        let deposed = now.role != .leader || now.term != observed.term
        let knewLeader = observed.leader != nil || observed.role == .leader
        observed = now
        if !forwards.isEmpty || !forwardedReads.isEmpty { expireForwards(now: scheduler.now) }
        if deposed && !replica.membership.includes(id) {
            // Removed from the group: no leader sends to it any more, so
            // it will not learn whether its entries above its commit
            // index commit (the new leader may commit them). A learner
            // still receives the log, and learns it.
            let committed = replica.commitIndex
            settle(where: { $0.index > committed }) { _ in .failure(.outcomeUnknown) }
            if isStopped { return }
        }
        if now.role != .leader && now.leader == nil {
            if knewLeader {
                abandonWaitsAt = scheduler.now + abandonDelay
                armTimer()
            }
        } else {
            abandonWaitsAt = nil
        }
        if deposed {
            complete(reads.takeUnconfirmed(), with: .failure(.notLeader(leaderHint: replica.refusalHint)))
        }
        let leader = replica.leader.map { "\($0)" } ?? "unknown"
        logger.log(.info, source: "raft", "\(id) is \(replica.role) in term \(replica.term), leader \(leader)")
    }

    /// How long a node that lost its leader waits for one before it stops
    /// waiting for what only a leader can settle (``abandonWaits()``):
    /// ``RaftConfiguration/forwardTimeout``, or two election timeouts if
    /// longer (an election held up by a split vote).
    private var abandonDelay: Duration { max(configuration.forwardTimeout, configuration.electionTimeout * 2) }

    /// Fails what this node waits for from a leader it has not known for
    /// ``abandonDelay`` (it heard from none within an election timeout, or
    /// it stopped leading, and no leader came of it): its proposals whose
    /// entries lie past its commit index (forwarded, or its own from when
    /// it led), as ``RaftError/outcomeUnknown``, and the forwarded reads
    /// confirmed at an index past it, as ``RaftError/notLeader(leaderHint:)``.
    /// Waiting on could be for ever: a replica removed from the group
    /// (just after the leader appended its forwarded entry, or while it was
    /// cut off from the majority as leader) is sent nothing more, and
    /// would learn of its removal only from the entries it waits for.
    private func abandonWaits() {
        let committed = replica.commitIndex
        forwardCounters.waitsAbandoned += settle(where: { $0.index > committed }) { _ in .failure(.outcomeUnknown) }
        let unserved = reads.takeConfirmed(above: committed)
        forwardCounters.waitsAbandoned += unserved.count
        complete(unserved, with: .failure(.notLeader(leaderHint: nil)))
    }

    /// Performs readies until none is left (completions may propose more),
    /// then re-arms the timer.
    private func process() {
        guard !isProcessing else { return }
        isProcessing = true
        defer {
            isProcessing = false
            noticeLeadership()
        }
        // A completion may stop the node (checked after each that may run):
        // it then applies, stores and sends nothing more.
        while !isStopped && replica.hasReady {
            let ready = replica.ready()
            if replica.membershipVersion != knownMembershipVersion { refreshEndpoints() }
            do {
                if let snapshot = ready.snapshot {
                    try install(snapshot, hardState: ready.hardState)
                    if isStopped { return }
                }
                if !ready.entries.isEmpty || ready.hardState != nil {
                    try storage.persist(ready.entries, hardState: ready.hardState)
                }
            } catch {
                logger.log(.error, source: "raft", "storage or snapshot failed, stopping: \(error)")
                stop()
                return
            }
            for message in ready.messages { send(message) }
            for entry in ready.committedEntries {
                apply(entry)
                if isStopped { return }
            }
            if let last = ready.committedEntries.last { dropProposals(olderThan: last.term) }
            if isStopped { return }
            replica.advance(ready)
            reads.confirm(ready.readStates)
            serveReads()
            if isStopped { return }
            do {
                try snapshotIfDue()
            } catch {
                logger.log(.error, source: "raft", "saving a snapshot failed, stopping: \(error)")
                stop()
                return
            }
        }
        armTimer()
    }

    /// Restores the state machine from a snapshot received from the
    /// leader, saves it, and settles the proposals it covers: one of a
    /// term above the snapshot's cannot have committed there; of the
    /// others the outcome is unknown. Restored first: a snapshot the state
    /// machine refuses (a faulty leader, a version skew) stops the node
    /// with its storage as it was, so that it can start again; saved first,
    /// every start would restore it and throw. The ready's term and vote
    /// go to storage before the snapshot (`saveReceivedSnapshot`).
    private func install(_ snapshot: RaftSnapshot, hardState: RaftHardState?) throws {
        try stateMachine.restore(from: snapshot.data)
        try storage.saveReceivedSnapshot(snapshot, hardState: hardState)
        snapshotIndex = snapshot.index
        settle(where: { $0.index <= snapshot.index }) { id in
            .failure(id.term > snapshot.term ? .proposalDropped : .outcomeUnknown)
        }
        // Above the snapshot, the entries are of its term or later: one of
        // an earlier term can never commit there.
        dropProposals(olderThan: snapshot.term)
    }

    /// Every ``RaftConfiguration/snapshotInterval`` applied entries: saves
    /// the state machine's snapshot and compacts the log behind it.
    private func snapshotIfDue() throws {
        let interval = UInt64(configuration.snapshotInterval)
        let applied = replica.appliedIndex
        guard interval > 0, applied >= snapshotIndex + interval, let term = replica.term(at: applied) else { return }
        let data = stateMachine.snapshot()
        if data.count > configuration.maximumSnapshotSize {
            logger.log(
                .error, source: "raft",
                "\(id): the state machine's snapshot (\(data.count) bytes) is above maximumSnapshotSize "
                    + "(\(configuration.maximumSnapshotSize)): a follower behind the log cannot catch up from it")
        }
        try storage.saveSnapshot(
            RaftSnapshot(index: applied, term: term, membership: replica.membership(asOf: applied), data: data))
        replica.snapshotSaved(through: applied)
        snapshotIndex = applied
        let kept = UInt64(configuration.entriesKeptAfterSnapshot)
        if applied > kept { try storage.compact(through: applied - kept) }
    }

    private func send(_ message: RaftMessage) {
        guard let destination = endpoints[message.to] else { return }
        let limits = receiver.limits
        sender.send(to: destination) { writer throws(WireError) in try message.encodeFrame(into: &writer, limits: limits) }
    }

    private func apply(_ entry: RaftEntry) {
        let result = entry.kind == .command ? stateMachine.apply(entry.command, at: entry.index) : []
        guard displaced.isEmpty else {
            settle(where: { $0.index == entry.index }) { id in
                id.term == entry.term ? .success(result) : .failure(.proposalDropped)
            }
            return
        }
        guard let proposal = pending.removeValue(forKey: entry.index) else { return }
        proposal.completion(entry.term == proposal.term ? .success(result) : .failure(.proposalDropped))
    }

    /// Fails the pending proposals of terms before `term`, once an entry of
    /// `term` is committed: those at lower indices were resolved as they
    /// were applied, and one at a higher index can never commit (terms never
    /// fall along a log, and the log up to the committed entry is fixed).
    private func dropProposals(olderThan term: UInt64) {
        guard !displaced.isEmpty || pending.values.contains(where: { $0.term < term }) else { return }
        settle(where: { $0.term < term }) { _ in .failure(.proposalDropped) }
    }

    /// Settles, in index order (then term), the waiting proposals of both
    /// tables that `isSettled` picks by their entry (returns how many),
    /// each with the result
    /// `outcome` gives it. One settled meanwhile is passed over: a
    /// completion that stopped the node failed the rest, and one that
    /// proposed again may have put another proposal at its index.
    @discardableResult
    private func settle(
        where isSettled: (RaftEntryID) -> Bool, with outcome: (RaftEntryID) -> Result<[UInt8], RaftError>
    ) -> Int {
        var chosen = pending.compactMap { index, proposal -> RaftEntryID? in
            let id = RaftEntryID(term: proposal.term, index: index)
            return isSettled(id) ? id : nil
        }
        chosen += displaced.keys.filter(isSettled)
        chosen.sort { ($0.index, $0.term) < ($1.index, $1.term) }
        var settled = 0
        for id in chosen {
            let proposal: Pending
            if pending[id.index]?.term == id.term, let taken = pending.removeValue(forKey: id.index) {
                proposal = taken
            } else if let taken = displaced.removeValue(forKey: id) {
                proposal = taken
            } else {
                continue
            }
            proposal.completion(outcome(id))
            settled += 1
        }
        return settled
    }

    private func armTimer() {
        guard !isStopped else { return }
        let forwardDeadline = min(
            forwards.values.lazy.map(\.deadline).min() ?? .distantFuture,
            forwardedReads.values.lazy.map(\.deadline).min() ?? .distantFuture)
        timer.arm(at: min(replica.nextDeadline, forwardDeadline, abandonWaitsAt ?? .distantFuture))
    }
}
