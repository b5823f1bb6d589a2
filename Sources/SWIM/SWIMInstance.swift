#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import EventCore

/// A SWIM member as a sans-IO state machine: failure detection by
/// randomized round-robin probes with indirect probes and suspicion
/// (SWIM, Das et al. 2002), Lifeguard's local health, dynamic suspicion
/// timeouts and buddy system (Dadgar et al. 2018), dissemination of changes
/// and user broadcasts piggybacked on probes and gossip, push-pull state
/// exchange, joins through seeds, graceful leave, and reconnection to dead
/// members and seeds (Smudge's retry of dead nodes).
///
/// The instance does no I/O and reads no clock: every input carries `now`
/// and appends ``SWIMEffect``s to a caller-owned array; ``nextDeadline`` is
/// when it next needs ``tick(now:into:)``. ``SWIMNode`` drives it on a
/// `Transport` and a `Scheduler`.
public struct SWIMInstance {
    /// A probe of the current protocol period.
    struct Probe {
        var target: NodeID
        var endpoint: Endpoint
        var incarnation: UInt64
        var sequence: UInt32
        /// When indirect probes go out, if no ack came.
        var directDeadline: Instant
        /// The end of the period: no ack by then means suspect.
        var periodEnd: Instant
        var indirectSent = false
        var expectedNacks = 0
        var nacks = 0
    }

    /// A ping this member sends on behalf of a ping-req.
    struct Relay {
        var requester: Endpoint
        var requesterSequence: UInt32
        var target: NodeID
        var nackDeadline: Instant
    }

    /// A probe of a member someone else suspects (Lifeguard confirmation).
    struct ConfirmationProbe {
        var target: NodeID
        var incarnation: UInt64
        var deadline: Instant
    }

    /// This member's identity.
    public let id: NodeID
    /// The settings.
    public let configuration: SWIMConfiguration
    /// The endpoint other members reach this one at (the advertise address).
    public private(set) var endpoint: Endpoint
    /// This member's incarnation number.
    public internal(set) var incarnation: UInt64 = 0
    /// This member's metadata.
    public internal(set) var metadata: [UInt8]
    /// What this member has done so far.
    public internal(set) var counters = SWIMCounters()

    var generator: SeededRandomGenerator
    /// Every other member known, whatever its status, in a deterministic
    /// order (insertion, with swap-removal) for sampling and iteration.
    var members = MemberTable()
    /// Other members alive or suspect.
    var activeOthers = 0
    /// Other members known, by status (indexed by raw value).
    var statusCounts = [0, 0, 0, 0]
    /// The suspicions of the members currently suspect (only theirs, so
    /// the member table stays small).
    var suspicions: [NodeID: Suspicion] = [:]
    /// The deadlines of `suspicions`, kept as they change, so that neither
    /// `nextDeadline` nor a tick with nothing due visits every suspicion:
    /// hundreds of them during a partition, at every event.
    var suspicionDeadlines = SuspicionDeadlines()
    /// Members dead or departed and when they became so, oldest first, to
    /// forget them after ``SWIMConfiguration/deadMemberRetention``. An entry
    /// counts only while `departures` names its departure for its member:
    /// one that came back is left in place and passed over, since finding
    /// and removing it was O(n) each (quadratic for a forged push-pull
    /// reviving thousands), and the list is compacted when such entries
    /// outnumber the others. Departures are numbered, not told apart by
    /// time: a member may leave, come back and leave again at one instant
    /// (one push-pull), and each of its entries would then read as current.
    var departed: [(id: NodeID, since: Instant, departure: UInt64)] = []
    /// The departure each member now dead or departed is in.
    var departures: [NodeID: UInt64] = [:]
    /// Departures numbered so far.
    var departureCount: UInt64 = 0

    var probeOrder: [NodeID] = []
    var probeCursor = 0
    var probe: Probe?
    var nextProbeAt: Instant
    var nextSequence: UInt32 = 0
    var relays: [UInt32: Relay] = [:]
    var relayOrder: [UInt32] = []
    var confirmations: [UInt32: ConfirmationProbe] = [:]
    var confirmationOrder: [UInt32] = []
    /// Lifeguard's local health score (0 healthy ... maximumHealthScore).
    var health = 0

