import EventCore
import WireCodec

/// Runs a ``SWIMInstance`` on a `Transport` and a `Scheduler`: decodes
/// incoming frames, feeds the instance, sends what it asks, reports member
/// events and broadcasts to callbacks and `AsyncStream`s, and keeps one
/// timer armed for the instance's ``SWIMInstance/nextDeadline``.
///
/// The same node runs on real sockets (`UDPSocketTransport` on an
/// `EventLoop`) and in the simulator. It is confined to its scheduler's
/// loop: create and call it there only (on an `EventLoop`, from `submit`
/// or `execute`).
///
/// Keep the node (here, its `LoopBound`) for as long as it should run:
/// its transport and timer hold it weakly, so a node no one holds is
/// released at once, and silently does nothing more.
///
/// ```swift
/// // In an async context; `loop` is a started EventLoop.
/// let member = try await loop.submit {
///     let transport = try UDPSocketTransport.bind(to: try Endpoint(parsing: "127.0.0.1:7946"), on: loop)
///     let member = try SWIMNode(transport: transport, scheduler: loop)
///     member.setEventHandler { event in print(event) }
///     member.start(seeds: [try Endpoint(parsing: "127.0.0.1:7947")])
///     return LoopBound(member, on: loop)
/// }
/// let members = try await loop.submit { member.value.allMembers }
/// ```
public final class SWIMNode {
    /// The member's identity.
    public var id: NodeID { instance.id }
    /// The transport the node speaks through.
    public let transport: any Transport
    /// The scheduler its timer runs on.
    public let scheduler: any Scheduler

    private var instance: SWIMInstance
    private var effects: [SWIMEffect] = []
    private var performing: [SWIMEffect] = []
    private var isFlushing = false
    private var sender: FrameSender
    private var receiver: FrameReceiver
    private let timer: DeadlineTimer
    private var eventHandler: ((MemberEvent) -> Void)?
    private var broadcastHandler: ((SWIMBroadcast) -> Void)?
    private var eventStreams: [AsyncStream<MemberEvent>.Continuation] = []
    private var broadcastStreams: [AsyncStream<SWIMBroadcast>.Continuation] = []
    private var departureHandlers: [() -> Void] = []
    private var isStopped = false
    /// When to warn next that no seed has answered (see ``start(seeds:)``),
    /// and after how long.
    private var joinWarning: (at: Instant, after: Duration)?
    /// When ``warnOfConflict(now:)`` last warned.
    private var lastConflictWarning: Instant?
    private let logger: any LogSink
    /// Datagrams and bytes (frame headers included) sent so far.
    public var packetsSent: Int { sender.framesSent }
    /// See ``packetsSent``.
    public var bytesSent: Int { sender.bytesSent }
    /// Sends the transport refused.
    public var sendFailureCount: Int { sender.failures }

