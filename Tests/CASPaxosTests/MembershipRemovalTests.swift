@testable import CASPaxos
import EventCore
import Simulation
import Testing

/// Removing acceptors one at a time from 5 down to 3 keeps every value.
@Suite("Membership removal")
struct MembershipRemovalTests {
    /// 3 → 4 → 5, a write taken by C, D and E only (3 of the 5), then
    /// 5 → 4 (E removed) and 4 → 3 (D removed) while C is slow to answer.
    /// Without the re-scan after 5 → 4 the value sat on C and D only, 2 of
    /// the 4; 4 → 3's intermediate configuration prepares on 2 of A, B
    /// and C, so its re-scan listed A and B, skipped the key, and a read
    /// that heard A and B returned nothing after the write returned [7].
    @Test("a value taken by 3 of 5 acceptors survives 5 → 4 → 3")
    func valueSurvivesTwoRemovals() throws {
        let key = Array("k".utf8)
        let cluster = try SimulatedCASCluster(seed: 42, proposerCount: 1)
        let proposer = cluster.proposerNodes[0]
        let three = cluster.acceptorNodes.map(\.localEndpoint)
        let (a, b, c) = (cluster.acceptorNodes[0], cluster.acceptorNodes[1], cluster.acceptorNodes[2])
        let d = cluster.addAcceptor()
        let e = cluster.addAcceptor()
        var results: [Result<Void, CASPaxosError>] = []
        func change(to acceptors: [Endpoint]) {
            cluster.proposers[0].changeMembership(to: acceptors) { results.append($0) }
            cluster.network.run(for: .milliseconds(300))
        }
        change(to: three + [d.localEndpoint])
        change(to: three + [d.localEndpoint, e.localEndpoint])
        cluster.network.block(from: proposer, to: a)
        cluster.network.block(from: proposer, to: b)
        #expect(
            cluster.outcome(of: .write([7]), key: key, client: 0, proposer: 0, within: .milliseconds(50)) == .ok([7]))
        cluster.network.heal()
        change(to: three + [d.localEndpoint])
        cluster.network.block(from: proposer, to: c)
        change(to: three)
        #expect(results.count == 4)
        #expect(results.allSatisfy { if case .success = $0 { true } else { false } }, "\(results)")
        let quorums = try #require(cluster.proposers[0].proposer?.quorums)
        #expect(quorums == .majority(of: three, version: quorums.version))
        // C still unreachable: the read hears A and B only.
        #expect(cluster.outcome(of: .read, key: key, client: 1, proposer: 0, within: .milliseconds(100)) == .ok([7]))
        #expect(cluster.check() == .linearizable)
    }

    @Test("2F+3 → 2F+2 plans the last step and a re-scan; 2F+2 → 2F+3 an intermediate configuration and a re-scan of the new acceptor; an even final again re-scans; every plan ends with the fence of its final version")
    func plannedSteps() throws {
        let endpoints = (1...5).map { Endpoint.loopbackV4(port: UInt16($0)) }
        let (four, five) = (Array(endpoints[0..<4]), endpoints)
        func steps(from quorums: AcceptorQuorums, to target: [Endpoint]) throws -> [MaintenanceTask.Step] {
            let proposer = try Proposer(id: NodeID(1), quorums: quorums, configuration: CASPaxosConfiguration(), seed: 1)
            return try proposer.membershipSteps(to: target)
        }
        func expectFence(_ steps: [MaintenanceTask.Step], _ version: UInt64) {
            // The fence of the final configuration, which it carries.
            let final = steps.compactMap { if case .reconfigure(let q) = $0 { q } else { nil } }.last
            if case .raiseMinimumVersion(let fenced) = steps.last, fenced.version == version, fenced == final {} else {
                Issue.record("no fence of the final configuration at \(version): \(steps)")
            }
        }
        let removal = try steps(from: .majority(of: five, version: 4), to: four)
        #expect(removal.count == 3)
        if case .reconfigure(let final) = removal.first { #expect(final == .majority(of: four, version: 6)) } else { Issue.record("\(removal)") }
        if case .rescan = removal[1] {} else { Issue.record("\(removal)") }
        expectFence(removal, 6)
        // 2F+2 → 2F+3: prepares stay on the 2F+2 while the new acceptor's
        // keys are re-written (RejoinTests).
        let addition = try steps(from: .majority(of: four, version: 2), to: five)
        #expect(addition.count == 4)
        if case .reconfigure(let intermediate) = addition.first {
            #expect(intermediate == AcceptorQuorums(version: 3, prepareAcceptors: four, prepareQuorum: 3, acceptAcceptors: five, acceptQuorum: 3))
        } else { Issue.record("\(addition)") }
        if case .rescan(let joining) = addition[1] { #expect(joining == [endpoints[4]]) } else { Issue.record("\(addition)") }
        if case .reconfigure(let final) = addition[2] { #expect(final == .majority(of: five, version: 4)) } else { Issue.record("\(addition)") }
        expectFence(addition, 4)
        let again = try steps(from: .majority(of: four, version: 6), to: four)
        #expect(again.count == 3)
        if case .rescan = again[1] {} else { Issue.record("\(again)") }
        expectFence(again, 6)
        #expect(try steps(from: .majority(of: Array(endpoints[0..<3])), to: Array(endpoints[0..<3])).count == 2)
    }
}