    /// What the membership queue keeps of an update besides its subject;
    /// the rest is the subject's record when the update is sent (see
    /// ``update(about:_:in:local:)``).
    struct QueuedMembership {
        /// Who suspects the subject or declared it dead, for a suspect or
        /// dead update.
        var by: NodeID
        /// The slot of the subject's record when queued (-1: this member):
        /// a hint that saves a lookup, checked, since a slot changes hands
        /// when a member is forgotten.
        var slot: Int32
    }

    /// Membership updates to spread, by subject.
    var membershipQueue: TransmitQueue<NodeID, QueuedMembership>
    /// User broadcasts to spread.
    var broadcastQueue = TransmitQueue<BroadcastKey, [UInt8]>(capacity: Int.max)
    /// The broadcasts delivered lately, each delivered at most once.
    var delivered: RecentlySeen<BroadcastKey>
    /// The next broadcast's sequence number. They start where the seed
    /// puts them (below 2⁴⁸), not at 0: members remember (origin, sequence)
    /// pairs as delivered, so a member restarted with its old ID would
    /// have its first broadcasts taken for its earlier run's and dropped.
    var nextBroadcastSequence: UInt64
    var nextGossipAt: Instant
    var nextPushPullAt: Instant
    var nextExpiryScanAt: Instant

    var seeds: [Endpoint] = []
    /// Whether a push-pull reply has arrived since the join: a seed (or a
    /// member that heard of this one from it) answered. True at once for a
    /// member with no seed, which starts a cluster; until then the seeds
    /// are tried again with backoff (memberlist's `Join` reports the
    /// same: how many it reached).
    public internal(set) var isJoined = false
    /// The endpoint of the last claim that this member's ID is alive
    /// elsewhere (see ``SWIMCounters/idConflicts``).
    public internal(set) var conflictingEndpoint: Endpoint?
    var nextReconnectAt: Instant
    /// Pings to dead members in flight (answered: push-pull with them).
    var reconnectProbes: [UInt32: NodeID] = [:]
    /// Dead members forgotten after ``SWIMConfiguration/deadMemberRetention``,
    /// and when, most recently forgotten last, at most
    /// ``formerMemberCapacity``, for ``formerMemberRetention``:
    /// reconnection goes on pinging them (see ``reconnect(now:into:)``).
    var formerMembers: [(member: Member, forgottenAt: Instant)] = []
    /// How many forgotten dead members reconnection remembers.
    static let formerMemberCapacity = 64
    /// How long reconnection pings a forgotten dead member: a day, as
    /// Serf's `reconnect_timeout`.
    static let formerMemberRetention: Duration = .seconds(86_400)
    var reconnectBackoff = 1
    var nextAnnounceAt: Instant = .distantFuture
    var nextUnknownSenderExchangeAt: Instant = .zero
    var isLeaving = false
    var hasDeparted = false
    /// A leaver stays (answering probes with its departure) until this
    /// instant at least, and until its `left` update has gone out its full
    /// count: see ``leave(now:into:)``.
    var leaveDeadline: Instant = .distantFuture
    /// A leaver departs at this instant at the latest, whatever it sent.
    var leaveCutoff: Instant = .distantFuture
    /// Messages that carried this leaver's `left` at its incarnation
    /// (gossip and acks), against ``transmitLimit``.
    var leaveSends = 0
    /// How long a leave takes at the least, in protocol periods.
    static let leaveLingerPeriods = 2
    /// How long a leave takes at the most, in protocol periods.
    static let leaveCutoffPeriods = 8

