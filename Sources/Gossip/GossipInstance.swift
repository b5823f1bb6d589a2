import EventCore

/// The gossip protocol of one node as a sans-IO state machine: it does no
/// I/O, reads no clock and starts no task. Inputs are ``join(seeds:now:into:)``,
/// ``broadcast(_:now:into:)``, ``receive(_:from:now:into:)`` and
/// ``tick(now:into:)``; each appends ``GossipEffect``s (messages to send,
/// broadcasts to deliver) to a caller-owned array. Call ``tick(now:into:)``
/// at ``nextDeadline`` (Pittacus's tick, returning when to tick next).
///
/// Layers, all bounded:
/// - membership: HyParView active and passive views, joins by random walk,
///   shuffles, heartbeats on idle links, failed neighbours replaced from
///   the passive view and re-probed later (so a healed partition reconnects);
/// - dissemination: ``DisseminationMode/push`` or
///   ``DisseminationMode/plumtree``, with exactly-once delivery per
///   ``MessageID`` (``SeenWindows``);
/// - anti-entropy: digests of retained messages exchanged with a random
///   peer, each side pulling what it lacks.
///
/// ``GossipNode`` drives one on a `Transport` and a `Scheduler`; tests and
/// the simulator can drive it directly.
public struct GossipInstance {
    /// This node's identity: the origin of its broadcasts.
    public let id: NodeID
    /// The endpoint peers reach this node at.
    public let endpoint: Endpoint
    /// The validated configuration.
    public let configuration: GossipConfiguration
    /// What the node has done so far.
    public internal(set) var counters = GossipCounters()

    var random: SeededRandomGenerator
    var nextSequence: UInt32 = 0
    var view: PartialView
    var seen: SeenWindows
    var retention: RetentionBuffer

    // Membership.
    var seeds: [Endpoint] = []
    var nextSeed = 0
    /// When the next join attempt may go out (while the active view is empty).
    var joinDue = Instant.zero
    /// Neighbour and join requests awaiting an answer, with their deadlines.
    var pendingRequests: [Endpoint: Instant] = [:]
    /// The pending requests sent to newcomers that forward joins named,
    /// which anyone can send: they have a budget of their own
    /// (``maximumNewcomerRequests``), so a flood of them never holds up
    /// this node's own join, view repair and probes.
    var newcomerRequests: Set<Endpoint> = []
    /// Active neighbours: when each was last heard from and last sent to.
    var lastHeard: [Endpoint: Instant] = [:]
    var lastSent: [Endpoint: Instant] = [:]
    /// Active neighbours that asked to become so (NEIGHBOR, JOIN) and have
    /// sent nothing since: a forged request's address never does, and is
    /// not remembered as a former neighbour when it times out.
    var unconfirmedNeighbors: Set<Endpoint> = []
    /// Peers taken for failed, re-probed every reconnect interval (a ring).
    var failedPeers: [Endpoint] = []
    /// Of ``failedPeers``, the former neighbours (dropped for silence),
    /// probed at high priority (see ``probeFailedPeer(now:into:)``).
    var failedNeighbors: Set<Endpoint> = []
    /// The passive peer asked at high priority by the refill of an empty
    /// active view, while that request is out: one at a time (see
    /// ``fillActiveView(now:into:)``).
    var highPriorityRefill: Endpoint?
    /// Peers that refused a request of this node's (not one to a newcomer a
    /// forward join named), and when: the refill skips them for a
    /// reconnect interval. Pruned every reconnect interval to the passive
    /// view's peers.
    var refusals: [Endpoint: Instant] = [:]
    /// The entries this node sent in its last shuffle: evicted first when
    /// the answer comes.
    var lastShuffleSample: [Endpoint] = []

    // Plumtree.
    /// Active neighbours on the lazy side: they get IHAVE, not payloads.
    var lazyPeers: Set<Endpoint> = []
    /// IHAVEs waiting for the next lazy flush, by neighbour.
    var lazyQueue: [Endpoint: [MessageID]] = [:]
    var lazyFlushDue: Instant?
    var missing: MissingMessages

    // Periodic work.
    var heartbeatDue: Instant
    var shuffleDue: Instant
    var antiEntropyDue: Instant
    var reconnectDue: Instant

