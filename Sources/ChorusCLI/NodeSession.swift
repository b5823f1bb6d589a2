import Chorus
import EventCore
import Foundation
import Raft
import SWIM
import UDPTransport
import WireCodec

/// `chorus node`'s machine: a `ChorusNode` on one UDP socket whose SWIM
/// member finds the others, and a replica of the cluster's Raft group (a
/// replicated key-value map) on a `FileRaftStorage` in the data directory, started
/// with a `RaftMembershipPolicy`: machines that start later join the group,
/// failed ones are removed. Commands (one line each, ``handle(_:reply:)``)
/// write and read the map; what happens (SWIM's member events, the
/// group's leader and members) goes to the output as it happens.
///
/// The group starts once, then restarts from the data directory:
/// - with `bootstrap`, the endpoints of the group's first machines (this
///   one's among them; etcd's `--initial-cluster`): the machine says in
///   its SWIM metadata that it bootstraps that list (a digest of it), and
///   starts the group once SWIM sees, at each endpoint of the list, one
///   machine alive that says the same, on those machines; every machine
///   of the list finds the same ones, whatever else SWIM sees (machines
///   that join, or bootstrap another list, are not counted);
/// - without: once machines SWIM sees alive advertise a group, this one
///   joins it, and the group's leader adds it (machines of two clusters,
///   two groups, in SWIM's view: an error, it joins neither);
/// - with a first membership in the data directory (every restart): from
///   its log, on that membership, bound where it was (the group reaches it
///   there).
///
/// The group's ID is the lowest ID of the machines that bootstrapped it,
/// so the groups of two clusters differ: should SWIM bring them together
/// (a `--join` to the wrong cluster), neither's leader adds the other's
/// machines, and their Raft frames are told apart.
///
/// A machine's ID is random at its first start, so a machine whose data
/// directory was lost comes back as a new member (the group removes the
/// old one), never as the old one with an empty log, which could vote
/// twice in a term. Given its old `bootstrap` list, it refuses: the others
/// say in their metadata (``BootstrapTag``) that they started the group on
/// other machines, and bootstrapping again would start a second group.
/// (A list of one, alone, has no one to ask: its replacement must be
/// started without the list.)
///
/// Confined to the loop.
final class NodeSession {
    /// How often the session looks for its way into the group, and for
    /// changes of the group's leader and members.
    static let pollInterval = Duration.milliseconds(100)
    /// How long a command waits for the group to have a leader (an
    /// election, or a joining replica not yet reached by its leader).
    static let leaderWait = Duration.seconds(5)
    /// How long a command waits for its answer at most: past it, the
    /// outcome is unknown (a leader cut off from the others may never
    /// learn it).
    static let answerWait = Duration.seconds(15)

    let node: ChorusNode
    let transport: UDPSocketTransport
    let data: NodeDataDirectory
    /// The endpoints of the group's first machines, sorted, when this
    /// machine is one of them (nil: it joins a running group).
    let bootstrap: [Endpoint]?
    let policy: RaftMembershipPolicy
    /// The Raft group's settings (election timeout, heartbeats).
    let raft: RaftConfiguration
    /// The replicated map (this machine's copy).
    let map = KeyValueStateMachine()
    private(set) var replica: RaftNode?
    private var storage: FileRaftStorage?
    private let scheduler: EventLoop
    private let output: (String) -> Void
    private var poll: TimerHandle?
    private var reported: (leader: NodeID?, membership: RaftMembership?) = (nil, nil)
    /// Why the group could not start here, or why its replica stopped.
    private var failure: String?
    /// Told, once, why the group cannot run here (``failure``): the
    /// machine is of no use to its users, and `chorus node` exits.
    var onFailure: ((String) -> Void)?
    /// The replies of the commands not yet answered, by a number of the
    /// session's: ``stop()`` answers them (the loop may stop with their
    /// timers).
    private var unanswered: [Int: (String) -> Void] = [:]
    private var nextReply = 0