    /// Creates a member. Call ``join(seeds:now:into:)`` next.
    ///
    /// - Parameters:
    ///   - id: the member's identity, unique per process run (a restarted
    ///     process takes a new one, or rejoins with a higher incarnation).
    ///   - endpoint: where others reach it (the advertise address, which
    ///     may differ from the bound one behind NAT or in a container).
    ///   - metadata: initial metadata.
    ///   - seed: seeds the instance's random choices, and where its
    ///     broadcasts' sequence numbers start (restart a member that keeps
    ///     its ID with a new seed).
    /// - Throws: `ConfigurationError` if `configuration` is invalid or the
    ///   metadata is longer than its limit.
    public init(
        id: NodeID, endpoint: Endpoint, metadata: [UInt8] = [], configuration: SWIMConfiguration = SWIMConfiguration(),
        seed: UInt64, now: Instant
    ) throws(ConfigurationError) {
        try configuration.validate()
        guard metadata.count <= configuration.maximumMetadataSize else {
            throw ConfigurationError(
                field: "metadata", value: "\(metadata.count) bytes",
                allowedRange: "0 ... \(configuration.maximumMetadataSize) bytes (maximumMetadataSize)")
        }
        self.id = id
        self.endpoint = endpoint
        self.metadata = metadata
        self.configuration = configuration
        generator = SeededRandomGenerator(seed: seed)
        nextBroadcastSequence = (seed &* 0x9E37_79B9_7F4A_7C15) >> 16
        delivered = RecentlySeen(capacity: configuration.broadcastMemory)
        membershipQueue = TransmitQueue(capacity: configuration.membershipQueueCapacity)
        // Spread the first probe over a period so members started together
        // do not probe in lockstep.
        let phase = Duration.nanoseconds(Int64.random(
            in: 0..<max(1, configuration.protocolPeriod.nanoseconds), using: &generator))
        nextProbeAt = now + phase
        nextGossipAt = now
        nextPushPullAt = now + configuration.pushPullInterval
        nextExpiryScanAt = now + configuration.protocolPeriod
        nextReconnectAt = now + configuration.reconnectInterval
    }

    // MARK: Queries

    /// This member's own record.
    public var localMember: Member {
        Member(id: id, endpoint: endpoint, incarnation: incarnation,
               status: isLeaving ? .left : .alive, metadata: metadata)
    }

    /// Every member known, this one included, whatever its status.
    public var allMembers: [Member] {
        [localMember] + members.members
    }

    /// The members believed alive, this one included.
    public var healthyMembers: [Member] {
        [localMember] + members.members.filter { $0.status == .alive }
    }

    /// The record of member `id`, if known.
    public func member(_ id: NodeID) -> Member? {
        id == self.id ? localMember : members[id]
    }

    /// How many members have `status`, this one included (it counts as
    /// alive, or as left once leaving). O(1).
    public func memberCount(_ status: MemberStatus) -> Int {
        statusCounts[Int(status.rawValue)] + (localMember.status == status ? 1 : 0)
    }

    /// Members alive or suspect, this one included: the N of the formulas.
    public var clusterSize: Int { activeOthers + 1 }

    /// Lifeguard's local health score (0 is healthy).
    public var healthScore: Int { health }

    /// Whether a graceful leave has been started.
    public var leaving: Bool { isLeaving }

    /// Updates and broadcasts waiting to be sent.
    public var queuedUpdateCount: Int { membershipQueue.count + broadcastQueue.count }

    // MARK: Commands

    /// Joins the cluster through `seeds` (none: this member starts a cluster
    /// and waits to be joined): sends each a push-pull, retried with
    /// backoff until one answers.
    public mutating func join(seeds: [Endpoint], now: Instant, into effects: inout [SWIMEffect]) {
        self.seeds = seeds.filter { $0 != endpoint }
        isJoined = self.seeds.isEmpty
        spread(id)
        reconnectBackoff = 1
        if !isJoined { contactSeeds(now: now, into: &effects) }
        announce(now: now, into: &effects)
    }

    /// Publishes new metadata: raises the incarnation and spreads it.
    ///
    /// - Throws: ``SWIMError`` `.metadataTooLarge` above
    ///   ``SWIMConfiguration/maximumMetadataSize``, `.stopped` once leaving.
    public mutating func setMetadata(_ metadata: [UInt8], now: Instant) throws(SWIMError) {
        guard !isLeaving else { throw SWIMError(.stopped, detail: "member \(id) is leaving") }
        guard metadata.count <= configuration.maximumMetadataSize else {
            throw SWIMError(.metadataTooLarge,
                            detail: "\(metadata.count) bytes, limit \(configuration.maximumMetadataSize)")
        }
        self.metadata = metadata
        incarnation += 1
        spread(id)
    }

