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
/// // In an async context; `loop` is a started EventLoop. The ID is drawn
/// // at the machine's first start, and kept for its restarts (below).
/// var generator = SystemRandomNumberGenerator()
/// let id = NodeID.random(using: &generator)
/// let node = try await loop.submit {
///     let node = try ChorusNode(
///         id: id, transport: try UDPSocketTransport.bind(to: address, on: loop), scheduler: loop,
///         logger: StandardErrorLogSink(minimumLevel: .notice))
///     node.start(seeds: seeds)
///     return LoopBound(node, on: loop)
/// }
/// // ... once SWIM has found the three (poll, or on a membership event):
/// try await loop.submit {
///     let members = try node.value.initialMembers(count: 3)
///     let registers = try node.value.startRegisters(on: members, acceptorStore: InMemoryAcceptorStore())
///     let replica = try node.value.startGroup(
///         1, on: members, storage: InMemoryRaftStorage(), stateMachine: KeyValueStateMachine())
/// }
/// ```
///
/// Each machine needs an ID of its own, for its whole life: a machine
/// that restarts on its files keeps its ID (store it beside them, as text:
/// `id.description`, read back with `NodeID(text)`), and a
/// machine whose files were lost takes a new one (``NodeID/random(using:)``),
/// never the old one on empty storage, which could vote twice in a term.
/// `chorus node` (`NodeSession`, `NodeDataDirectory` in ChorusCLI) is a
/// whole machine that does this: its identity, its first membership
/// (passed again on restart; a replica then follows the membership its
/// log holds), atomic file replacement.
///
/// SWIM feeds consensus its first members. By default it does not
/// reconfigure it: when SWIM later finds one of them suspect, dead or
/// gone, ``unavailable(among:)`` says so, and consensus runs on without
/// it while a majority is up; replacing it is the operator's decision
/// (`RaftNode.changeMembership(_:completion:)`,
/// `CASPaxosNode.changeMembership(to:completion:)`), since a failure
/// detector's false positive must not shrink a quorum. A Raft group
/// started with a ``RaftMembershipPolicy`` lets SWIM drive its
/// membership instead, within the policy's limits: machines that start a
/// replica of the group join it, failed ones are removed.
///
/// Once a group runs with a policy, the node owns its SWIM member's
/// metadata: it advertises there the Raft groups it runs with a policy
/// (what a policy's leader looks for), then the application's bytes
/// (``setApplicationMetadata(_:)``, ``applicationMetadata(of:)``). Each
/// advertisement takes 2 bytes and 1 to 10 a group of SWIM's
/// `maximumMetadataSize` (128 by default).
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
    /// The groups started with a membership policy, and their next passes.
    private var reconcilers: [UInt64: RaftMembershipReconciler] = [:]
    private var reconcileTimers: [UInt64: TimerHandle] = [:]
    /// The application's part of the member's metadata (nil: never set
    /// here).
    private var applicationMetadata: [UInt8]?

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
    /// acceptors (quorums of a majority) and the proposers. Registers that
    /// stopped (`CASPaxosNode.stop()`, or the loop's shutdown) may be
    /// started again, on the same store.
    ///
    /// - Parameters:
    ///   - acceptorStore: this node's acceptor store (nil: a proposer
    ///     only). A store that holds a configuration (a restart) keeps it
    ///     if it is newer than the one `members` make.
    /// - Throws: ``ChorusError`` (`alreadyRunning` while CASPaxos runs
    ///   here; `notAMember` for an
    ///   acceptor not in `members`), or the `ConfigurationError`
    ///   `CASPaxosNode`'s initializer throws.
    public func startRegisters(
        on members: [Member], acceptorStore: (any AcceptorStore)?,
        configuration: CASPaxosConfiguration = CASPaxosConfiguration(), seed: UInt64? = nil
    ) throws -> CASPaxosNode {
        guard registers?.stopped ?? true else {
            throw ChorusError(.alreadyRunning, detail: "CASPaxos runs on this node")
        }
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
    /// `members`, on the group's channel of the Raft channel, and
    /// with a `policy`, advertises the group in the SWIM member's
    /// metadata.
    ///
    /// With `joining`, the replica joins a running group: `members` are
    /// the group's members now (this node not among them, for example
    /// some of those SWIM sees alive), and the group's leader adds it
    /// (`RaftNode.changeMembership(.addLearner(id, endpoint:))`, then
    /// `.promote`; or, with a `policy` on the leader's machine, the
    /// leader does so itself); until then it does not campaign.
    ///
    /// A group whose replica stopped (``stopGroup(_:)``, `RaftNode.stop()`,
    /// a failed storage, or the loop's shutdown) may be started again, on
    /// the same storage.
    ///
    /// - Parameters:
    ///   - policy: lets SWIM's view drive the group's membership (see
    ///     ``RaftMembershipPolicy``); give the same policy on every
    ///     machine of the group, since whichever leads applies its own.
    ///     Nil (the default): only the operator changes members.
    /// - Throws: ``ChorusError`` (`alreadyRunning` for a group whose
    ///   replica runs here, `notAMember` if `members` do not include this node,
    ///   `alreadyAMember` if they do and it is `joining`), the
    ///   `ConfigurationError` of an invalid `policy` or of `RaftNode`'s
    ///   initializer, or, with a policy, `SWIMError`: `.metadataTooLarge`
    ///   if the advertisement does not fit the member's metadata,
    ///   `.stopped` once the member has stopped (or left).
    public func startGroup(
        _ group: UInt64, on members: [Member], joining: Bool = false, storage: any RaftStorage,
        stateMachine: any RaftStateMachine, configuration: RaftConfiguration = RaftConfiguration(),
        seed: UInt64? = nil, policy: RaftMembershipPolicy? = nil
    ) throws -> RaftNode {
        if let running = replicas[group] {
            guard running.stopped else {
                throw ChorusError(.alreadyRunning, detail: "Raft group \(group) runs on this node")
            }
            forgetGroup(group)
        }
        try policy?.validate()
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
        guard let policy else { return node }
        reconcilers[group] = RaftMembershipReconciler(
            group: group, policy: policy, replica: node, member: member, logger: logger)
        do {
            try advertise()
        } catch {
            node.stop()
            replicas[group] = nil
            reconcilers[group] = nil
            throw error
        }
        scheduleReconciliation(of: group, after: policy.interval)
        return node
    }

    /// Stops the replica of `group` here, if one runs, and, for a group
    /// with a ``RaftMembershipPolicy``, stops advertising it: the leader
    /// no longer adds this machine, and removes it once it has not
    /// advertised the group for the policy's grace (within the policy's
    /// limits). To take it out of the group sooner, have the leader remove
    /// it (`RaftNode.changeMembership`) after this call, not before (the
    /// policy would add it back while it advertises the group).
    public func stopGroup(_ group: UInt64) {
        forgetGroup(group)?.stop()
    }

    /// Drops the replica of `group` and its policy's passes, and the
    /// group from the advertisement; returns the replica.
    @discardableResult
    private func forgetGroup(_ group: UInt64) -> RaftNode? {
        reconcilers[group] = nil
        if let timer = reconcileTimers.removeValue(forKey: group) { scheduler.cancel(timer) }
        let replica = replicas.removeValue(forKey: group)
        try? advertise()
        return replica
    }

    /// Sets the application's part of the SWIM member's metadata (after
    /// the node's advertisement of the Raft groups it runs with a
    /// ``RaftMembershipPolicy``); read it on any member with
    /// ``applicationMetadata(of:)``. Without a policy and without this
    /// call the node leaves the member's metadata alone.
    ///
    /// - Throws: `SWIMError` (`.metadataTooLarge` if it does not fit with
    ///   the advertisement, `.stopped`).
    public func setApplicationMetadata(_ metadata: [UInt8]) throws(SWIMError) {
        let previous = applicationMetadata
        applicationMetadata = metadata
        do throws(SWIMError) {
            try advertise()
        } catch {
            applicationMetadata = previous
            throw error
        }
    }

    /// The application's part of `member`'s metadata: what its node set
    /// with ``setApplicationMetadata(_:)``, or all of it for metadata that
    /// is no advertisement (one that does not begin with the byte 0xC1, a
    /// group count and the groups: a plain `SWIMNode`'s, say).
    public static func applicationMetadata(of member: Member) -> [UInt8] {
        MachineAdvertisement(decoding: member.metadata)?.application ?? member.metadata
    }

    /// The Raft groups `member`'s node runs a replica of with a
    /// ``RaftMembershipPolicy``, as its metadata advertises them (none for
    /// metadata that is no advertisement), ascending.
    public static func raftGroups(advertisedBy member: Member) -> [UInt64] {
        MachineAdvertisement(decoding: member.metadata)?.groups ?? []
    }

    /// Publishes the running groups that have a policy and the
    /// application's metadata, unless the member's metadata says so
    /// already, or the node never advertised and has nothing to (the
    /// metadata is then the application's, set on `member` directly).
    private func advertise() throws(SWIMError) {
        let groups = replicas.compactMap { group, replica in
            reconcilers[group] != nil && !replica.stopped ? group : nil
        }
        let current = member.localMember.metadata
        guard !groups.isEmpty || applicationMetadata != nil || MachineAdvertisement(decoding: current) != nil else {
            return
        }
        let encoded = MachineAdvertisement(groups: groups, application: applicationMetadata ?? []).encoded
        guard encoded != current else { return }
        try member.setMetadata(encoded)
    }

    private func scheduleReconciliation(of group: UInt64, after interval: Duration) {
        reconcileTimers[group] = scheduler.schedule(at: scheduler.now + interval) { [weak self] in
            guard let self, let reconciler = self.reconcilers[group] else { return }
            // A replica stopped without stopGroup is no longer advertised,
            // and needs no more passes; metadata set on the member directly
            // is advertised over again.
            try? self.advertise()
            guard !reconciler.replicaStopped else { return }
            reconciler.reconcile(now: self.scheduler.now)
            self.scheduleReconciliation(of: group, after: reconciler.policy.interval)
        }
    }

    /// Of `members`, those SWIM does not see alive now at the endpoint
    /// given: with the record SWIM holds (suspect, dead or left, or alive
    /// elsewhere: restarted on another endpoint with its ID, which
    /// consensus, started on the given endpoints, does not reach), or as
    /// given if SWIM has forgotten the member. This node is among them once
    /// its member is stopped. Consensus runs on without them while a
    /// majority of its members is up.
    public func unavailable(among members: [Member]) -> [Member] {
        members.compactMap { given in
            guard given.id != member.id else { return member.stopped ? given : nil }
            guard let current = member.member(given.id) else { return given }
            return current.status == .alive && current.endpoint == given.endpoint ? nil : current
        }
    }

    /// Stops every node here (SWIM without a word: to the others, a crash;
    /// leave first with `member.leave`). The transport stays open.
    public func stop() {
        registers?.stop()
        for replica in replicas.values { replica.stop() }
        for timer in reconcileTimers.values { scheduler.cancel(timer) }
        reconcileTimers.removeAll()
        reconcilers.removeAll()
        member.stop()
    }

    private func checkIncluded(in members: [Member], for what: String) throws(ChorusError) {
        guard members.contains(where: { $0.id == member.id }) else {
            throw ChorusError(.notAMember, detail: "\(what): this node (\(member.id)) is not among \(members.map(\.id))")
        }
    }
}
