import EventCore
import WireCodec

/// Runs a ``GossipInstance`` on a `Transport` and a `Scheduler`: decodes
/// incoming frames, feeds the instance, sends what it asks, delivers
/// broadcasts to a callback and an `AsyncStream`, and keeps one timer armed
/// for the instance's ``GossipInstance/nextDeadline``.
///
/// The same node runs on real sockets (`UDPSocketTransport` on an
/// `EventLoop`) and in the simulator (a `SimulatedNode` is both transport
/// and scheduler). It is confined to its scheduler's loop: create it and
/// call it there only (on an `EventLoop`, from `submit` or `execute`).
///
/// Keep the node (here, its `LoopBound`) for as long as it should run:
/// its transport and timer hold it weakly, so a node no one holds is
/// released at once, and silently does nothing more.
///
/// ```swift
/// // In an async context; `loop` is a started EventLoop.
/// let node = try await loop.submit {
///     let transport = try UDPSocketTransport.bind(to: try Endpoint(parsing: "127.0.0.1:7946"), on: loop)
///     let node = try GossipNode(transport: transport, scheduler: loop)
///     node.setDeliveryHandler { delivery in print(delivery.id, delivery.payload.count) }
///     node.start(seeds: [try Endpoint(parsing: "127.0.0.1:7947")])
///     return LoopBound(node, on: loop)
/// }
/// _ = try await loop.submit { try node.value.broadcast(Array("hello".utf8)) }
/// ```
public final class GossipNode {
    /// The node's identity (the origin of its broadcasts).
    public var id: NodeID { instance.id }
    /// The transport the node speaks through.
    public let transport: any Transport
    /// The scheduler its timer runs on.
    public let scheduler: any Scheduler

    private var instance: GossipInstance
    private var effects: [GossipEffect] = []
    private var performing: [GossipEffect] = []
    private var isFlushing = false
    private var sender: FrameSender
    private var receiver: FrameReceiver
    private let timer: DeadlineTimer
    private var deliveryHandler: ((GossipDelivery) -> Void)?
    private var streams: [AsyncStream<GossipDelivery>.Continuation] = []
    private var isStopped = false
    private let logger: any LogSink

    /// Creates a node on `transport` (whose receive handler it takes) and
    /// `scheduler`. Call ``start(seeds:)`` next.
    ///
    /// - Parameters:
    ///   - id: the node's identity; by default a random one (drawn from
    ///     `seed`), so that a restarted node is a new origin (sequence
    ///     numbers restart at 0). Give each run its own: peers take the
    ///     broadcasts of a reused ID, up to its last run's highest sequence
    ///     number, for delivered already, and drop them.
    ///   - seed: seeds the node's random choices, and the default `id`; by
    ///     default drawn from the system (pass one to replay a run, and a
    ///     new one to a node restarted in a live cluster).
    ///   - logger: where dropped frames and send failures are logged.
    /// - Throws: `ConfigurationError` if `configuration` is invalid, or if
    ///   the transport is bound to a wildcard address (0.0.0.0 or ::): the
    ///   node's shuffles name its endpoint, and peers answer there. Bind
    ///   the address peers reach the node at.
    public init(
        id: NodeID? = nil, transport: any Transport, scheduler: any Scheduler,
        configuration: GossipConfiguration = GossipConfiguration(), seed: UInt64? = nil,
        logger: any LogSink = DiscardingLogSink()
    ) throws(ConfigurationError) {
        guard !transport.localEndpoint.isWildcard else {
            throw ConfigurationError(
                field: "transport.localEndpoint", value: "\(transport.localEndpoint)",
                allowedRange: "an address peers can reach (shuffles name it; bind that address, not a wildcard)")
        }
        // The longest frame a node sends: a message of the largest payload
        // served from retention, with its age (a pull's or a graft's answer).
        try transport.checkCarries(
            frameLength: configuration.maximumMessageSize + GossipMessage.agedOverhead, setBy: "maximumMessageSize",
            value: configuration.maximumMessageSize)
        var system = SystemRandomNumberGenerator()
        let seed = seed ?? system.next()
        var generator = SeededRandomGenerator(seed: seed)
        let nodeID = id ?? NodeID.random(using: &generator)
        instance = try GossipInstance(
            id: nodeID, endpoint: transport.localEndpoint, configuration: configuration,
            seed: generator.next(), now: scheduler.now)
        self.transport = transport
        self.scheduler = scheduler
        self.logger = logger
        sender = FrameSender(transport: transport, capacity: 1_024, logger: logger, source: "gossip")
        timer = DeadlineTimer(scheduler: scheduler)
        // A repair is its data message plus one tag byte, and a message
        // with an age (pulled or grafted from retention) a tag and up to
        // six bytes of age: over maximumMessageSize for a payload of
        // maximumPayloadSize.
        let limits = WireLimits(maximumFrameLength: configuration.maximumMessageSize + GossipMessage.agedOverhead)
        receiver = FrameReceiver(protocolID: .gossip, limits: limits, logger: logger, source: "gossip")
        timer.onFire = { [weak self] in self?.tick() }
        transport.setReceiveHandler { [weak self] bytes, sender, now in
            self?.receive(bytes, from: sender, now: now)
        }
    }