    /// Creates a member on `transport` (whose receive handler it takes) and
    /// `scheduler`. Call ``start(seeds:)`` next.
    ///
    /// - Parameters:
    ///   - id: the member's identity; by default a random one (a restarted
    ///     process is a new member).
    ///   - advertising: the endpoint others reach this member at, when it
    ///     differs from the transport's bound endpoint (NAT, containers).
    ///   - metadata: initial metadata.
    ///   - seed: seeds the random choices and where broadcast sequence
    ///     numbers start (pass one to replay a run; by default a random
    ///     one). A member restarted with its old ID needs a new seed: with
    ///     the old one its broadcasts would repeat the earlier run's
    ///     numbers, which the others remember as delivered.
    ///   - discovery: with ``SWIMConfiguration/multicastGroup`` set, a
    ///     transport that receives the group's datagrams
    ///     (`UDPSocketTransport.listen(toGroup:on:)`); the node takes its
    ///     receive handler. Announcements are sent through `transport`. In
    ///     the simulator, make the node a member of the group instead
    ///     (`SimulatedNetwork.joinGroup`), and again after a restart: a
    ///     crash ends its memberships.
    ///   - logger: where member events are logged (at `info`, as
    ///     memberlist logs them), the warnings that no seed has answered
    ///     and that another endpoint claims this ID (at `warning`), and
    ///     dropped frames and send failures.
    /// - Throws: `ConfigurationError` if `configuration` or `metadata` is
    ///   invalid, if a push-pull of `maximumStateSize` or a packet of
    ///   `maximumPacketSize` would not fit the transport's
    ///   `maximumMessageSize`, or if the endpoint advertised (`advertising`, else the
    ///   transport's) is a wildcard address or port 0, which no other
    ///   member can reach: pass `advertising` when the transport is bound
    ///   to 0.0.0.0 or ::.
    public init(
        id: NodeID? = nil, transport: any Transport, scheduler: any Scheduler, advertising: Endpoint? = nil,
        metadata: [UInt8] = [], configuration: SWIMConfiguration = SWIMConfiguration(), seed: UInt64? = nil,
        discovery: (any Transport)? = nil, logger: any LogSink = DiscardingLogSink()
    ) throws(ConfigurationError) {
        let advertised = advertising ?? transport.localEndpoint
        // Advertised, a wildcard sends every member's probes of this one to
        // their own sockets: it is declared dead, refutes, and flaps for ever.
        guard !advertised.isWildcard, advertised.port != 0 else {
            throw ConfigurationError(
                field: advertising == nil ? "advertising (the transport's endpoint)" : "advertising",
                value: "\(advertised)",
                allowedRange: "an address and port other members can reach (pass advertising with a wildcard bind)")
        }
        // A push-pull (a body of up to maximumStateSize) or a packet the
        // transport refuses would never leave.
        try transport.checkCarries(
            frameLength: configuration.maximumStateSize + FrameHeader.size, setBy: "maximumStateSize",
            value: configuration.maximumStateSize)
        try transport.checkCarries(
            frameLength: configuration.maximumPacketSize, setBy: "maximumPacketSize", value: configuration.maximumPacketSize)
        var system = SystemRandomNumberGenerator()
        var generator = SeededRandomGenerator(seed: seed ?? system.next())
        let nodeID = id ?? NodeID.random(using: &generator)
        instance = try SWIMInstance(
            id: nodeID, endpoint: advertised, metadata: metadata,
            configuration: configuration, seed: generator.next(), now: scheduler.now)
        self.transport = transport
        self.scheduler = scheduler
        self.logger = logger
        // Only push-pulls exceed a packet: their buffer is not kept.
        sender = FrameSender(transport: transport, capacity: 2_048, retainedCapacity: configuration.maximumPacketSize,
                             logger: logger, source: "swim")
        timer = DeadlineTimer(scheduler: scheduler)
        receiver = FrameReceiver(protocolID: .swim, limits: SWIMMessage.decodingLimits, logger: logger, source: "swim")
        self.discovery = discovery
        timer.onFire = { [weak self] in self?.tick() }
        transport.setReceiveHandler { [weak self] bytes, sender, now in
            self?.receive(bytes, from: sender, now: now)
        }
        discovery?.setReceiveHandler { [weak self] bytes, sender, now in
            self?.receive(bytes, from: sender, now: now)
        }
    }

    /// The multicast listener, if any (see ``init(id:transport:scheduler:advertising:metadata:configuration:seed:discovery:logger:)``).
    public let discovery: (any Transport)?

    /// The node's configuration.
    public var configuration: SWIMConfiguration { instance.configuration }
    /// This member's record.
    public var localMember: Member { instance.localMember }
    /// Every member known, this one included, whatever its status.
    public var allMembers: [Member] { instance.allMembers }
    /// Whether a seed has answered since ``start(seeds:)`` (true at once
    /// with no seed): until then the seeds are tried again with backoff,
    /// and a warning is logged through the node's logger 5 s after the
    /// start, then at doubling intervals, at most an hour apart.
    public var isJoined: Bool { instance.isJoined }
    /// The members believed alive, this one included.
    public var healthyMembers: [Member] { instance.healthyMembers }
    /// The record of member `id`, if known.
    public func member(_ id: NodeID) -> Member? { instance.member(id) }
    /// How many members have `status`, this one included. O(1).
    public func memberCount(_ status: MemberStatus) -> Int { instance.memberCount(status) }
    /// What the member has done so far.
    public var counters: SWIMCounters {
        var counters = instance.counters
        counters.malformedFramesDropped = receiver.malformedFramesDropped
        return counters
    }
    /// Whether the node was stopped (or has left).
    public var stopped: Bool { isStopped }