    /// Opens (and locks) the data directory, binds the socket, starts SWIM
    /// through `seeds` and, if the data directory holds the group's first
    /// membership, the replica. Call on `loop`.
    ///
    /// - Parameters:
    ///   - bootstrap: the endpoints of the machines that start the group,
    ///     this one's among them, at its first start (ignored later: a
    ///     machine that bootstrapped says so again on every restart); nil
    ///     to join a running group.
    ///   - output: each line of what happens.
    /// - Throws: ``NodeDataError`` (a locked or damaged directory, a
    ///   `bind` other than the endpoint the group knows this machine at, or
    ///   a `bootstrap` list without it),
    ///   `RaftStorageError` (a missing or locked log), or what the socket,
    ///   `ChorusNode` or `RaftNode` throws. Nothing is left open.
    convenience init(
        bind: Endpoint, seeds: [Endpoint], dataDirectory: String, bootstrap: [Endpoint]?,
        policy: RaftMembershipPolicy = RaftMembershipPolicy(), swim: SWIMConfiguration = SWIMConfiguration(),
        raft: RaftConfiguration = RaftConfiguration(),
        on loop: EventLoop, logger: any LogSink = DiscardingLogSink(), output: @escaping (String) -> Void
    ) throws {
        try self.init(
            transport: try UDPSocketTransport.bind(to: bind, on: loop), seeds: seeds, dataDirectory: dataDirectory,
            bootstrap: bootstrap, policy: policy, swim: swim, raft: raft, on: loop, logger: logger, output: output)
    }

    /// As ``init(bind:seeds:dataDirectory:bootstrap:policy:swim:raft:on:logger:output:)``,
    /// on a socket bound already (which the session then owns, and closes
    /// if it throws).
    init(
        transport: UDPSocketTransport, seeds: [Endpoint], dataDirectory: String, bootstrap: [Endpoint]?,
        policy: RaftMembershipPolicy = RaftMembershipPolicy(), swim: SWIMConfiguration = SWIMConfiguration(),
        raft: RaftConfiguration = RaftConfiguration(),
        on loop: EventLoop, logger: any LogSink = DiscardingLogSink(), output: @escaping (String) -> Void
    ) throws {
        self.transport = transport
        do {
            data = try NodeDataDirectory(path: dataDirectory)
        } catch {
            transport.close()
            throw error
        }
        do {
            let first = try data.firstMembership()
            let identity = try Self.identity(in: data, boundAt: transport.localEndpoint, started: first != nil)
            let bootstrap = first.map { $0.joining ? nil : $0.members.map(\.endpoint) } ?? bootstrap
            if let bootstrap, !bootstrap.contains(transport.localEndpoint) {
                throw NodeDataError(
                    path: data.path, problem: "this machine, at \(transport.localEndpoint), is not among those to bootstrap \(bootstrap)")
            }
            node = try ChorusNode(id: identity.id, transport: transport, scheduler: loop, swim: swim, logger: logger)
            self.bootstrap = bootstrap?.sorted { $0.description < $1.description }
            self.policy = policy
            self.raft = raft
            scheduler = loop
            self.output = output
            if let first {
                try startGroup(first, opening: .existing)
            } else if let bootstrap = self.bootstrap {
                try node.setApplicationMetadata(BootstrapTag(list: bootstrap, first: nil).encoded)
            }
        } catch {
            transport.close()
            data.close()
            throw error
        }
        node.member.setEventHandler { event in
            // Metadata changes are the machines' advertisements.
            guard event.kind != .metadataChanged else { return }
            output("swim: \(event.member.id) \(event.kind) (\(event.member.endpoint))")
        }
        // The other first machines are seeds too: with the list alone,
        // the first machines find each other.
        let others = (self.bootstrap ?? []).filter { $0 != transport.localEndpoint && !seeds.contains($0) }
        node.start(seeds: seeds + others)
        schedulePoll()
    }

