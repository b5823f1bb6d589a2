@testable import CASPaxos
import EventCore
import Simulation
import Testing

/// A membership change that passes its deadline leaves the proposers where
/// it stopped; calling `changeMembership` again with the same acceptors
/// finishes it from there (or, from the intermediate configuration, with
/// the acceptors it started from, abandons it).
@Suite("Resuming a membership change that timed out")
struct MembershipResumeTests {
    /// Where the change is stopped, and how it is taken up again.
    enum Stop: CaseIterable, CustomStringConvertible {
        /// A proposer is cut off from the start: the first step waits for
        /// it. Resumed on that proposer, still in the start configuration.
        case firstStep
        /// Two of the three original acceptors are cut off: no prepare
        /// quorum lists the keys. Resumed on the driver, in the
        /// intermediate configuration.
        case rescan
        /// A proposer is cut off as the last step starts. Resumed on the
        /// driver (in the final configuration) for even seeds, on the
        /// proposer cut off (in the intermediate one) for odd seeds.
        case lastStep
        /// As `rescan`, then taken back to the original acceptors from the
        /// intermediate configuration by another proposer.
        case abandoned
        /// As `firstStep`, then taken back to the original acceptors by the
        /// proposer cut off, still in the start configuration while the
        /// others are in the intermediate one.
        case abandonedFromStart

        var description: String {
            switch self {
            case .firstStep: "first step"
            case .rescan: "re-scan"
            case .lastStep: "last step"
            case .abandoned: "abandoned"
            case .abandonedFromStart: "abandoned from the start"
            }
        }
    }

    static var configuration: CASPaxosConfiguration {
        var configuration = CASPaxosConfiguration()
        configuration.maintenanceTimeout = .seconds(1)
        configuration.maintenanceRetryInterval = .milliseconds(20)
        return configuration
    }

    /// ``configuration`` with the maintenance timeout above the proposal
    /// timeout (2 s), as the default is, for a change under clients' load:
    /// a re-write waits for the client's proposal running on its key,
    /// which on a hot key may retry until its deadline (seed 117 of the
    /// last step timed out so in its re-scan, with 1 s).
    static var loadedConfiguration: CASPaxosConfiguration {
        var configuration = Self.configuration
        configuration.maintenanceTimeout = .milliseconds(2_500)
        return configuration
    }

    /// Runs `action` once `condition` holds, looking every 10 µs of
    /// virtual time (well under the shortest message delay), while
    /// `isWaiting` holds: a stop meant for one run must not fire in the
    /// next (a change that stopped earlier than planned would be cut off
    /// again while it is resumed).
    static func when(
        _ network: SimulatedNetwork, while isWaiting: @escaping () -> Bool, _ condition: @escaping () -> Bool,
        then action: @escaping () -> Void
    ) {
        network.schedule(at: network.now + .microseconds(10)) { _ in
            guard isWaiting() else { return }
            if condition() { action() } else { when(network, while: isWaiting, condition, then: action) }
        }
    }

    /// Whether proposer 0's membership change is in a `.reconfigure` step
    /// with `stepsLeft` steps left, that one included.
    static func isRunning(_ cluster: SimulatedCASCluster, stepsLeft: Int) -> Bool {
        cluster.proposers[0].proposer!.tasks.values.contains { task in
            guard task.steps.count == stepsLeft, case .reconfigure = task.steps.first else { return false }
            return true
        }
    }

    static func succeeded(_ result: Result<Void, CASPaxosError>?) -> Bool {
        if case .success = result { true } else { false }
    }