    /// Joins through `seeds` (none: this member starts a cluster) and
    /// starts probing. Until a seed answers (``isJoined``), the seeds are
    /// tried again with backoff, and a warning naming them is logged 5,
    /// 10, 20 s ... after the start, at most an hour apart.
    public func start(seeds: [Endpoint] = []) {
        guard !isStopped else { return }
        instance.join(seeds: seeds, now: scheduler.now, into: &effects)
        joinWarning = instance.isJoined ? nil : (scheduler.now + Self.firstJoinWarning, Self.firstJoinWarning)
        flush()
    }

    /// How long after ``start(seeds:)`` no answer from a seed is worth a
    /// warning (a seed's address mistyped, or nothing running there).
    static let firstJoinWarning = Duration.seconds(5)

    /// Warns, at doubling intervals (at most an hour apart), while no seed
    /// has answered.
    private func warnIfNotJoined(now: Instant) {
        guard let warning = joinWarning, now >= warning.at else { return }
        guard !instance.isJoined, !instance.isLeaving else {
            joinWarning = nil
            return
        }
        let seeds = instance.seeds.map(\.description).joined(separator: ", ")
        logger.log(
            .warning, source: "swim",
            "\(id): no seed has answered in \(warning.after) (\(seeds)); still trying: check the addresses, and that a member runs there")
        let interval = min(warning.after, .seconds(3_600))
        joinWarning = (now + interval, warning.after + interval)
    }

    /// Publishes new metadata to every member.
    ///
    /// - Throws: ``SWIMError`` `.metadataTooLarge`, `.stopped`.
    public func setMetadata(_ metadata: [UInt8]) throws(SWIMError) {
        guard !isStopped else { throw SWIMError(.stopped, detail: "the SWIM node \(id) was stopped") }
        try instance.setMetadata(metadata, now: scheduler.now)
        flush()
    }

    /// Sends `payload` to every other member (delivered at most once each);
    /// returns its sequence number. The payload is not delivered to this
    /// member: its broadcast handler and streams never see its own
    /// broadcasts.
    ///
    /// - Throws: ``SWIMError`` `.broadcastTooLarge`, `.broadcastQueueFull`,
    ///   `.stopped`.
    @discardableResult
    public func broadcast(_ payload: [UInt8]) throws(SWIMError) -> UInt64 {
        guard !isStopped else { throw SWIMError(.stopped, detail: "the SWIM node \(id) was stopped") }
        let sequence = try instance.broadcast(payload, now: scheduler.now)
        flush()
        return sequence
    }

    /// Leaves gracefully: the others see `left` at once rather than a
    /// failure. Once the departure has been announced (see
    /// ``SWIMInstance/leave(now:into:)``: two protocol periods at the
    /// least, eight at the most, at once if no other member is alive), the
    /// node stops and `completion` runs (on the loop).
    public func leave(completion: @escaping () -> Void = {}) {
        guard !isStopped else { return completion() }
        departureHandlers.append(completion)
        instance.leave(now: scheduler.now, into: &effects)
        flush()
    }

    /// Installs the function called with every member event, replacing any
    /// earlier one.
    public func setEventHandler(_ handler: @escaping (MemberEvent) -> Void) {
        eventHandler = handler
    }

    /// Installs the function called with every delivered broadcast.
    public func setBroadcastHandler(_ handler: @escaping (SWIMBroadcast) -> Void) {
        broadcastHandler = handler
    }