    /// The identity stored in `data`, or a new one (a random ID) stored
    /// now, before the machine `started` the group or made its log;
    /// refuses a machine bound elsewhere than the group knows it.
    private static func identity(
        in data: NodeDataDirectory, boundAt endpoint: Endpoint, started: Bool
    ) throws(NodeDataError) -> NodeDataDirectory.Identity {
        if let identity = try data.identity() {
            guard identity.endpoint == endpoint else {
                throw NodeDataError(
                    path: data.path,
                    problem: "machine \(identity.id) is bound at \(identity.endpoint), where the group reaches it: "
                        + "bind there (or start a new machine with a new data directory), not at \(endpoint)")
            }
            return identity
        }
        // A log under a new ID would be another replica's, on an old log.
        guard !started && !FileManager.default.fileExists(atPath: data.raftPath) else {
            throw NodeDataError(
                path: data.path,
                problem: "the machine's identity is lost, its Raft log is not: start a new machine with a new data directory")
        }
        var random = SystemRandomNumberGenerator()
        let identity = NodeDataDirectory.Identity(id: NodeID(random.next(upperBound: UInt64.max) + 1), endpoint: endpoint)
        try data.save(identity)
        return identity
    }

    /// Starts the replica on `first`: at the first start (`opening` is
    /// `.new`), the log is created before the first membership is saved,
    /// and the replica starts only after both, so a crash in between
    /// leaves an empty log (which the next first start takes) and no first
    /// membership, never a first membership without a log (which every
    /// restart would refuse as lost).
    private func startGroup(_ first: NodeDataDirectory.FirstMembership, opening: FileRaftStorage.Opening) throws {
        if let bootstrap, !first.joining {
            // Before the replica, so that nothing is left to stop if the
            // metadata does not fit.
            try node.setApplicationMetadata(BootstrapTag(list: bootstrap, first: first).encoded)
        }
        let storage = try FileRaftStorage(directory: data.raftPath, opening: opening)
        do {
            if opening == .new { try data.save(first) }
            replica = try node.startGroup(
                first.group, on: first.swimMembers, joining: first.joining, storage: storage, stateMachine: map,
                configuration: raft, policy: policy)
        } catch {
            storage.close()
            throw error
        }
        self.storage = storage
        let how = opening == .existing ? "restarted from its log" : first.joining ? "joining" : "bootstrapped"
        output("raft: group \(first.group) \(how), members \(Self.listed(first.members.map(\.id).sorted()))")
    }

    private func schedulePoll() {
        poll = scheduler.schedule(at: scheduler.now + Self.pollInterval) { [weak self] in
            guard let self, !self.node.member.stopped else { return }
            self.step()
            self.schedulePoll()
        }
    }

    /// Starts the group when it is time to, or reports what changed in it.
    private func step() {
        guard failure == nil else { return }
        guard let replica else {
            guard let first = firstMembership() else { return }
            do {
                try startGroup(first, opening: .new)
            } catch {
                // Reported once: trying again would fail the same way
                // (a log already in the directory, say).
                fail("the Raft group could not start: \(error)")
            }
            return
        }
        if replica.stopped { return fail("the Raft replica stopped (its storage failed: see the log)") }
        let membership = replica.membership
        if replica.leader != reported.leader {
            reported.leader = replica.leader
            let leader = replica.leader.map { $0 == node.member.id ? "\($0) (this machine)" : "\($0)" } ?? "none"
            output("raft: leader \(leader), term \(replica.term)")
        }
        if membership != reported.membership {
            reported.membership = membership
            let learners = membership.learnerIDs.isEmpty
                ? "" : "; learners \(Self.listed(membership.learnerIDs))"
            output("raft: voters \(Self.listed(membership.ids))\(learners)")
        }
    }

    /// `ids` as the output names them: `a, b, c`.
    private static func listed(_ ids: [NodeID]) -> String {
        ids.map(\.description).joined(separator: ", ")
    }

    private func fail(_ reason: String) {
        failure = reason
        output("error: \(reason)")
        onFailure?(reason)
    }

