@testable import CASPaxos
import EventCore
import Simulation
import Testing

/// One membership change at a time in the cluster: a change takes a
/// reserved register before its first step and empties it after its last,
/// so a second change started meanwhile, on any proposer, fails with
/// `.conflict` having changed nothing, unless it finishes or abandons the
/// change the register names.
@Suite("One membership change at a time")
struct MembershipChangeRecordTests {
    static func conflict(_ result: Result<Void, CASPaxosError>?) -> CASPaxosError? {
        if case .failure(let error) = result, error.code == .conflict { error } else { nil }
    }

    @Test("two changes started together on two proposers: one runs, the other fails and changes nothing", arguments: UInt64(1)...8)
    func concurrentChanges(seed: UInt64) throws {
        // Time enough for a change under loss and client load.
        var configuration = MembershipResumeTests.configuration
        configuration.maintenanceTimeout = .seconds(5)
        let cluster = try SimulatedCASCluster(
            seed: seed, proposerCount: 3, link: LinearizabilityTests.faultyLink, configuration: configuration)
        let network = cluster.network
        let keys = [Array("a".utf8), Array("b".utf8)]
        cluster.startClients(clientsPerProposer: 2, operations: 30, keys: keys, thinkTime: .milliseconds(30))
        network.run(for: .milliseconds(20))
        let original = cluster.acceptorNodes.map(\.localEndpoint)
        let x = cluster.addAcceptor().localEndpoint
        let y = cluster.addAcceptor().localEndpoint
        var results: [Result<Void, CASPaxosError>?] = [nil, nil]
        cluster.proposers[0].changeMembership(to: original + [x]) { results[0] = $0 }
        cluster.proposers[1].changeMembership(to: original + [y]) { results[1] = $0 }
        network.run(for: .seconds(6))

        let winners = results.indices.filter { MembershipResumeTests.succeeded(results[$0]) }
        #expect(winners.count == 1, "seed \(seed): \(results.map { String(describing: $0) })")
        guard winners.count == 1 else { return }
        // The loser found the winner's record (`.conflict`), or took the
        // register after the winner had emptied it and found no step from
        // the winner's configuration to its target (`.invalidRequest`).
        let (winner, loser) = (winners[0], 1 - winners[0])
        guard case .failure(let error) = results[loser] else {
            Issue.record("seed \(seed): \(String(describing: results[loser]))")
            return
        }
        switch error.code {
        case .conflict: #expect(error.detail.contains("is unfinished"), "\(error)")
        case .invalidRequest: #expect(error.detail.contains("adds or removes one acceptor"), "\(error)")
        default: Issue.record("seed \(seed): \(error)")
        }
        let installed = original + [winner == 0 ? x : y]
        for proposer in cluster.proposers {
            #expect(Set(proposer.proposer?.quorums.prepareAcceptors ?? []) == Set(installed), "seed \(seed)")
            #expect(proposer.proposer?.quorums.prepareAcceptors == proposer.proposer?.quorums.acceptAcceptors)
        }

        // The winner emptied the register: the loser's acceptor joins next.
        var next: Result<Void, CASPaxosError>?
        cluster.proposers[loser].changeMembership(to: installed + [loser == 0 ? x : y]) { next = $0 }
        network.run(for: .seconds(6))
        #expect(MembershipResumeTests.succeeded(next), "seed \(seed): \(String(describing: next))")
        #expect(cluster.proposers.allSatisfy { $0.proposer?.quorums.prepareAcceptors.count == 5 })
        LinearizabilityTests.expectLinearizable(cluster, seed: seed)
    }

    /// Three proposers, the third cut off from everyone, and an acceptor
    /// added to the network for a change to take in: the cluster, the
    /// acceptors in use and the new one.
    static func clusterWithLaggingProposer(seed: UInt64) throws
        -> (cluster: SimulatedCASCluster, original: [Endpoint], added: Endpoint)
    {
        let cluster = try SimulatedCASCluster(
            seed: seed, proposerCount: 3, configuration: MembershipResumeTests.configuration)
        let original = cluster.acceptorNodes.map(\.localEndpoint)
        let added = cluster.addAcceptor().localEndpoint
        let lagging = cluster.proposerNodes[2]
        cluster.network.partition([lagging], cluster.network.nodes.filter { $0 !== lagging })
        return (cluster, original, added)
    }

