import EventCore
@testable import Raft
import Simulation
import Testing
import WireCodec

/// Proposals made on a follower (``RaftConfiguration/forwardProposals``):
/// forwarded to the leader, answered with where it appended them, and
/// resolved at the follower as it applies that index.
@Suite("Raft proposal forwarding")
struct ForwardingTests {
    static func settled(seed: UInt64, configuration: RaftConfiguration = RaftConfiguration())
        throws -> (RaftCluster, leader: Int, follower: Int) {
        let cluster = try RaftCluster(count: 3, seed: seed, configuration: configuration,
                                      makeStateMachine: { KeyValueStateMachine() })
        #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(5)))
        let leader = try #require(cluster.leader)
        cluster.run(for: .milliseconds(200))
        return (cluster, leader, try #require(cluster.indices.first { $0 != leader }))
    }

    /// A forwarded proposal of `command` from node `follower` to node
    /// `leader`, sent at `term`.
    static func forward(from follower: Int, to leader: Int, term: UInt64, requestID: UInt64, command: [UInt8])
        -> RaftMessage {
        RaftMessage(group: 1, from: RaftCluster.id(follower), to: RaftCluster.id(leader), term: term,
                    body: .forwardedProposal(requestID: requestID, command: command))
    }

    /// Delivers `message`, framed, to node `node`, `copies` times, from a
    /// node added to the network (a late, repeated or forged datagram).
    static func inject(_ message: RaftMessage, to node: Int, in cluster: RaftCluster, copies: Int = 1) throws {
        var writer = WireWriter()
        try message.encodeFrame(into: &writer)
        let wire = cluster.network.addNode()
        for _ in 0..<copies { try wire.send(writer.bytes, to: cluster.simulatedNodes[node].localEndpoint) }
    }

    @Test("a follower forwards proposals to the leader and hands back its own state machine's results")
    func forwarded() throws {
        let (cluster, leader, follower) = try Self.settled(seed: 21)
        for number in 0..<20 {
            cluster.propose(KeyValueCommand.put(key: "k", value: [UInt8(number)]).encoded, at: follower)
        }
        #expect(cluster.run(until: { cluster.acknowledged.count == 20 }, limit: .seconds(2)))
        #expect(cluster.failures.isEmpty)
        // Each put saw the value of the one before: they were applied in
        // the order proposed, and the results are the follower's own.
        let seen = cluster.acknowledged.map { try? KeyValueStateMachine.decodeResult($0.result) }
        #expect(seen == [nil] + (0..<19).map { [UInt8($0)] })
        #expect(cluster.rafts[follower]?.counters.proposalsForwarded == 20)
        #expect(cluster.rafts[leader]?.counters.forwardedProposalsReceived == 20)
        #expect(cluster.violations.isEmpty)
    }

    @Test("with forwarding off a follower refuses at once, naming the leader")
    func refusedWhenOff() throws {
        var configuration = RaftConfiguration()
        configuration.forwardProposals = false
        let (cluster, leader, follower) = try Self.settled(seed: 22, configuration: configuration)
        cluster.propose(at: follower)
        #expect(cluster.failures == [.notLeader(leaderHint: RaftCluster.id(leader))])
    }

    @Test("a forward to a leader that crashed fails as outcome unknown after the forward timeout")
    func leaderGone() throws {
        let (cluster, leader, follower) = try Self.settled(seed: 23)
        cluster.crash(leader)
        cluster.propose(at: follower)  // the follower still believes in the old leader
        #expect(cluster.rafts[follower]?.pendingProposalCount == 1)
        #expect(cluster.run(until: { !cluster.failures.isEmpty }, limit: .seconds(2)))
        #expect(cluster.failures == [.outcomeUnknown])
        #expect(cluster.rafts[follower]?.counters.forwardsTimedOut == 1)
    }

    @Test("the leader's refusal of a forwarded proposal comes back to the follower as the same error")
    func refusalTravelsBack() throws {
        var configuration = RaftConfiguration()
        configuration.maximumCommandSize = 1_024
        configuration.maximumUncommittedBytes = 1_024
        let (cluster, _, follower) = try Self.settled(seed: 24, configuration: configuration)
        // Both reach the leader before the first commits: the second would
        // take it over its uncommitted limit.
        cluster.propose(Array(repeating: 1, count: 600), at: follower)
        cluster.propose(Array(repeating: 2, count: 600), at: follower)
        #expect(cluster.run(until: { cluster.rafts[follower]?.pendingProposalCount == 0 }, limit: .seconds(2)))
        #expect(cluster.acknowledged.map(\.command) == [Array(repeating: 1, count: 600)])
        #expect(cluster.failures == [.uncommittedLimitExceeded(uncommittedBytes: 600, limit: 1_024)])
        #expect(cluster.violations.isEmpty)
    }

    @Test("an answer to the previous incarnation's first forward does not resolve a restarted follower's first forward")
    func answerFromBeforeARestart() throws {
        let (cluster, leader, follower) = try Self.settled(seed: 25)
        cluster.propose(KeyValueCommand.put(key: "k", value: [1]).encoded, at: follower)
        #expect(cluster.run(until: { cluster.acknowledged.count == 1 }, limit: .seconds(2)))
        cluster.crash(follower)
        try cluster.restart(follower)
        #expect(cluster.run(until: { cluster.rafts[follower]?.leader == RaftCluster.id(leader) }, limit: .seconds(2)))
        cluster.propose(KeyValueCommand.put(key: "k", value: [2]).encoded, at: follower)
        // The leader's answer to the previous incarnation's first forward,
        // delayed past the restart (here: sent from another node), lands first:
        // it names an index the log will not reach for a long time. IDs
        // that restarted at 1 took it for the new forward's.
        let term = try #require(cluster.rafts[leader]?.term)
        let lastIndex = try #require(cluster.rafts[leader]?.lastIndex)
        let late = RaftMessage(
            group: 1, from: RaftCluster.id(leader), to: RaftCluster.id(follower), term: term,
            body: .forwardOutcome(requestID: 1, outcome: .appended(term: term, index: lastIndex + 1_000)))
        try Self.inject(late, to: follower, in: cluster)
        #expect(cluster.run(until: { cluster.acknowledged.count == 2 }, limit: .seconds(2)))
        // The put of 2 saw the 1 before it.
        let seen = cluster.acknowledged.last.map { try? KeyValueStateMachine.decodeResult($0.result) }
        #expect(seen == [1])
        #expect(cluster.failures.isEmpty)
        #expect(cluster.violations.isEmpty)
    }

    /// Before, each copy was proposed: the command was appended, and
    /// applied, twice.
    @Test("a forwarded proposal delivered twice is appended once; the copy is dropped and counted")
    func duplicateForward() throws {
        let (cluster, leader, follower) = try Self.settled(seed: 26)
        let before = try #require(cluster.rafts[leader]?.lastIndex)
        let term = try #require(cluster.rafts[leader]?.term)
        let forwarded = Self.forward(
            from: follower, to: leader, term: term, requestID: 77, command: KeyValueCommand.put(key: "k", value: [1]).encoded)
        try Self.inject(forwarded, to: leader, in: cluster, copies: 2)
        cluster.run(for: .milliseconds(200))
        #expect(cluster.rafts[leader]?.lastIndex == before + 1)
        #expect(cluster.rafts[leader]?.counters.forwardedProposalsReceived == 1)
        #expect(cluster.rafts[leader]?.counters.duplicateForwardsDropped == 1)
        #expect(cluster.violations.isEmpty)
    }

    /// A node remembers the forwards it handled in memory only. Before,
    /// a copy delayed past its restart was refused (the forwarder, still
    /// waiting, would report "not proposed" of a command that may commit)
    /// or, once the node led again, proposed a second time.
    @Test("a forward sent before the node it reaches restarted is dropped unanswered, while it follows and once it leads again")
    func forwardAcrossRestart() throws {
        let (cluster, leader, follower) = try Self.settled(seed: 27)
        let term = try #require(cluster.rafts[leader]?.term)
        let command = KeyValueCommand.put(key: "k", value: [1]).encoded
        let forwarded = Self.forward(from: follower, to: leader, term: term, requestID: 77, command: command)
        let copies = { (node: Int) -> Int in cluster.log(of: node).filter { $0.command == command }.count }
        try Self.inject(forwarded, to: leader, in: cluster)
        cluster.run(for: .milliseconds(200))
        #expect(copies(leader) == 1)

        cluster.crash(leader)
        try cluster.restart(leader)
        try Self.inject(forwarded, to: leader, in: cluster)
        cluster.run(for: .milliseconds(50))
        #expect(cluster.rafts[leader]?.counters.staleForwardsDropped == 1)
        #expect(cluster.rafts[leader]?.counters.forwardedProposalsReceived == 0)

        // It leads again (in a later term): whoever else leads, caught up
        // with, is crashed and restarted until it does.
        for _ in 0..<20 where cluster.leader != leader {
            #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(5)))
            cluster.run(for: .milliseconds(300))
            guard let other = cluster.leader, other != leader else { break }
            cluster.crash(other)
            cluster.run(until: { cluster.leader != nil }, limit: .seconds(5))
            try cluster.restart(other)
        }
        try #require(cluster.leader == leader)
        #expect(try #require(cluster.rafts[leader]?.term) > term)
        let dropped = try #require(cluster.rafts[leader]?.counters.staleForwardsDropped)
        try Self.inject(forwarded, to: leader, in: cluster)
        cluster.run(for: .milliseconds(200))
        #expect(cluster.rafts[leader]?.counters.staleForwardsDropped == dropped + 1)
        #expect(copies(leader) == 1)
        #expect(cluster.violations.isEmpty)
    }

    /// No forwarder sends one (it forwards to the leader of its own
    /// term). Refused, a copy could later be proposed by an incarnation
    /// that started below its term.
    @Test("a forward sent at a later term than the leader's is dropped as out of range, not proposed")
    func forwardFromALaterTerm() throws {
        let (cluster, leader, follower) = try Self.settled(seed: 28)
        let term = try #require(cluster.rafts[leader]?.term)
        let before = try #require(cluster.rafts[leader]?.lastIndex)
        let dropped = try #require(cluster.rafts[leader]?.counters.messagesDropped)
        let forwarded = Self.forward(
            from: follower, to: leader, term: term + 1, requestID: 78,
            command: KeyValueCommand.put(key: "k", value: [2]).encoded)
        try Self.inject(forwarded, to: leader, in: cluster)
        cluster.run(for: .milliseconds(200))
        #expect(cluster.rafts[leader]?.lastIndex == before)
        #expect(cluster.rafts[leader]?.counters.forwardedProposalsReceived == 0)
        #expect(cluster.rafts[leader]?.counters.messagesDropped == dropped + 1)
    }

    @Test("forwarding messages stepped into a replica (they are the driver's) are dropped and counted")
    func replicaRefusesForwarding() throws {
        var replica = try RaftReplica(id: NodeID(1), group: 1, peers: [NodeID(2)], storage: InMemoryRaftStorage(),
                                      seed: 1, now: Instant(nanoseconds: 0))
        for body: RaftMessage.Body in [.forwardedProposal(requestID: 1, command: [1]),
                                       .forwardOutcome(requestID: 1, outcome: .appended(term: 9, index: 9))] {
            replica.step(RaftMessage(group: 1, from: NodeID(2), to: NodeID(1), term: 9, body: body),
                         now: Instant(nanoseconds: 1))
        }
        #expect(replica.counters.messagesDropped == 2)
        #expect(replica.term == 0, "a forwarding message's term moves nothing")
    }
}