    /// Sends `payload` to every other member, piggybacked like membership
    /// updates (each member delivers it at most once; this one never).
    /// Returns its sequence number: consecutive, from a start the seed
    /// draws (see the `seed` parameter of the initializer), so that a
    /// restart with the same ID and a new seed does not reuse its earlier
    /// run's numbers.
    ///
    /// - Throws: ``SWIMError`` `.broadcastTooLarge`, `.broadcastQueueFull`,
    ///   `.stopped` once leaving.
    @discardableResult
    public mutating func broadcast(_ payload: [UInt8], now: Instant) throws(SWIMError) -> UInt64 {
        guard !isLeaving else { throw SWIMError(.stopped, detail: "member \(id) is leaving") }
        let limit = configuration.effectiveBroadcastLimit
        guard payload.count <= limit else {
            throw SWIMError(.broadcastTooLarge, detail: "\(payload.count) bytes, limit \(limit)")
        }
        guard broadcastQueue.count < configuration.broadcastQueueCapacity else {
            throw SWIMError(.broadcastQueueFull,
                            detail: "\(broadcastQueue.count) broadcasts are waiting to be sent")
        }
        let sequence = nextBroadcastSequence
        nextBroadcastSequence += 1
        let key = BroadcastKey(origin: id, sequence: sequence)
        _ = delivered.insert(key)
        broadcastQueue.enqueue(payload, key: key)
        return sequence
    }

    /// Leaves gracefully: announces the departure (others see `left`, not a
    /// failure), stops probing, and reports ``SWIMEffect/departed`` once the
    /// announcement has gone out its usual number of times
    /// (``transmitLimit``) and two protocol periods have passed, or after
    /// eight protocol periods whatever was sent (6 s by default), or at
    /// once when it knows no other member alive or suspect. Until then it
    /// answers pings, and every ack tells the prober it left: a member
    /// that has not heard of the leave yet learns it from its probe rather
    /// than suspecting a member that is gone. A claim about it above its
    /// incarnation (an earlier run's, or forged) is outbid by a `left` one
    /// higher, which members holding the claim would otherwise ignore.
    ///
    /// The departure waits for the sends, not for the clock alone: a member
    /// whose loop runs late (a starved process) sends fewer gossip rounds
    /// in two periods, and would otherwise stop before its update reached
    /// enough members, to be suspected by those it missed.
    public mutating func leave(now: Instant, into effects: inout [SWIMEffect]) {
        guard !isLeaving else { return }
        isLeaving = true
        incarnation += 1
        probe = nil
        leaveDeadline = now + configuration.protocolPeriod * Self.leaveLingerPeriods
        leaveCutoff = now + configuration.protocolPeriod * Self.leaveCutoffPeriods
        if activeOthers == 0 {
            finishLeaving(into: &effects)
        } else {
            gossip(now: now, into: &effects)
        }
    }

    mutating func finishLeaving(into effects: inout [SWIMEffect]) {
        guard !hasDeparted else { return }
        hasDeparted = true
        membershipQueue.remove(id)
        effects.append(.departed)
    }

    // MARK: Time

    /// The instant the instance next needs ``tick(now:into:)``.
    public var nextDeadline: Instant {
        if hasDeparted { return .distantFuture }
        var deadline = min(nextPushPullAt, nextExpiryScanAt, nextReconnectAt, nextAnnounceAt)
        if !isLeaving {
            deadline = min(deadline, nextProbeAt)
            if let probe {
                deadline = min(deadline, probe.indirectSent ? probe.periodEnd : probe.directDeadline)
            }
        } else {
            // While its `left` is owed, the gossip rounds that carry it come
            // first; the cutoff bounds them.
            deadline = min(deadline, owedLeaveUpdate != nil ? min(leaveCutoff, nextGossipAt) : leaveDeadline)
        }
        if !membershipQueue.isEmpty || !broadcastQueue.isEmpty { deadline = min(deadline, nextGossipAt) }
        if let sequence = relayOrder.first, let relay = relays[sequence] { deadline = min(deadline, relay.nackDeadline) }
        if let sequence = confirmationOrder.first, let confirmation = confirmations[sequence] {
            deadline = min(deadline, confirmation.deadline)
        }
        return min(deadline, suspicionDeadlines.earliest)
    }

