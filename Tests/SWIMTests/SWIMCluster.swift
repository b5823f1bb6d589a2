import EventCore
import SWIM
import Simulation

/// A SWIM cluster in the simulator, for the tests: `count` members with IDs
/// 1 ... count, member 1 the seed, the others joining through it
/// (staggered over `joinSpread`), every member event recorded with its
/// simulated time.
final class SWIMCluster {
    struct Observation {
        var observer: Int
        var event: MemberEvent
    }

    let network: SimulatedNetwork
    let configuration: SWIMConfiguration
    private(set) var nodes: [SimulatedNode] = []
    /// What each member receives through: its node, with updates taken
    /// out as the test says (``UpdateFilteringTransport/drops``).
    private(set) var transports: [UpdateFilteringTransport] = []
    private(set) var members: [SWIMNode?] = []
    private(set) var observations: [Observation] = []
    private(set) var broadcastsDelivered: [[SWIMBroadcast]] = []
    /// When the last member started joining.
    private(set) var lastJoinAt: Instant = .zero

    init(
        count: Int, seed: UInt64, configuration: SWIMConfiguration = SWIMConfiguration(),
        link: LinkConditions = LinkConditions(), joinSpread: Duration = .seconds(1)
    ) throws {
        network = SimulatedNetwork(seed: seed)
        try network.setDefaultConditions(link)
        self.configuration = configuration
        for _ in 0..<count {
            nodes.append(network.addNode())
            transports.append(UpdateFilteringTransport(nodes.last!))
            members.append(nil)
            broadcastsDelivered.append([])
        }
        start(0, seeds: [])
        let seedEndpoint = nodes[0].localEndpoint
        for index in 1..<count {
            let at = Instant.zero + joinSpread * (Double(index) / Double(count))
            lastJoinAt = max(lastJoinAt, at)
            network.schedule(at: at) { [unowned self] _ in self.start(index, seeds: [seedEndpoint]) }
        }
    }

    /// The ID of member `index`.
    func id(_ index: Int) -> NodeID { NodeID(UInt64(index + 1)) }

    /// Starts (or restarts, with the same ID) member `index`.
    func start(_ index: Int, seeds: [Endpoint], metadata: [UInt8] = []) {
        let node = nodes[index]
        let member = try! SWIMNode(
            id: id(index), transport: transports[index], scheduler: node, metadata: metadata,
            configuration: configuration,
            seed: network.seed &+ UInt64(index) &* 0x9E37_79B9 &+ UInt64(network.now.nanoseconds))
        member.setEventHandler { [unowned self] event in
            self.observations.append(Observation(observer: index, event: event))
        }
        member.setBroadcastHandler { [unowned self] broadcast in
            self.broadcastsDelivered[index].append(broadcast)
        }
        member.start(seeds: seeds)
        members[index] = member
    }

    /// Crashes member `index` (no goodbye).
    func crash(_ index: Int) {
        members[index]?.stop()
        members[index] = nil
        network.crash(nodes[index])
    }

    /// Restarts crashed member `index` with its old ID, joining through
    /// member 0 (or `seed`), with `metadata`.
    func restart(_ index: Int, through seed: Int = 0, metadata: [UInt8] = []) {
        network.restart(nodes[index])
        start(index, seeds: [nodes[seed].localEndpoint], metadata: metadata)
    }

    /// Restarts crashed member `index` with its old ID on a new node of
    /// the network (another endpoint), joining through member 0.
    func restartElsewhere(_ index: Int) {
        nodes[index] = network.addNode()
        transports[index] = UpdateFilteringTransport(nodes[index])
        start(index, seeds: [nodes[0].localEndpoint])
    }

    var liveIndices: [Int] { nodes.indices.filter { members[$0] != nil && !nodes[$0].isCrashed } }

    /// Whether every live member sees every other live member alive, and
    /// `count` members alive in all.
    func isConverged(expecting count: Int) -> Bool {
        let live = liveIndices
        guard live.count == count else { return false }
        return live.allSatisfy { index in
            members[index]!.memberCount(.alive) == count
        }
    }

    /// Whether `count` members are live and each holds all the others as
    /// alive or suspected (none dead, left or missing).
    func knowsAll(expecting count: Int) -> Bool {
        let live = liveIndices
        guard live.count == count else { return false }
        return live.allSatisfy { index in
            members[index]!.memberCount(.alive) + members[index]!.memberCount(.suspect) == count
        }
    }

    /// Runs until `condition` holds (checked every `step`) or `limit`
    /// passes; returns the simulated time it held at, or nil.
    func run(until condition: () -> Bool, step: Duration = .milliseconds(10), limit: Duration) -> Instant? {
        let end = network.now + limit
        while network.now < end {
            if condition() { return network.now }
            network.run(for: step)
        }
        return condition() ? network.now : nil
    }

    /// Whether every live member sees member `subject` as `status`.
    func everyoneSees(_ subject: Int, as status: MemberStatus) -> Bool {
        liveIndices.allSatisfy { self.status(of: subject, seenBy: $0) == status }
    }

    /// Whether every live member but `subject` holds a record of it that
    /// `holds` accepts.
    func othersSee(_ subject: Int, _ holds: (Member) -> Bool) -> Bool {
        liveIndices.allSatisfy { $0 == subject || members[$0]?.member(id(subject)).map(holds) == true }
    }

    /// The status member `observer` has for member `subject`.
    func status(of subject: Int, seenBy observer: Int) -> MemberStatus? {
        members[observer]?.member(id(subject))?.status
    }

    /// Observations of `kind` about `subject`, made after `since`.
    func observations(_ kind: MemberEvent.Kind, about subject: Int, since: Instant = .zero) -> [Observation] {
        observations.filter { $0.event.kind == kind && $0.event.member.id == id(subject) && $0.event.at >= since }
    }

    /// Dead declarations about members that were alive at the time (not in
    /// `crashed`), made after `since`: false positives.
    func falsePositives(excluding crashed: Set<Int> = [], since: Instant = .zero) -> [Observation] {
        observations.filter { observation in
            guard observation.event.kind == .dead, observation.event.at >= since else { return false }
            let subject = Int(observation.event.member.id.rawValue) - 1
            return !crashed.contains(subject)
        }
    }

    /// Sums a quantity over the live members.
    func total(_ value: (SWIMNode) -> Int) -> Int {
        liveIndices.reduce(0) { $0 + value(members[$1]!) }
    }
}