    /// The group's first membership once this machine may start it: at
    /// each `bootstrap` endpoint, the one machine SWIM sees alive there
    /// that bootstraps the same list, unless one of them started the group
    /// on other machines (this one replaces a machine whose data directory
    /// was lost: it must join, not bootstrap, or it would start a second
    /// group); or the machines SWIM sees alive that advertise the group
    /// (to join it); nil until then.
    private func firstMembership() -> NodeDataDirectory.FirstMembership? {
        let alive = node.member.allMembers.filter { $0.status == .alive }.sorted { $0.id < $1.id }
        let identities = { (members: [Member]) in
            members.map { NodeDataDirectory.Identity(id: $0.id, endpoint: $0.endpoint) }
        }
        if let bootstrap {
            let list = BootstrapTag(list: bootstrap, first: nil).list
            var first: [Member] = []
            var tags: [BootstrapTag] = []
            for endpoint in bootstrap {
                let there = alive.compactMap { member in
                    BootstrapTag(decoding: ChorusNode.applicationMetadata(of: member)).flatMap {
                        member.endpoint == endpoint && $0.list == list ? (member, $0) : nil
                    }
                }
                guard there.count == 1 else { return nil }
                first.append(there[0].0)
                tags.append(there[0].1)
            }
            guard let lowest = first.map(\.id).min() else { return nil }
            let membership = NodeDataDirectory.FirstMembership(
                group: lowest.rawValue, joining: false, members: identities(first))
            let digest = BootstrapTag(list: bootstrap, first: membership).first
            guard tags.allSatisfy({ $0.first == nil || $0.first == digest }) else {
                fail(
                    "the machines of the --bootstrap list started the group on other machines: this one replaces a lost "
                        + "one, so start it without --bootstrap (it then joins as a new machine)")
                return nil
            }
            return membership
        }
        let others = alive.filter { $0.id != node.member.id }
        let groups = Set(others.flatMap(ChorusNode.raftGroups(advertisedBy:)))
        guard let group = groups.first else { return nil }
        guard groups.count == 1 else {
            let named = groups.sorted().map(String.init).joined(separator: ", ")
            fail("SWIM sees the machines of several clusters (Raft groups \(named)): join one of them alone")
            return nil
        }
        let advertisers = others.filter { ChorusNode.raftGroups(advertisedBy: $0).contains(group) }
        return NodeDataDirectory.FirstMembership(group: group, joining: true, members: identities(advertisers))
    }

    /// The commands, for `help`.
    static let commands = """
        put KEY VALUE   write VALUE (the rest of the line) at KEY, through the group's leader
        get KEY         read KEY, linearizably (ReadIndex through the leader)
        delete KEY      remove KEY
        status          this machine's SWIM view and Raft state
        leave           leave SWIM (the leader removes this machine) and exit
        help            this text
        """