    @Test(
        "3 → 4 stopped by a partition, finished after the heal under concurrent proposals, then 4 → 5",
        arguments: Stop.allCases, UInt64(1)...5)
    func resume(stop: Stop, seed: UInt64) throws {
        let cluster = try SimulatedCASCluster(
            seed: seed, proposerCount: 3, link: LinearizabilityTests.faultyLink, configuration: Self.loadedConfiguration)
        let network = cluster.network
        let keys = [Array("a".utf8), Array("b".utf8)]
        for key in keys { cluster.perform(.write([0]), key: key, client: 99, proposer: 0) }
        network.run(for: .milliseconds(50))
        cluster.startClients(clientsPerProposer: 2, operations: 40, keys: keys, thinkTime: .milliseconds(40))
        let original = cluster.acceptorNodes.map(\.localEndpoint)
        let target = original + [cluster.addAcceptor().localEndpoint]
        let v = cluster.proposers[0].proposer!.quorums.version
        let lagging = cluster.proposerNodes[2]
        let others = { network.nodes.filter { $0 !== lagging } }
        // The first run lasts until the change fails: a stop times out a
        // maintenance timeout after the change's last progress, which on
        // faulty links can come late (5 s bounds a change that never
        // stops).
        var first: Result<Void, CASPaxosError>?
        let firstRunBound = network.now + .seconds(5)
        let isRunning = { first == nil && network.now < firstRunBound }
        switch stop {
        case .firstStep, .abandonedFromStart:
            network.partition([lagging], others())
        case .rescan, .abandoned:
            // Once the change has taken the membership-change register and
            // sent the intermediate configuration (steps left: that, the
            // re-scan, the final, the fence, the release).
            let cut = Array(cluster.acceptorNodes[0..<2])
            Self.when(network, while: isRunning, { Self.isRunning(cluster, stepsLeft: 5) }) {
                network.partition(cut, network.nodes.filter { node in !cut.contains { $0 === node } })
            }
        case .lastStep:
            // The final configuration goes out as the last step but the
            // fence and the release; the copy to proposer 2 is still on the
            // wire and is dropped.
            Self.when(network, while: isRunning, { Self.isRunning(cluster, stepsLeft: 3) }) {
                network.partition([lagging], others())
            }
        }
        cluster.proposers[0].changeMembership(to: target) { first = $0 }
        while isRunning() { network.run(for: .milliseconds(10)) }
        guard case .failure(let error) = first else {
            Issue.record("seed \(seed), \(stop): the change did not time out: \(String(describing: first))")
            return
        }
        #expect(error.detail.contains("call changeMembership(to:) again"), "\(error)")

        // Where the change left each proposer: the start (v), the
        // intermediate (v + 1) or the final (v + 2) configuration.
        let stopped = cluster.proposers.map { $0.proposer!.quorums.version }
        let expected: [UInt64] =
            switch stop {
            case .firstStep, .abandonedFromStart: [v + 1, v + 1, v]
            case .rescan, .abandoned: [v + 1, v + 1, v + 1]
            case .lastStep: [v + 2, v + 2, v + 1]
            }
        #expect(stopped == expected, "seed \(seed), \(stop)")

        network.heal()
        let (resumer, resumeTarget, finalVersion): (Int, [Endpoint], UInt64) =
            switch stop {
            case .firstStep: (2, target, v + 2)  // the same change again, same versions
            case .rescan: (0, target, v + 4)  // the intermediate at v + 3, the final at v + 4
            case .lastStep: seed % 2 == 0 ? (0, target, v + 2) : (2, target, v + 4)
            case .abandoned: (1, original, v + 4)
            // As from the intermediate: its copy at v + 3, the start's
            // acceptors at v + 4.
            case .abandonedFromStart: (2, original, v + 4)
            }
        // A client on every proposer writes while the change is resumed
        // (the first ones may be done by now: the first run lasts until the
        // change times out). Started first, each has an operation under
        // way when the resume starts, and pauses less than the shortest
        // resume (about 30 ms) between operations.
        let firstResumeClient = 3 * 2
        cluster.startClients(
            clientsPerProposer: 1, operations: 40, keys: keys, thinkTime: .milliseconds(20),
            firstClient: firstResumeClient)
        network.run(for: .milliseconds(25))
        let resumeStarts = network.now
        var second: Result<Void, CASPaxosError>?
        var resumeEnds = Instant.distantFuture
        cluster.proposers[resumer].changeMembership(to: resumeTarget) {
            second = $0
            resumeEnds = network.now
        }
        network.run(for: .seconds(2))
        #expect(Self.succeeded(second), "seed \(seed), \(stop): \(String(describing: second))")
        let concurrent = cluster.history.operations.filter { operation in
            let ended: Bool = if case .unknown = operation.outcome { false } else { operation.completed < resumeStarts }
            return (firstResumeClient..<firstResumeClient + 3).contains(operation.client) && operation.invoked < resumeEnds && !ended
        }
        #expect(
            Set(concurrent.map(\.client)).count == 3,
            "seed \(seed), \(stop): clients \(Set(concurrent.map(\.client))) ran operations during the resume")
        for proposer in cluster.proposers {
            #expect(proposer.proposer?.quorums == .majority(of: resumeTarget, version: finalVersion), "seed \(seed), \(stop)")
        }