    /// Creates a node that knows no peer yet: call ``join(seeds:now:into:)``,
    /// or wait to be joined as a seed.
    ///
    /// - Parameters:
    ///   - id: the node's identity, unique per incarnation.
    ///   - endpoint: where peers reach it (its bound, routable address).
    ///   - seed: seeds the node's random choices (peer sampling, jitter).
    ///   - now: the current time on the driver's clock.
    /// - Throws: `ConfigurationError` if `configuration` fails
    ///   ``GossipConfiguration/validate()``.
    public init(
        id: NodeID, endpoint: Endpoint, configuration: GossipConfiguration = GossipConfiguration(),
        seed: UInt64, now: Instant
    ) throws(ConfigurationError) {
        try configuration.validate()
        self.id = id
        self.endpoint = endpoint
        self.configuration = configuration
        random = SeededRandomGenerator(seed: seed)
        view = PartialView(
            selfEndpoint: endpoint, activeCapacity: configuration.activeViewSize,
            passiveCapacity: configuration.passiveViewSize)
        seen = SeenWindows(capacity: configuration.maximumTrackedOrigins)
        retention = RetentionBuffer(capacity: configuration.retentionCapacity, period: configuration.retentionPeriod)
        missing = MissingMessages(capacity: configuration.maximumMissingMessages)
        // Shuffles, anti-entropy and reconnects start at a random phase, so
        // nodes started together do not act in lockstep (heartbeats go only
        // to idle links, whose phase the traffic sets).
        heartbeatDue = now + configuration.heartbeatInterval
        shuffleDue = now + Self.jitter(configuration.shuffleInterval, &random)
        antiEntropyDue = now + Self.jitter(configuration.antiEntropyInterval, &random)
        reconnectDue = now + Self.jitter(configuration.reconnectInterval, &random)
    }

    /// The active view: the neighbours that carry traffic.
    public var activeView: [Endpoint] { view.active }
    /// The passive view: standby peers.
    public var passiveView: [Endpoint] { view.passive }
    /// Plumtree: the active neighbours that get payloads eagerly.
    public var eagerPeers: [Endpoint] { view.active.filter { !lazyPeers.contains($0) } }
    /// Messages held for anti-entropy and grafts.
    public var retainedCount: Int { retention.count }
    /// Plumtree: announced messages not yet received.
    public var missingCount: Int { missing.count }
    /// Origins tracked for de-duplication.
    public var trackedOriginCount: Int { seen.originCount }

    // MARK: Inputs

    /// Joins the cluster through `seeds` (endpoints of running nodes; this
    /// node's own endpoint is skipped). Tries one seed at a time until a
    /// neighbour accepts, and again whenever the node is left with no
    /// neighbour. With no seeds the node waits to be joined.
    public mutating func join(seeds: [Endpoint], now: Instant, into effects: inout [GossipEffect]) {
        self.seeds = seeds.filter { $0 != endpoint }
        nextSeed = self.seeds.isEmpty ? 0 : Int.random(in: 0..<self.seeds.count, using: &random)
        joinDue = now
        retryJoin(now: now, into: &effects)
    }

    /// Spreads `payload` to every other reachable node; returns its ID. The
    /// payload is not delivered to this node.
    ///
    /// - Throws: ``GossipError`` with code `.payloadTooLarge` if `payload`
    ///   is longer than ``GossipConfiguration/maximumPayloadSize``.
    @discardableResult
    public mutating func broadcast(
        _ payload: [UInt8], now: Instant, into effects: inout [GossipEffect]
    ) throws(GossipError) -> MessageID {
        guard payload.count <= configuration.maximumPayloadSize else {
            throw GossipError(
                .payloadTooLarge,
                detail: "payload of \(payload.count) bytes exceeds the limit of \(configuration.maximumPayloadSize) (maximumMessageSize \(configuration.maximumMessageSize) - \(GossipConfiguration.dataMessageOverhead) bytes of overhead)")
        }
        let id = MessageID(origin: id, sequence: nextSequence)
        nextSequence &+= 1
        counters.broadcasts += 1
        _ = seen.insert(id)
        let data = GossipData(id: id, hops: 1, payload: payload)
        retention.insert(data, now: now)
        disseminate(data, receivedFrom: nil, now: now, into: &effects)
        return id
    }

