import EventCore

/// A deterministic in-process network with a virtual clock: the nodes it
/// creates (``SimulatedNode``) are `Transport`s and `Scheduler`s, so a
/// protocol driver written against those protocols runs unchanged inside it.
///
/// Everything random — delays, loss, duplication, reordering, and the
/// generators handed out by ``makeRandomGenerator()`` — is drawn from one
/// generator seeded with ``seed``, and events due at the same instant run in
/// the order they were scheduled, so the same seed and the same script give
/// the same run, event for event.
///
/// Nothing runs until the network is driven: ``step()``, ``run(until:)``,
/// ``run(for:)`` or ``runUntilIdle(maxEvents:)`` pop events in time order and
/// move ``now`` to each event's time, delivering messages to receive
/// handlers and firing timers and scripted actions (``schedule(at:_:)``).
///
/// Faults: per-link ``LinkConditions`` (delay, loss, duplication,
/// reordering), faults forced on chosen messages (``force(_:)``, which
/// ``FaultScheduleExplorer`` drives), partitions (``partition(_:_:)``,
/// ``block(from:to:)``, ``heal()``) and crashes (``crash(_:)``,
/// ``restart(_:)``).
///
/// A network is single-threaded: use it and its nodes from one thread or
/// task only. Nodes refer to their network without owning it: keep the
/// network alive while its nodes are used.
///
/// For many messages, drive it in a loop such as
/// `while network.statistics.delivered < target && network.step() {}`.
public final class SimulatedNetwork {
    /// The seed every random choice of this network derives from.
    public let seed: UInt64

    // Exclusivity: the hot state below is marked `@exclusivity(unchecked)`
    // because the runtime checks cost about a third of a message's time.
    // That is sound because no user code (receive handler, timer body,
    // scripted action, restart hook) is ever called during an access to
    // these properties: every call out happens after the values it needs
    // were copied into locals, so the checks could never fire.

    /// The current virtual time. Starts at ``Instant/zero`` and moves only
    /// while the network is driven.
    @exclusivity(unchecked) public internal(set) var now: Instant = .zero

    /// Counters of messages and timers since the network was created.
    @exclusivity(unchecked) public internal(set) var statistics = SimulationStatistics()

    /// The largest message, in bytes, a node accepts; larger sends throw
    /// `TransportError.Code.messageTooLarge`. Default 4 MiB. Applies to
    /// every node, from the next send.
    public var maximumMessageSize = 4 << 20

    /// The nodes, in the order they were added (a node's
    /// ``SimulatedNode/index`` is its position here).
    @exclusivity(unchecked) public internal(set) var nodes: [SimulatedNode] = []

    @exclusivity(unchecked) var random: SeededRandomGenerator
    @exclusivity(unchecked) var queue = EventQueue()
    @exclusivity(unchecked) var nodeIndexByEndpoint: [Endpoint: Int32] = [:]
    /// Members of each multicast group, in join order.
    var multicastGroups: [Endpoint: [Int32]] = [:]
    /// The next host number for ``addNode()``'s derived endpoints.
    private var nextDerivedHost: UInt32 = 1

    @exclusivity(unchecked) var defaultLink: LinkModel
    /// Per-directed-link overrides, keyed by ``linkKey(_:_:)``.
    @exclusivity(unchecked) var linkOverrides: [UInt64: LinkModel] = [:]
    /// Blocked directed links, keyed by ``linkKey(_:_:)``.
    @exclusivity(unchecked) var blockedLinks: Set<UInt64> = []
    /// Faults a ``FaultSchedule`` forces, by message number.
    @exclusivity(unchecked) var forcedFaults: [UInt64: MessageFault] = [:]

    /// Message bytes in flight, by slot; a delivery event names its slot.
    @exclusivity(unchecked) var payloads: [[UInt8]] = []
    @exclusivity(unchecked) var freePayloads: [Int32] = []
    /// Per payload slot: the sender's ``SimulatedNode/crashes`` when the
    /// copy was queued, so a copy a node sent itself dies with its crash.
    @exclusivity(unchecked) var payloadSenderCrashes: [UInt32] = []

    /// Pending timers and scripted actions, by slot; a timer event names its
    /// slot and the slot's generation when it was armed.
    @exclusivity(unchecked) var timers: [TimerSlot] = []
    @exclusivity(unchecked) var freeTimers: [Int32] = []

    @exclusivity(unchecked) var recorder = TraceRecorder(capacity: 0)

    /// Creates an empty network at time zero whose every random choice
    /// derives from `seed`, with perfect links of a constant 1 ms delay
    /// (change them with ``setDefaultConditions(_:)``).
    public init(seed: UInt64) {
        self.seed = seed
        random = SeededRandomGenerator(seed: seed)
        defaultLink = LinkModel(LinkConditions())
    }

    deinit {
        // Drivers usually capture their node in the handlers they install:
        // drop those closures so node and driver do not keep each other alive.
        for node in nodes {
            node.receiveHandler = nil
            node.onRestart = nil
        }
    }

    // MARK: Nodes

    /// Adds a node at the next free endpoint of the form `10.x.y.z:7946`
    /// (`10.0.0.1:7946` for the first), and returns it.
    @discardableResult
    public func addNode() -> SimulatedNode {
        while true {
            let host = nextDerivedHost
            nextDerivedHost &+= 1
            let endpoint = Endpoint(address: .ipv4(0x0A00_0000 | (host & 0x00FF_FFFF)), port: 7946)
            if nodeIndexByEndpoint[endpoint] == nil {
                return insertNode(at: endpoint)
            }
        }
    }