    @Test("a stopped change keeps the register: another change is refused until it is finished", arguments: UInt64(1)...3)
    func stoppedChangeHoldsTheRegister(seed: UInt64) throws {
        // The change takes the register, then waits for proposer 2 in its
        // first step until it times out.
        let (cluster, original, added) = try Self.clusterWithLaggingProposer(seed: seed)
        let network = cluster.network
        var first: Result<Void, CASPaxosError>?
        cluster.proposers[0].changeMembership(to: original + [added]) { first = $0 }
        network.run(for: .milliseconds(1_500))
        guard case .failure(let error) = first, error.code == .timeout else {
            Issue.record("seed \(seed): the change did not time out: \(String(describing: first))")
            return
        }
        network.heal()

        // Proposer 2, still in the start configuration, may start a change
        // there (removing an acceptor), but the register refuses it.
        let v = cluster.proposers[2].proposer!.quorums.version
        var refused: Result<Void, CASPaxosError>?
        cluster.proposers[2].changeMembership(to: Array(original.dropFirst())) { refused = $0 }
        network.run(for: .seconds(1))
        let conflict = try #require(Self.conflict(refused), "seed \(seed): \(String(describing: refused))")
        #expect(conflict.detail.contains("\(original + [added])"), "\(conflict)")
        #expect(cluster.proposers[2].proposer!.quorums.version == v)

        // Finished from proposer 2, then the removal runs.
        var finished: Result<Void, CASPaxosError>?
        cluster.proposers[2].changeMembership(to: original + [added]) { finished = $0 }
        network.run(for: .seconds(1))
        #expect(MembershipResumeTests.succeeded(finished), "seed \(seed): \(String(describing: finished))")
        var removal: Result<Void, CASPaxosError>?
        cluster.proposers[1].changeMembership(to: Array((original + [added]).dropFirst())) { removal = $0 }
        network.run(for: .seconds(1))
        #expect(MembershipResumeTests.succeeded(removal), "seed \(seed): \(String(describing: removal))")
        #expect(cluster.proposers.allSatisfy { $0.proposer?.quorums.prepareAcceptors.count == 3 })
    }

    /// The record in the register, as a majority's highest accepted value
    /// holds it (nil: the register is empty).
    static func record(in cluster: SimulatedCASCluster) -> MembershipChangeRecord? {
        let registers = cluster.memoryStores.compactMap { $0.snapshot.register(MembershipChangeRecord.key) }
        let latest = registers.max { $0.accepted < $1.accepted }
        return latest?.value.flatMap(MembershipChangeRecord.init(decoding:))
    }

    /// Two runs of one change shared its record: either emptied the
    /// register for both, and the run taken over (its proposer slow, not
    /// gone) could then start a new change beside the other, planning a
    /// configuration of the same version from another one.
    @Test("a change that takes over a running one's record writes its own run in it; the register ends empty")
    func takeoverNamesItsRun() throws {
        // Both runs wait for proposer 2 in their first step.
        let (cluster, original, added) = try Self.clusterWithLaggingProposer(seed: 3)
        let network = cluster.network
        var first: Result<Void, CASPaxosError>?
        cluster.proposers[0].changeMembership(to: original + [added]) { first = $0 }
        network.run(for: .milliseconds(200))
        let firstRun = try #require(Self.record(in: cluster)?.run)
        var second: Result<Void, CASPaxosError>?
        cluster.proposers[1].changeMembership(to: original + [added]) { second = $0 }
        network.run(for: .milliseconds(200))
        let taken = try #require(Self.record(in: cluster))
        #expect(taken.run != firstRun && taken.to == original + [added])
        network.heal()
        network.run(for: .seconds(2))
        // The run taken over finishes too, or stops where the other led
        // the proposers past its plan; either way it leaves the register to
        // the run that holds it.
        #expect(MembershipResumeTests.succeeded(first) || Self.conflict(first) != nil, "\(String(describing: first))")
        #expect(MembershipResumeTests.succeeded(second), "\(String(describing: second))")
        #expect(Self.record(in: cluster) == nil, "the register was not emptied")
        #expect(cluster.proposers.allSatisfy { $0.proposer?.quorums.prepareAcceptors.count == 4 })
    }

