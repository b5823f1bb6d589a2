import CASPaxos
import EventCore
import Raft
import SWIM

/// One machine of a Chorus cluster on one transport: a SWIM member that
/// finds the others, then CASPaxos registers and Raft groups whose
/// acceptors and peers are the members SWIM found.
///
/// Everything shares the transport through a ``ProtocolMultiplexer``
/// (``multiplexer``; gossip, or anything else, can take a channel of it
/// too), and the Raft groups share its Raft channel through a
/// `RaftGroupMultiplexer`. Confined to the scheduler's loop, like the
/// nodes it runs.
///
/// ```swift
/// loop.execute {
///     let node = try ChorusNode(
///         id: NodeID(1), transport: try UDPSocketTransport.bind(to: address, on: loop), scheduler: loop)
///     node.start(seeds: seeds)
/// }
/// // ... once SWIM has found the three (poll, or on a membership event):
/// loop.execute {
///     let members = try node.initialMembers(count: 3)
///     let registers = try node.startRegisters(on: members, acceptorStore: InMemoryAcceptorStore())
///     let replica = try node.startGroup(
///         1, on: members, storage: InMemoryRaftStorage(), stateMachine: KeyValueStateMachine())
/// }
/// ```
///
/// SWIM feeds consensus its first members; it does not reconfigure it.
/// When SWIM later finds one of them suspect, dead or gone,
/// ``unavailable(among:)`` says so, and consensus runs on without it
/// while a majority is up; replacing it is the operator's decision
/// (`CASPaxosNode.changeMembership(to:completion:)`), since a failure
/// detector's false positive must not shrink a quorum.
public final class ChorusNode {
    /// The transport's share for each protocol.
    public let multiplexer: ProtocolMultiplexer
    /// The SWIM member.
    public let member: SWIMNode
    /// The CASPaxos node, once ``startRegisters(on:acceptorStore:configuration:seed:)``
    /// started it.
    public private(set) var registers: CASPaxosNode?
    /// The Raft replicas started here, by group.
    public private(set) var replicas: [UInt64: RaftNode] = [:]
    /// The Raft channel's groups, once a group started.
    public private(set) var raftGroups: RaftGroupMultiplexer?
    private let scheduler: any Scheduler
    private let logger: any LogSink

    /// Creates the node: a multiplexer over `transport` and a SWIM member
    /// on its SWIM channel (not yet started).
    ///
    /// - Parameters:
    ///   - id: this machine's ID: its SWIM member's, its Raft replicas'.
    ///   - swim: the member's configuration.
    ///   - seed: seeds the member (pass one to replay a run).
    ///   - logger: for the multiplexers and the nodes.
    /// - Throws: what `SWIMNode`'s initializer throws.
    public init(
        id: NodeID, transport: any Transport, scheduler: any Scheduler, swim: SWIMConfiguration = SWIMConfiguration(),
        seed: UInt64? = nil, logger: any LogSink = DiscardingLogSink()
    ) throws(ConfigurationError) {
        multiplexer = ProtocolMultiplexer(transport: transport, logger: logger)
        member = try SWIMNode(
            id: id, transport: multiplexer.channel(for: .swim), scheduler: scheduler, configuration: swim, seed: seed,
            logger: logger)
        self.scheduler = scheduler
        self.logger = logger
    }

    /// Starts the SWIM member, joining through `seeds` (none: the first
    /// member of a new cluster).
    public func start(seeds: [Endpoint] = []) {
        member.start(seeds: seeds)
    }

    /// The cluster's first members, sorted by ID, for consensus to start
    /// on: every member SWIM knows, once it knows exactly `count`, all
    /// alive. Each machine that calls it when SWIM has converged gets the
    /// same members: IDs and endpoints (a record's incarnation may differ
    /// between machines; CASPaxos and Raft use only the two, in any
    /// order).
    ///
    /// - Throws: ``ChorusError/Code/membersNotSettled`` while SWIM knows
    ///   fewer or more members, or one of them is not alive.
    public func initialMembers(count: Int) throws(ChorusError) -> [Member] {
        let known = member.allMembers
        let sorted = known.sorted { $0.id < $1.id }
        guard known.count == count, known.allSatisfy({ $0.status == .alive }) else {
            let seen = sorted.map(\.description).joined(separator: ", ")
            throw ChorusError(.membersNotSettled, detail: "SWIM knows \(known.count) members, expected \(count) alive: \(seen)")
        }
        return sorted
    }