        // The cluster goes on from there as from any majority configuration.
        let next =
            resumeTarget == original ? target : resumeTarget + [cluster.addAcceptor().localEndpoint]
        var third: Result<Void, CASPaxosError>?
        cluster.proposers[1].changeMembership(to: next) { third = $0 }
        network.run(for: .seconds(2))
        #expect(Self.succeeded(third), "seed \(seed), \(stop): \(String(describing: third))")
        #expect(cluster.proposers.allSatisfy { Set($0.proposer?.quorums.prepareAcceptors ?? []) == Set(next) })
        LinearizabilityTests.expectLinearizable(cluster, seed: seed)
    }

    /// A proposer cut off through a change's first step and through a
    /// resume from the intermediate configuration is two steps behind the
    /// others. Finishing the change from where it is would re-send
    /// versions they have passed: they refuse (acknowledged, the change
    /// would report success and leave them behind, its next change reusing
    /// their version for another configuration) and the call fails;
    /// resumed on a proposer in the newest configuration, it goes on.
    @Test("a change planned from behind is refused by the proposers past it, and goes on from theirs", arguments: UInt64(1)...3)
    func plannedFromBehind(seed: UInt64) throws {
        let cluster = try SimulatedCASCluster(
            seed: seed, proposerCount: 3, link: LinearizabilityTests.faultyLink, configuration: Self.configuration)
        let network = cluster.network
        let keys = [Array("a".utf8), Array("b".utf8)]
        cluster.startClients(clientsPerProposer: 2, operations: 40, keys: keys, thinkTime: .milliseconds(60))
        let target = cluster.acceptorNodes.map(\.localEndpoint) + [cluster.addAcceptor().localEndpoint]
        let v = cluster.proposers[0].proposer!.quorums.version
        let lagging = cluster.proposerNodes[2]
        network.partition([lagging], network.nodes.filter { $0 !== lagging })
        var results: [Result<Void, CASPaxosError>] = []
        for _ in 0..<2 {
            cluster.proposers[0].changeMembership(to: target) { results.append($0) }
            network.run(for: .milliseconds(1_500))
        }
        #expect(results.count == 2 && !results.contains(where: Self.succeeded), "\(results)")
        #expect(cluster.proposers.map { $0.proposer!.quorums.version } == [v + 3, v + 3, v], "seed \(seed)")

        network.heal()
        var behind: Result<Void, CASPaxosError>?
        cluster.proposers[2].changeMembership(to: target) { behind = $0 }
        network.run(for: .seconds(1))
        guard case .failure(let error) = behind else {
            Issue.record("seed \(seed): the change from behind did not fail: \(String(describing: behind))")
            return
        }
        #expect(error.code == .conflict && error.detail.contains("does not lead to"), "\(error)")
        // Nothing adopted from the refusal: proposer 2 is where it was, or
        // in its own first step (if that reached it before the refusal).
        let versions = cluster.proposers.map { $0.proposer!.quorums.version }
        #expect(versions[0...1] == [v + 3, v + 3] && versions[2] <= v + 1, "seed \(seed): \(versions)")
        #expect(cluster.proposers[2].counters.proposer.configurationsRefused == 0)
        // The first refusal to arrive stops the change: proposer 0's, 1's
        // or both (over lossy links).
        #expect(cluster.proposers[0..<2].map(\.counters.proposer.configurationsRefused).reduce(0, +) > 0)

        var resumed: Result<Void, CASPaxosError>?
        cluster.proposers[0].changeMembership(to: target) { resumed = $0 }
        network.run(for: .seconds(2))
        #expect(Self.succeeded(resumed), "seed \(seed): \(String(describing: resumed))")
        for proposer in cluster.proposers {
            #expect(proposer.proposer?.quorums == .majority(of: target, version: v + 6), "seed \(seed)")
        }
        LinearizabilityTests.expectLinearizable(cluster, seed: seed)
    }

    @Test("a proposer refuses a configuration below its own or another at its version, not its own in another order")
    func refusals() throws {
        let (a, b, c, d) = (Self.acceptors[0], Self.acceptors[1], Self.acceptors[2], Self.acceptors[3])
        var proposer = try Proposer(
            id: NodeID(1), quorums: .majority(of: [a, b, c], version: 3), configuration: Self.configuration, seed: 1)
        func answer(to sent: AcceptorQuorums) -> CASPaxosMessage? {
            var effects: [CASPaxosEffect] = []
            proposer.receive(.reconfigure(requestID: 7, quorums: sent), from: Self.me, now: .zero, into: &effects)
            for case .send(let message, _) in effects { return message }
            return nil
        }
        let own = AcceptorQuorums.majority(of: [a, b, c], version: 3)
        #expect(answer(to: .majority(of: [c, a, b], version: 3)) == .acknowledged(requestID: 7))
        #expect(answer(to: .majority(of: [a, b, d], version: 3)) == .configurationRefused(requestID: 7, current: own))
        #expect(answer(to: .majority(of: [a, b, c], version: 2)) == .configurationRefused(requestID: 7, current: own))
        #expect(proposer.counters.configurationsRefused == 2)
        #expect(answer(to: .majority(of: [a, b, d], version: 4)) == .acknowledged(requestID: 7))
        #expect(proposer.quorums == .majority(of: [a, b, d], version: 4))
    }

    // MARK: The steps a call plans, by configuration

    static let acceptors = (1...5).map { Endpoint.loopbackV4(port: UInt16($0)) }
    static let me = Endpoint.loopbackV4(port: 100)

    /// The configurations the first step of `changeMembership(to:)` sends,
    /// from a proposer in `quorums`.
    static func firstStep(from quorums: AcceptorQuorums, to target: [Endpoint]) throws(CASPaxosError) -> AcceptorQuorums? {
        let proposer = try! Proposer(id: NodeID(1), quorums: quorums, configuration: configuration, seed: 1)
        for case .reconfigure(let sent) in try proposer.membershipSteps(to: target) { return sent }
        return nil
    }

    @Test("from the start, the intermediate or the final configuration, a call plans the step reached")
    func plannedSteps() throws {
        let three = Array(Self.acceptors[0..<3])
        let four = Array(Self.acceptors[0..<4])
        let intermediate = AcceptorQuorums(
            version: 8, prepareAcceptors: three, prepareQuorum: 2, acceptAcceptors: four, acceptQuorum: 3)
        // From the start: the intermediate at the next version.
        #expect(try Self.firstStep(from: .majority(of: three, version: 7), to: four) == intermediate)
        // From the intermediate (version 8; its final, 9, may be out):
        // the intermediate again at 10, either way.
        var again = intermediate
        again.version = 10
        #expect(try Self.firstStep(from: intermediate, to: four) == again)
        #expect(try Self.firstStep(from: intermediate, to: three.reversed()) == again)
        // From the final: the final again, at its own version.
        #expect(try Self.firstStep(from: .majority(of: four, version: 9), to: four) == .majority(of: four, version: 9))

        // Targets that no step leads to are refused, as is a second change.
        let invalid: [(AcceptorQuorums, [Endpoint])] = [
            (intermediate, Array(Self.acceptors[0..<5])),
            (intermediate, Array(Self.acceptors[1..<4])),
            (.majority(of: three), Array(Self.acceptors[0..<5])),
            (.majority(of: three), [Self.acceptors[0], Self.acceptors[0], Self.acceptors[1], Self.acceptors[2]]),
            (
                AcceptorQuorums(version: 1, prepareAcceptors: three, prepareQuorum: 3, acceptAcceptors: three, acceptQuorum: 1),
                four
            ),
        ]
        for (quorums, target) in invalid {
            #expect(throws: CASPaxosError.self) { try Self.firstStep(from: quorums, to: target) }
        }
        // Changes to configurations that do not validate: no acceptor left,
        // or 256. Planned, the last acceptor's removal adopted a
        // configuration of none, which failed every proposal and left a
        // record in the acceptor's log that no restart could read.
        let many = (1...256).map { Endpoint.loopbackV4(port: UInt16($0)) }
        for (quorums, target) in [(AcceptorQuorums.majority(of: [Self.acceptors[0]]), []),
                                  (.majority(of: Array(many.dropLast())), many)] {
            let error = #expect(throws: CASPaxosError.self) { try Self.firstStep(from: quorums, to: target) }
            #expect(error?.code == .invalidRequest && error?.detail.contains("invalid configuration") == true)
        }

        // Abandoning, from the start configuration, a change whose first
        // step the others may have taken: planned from that step.
        let five = Array(Self.acceptors[0..<5])
        func reconfigurations(from quorums: AcceptorQuorums, to target: [Endpoint], holding held: MembershipChangeRecord)
            throws -> [AcceptorQuorums]
        {
            let proposer = try Proposer(id: NodeID(1), quorums: quorums, configuration: Self.configuration, seed: 1)
            return try proposer.membershipSteps(to: target, holding: held).compactMap {
                if case .reconfigure(let sent) = $0 { sent } else { nil }
            }
        }
        // 3 → 4: its intermediate was at 8, so its copy at 10, then the
        // three at 11.
        #expect(
            try reconfigurations(from: .majority(of: three, version: 7), to: three, holding: .init(from: three, to: four))
                == [again, .majority(of: three, version: 11)])
        // 5 → 4, the last step alone: the four were at 9, so back as an
        // addition (its intermediate at 10), the five at 11.
        #expect(
            try reconfigurations(from: .majority(of: five, version: 7), to: five, holding: .init(from: five, to: four))
                == [Proposer.intermediate(from: four, to: five, version: 10), .majority(of: five, version: 11)])
        // Finishing from the start, and the register's own fresh record:
        // planned as without a record.
        #expect(
            try reconfigurations(from: .majority(of: three, version: 7), to: four, holding: .init(from: three, to: four))
                == [intermediate, .majority(of: four, version: 9)])
        #expect(
            try reconfigurations(from: .majority(of: three, version: 7), to: three, holding: .init(from: three, to: three))
                == [.majority(of: three, version: 7)])
        var proposer = try Proposer(id: NodeID(1), quorums: .majority(of: three), configuration: Self.configuration, seed: 1)
        var effects: [CASPaxosEffect] = []
        try proposer.changeMembership(to: four, proposers: [Self.me], now: .zero, into: &effects)
        #expect(throws: CASPaxosError.self) {
            try proposer.changeMembership(to: four, proposers: [Self.me], now: .zero, into: &effects)
        }
    }
}