    /// A stream of the member events from now on; it finishes when the node
    /// stops. A reader more than `bufferLimit` events behind loses the
    /// oldest.
    public func events(bufferLimit: Int = 4_096) -> AsyncStream<MemberEvent> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: MemberEvent.self, bufferingPolicy: .bufferingNewest(bufferLimit))
        if isStopped { continuation.finish() } else { eventStreams.append(continuation) }
        return stream
    }

    /// A stream of the broadcasts delivered from now on (see ``events(bufferLimit:)``).
    public func broadcasts(bufferLimit: Int = 4_096) -> AsyncStream<SWIMBroadcast> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: SWIMBroadcast.self, bufferingPolicy: .bufferingNewest(bufferLimit))
        if isStopped { continuation.finish() } else { broadcastStreams.append(continuation) }
        return stream
    }

    /// Stops at once, saying nothing (to others this looks like a crash;
    /// use ``leave(completion:)`` to leave). The transport stays open.
    public func stop() {
        guard !isStopped else { return }
        isStopped = true
        timer.cancel()
        transport.removeReceiveHandler()
        discovery?.removeReceiveHandler()
        for stream in eventStreams { stream.finish() }
        for stream in broadcastStreams { stream.finish() }
        eventStreams = []
        broadcastStreams = []
        let handlers = departureHandlers
        departureHandlers = []
        for handler in handlers { handler() }
    }

    // MARK: Driving

    private func receive(_ bytes: UnsafeRawBufferPointer, from sender: Endpoint, now: Instant) {
        guard !isStopped else { return }
        guard let message = receiver.decode(bytes, from: sender, SWIMMessage.init(decoding:limits:)) else { return }
        let conflicts = instance.counters.idConflicts
        instance.receive(message, from: sender, now: now, into: &effects)
        if instance.counters.idConflicts != conflicts { warnOfConflict(now: now) }
        flush()
    }

    /// Warns, at most once a minute, that another endpoint claims this
    /// member's ID: once is the record an earlier run of it left there;
    /// repeated, two live processes share the ID, and refute each other
    /// for as long as both run (memberlist logs its refutations so).
    private func warnOfConflict(now: Instant) {
        if let last = lastConflictWarning, now - last < .seconds(60) { return }
        lastConflictWarning = now
        let elsewhere = instance.conflictingEndpoint.map { "\($0)" } ?? "another endpoint"
        logger.log(
            .warning, source: "swim",
            "\(id): this ID is claimed alive at \(elsewhere) too (refuted; \(instance.counters.idConflicts) times so far): the record of an earlier run of this ID there, or, if it repeats, a second live process with this ID")
    }

    private func tick() {
        guard !isStopped else { return }
        instance.tick(now: scheduler.now, into: &effects)
        warnIfNotJoined(now: scheduler.now)
        flush()
    }

    /// Performs the pending effects (those a handler causes too), then
    /// re-arms the timer.
    private func flush() {
        guard !isFlushing else { return }
        isFlushing = true
        while !effects.isEmpty {
            swap(&effects, &performing)
            for effect in performing where !isStopped { perform(effect) }
            // A push-pull that brings thousands of members leaves as many
            // effects: keep no room for them.
            performing.removeAll(keepingCapacity: performing.capacity <= 256)
        }
        isFlushing = false
        armTimer()
    }

    private func perform(_ effect: SWIMEffect) {
        switch effect {
        case .send(let message, let destination):
            sender.send(to: destination) { writer in message.encodeFrame(into: &writer) }
        case .memberEvent(let event):
            logger.log(.info, source: "swim", "\(id): \(event)")
            eventHandler?(event)
            for stream in eventStreams { stream.yield(event) }
        case .deliver(let broadcast):
            broadcastHandler?(broadcast)
            for stream in broadcastStreams { stream.yield(broadcast) }
        case .departed:
            stop()
        }
    }

    private func armTimer() {
        guard !isStopped else { return }
        timer.arm(at: min(Self.nextDeadline(of: &instance), joinWarning?.at ?? .distantFuture))
    }

    /// The instance's next deadline, read in place: reading a computed
    /// property of the stored instance directly copies the whole instance
    /// first (retaining and releasing each of its buffers), after every
    /// event.
    private static func nextDeadline(of instance: inout SWIMInstance) -> Instant {
        instance.nextDeadline
    }
}