    /// Starts CASPaxos on the CASPaxos channel: `members` are the
    /// acceptors (quorums of a majority) and the proposers.
    ///
    /// - Parameters:
    ///   - acceptorStore: this node's acceptor store (nil: a proposer
    ///     only). A store that holds a configuration (a restart) keeps it
    ///     if it is newer than the one `members` make.
    /// - Throws: ``ChorusError`` (`alreadyRunning`; `notAMember` for an
    ///   acceptor not in `members`), or the `ConfigurationError`
    ///   `CASPaxosNode`'s initializer throws.
    public func startRegisters(
        on members: [Member], acceptorStore: (any AcceptorStore)?,
        configuration: CASPaxosConfiguration = CASPaxosConfiguration(), seed: UInt64? = nil
    ) throws -> CASPaxosNode {
        guard registers == nil else { throw ChorusError(.alreadyRunning, detail: "CASPaxos runs on this node") }
        if acceptorStore != nil { try checkIncluded(in: members, for: "CASPaxos") }
        let endpoints = members.map(\.endpoint)
        let node = try CASPaxosNode(
            transport: multiplexer.channel(for: .casPaxos), scheduler: scheduler, configuration: configuration,
            quorums: .majority(of: endpoints), acceptorStore: acceptorStore, proposers: endpoints, seed: seed,
            logger: logger)
        registers = node
        return node
    }

    /// Starts a replica of Raft group `group`, whose peers are the other
    /// `members`, on the group's channel of the Raft channel.
    ///
    /// With `joining`, the replica joins a running group: `members` are
    /// the group's members now (this node not among them, for example
    /// some of those SWIM sees alive), and the group's leader adds it
    /// (`RaftNode.changeMembership(.addLearner(id, endpoint:))`, then
    /// `.promote`); until then it does not campaign.
    ///
    /// - Throws: ``ChorusError`` (`alreadyRunning` for a group that runs
    ///   here, `notAMember` if `members` do not include this node,
    ///   `alreadyAMember` if they do and it is `joining`), or what
    ///   `RaftNode`'s initializer throws.
    public func startGroup(
        _ group: UInt64, on members: [Member], joining: Bool = false, storage: any RaftStorage,
        stateMachine: any RaftStateMachine, configuration: RaftConfiguration = RaftConfiguration(),
        seed: UInt64? = nil
    ) throws -> RaftNode {
        guard replicas[group] == nil else {
            throw ChorusError(.alreadyRunning, detail: "Raft group \(group) runs on this node")
        }
        if joining {
            guard !members.contains(where: { $0.id == member.id }) else {
                throw ChorusError(
                    .alreadyAMember, detail: "joining Raft group \(group): this node (\(member.id)) is among its members")
            }
        } else {
            try checkIncluded(in: members, for: "Raft group \(group)")
        }
        var peers: [NodeID: Endpoint] = [:]
        for other in members where other.id != member.id { peers[other.id] = other.endpoint }
        let groups = try raftGroups
            ?? RaftGroupMultiplexer(transport: multiplexer.channel(for: .raft), scheduler: scheduler, logger: logger)
        raftGroups = groups
        let node = try RaftNode(
            id: member.id, group: group, peers: peers, joining: joining, storage: storage, stateMachine: stateMachine,
            transport: groups.channel(for: group), scheduler: scheduler, configuration: configuration, seed: seed,
            logger: logger)
        replicas[group] = node
        return node
    }

    /// Of `members`, those SWIM does not see alive now: with the record
    /// SWIM holds (suspect, dead or left), or as given if SWIM has
    /// forgotten the member. This node is among them once its member is
    /// stopped. Consensus runs on without them while a majority of its
    /// members is up.
    public func unavailable(among members: [Member]) -> [Member] {
        members.compactMap { given in
            guard given.id != member.id else { return member.stopped ? given : nil }
            guard let current = member.member(given.id) else { return given }
            return current.status == .alive ? nil : current
        }
    }

    /// Stops every node here (SWIM without a word: to the others, a crash;
    /// leave first with `member.leave`). The transport stays open.
    public func stop() {
        registers?.stop()
        for replica in replicas.values { replica.stop() }
        member.stop()
    }

    private func checkIncluded(in members: [Member], for what: String) throws(ChorusError) {
        guard members.contains(where: { $0.id == member.id }) else {
            throw ChorusError(.notAMember, detail: "\(what): this node (\(member.id)) is not among \(members.map(\.id))")
        }
    }
}