    @Test("the register's key is refused to proposals and garbage collection, and may be read")
    func reservedKey() throws {
        let acceptors = (1...3).map { Endpoint.loopbackV4(port: UInt16($0)) }
        var proposer = try Proposer(
            id: NodeID(9), quorums: .majority(of: acceptors), configuration: CASPaxosConfiguration(), seed: 9)
        var effects: [CASPaxosEffect] = []
        let key = MembershipChangeRecord.key
        #expect(throws: CASPaxosError(.invalidRequest, detail: "the key is reserved for membership changes")) {
            try proposer.propose(key: key, change: { _ in [1] }, now: .zero, into: &effects)
        }
        #expect(throws: CASPaxosError(.invalidRequest, detail: "the key is reserved for membership changes")) {
            try proposer.collectGarbage(key: key, proposers: [], now: .zero, into: &effects)
        }
        #expect(effects.isEmpty)
        try proposer.read(key: key, now: .zero, into: &effects)
        #expect(!effects.isEmpty)
    }

    @Test("a change whose record would not fit maximumValueSize is refused at once, definite; one that fits starts")
    func recordTooLarge() throws {
        let acceptors = (1...3).map { Endpoint.loopbackV4(port: UInt16($0)) }
        let target = acceptors + [.loopbackV4(port: 4)]
        // 1 + (1 + 3 × 7) + (1 + 4 × 7) + 8 = 60 bytes.
        for (limit, refused) in [(59, true), (60, false)] {
            var configuration = CASPaxosConfiguration()
            configuration.maximumValueSize = limit
            var proposer = try Proposer(id: NodeID(9), quorums: .majority(of: acceptors), configuration: configuration, seed: 9)
            var effects: [CASPaxosEffect] = []
            do {
                try proposer.changeMembership(to: target, proposers: [], now: .zero, into: &effects)
                #expect(!refused, "a \(limit)-byte limit took the change")
                #expect(!effects.isEmpty)
            } catch {
                #expect(refused, "a \(limit)-byte limit refused the change: \(error)")
                #expect(error.code == .invalidRequest)
                #expect(effects.isEmpty)
            }
        }
    }

    @Test("records round-trip; other bytes are not records")
    func recordCoding() {
        let record = MembershipChangeRecord(
            from: [.loopbackV4(port: 1), .loopbackV4(port: 2)], to: [.loopbackV4(port: 1), .loopbackV6(port: 3)],
            run: 0xDEAD_BEEF)
        #expect(MembershipChangeRecord(decoding: record.encoded) == record)
        // Format 1, written before records named their run: run 0.
        var legacy = record.encoded.dropLast(8)
        legacy[legacy.startIndex] = 1
        #expect(MembershipChangeRecord(decoding: Array(legacy)) == MembershipChangeRecord(from: record.from, to: record.to))
        #expect(record.allows([.loopbackV6(port: 3), .loopbackV4(port: 1)]))
        #expect(record.allows([.loopbackV4(port: 2), .loopbackV4(port: 1)]))
        #expect(!record.allows([.loopbackV4(port: 1)]))
        for bytes: [UInt8] in [[], [2], [1], [1, 0], [3, 0, 0], record.encoded + [0], Array(record.encoded.dropLast())] {
            #expect(MembershipChangeRecord(decoding: bytes) == nil, "\(bytes)")
        }
    }
}