    /// Does what is due by `now`: probes, indirect probes, suspicion
    /// timeouts, gossip, push-pull, reconnects and forgetting old members.
    public mutating func tick(now: Instant, into effects: inout [SWIMEffect]) {
        guard !hasDeparted else { return }
        expireRelays(now: now, into: &effects)
        expireConfirmations(now: now, into: &effects)
        expireSuspicions(now: now, into: &effects)
        if !isLeaving { advanceProbe(now: now, into: &effects) }
        if now >= nextGossipAt {
            gossip(now: now, into: &effects)
        }
        // After the gossip round, which may have sent the update its last
        // time; at once when no one is left to tell.
        if isLeaving
            && ((now >= leaveDeadline && owedLeaveUpdate == nil) || activeOthers == 0 || now >= leaveCutoff)
        {
            finishLeaving(into: &effects)
            return
        }
        if now >= nextPushPullAt {
            pushPullWithRandomMember(now: now, into: &effects)
            nextPushPullAt = now + pushPullInterval
        }
        if now >= nextReconnectAt {
            reconnect(now: now, into: &effects)
        }
        if now >= nextAnnounceAt {
            if activeOthers == 0 {
                announce(now: now, into: &effects)
            } else {
                nextAnnounceAt = now + configuration.multicastAnnounceInterval
            }
        }
        if now >= nextExpiryScanAt {
            forgetExpiredMembers(now: now)
            nextExpiryScanAt = now + configuration.protocolPeriod
        }
        counters.healthScore = health
    }

    // MARK: Shared helpers

    /// How many times an update is sent: ⌈λ × log₁₀(N + 1)⌉, at least λ.
    var transmitLimit: Int {
        let scaled = Double(configuration.retransmitMultiplier) * log10(Double(clusterSize + 1))
        return max(configuration.retransmitMultiplier, Int(scaled.rounded(.up)))
    }

    /// How many times a member learnt from a push-pull reply is sent on:
    /// all ``transmitLimit`` times up to 64 members, then fewer, so that a
    /// joiner re-announces about 64 × limit updates in all, whatever the
    /// cluster size (at least once each).
    var reannouncements: Int {
        let limit = transmitLimit
        return max(1, min(limit, limit * 64 / max(1, clusterSize)))
    }

    /// The push-pull interval scaled for the cluster size (memberlist).
    var pushPullInterval: Duration {
        let size = clusterSize
        guard size > 32 else { return configuration.pushPullInterval }
        let scale = Int((log2(Double(size)) - log2(32)).rounded(.up)) + 1
        return configuration.pushPullInterval * scale
    }

    /// Lifeguard: durations stretched by local health.
    func stretched(_ duration: Duration) -> Duration { duration * (health + 1) }

    mutating func makeSequence() -> UInt32 {
        nextSequence &+= 1
        return nextSequence
    }

    /// Up to `count` distinct random members alive or suspect (alive only
    /// if `aliveOnly`), other than `excluded`, in a deterministic order for
    /// a given seed.
    mutating func randomActiveMembers(
        _ count: Int, excluding excluded: NodeID? = nil, aliveOnly: Bool = false
    ) -> [Member] {
        guard count > 0, activeOthers > 0 else { return [] }
        let all = members.members
        let wanted: (Member) -> Bool = { aliveOnly ? $0.status == .alive : $0.status.isActive }
        if all.count <= 4 * count + 16 {
            var candidates = all.filter { wanted($0) && $0.id != excluded }
            candidates.shuffle(using: &generator)
            return Array(candidates.prefix(count))
        }
        var picked: [Member] = []
        var tries = 0
        while picked.count < count && tries < 8 * count + 32 {
            tries += 1
            let candidate = all[Int.random(in: 0..<all.count, using: &generator)]
            guard candidate.id != excluded, wanted(candidate),
                  !picked.contains(where: { $0.id == candidate.id })
            else { continue }
            picked.append(candidate)
        }
        return picked
    }

    /// Queues member `subject`'s current state to be spread: this
    /// member's own, or that of the known member in `slot`; `by` is who
    /// suspects it or declared it dead, for a suspect or dead one. It
    /// starts at `transmissions` (see
    /// ``TransmitQueue/enqueue(_:key:transmissions:)``); an update dropped
    /// from a full queue is counted.
    mutating func spread(_ subject: NodeID, slot: Int = -1, by: NodeID? = nil, transmissions: Int = 0) {
        let queued = QueuedMembership(by: by ?? id, slot: Int32(slot))
        if !membershipQueue.enqueue(queued, key: subject, transmissions: transmissions) {
            counters.membershipUpdatesDropped += 1
        }
    }