    /// The node's configuration.
    public var configuration: GossipConfiguration { instance.configuration }
    /// What the node has done so far.
    public var counters: GossipCounters {
        var counters = instance.counters
        counters.malformedFramesDropped = receiver.malformedFramesDropped
        return counters
    }
    /// Sends the transport refused (closed, wrong address family).
    public var sendFailureCount: Int { sender.failures }
    /// The current active view (the neighbours).
    public var activeView: [Endpoint] { instance.activeView }
    /// The current passive view.
    public var passiveView: [Endpoint] { instance.passiveView }
    /// Messages retained for anti-entropy.
    public var retainedCount: Int { instance.retainedCount }
    /// Plumtree: announced messages not yet received.
    public var missingCount: Int { instance.missingCount }
    /// Origins tracked for de-duplication.
    public var trackedOriginCount: Int { instance.trackedOriginCount }

    /// Joins through `seeds` (none: this node is a seed and waits to be
    /// joined) and starts the periodic work.
    public func start(seeds: [Endpoint] = []) {
        guard !isStopped else { return }
        instance.join(seeds: seeds, now: scheduler.now, into: &effects)
        flush()
    }

    /// Spreads `payload` to every other reachable node; returns its ID. The
    /// payload is not delivered to this node: its delivery handler and
    /// streams never see its own broadcasts.
    ///
    /// - Throws: ``GossipError`` with code `.payloadTooLarge` above
    ///   ``GossipConfiguration/maximumPayloadSize``, `.stopped` after
    ///   ``stop()``.
    @discardableResult
    public func broadcast(_ payload: [UInt8]) throws(GossipError) -> MessageID {
        guard !isStopped else { throw GossipError(.stopped, detail: "the gossip node \(id) was stopped") }
        let id = try instance.broadcast(payload, now: scheduler.now, into: &effects)
        flush()
        return id
    }

    /// Installs the function called with every delivered broadcast
    /// (Pittacus's data receiver), replacing any earlier one.
    public func setDeliveryHandler(_ handler: @escaping (GossipDelivery) -> Void) {
        deliveryHandler = handler
    }

    /// A stream of the broadcasts delivered from now on; it finishes when
    /// the node stops. If its reader falls behind by more than
    /// `bufferLimit` deliveries, the oldest unread ones are dropped.
    public func deliveries(bufferLimit: Int = 4_096) -> AsyncStream<GossipDelivery> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: GossipDelivery.self, bufferingPolicy: .bufferingNewest(bufferLimit))
        if isStopped {
            continuation.finish()
        } else {
            streams.append(continuation)
        }
        return stream
    }

    /// Stops the node: no more timers, sends or deliveries; the delivery
    /// streams finish. The transport stays open (the caller owns it).
    public func stop() {
        guard !isStopped else { return }
        isStopped = true
        timer.cancel()
        transport.removeReceiveHandler()
        for stream in streams { stream.finish() }
        streams = []
    }

    // MARK: Driving

    private func receive(_ bytes: UnsafeRawBufferPointer, from sender: Endpoint, now: Instant) {
        guard !isStopped else { return }
        guard let message = receiver.decode(bytes, from: sender, GossipMessage.init(decoding:limits:)) else { return }
        instance.receive(message, from: sender, now: now, into: &effects)
        flush()
    }

    private func tick() {
        guard !isStopped else { return }
        instance.tick(now: scheduler.now, into: &effects)
        flush()
    }

    /// Performs the pending effects (those a delivery handler causes too),
    /// then re-arms the timer.
    private func flush() {
        guard !isFlushing else { return }
        isFlushing = true
        while !effects.isEmpty {
            swap(&effects, &performing)
            for effect in performing where !isStopped { perform(effect) }
            performing.removeAll(keepingCapacity: true)
        }
        isFlushing = false
        armTimer()
    }

    private func perform(_ effect: GossipEffect) {
        switch effect {
        case .send(let message, let destination):
            sender.send(to: destination) { writer in message.encodeFrame(into: &writer) }
        case .deliver(let delivery):
            deliveryHandler?(delivery)
            for stream in streams { stream.yield(delivery) }
        }
    }

    private func armTimer() {
        guard !isStopped else { return }
        timer.arm(at: instance.nextDeadline)
    }
}
