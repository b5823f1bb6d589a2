import EventCore

/// An acceptor's whole durable state: what an ``AcceptorStore`` recovers.
public struct AcceptorSnapshot: Hashable, Sendable {
    /// The registers, by key. A copy, built on every read (O(n)): look one
    /// register up with ``register(_:)``.
    public var registers: [[UInt8]: RegisterState] {
        get { Dictionary(uniqueKeysWithValues: table.lazy.map { ($0.key.bytes, $0.value) }) }
        set { table = Self.table(of: newValue) }
    }
    /// The minimum age garbage collection set per proposer.
    public var minimumAges: [NodeID: UInt64]
    /// Every ballot up to it is refused for an absent key, which behaves
    /// as if it had promised the least ballot above it: at least the
    /// highest promise of any register removed by garbage collection, and
    /// at least the ballot just below the promise of any register holding
    /// only a promise that was folded into it to make room (see
    /// ``Acceptor``), or raised by a collection's messages.
    public var removalFloor: Ballot
    /// The latest configuration the proposer on the same node adopted (the
    /// highest version), if it ever adopted one: a node with both roles
    /// restarts its proposer from it rather than from an older one it is
    /// given, since a proposer left on a configuration the cluster has
    /// moved past would use quorums that need not intersect the others'.
    public var proposerConfiguration: AcceptorQuorums?
    /// The fence: the oldest configuration version whose prepares and
    /// accepts the acceptor takes, and the digest that those of its own
    /// version must carry (``ConfigurationVersion/zero`` until a membership
    /// change fenced older ones off). A proposer left on a configuration
    /// the cluster moved past, or given another configuration of the
    /// fence's version by hand, is refused rather than allowed to use
    /// quorums that need not meet the others'.
    public var minimumVersion: ConfigurationVersion
    /// The registers, keyed for hashing in one call: what the acceptor and
    /// the stores look up and change on every write.
    var table: [RegisterKey: RegisterState]

    /// Creates a snapshot; the default is an acceptor that never ran.
    public init(
        registers: [[UInt8]: RegisterState] = [:], minimumAges: [NodeID: UInt64] = [:], removalFloor: Ballot = .zero,
        proposerConfiguration: AcceptorQuorums? = nil, minimumVersion: ConfigurationVersion = .zero
    ) {
        table = Self.table(of: registers)
        self.minimumAges = minimumAges
        self.removalFloor = removalFloor
        self.proposerConfiguration = proposerConfiguration
        self.minimumVersion = minimumVersion
    }

    /// The register of `key`, if there is one.
    public func register(_ key: [UInt8]) -> RegisterState? { table[RegisterKey(key)] }
    /// How many registers there are.
    public var registerCount: Int { table.count }

    /// Applies one write.
    public mutating func apply(_ write: AcceptorWrite) {
        switch write {
        case .register(let key, let state): table[RegisterKey(key)] = state
        case .remove(let key, let floor):
            table[RegisterKey(key)] = nil
            removalFloor = max(removalFloor, floor)
        case .removalFloor(let floor): removalFloor = max(removalFloor, floor)
        case .minimumAge(let proposer, let age): minimumAges[proposer] = max(minimumAges[proposer] ?? 0, age)
        case .forgetMinimumAge(let proposer): minimumAges[proposer] = nil
        case .proposerConfiguration(let quorums):
            if quorums.version > proposerConfiguration?.version ?? 0 { proposerConfiguration = quorums }
        case .minimumVersion(let version):
            if let raised = minimumVersion.raised(to: version) { minimumVersion = raised }
        }
    }

    private static func table(of registers: [[UInt8]: RegisterState]) -> [RegisterKey: RegisterState] {
        Dictionary(uniqueKeysWithValues: registers.lazy.map { (RegisterKey($0.key), $0.value) })
    }
}