    /// The update that spreads member `subject`'s state now: this member's
    /// own (`local`) or its record in `table`. Nil for a member forgotten.
    static func update(
        about subject: NodeID, _ queued: QueuedMembership, in table: MemberTable, local: Member
    ) -> SWIMUpdate? {
        if subject == local.id {
            return local.status == .left ? .left(subject, incarnation: local.incarnation) : .alive(local)
        }
        let hint = Int(queued.slot)
        // One read of the hinted record (a record copy is not free).
        var found = hint >= 0 && hint < table.count ? table[slot: hint] : nil
        if found?.id != subject { found = table[subject] }
        guard let member = found else { return nil }
        switch member.status {
        case .alive: return .alive(member)
        case .suspect: return .suspect(subject, incarnation: member.incarnation, by: queued.by)
        case .dead: return .dead(subject, incarnation: member.incarnation, by: queued.by)
        case .left: return .left(subject, incarnation: member.incarnation)
        }
    }

    /// Queued updates for a packet of the given kind, fairly shared between
    /// membership updates and user broadcasts; `first` goes in front (the
    /// buddy system puts a suspect's own suspicion there).
    mutating func piggyback(first: SWIMUpdate? = nil) -> [SWIMUpdate] {
        var budget = configuration.maximumPacketSize - SWIMMessage.maximumHeaderSize
        var updates: [SWIMUpdate] = []
        // Whatever the way out: a leaver counts the messages its `left` is in.
        defer { if let leaveUpdate, updates.contains(leaveUpdate) { leaveSends += 1 } }
        if let first {
            updates.append(first)
            budget -= first.encodedSize
        }
        guard !membershipQueue.isEmpty || !broadcastQueue.isEmpty else { return updates }
        let limit = transmitLimit
        // The queues hold keys; the updates are built from the state now
        // (a copy of the table shares its storage).
        let table = members
        let local = localMember
        func membership(_ subject: NodeID, _ queued: QueuedMembership) -> SWIMUpdate? {
            Self.update(about: subject, queued, in: table, local: local)
        }
        func broadcast(_ key: BroadcastKey, _ payload: [UInt8]) -> SWIMUpdate? {
            .broadcast(SWIMBroadcast(origin: key.origin, sequence: key.sequence, payload: payload))
        }
        if broadcastQueue.isEmpty {
            membershipQueue.take(budget: &budget, limit: limit, into: &updates, update: membership)
        } else if membershipQueue.isEmpty {
            broadcastQueue.take(budget: &budget, limit: limit, into: &updates, update: broadcast)
        } else {
            // Reserve the broadcasts' share, let membership use the rest,
            // then give broadcasts what membership left.
            var reserved = Int(Double(budget) * configuration.broadcastShare)
            var rest = budget - reserved
            broadcastQueue.take(budget: &reserved, limit: limit, into: &updates, update: broadcast)
            rest += reserved
            membershipQueue.take(budget: &rest, limit: limit, into: &updates, update: membership)
            broadcastQueue.take(budget: &rest, limit: limit, into: &updates, update: broadcast)
        }
        membershipQueue.putBack()
        broadcastQueue.putBack()
        // The queue may hold `first` too (this member's own state, say).
        if let first, let again = updates.dropFirst().firstIndex(of: first) { updates.remove(at: again) }
        return updates
    }

    /// This member's `left` at its incarnation, while it is leaving.
    var leaveUpdate: SWIMUpdate? { isLeaving ? .left(id, incarnation: incarnation) : nil }

    /// ``leaveUpdate`` while it has not yet gone out its full count
    /// (``transmitLimit`` messages, ``leaveSends``): it goes first in every
    /// gossip message, and the leaver does not depart.
    var owedLeaveUpdate: SWIMUpdate? { leaveSends < transmitLimit ? leaveUpdate : nil }

    mutating func send(_ body: SWIMMessage.Body, to destination: Endpoint, updates: [SWIMUpdate] = [],
                       into effects: inout [SWIMEffect]) {
        effects.append(.send(SWIMMessage(sender: id, body: body, updates: updates), to: destination))
    }
}