    /// Handles a message from `sender`.
    public mutating func receive(
        _ message: GossipMessage, from sender: Endpoint, now: Instant, into effects: inout [GossipEffect]
    ) {
        guard sender != endpoint else { return }
        if lastHeard[sender] != nil {
            lastHeard[sender] = now
            unconfirmedNeighbors.remove(sender)
        }
        switch message {
        case .data(let data): receiveData(data, from: sender, now: now, into: &effects)
        case .repair(let data): receiveRepair(data, from: sender, now: now, into: &effects)
        case .join: receiveJoin(from: sender, now: now, into: &effects)
        case .forwardJoin(let newcomer, let timeToLive):
            receiveForwardJoin(newcomer, timeToLive: timeToLive, from: sender, now: now, into: &effects)
        case .neighbor(let highPriority): receiveNeighbor(highPriority: highPriority, from: sender, now: now, into: &effects)
        case .neighborReply(let accepted): receiveNeighborReply(accepted: accepted, from: sender, now: now, into: &effects)
        case .disconnect: receiveDisconnect(from: sender, now: now, into: &effects)
        case .shuffle(let origin, let timeToLive, let sample):
            receiveShuffle(origin: origin, timeToLive: timeToLive, sample: sample, from: sender, now: now, into: &effects)
        case .shuffleReply(let sample): integrate(sample)
        case .heartbeat: receiveHeartbeat(from: sender, now: now, into: &effects)
        case .ihave(let ids): receiveIHave(ids, from: sender, now: now)
        case .graft(let ids): receiveGraft(ids, from: sender, now: now, into: &effects)
        case .prune: if view.isActive(sender) { lazyPeers.insert(sender) }
        case .digest(let runs, let isReply): receiveDigest(runs, isReply: isReply, from: sender, now: now, into: &effects)
        case .pull(let ids): receivePull(ids, from: sender, now: now, into: &effects)
        }
    }

    /// Does the work due by `now`: heartbeats and failure detection,
    /// request timeouts, joins, shuffles, anti-entropy, lazy pushes and
    /// grafts, retention expiry.
    public mutating func tick(now: Instant, into effects: inout [GossipEffect]) {
        expireRequests(now: now, into: &effects)
        if now >= heartbeatDue {
            heartbeatDue = now + configuration.heartbeatInterval
            checkNeighbors(now: now, into: &effects)
        }
        if joinsAgain && now >= joinDue { retryJoin(now: now, into: &effects) }
        fillActiveView(now: now, into: &effects)
        if now >= shuffleDue {
            shuffleDue = now + configuration.shuffleInterval
            startShuffle(now: now, into: &effects)
        }
        if now >= reconnectDue {
            reconnectDue = now + configuration.reconnectInterval
            probeFailedPeer(now: now, into: &effects)
            forgetOldRefusals(now: now)
        }
        if now >= antiEntropyDue {
            antiEntropyDue = now + configuration.antiEntropyInterval
            retention.expire(now: now)
            startAntiEntropy(now: now, into: &effects)
        }
        if let due = lazyFlushDue, now >= due { flushLazyQueue(now: now, into: &effects) }
        graftExpired(now: now, into: &effects)
    }

    /// When ``tick(now:into:)`` must next be called.
    public var nextDeadline: Instant {
        var deadline = min(heartbeatDue, shuffleDue, antiEntropyDue, reconnectDue)
        if let due = lazyFlushDue { deadline = min(deadline, due) }
        if let due = missing.nextDeadline { deadline = min(deadline, due) }
        for due in pendingRequests.values { deadline = min(deadline, due) }
        if joinsAgain { deadline = min(deadline, joinDue) }
        return deadline
    }

    // MARK: Sending

    /// Appends a send, noting it for heartbeat suppression and counting it.
    mutating func send(_ message: GossipMessage, to peer: Endpoint, now: Instant, into effects: inout [GossipEffect]) {
        switch message {
        case .data: counters.payloadsSent += 1
        case .repair:
            counters.payloadsSent += 1
            counters.repairsSent += 1
        default: counters.controlMessagesSent += 1
        }
        if lastSent[peer] != nil { lastSent[peer] = now }
        effects.append(.send(message, to: peer))
    }

    /// `interval`, shortened by a random 0–50%.
    static func jitter(_ interval: Duration, _ random: inout SeededRandomGenerator) -> Duration {
        let nanoseconds = max(1, interval.nanoseconds)
        return .nanoseconds(nanoseconds - Int64.random(in: 0...(nanoseconds / 2), using: &random))
    }
}