    /// Carries out one command line (all but `leave`, which the command
    /// runs); `reply` gets the outcome, once, within ``answerWait``.
    func handle(_ line: String, reply: @escaping (String) -> Void) {
        let reply = answered(within: Self.answerWait, reply)
        let words = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true).map(String.init)
        if ["put", "delete", "get"].contains(words.first), replica == nil || failure != nil {
            return reply("error: the Raft group does not run here (status says why)")
        }
        switch (words.first, words.count) {
        case (nil, _):
            reply("")
        case ("help", 1):
            reply(Self.commands)
        case ("status", 1):
            reply(status)
        case ("put", 3):
            propose(.put(key: words[1], value: Array(words[2].drop { $0 == " " }.utf8)), reply: reply)
        case ("delete", 2):
            propose(.delete(key: words[1]), reply: reply)
        case ("get", 2):
            let key = words[1]
            whileNoLeader({ replica, done in replica.read(completion: done) }) { [map] result in
                switch result {
                case .success: reply(map.values[key].map { String(decoding: $0, as: UTF8.self) } ?? "(not set)")
                case .failure(let error): reply("error: \(error)")
                }
            }
        case ("put", _):
            reply("error: put takes a key and a value: put KEY VALUE (the rest of the line, not empty)")
        case ("delete", _), ("get", _):
            reply("error: \(words[0]) takes one key: \(words[0]) KEY")
        case ("help", _), ("status", _), ("leave", 2...):
            reply("error: \(words[0]) takes nothing after it")
        default:
            reply("error: not a command: '\(line)' (put KEY VALUE, get KEY, delete KEY, status, leave, help)")
        }
    }

    /// `reply`, called at most once: with the first answer, or, if none
    /// came within `wait` or before ``stop()``, with one that says the
    /// outcome is unknown.
    private func answered(within wait: Duration, _ reply: @escaping (String) -> Void) -> (String) -> Void {
        let number = nextReply
        nextReply += 1
        var pending = true
        var timer: TimerHandle?
        let once = { [weak self, scheduler] (answer: String) in
            guard pending else { return }
            pending = false
            self?.unanswered[number] = nil
            if let timer { scheduler.cancel(timer) }
            reply(answer)
        }
        unanswered[number] = once
        timer = scheduler.schedule(at: scheduler.now + wait) {
            once("error: no answer within \(wait): the outcome is unknown")
        }
        return once
    }

    private func propose(_ command: KeyValueCommand, reply: @escaping (String) -> Void) {
        whileNoLeader({ replica, done in replica.propose(command.encoded, completion: done) }) { result in
            switch result {
            case .success: reply("ok")
            case .failure(let error): reply("error: \(error)")
            }
        }
    }

    /// Runs `attempt` on the replica, again every ``pollInterval`` while
    /// it fails with `.notLeader` (a definite refusal: nothing was
    /// proposed), for at most ``leaderWait``; then `completion`.
    private func whileNoLeader<Value>(
        _ attempt: @escaping (RaftNode, @escaping (Result<Value, RaftError>) -> Void) -> Void,
        until deadline: Instant? = nil, completion: @escaping (Result<Value, RaftError>) -> Void
    ) {
        guard let replica, !replica.stopped else { return completion(.failure(.stopped)) }
        let deadline = deadline ?? scheduler.now + Self.leaderWait
        attempt(replica) { [weak self] result in
            guard case .failure(.notLeader) = result, let self, self.scheduler.now + Self.pollInterval < deadline else {
                return completion(result)
            }
            _ = self.scheduler.schedule(at: self.scheduler.now + Self.pollInterval) { [weak self] in
                guard let self else { return completion(result) }
                self.whileNoLeader(attempt, until: deadline, completion: completion)
            }
        }
    }

    /// This machine's SWIM view and Raft state, a few lines.
    var status: String {
        let members = node.member.allMembers.sorted { $0.id < $1.id }.map { "\($0.id) \($0.status) \($0.endpoint)" }
        var lines = ["machine \(node.member.id) on \(transport.localEndpoint)", "swim: " + members.joined(separator: "; ")]
        if let failure {
            lines.append("raft: \(failure)")
        } else if let replica {
            let membership = replica.membership
            let learners = membership.learnerIDs.isEmpty ? "none" : Self.listed(membership.learnerIDs)
            lines.append(
                "raft: group \(replica.group): \(replica.role) in term \(replica.term); leader \(replica.leader.map { "\($0)" } ?? "none"); "
                    + "voters \(Self.listed(membership.ids)); learners \(learners); "
                    + "commit \(replica.commitIndex), applied \(replica.appliedIndex), \(map.values.count) keys")
        } else if let bootstrap {
            let list = bootstrap.map(\.description).joined(separator: ", ")
            lines.append("raft: waiting until SWIM sees, at each of \(list), one machine alive that bootstraps the same")
        } else {
            lines.append("raft: waiting for a machine that runs the group, to join it")
        }
        return lines.joined(separator: "\n")
    }

    /// Leaves SWIM gracefully (the group's leader then removes this
    /// machine at once, unless that would leave too few voters), then
    /// stops; `completion` runs once it has. A leader first hands
    /// leadership to the voter it heard from last, so the group does not
    /// wait out an election timeout.
    func leave(completion: @escaping () -> Void) {
        if let replica, replica.role == .leader {
            let heard = replica.membership.ids.compactMap { id in replica.lastContact(with: id).map { (id, $0) } }
            if let target = heard.max(by: { $0.1 < $1.1 })?.0 { try? replica.transferLeadership(to: target) }
        }
        node.member.leave { [self] in
            stop()
            completion()
        }
    }

    /// Stops everything (to the others, a crash: a restart from the data
    /// directory picks up where it stopped), closes the socket and the log;
    /// the data directory's lock goes with the session. Commands not yet
    /// answered are answered now: the outcome is unknown.
    func stop() {
        if let poll { scheduler.cancel(poll) }
        poll = nil
        for number in unanswered.keys.sorted() {
            unanswered[number]?("error: the machine stopped before the answer came: the outcome is unknown")
        }
        node.stop()
        transport.close()
        storage?.close()
        data.close()
    }
}