    /// Adds a node reachable at `endpoint`, and returns it.
    ///
    /// - Throws: ``ConfigurationError`` (field `"endpoint"`) when
    ///   another node of this network already has that endpoint.
    public func addNode(at endpoint: Endpoint) throws(ConfigurationError) -> SimulatedNode {
        guard nodeIndexByEndpoint[endpoint] == nil else {
            throw ConfigurationError(
                field: "endpoint", value: "\(endpoint)",
                allowedRange: "an endpoint no other node of the network has")
        }
        return insertNode(at: endpoint)
    }

    /// Makes `node` a member of the multicast group `group` (an endpoint no
    /// node has, such as `239.192.0.77:7948`): a message sent to `group`
    /// reaches every member, each copy over its own link from the sender.
    /// Joining twice changes nothing. A crash ends the node's memberships.
    public func joinGroup(_ group: Endpoint, node: SimulatedNode) {
        precondition(node.network === self, "the node belongs to another SimulatedNetwork")
        let index = Int32(node.index)
        if multicastGroups[group]?.contains(index) != true { multicastGroups[group, default: []].append(index) }
    }

    /// Removes `node` from the multicast group `group`.
    public func leaveGroup(_ group: Endpoint, node: SimulatedNode) {
        multicastGroups[group]?.removeAll { $0 == Int32(node.index) }
    }

    /// The node reachable at `endpoint`, or nil if there is none.
    public func node(at endpoint: Endpoint) -> SimulatedNode? {
        nodeIndexByEndpoint[endpoint].map { nodes[Int($0)] }
    }

    private func insertNode(at endpoint: Endpoint) -> SimulatedNode {
        let node = SimulatedNode(network: self, index: nodes.count, endpoint: endpoint)
        nodeIndexByEndpoint[endpoint] = Int32(nodes.count)
        nodes.append(node)
        return node
    }

    // MARK: Link conditions

    /// The conditions of every link that has no override. Default: perfect
    /// links with a constant 1 ms delay.
    public var defaultConditions: LinkConditions { defaultLink.conditions }

    /// Sets the conditions of every link that has no override, for messages
    /// sent from now on.
    ///
    /// - Throws: ``ConfigurationError`` if `conditions` is invalid
    ///   (see ``LinkConditions/validate()``); nothing changes then.
    public func setDefaultConditions(_ conditions: LinkConditions) throws(ConfigurationError) {
        try conditions.validate()
        defaultLink = LinkModel(conditions)
    }

    /// Sets the conditions of the directed link from `source` to
    /// `destination` (the reverse direction is unaffected), for messages sent
    /// from now on.
    ///
    /// - Throws: ``ConfigurationError`` if `conditions` is invalid
    ///   (see ``LinkConditions/validate()``); nothing changes then.
    public func setConditions(
        _ conditions: LinkConditions, from source: SimulatedNode, to destination: SimulatedNode
    ) throws(ConfigurationError) {
        try conditions.validate()
        linkOverrides[linkKey(source, destination)] = LinkModel(conditions)
    }

    /// Removes the override of the directed link from `source` to
    /// `destination`, so it follows ``defaultConditions`` again.
    public func removeConditions(from source: SimulatedNode, to destination: SimulatedNode) {
        linkOverrides[linkKey(source, destination)] = nil
    }

    /// The conditions in force on the directed link from `source` to
    /// `destination`: its override, or ``defaultConditions``.
    public func conditions(from source: SimulatedNode, to destination: SimulatedNode) -> LinkConditions {
        linkOverrides[linkKey(source, destination)]?.conditions ?? defaultLink.conditions
    }

    /// The key of the directed link between two nodes of this network in
    /// ``linkOverrides`` and ``blockedLinks``.
    func linkKey(_ source: SimulatedNode, _ destination: SimulatedNode) -> UInt64 {
        precondition(
            source.network === self && destination.network === self,
            "the node belongs to another SimulatedNetwork")
        return Self.linkKey(Int32(source.index), Int32(destination.index))
    }

    /// The key of the directed link from node index `source` to `destination`.
    static func linkKey(_ source: Int32, _ destination: Int32) -> UInt64 {
        UInt64(UInt32(source)) << 32 | UInt64(UInt32(destination))
    }

    // MARK: Randomness and tracing

    /// A new generator seeded from this network's generator, for the random
    /// choices of code under test (a protocol's probe order, jitter): the
    /// whole run then still replays from ``seed``.
    public func makeRandomGenerator() -> SeededRandomGenerator {
        SeededRandomGenerator(seed: random.next())
    }

    /// How many of the most recent ``TraceEvent``s to keep in ``trace``;
    /// 0 (the default) records nothing, and a negative value counts as 0.
    /// Lowering it keeps the most recent events that fit.
    public var traceCapacity: Int {
        get { recorder.capacity }
        set { recorder.resize(to: newValue) }
    }

    /// The recorded events, oldest first: the last ``traceCapacity`` sends,
    /// deliveries, drops, node timers, crashes and restarts.
    public var trace: [TraceEvent] { recorder.events }

    func record(_ kind: TraceEvent.Kind) {
        recorder.record(TraceEvent(time: now, kind: kind))
    }
}
