@testable import CASPaxos
import EventCore
import Simulation
import Testing

/// The configuration digest beside the version (``ConfigurationVersion``):
/// a proposer given another configuration of the fence's version by hand
/// is refused as one of an older version is.
@Suite("Configuration digest")
struct ConfigurationDigestTests {
    static let endpoints = (1...4).map { Endpoint.loopbackV4(port: UInt16($0)) }
    static let proposer = Endpoint.loopbackV4(port: 9)
    static let key = Array("k".utf8)
    static let ballot = Ballot(counter: 3, proposer: NodeID(7))

    @Test("the digest ignores the order acceptors are listed in, and tells sets and quorum sizes apart")
    func digest() {
        let abc = AcceptorQuorums.majority(of: Array(Self.endpoints[0..<3]), version: 5)
        let cba = AcceptorQuorums.majority(of: Array(Self.endpoints[0..<3].reversed()), version: 5)
        #expect(abc.digest == cba.digest && abc.isSameConfiguration(as: cba))
        #expect(abc.configurationVersion == ConfigurationVersion(5, digest: abc.digest))
        #expect(AcceptorQuorums.majority(of: Array(Self.endpoints[0..<3]), version: 6).digest == abc.digest, "the version is beside it")
        let others = [
            AcceptorQuorums.majority(of: Array(Self.endpoints[1..<4]), version: 5),
            AcceptorQuorums.majority(of: Array(Self.endpoints[0..<4]), version: 5),
            AcceptorQuorums(
                version: 5, prepareAcceptors: Array(Self.endpoints[0..<3]), prepareQuorum: 3,
                acceptAcceptors: Array(Self.endpoints[0..<3]), acceptQuorum: 1),
            Proposer.intermediate(from: Array(Self.endpoints[0..<3]), to: Array(Self.endpoints[0..<4]), version: 5),
        ]
        let digests = Set([abc.digest] + others.map(\.digest))
        #expect(digests.count == others.count + 1 && !digests.contains(0), "\(digests)")
    }

    /// An acceptor fenced at `fence`; what it answers to a prepare and an
    /// accept of `version`.
    static func answers(fencedAt fence: ConfigurationVersion, to version: ConfigurationVersion) throws -> [CASPaxosEffect] {
        var acceptor = try Acceptor(recovering: AcceptorSnapshot(minimumVersion: fence), configuration: CASPaxosConfiguration())
        var effects: [CASPaxosEffect] = []
        acceptor.receive(
            .prepare(requestID: 1, key: Self.key, ballot: Self.ballot, age: 0, version: version), from: Self.proposer,
            into: &effects)
        acceptor.receive(
            .accept(requestID: 2, key: Self.key, ballot: Self.ballot, age: 0, value: [1], nextBallot: nil, version: version),
            from: Self.proposer, into: &effects)
        return effects
    }

    static func isRefused(_ effects: [CASPaxosEffect], naming fence: ConfigurationVersion) -> Bool {
        guard effects.count == 2 else { return false }
        return effects.enumerated().allSatisfy { index, effect in
            if case .send(.staleConfiguration(UInt64(index + 1), fence), Self.proposer) = effect { true } else { false }
        }
    }

    @Test("a fenced acceptor refuses another configuration of its version, takes its own and newer ones, and with an unknown digest takes any of its version")
    func acceptorChecksTheDigest() throws {
        let fence = ConfigurationVersion(5, digest: 0xA)
        #expect(Self.isRefused(try Self.answers(fencedAt: fence, to: ConfigurationVersion(5, digest: 0xB)), naming: fence))
        #expect(Self.isRefused(try Self.answers(fencedAt: fence, to: ConfigurationVersion(4, digest: 0xA)), naming: fence))
        for passing in [fence, ConfigurationVersion(6, digest: 0xB)] {
            let effects = try Self.answers(fencedAt: fence, to: passing)
            #expect(!effects.contains { if case .send(.staleConfiguration, _) = $0 { true } else { false } }, "\(passing): \(effects)")
        }
        let unknown = ConfigurationVersion(5, digest: 0)
        let effects = try Self.answers(fencedAt: unknown, to: ConfigurationVersion(5, digest: 0xB))
        #expect(!effects.contains { if case .send(.staleConfiguration, _) = $0 { true } else { false } }, "\(effects)")
    }

    @Test("a fence of the same version completes an unknown digest, durably before the answer, and never replaces a known one")
    func fenceLearnsItsDigest() throws {
        var acceptor = try Acceptor(
            recovering: AcceptorSnapshot(minimumVersion: ConfigurationVersion(5, digest: 0)), configuration: CASPaxosConfiguration())
        var effects: [CASPaxosEffect] = []
        let digested = ConfigurationVersion(5, digest: 0xA)
        acceptor.receive(.setMinimumVersion(requestID: 1, version: digested), from: Self.proposer, into: &effects)
        guard effects.count == 2, case .persist(.minimumVersion(digested)) = effects[0],
            case .send(.acknowledged(1), Self.proposer) = effects[1]
        else {
            Issue.record("not recorded before the acknowledgement: \(effects)")
            return
        }
        effects.removeAll()
        acceptor.receive(
            .listKeys(requestID: 2, after: nil, raisingFloorTo: nil, minimumVersion: ConfigurationVersion(5, digest: 0xB)),
            from: Self.proposer, into: &effects)
        acceptor.receive(
            .setMinimumVersion(requestID: 3, version: ConfigurationVersion(5, digest: 0xB)), from: Self.proposer,
            into: &effects)
        #expect(!effects.contains { if case .persist = $0 { true } else { false } }, "\(effects)")
        #expect(acceptor.snapshot.minimumVersion == digested)
    }

    @Test("a proposer refused for another configuration of its own version fails at once, definitely, saying so; one that passes the fence ignores the refusal")
    func proposerFailsOnAnotherDigest() throws {
        var (proposer, proposal, request) = try ConfigurationFenceTests.proposerWithPrepare()
        let own = proposer.quorums.configurationVersion
        #expect(own.number == 1 && own.digest == proposer.quorums.digest)
        var effects: [CASPaxosEffect] = []
        // Its own fence (a delayed refusal it passes now) changes nothing.
        proposer.receive(
            .staleConfiguration(requestID: request, minimumVersion: own), from: ConfigurationFenceTests.acceptors[0],
            now: ConfigurationFenceTests.now, into: &effects)
        #expect(effects.isEmpty && proposer.pendingCount == 1 && proposer.counters.staleReplies == 1)
        let other = ConfigurationVersion(1, digest: own.digest &+ 1)
        proposer.receive(
            .staleConfiguration(requestID: request, minimumVersion: other), from: ConfigurationFenceTests.acceptors[1],
            now: ConfigurationFenceTests.now, into: &effects)
        let error = try #require(ConfigurationFenceTests.failure(of: proposal, in: effects), "\(effects)")
        #expect(error.code == .staleConfiguration && !error.isIndeterminate)
        #expect(error.detail.contains("another configuration of version 1") && error.detail.contains("by hand"), "\(error)")
        #expect(error.detail.contains("Restart it") && !error.detail.contains("call changeMembership"), "a change would stop at it")
        #expect(proposer.counters.staleConfigurationRefusals == 1 && proposer.pendingCount == 0)
    }

    /// The case the digest is for. A change removes A (3 → 4 → 3: D in,
    /// A out); A still runs. An operator restarts proposer Q on a majority
    /// of {A, B, C} rebuilt at the cluster's version. P writes the key to
    /// C and D; Q, cut off from C, would read it from A and B, which never
    /// held it, and return nothing: a stale read the checker would reject.
    /// B, fenced at the cluster's configuration, refuses Q's, and the read
    /// fails at once, definitely.
    @Test("a proposer restarted on a configuration rebuilt by hand at the cluster's version is refused, and reads nothing stale")
    func handBuiltConfigurationIsRefused() throws {
        let cluster = try SimulatedCASCluster(seed: 7)
        let (a, b, c) = (cluster.acceptorNodes[0], cluster.acceptorNodes[1], cluster.acceptorNodes[2])
        let (p, q) = (cluster.proposerNodes[0], cluster.proposerNodes[1])
        let d = cluster.addAcceptor()
        var results: [Result<Void, CASPaxosError>] = []
        for target in [[a, b, c, d], [b, c, d]] {
            cluster.proposers[0].changeMembership(to: target.map(\.localEndpoint)) { results.append($0) }
            cluster.network.run(for: .milliseconds(300))
        }
        #expect(results.count == 2 && results.allSatisfy { if case .success = $0 { true } else { false } }, "\(results)")
        let adopted = try #require(cluster.proposers[0].proposer?.quorums)
        #expect(Set(adopted.prepareAcceptors) == Set([b, c, d].map(\.localEndpoint)))
        #expect(cluster.acceptors[1]?.acceptor?.snapshot.minimumVersion == adopted.configurationVersion)

        let handBuilt = AcceptorQuorums.majority(of: [a, b, c].map(\.localEndpoint), version: adopted.version)
        cluster.restartProposer(1, on: handBuilt)
        cluster.network.run(for: .milliseconds(10))
        #expect(cluster.proposers[1].proposer?.quorums == handBuilt)

        cluster.network.block(from: p, to: b)
        #expect(cluster.outcome(of: .write([1]), key: Self.key, client: 0, proposer: 0, within: .milliseconds(100)) == .ok([1]))
        cluster.network.block(from: q, to: c)
        #expect(cluster.outcome(of: .read, key: Self.key, client: 1, proposer: 1, within: .milliseconds(100)) == .failed)
        var refused: CASPaxosError?
        cluster.proposers[1].propose(key: Self.key, change: { _ in [2] }) { result in
            if case .failure(let error) = result { refused = error }
        }
        cluster.network.run(for: .milliseconds(100))
        #expect(refused?.code == .staleConfiguration && refused?.isIndeterminate == false, "\(String(describing: refused))")
        #expect(refused?.detail.contains("another configuration of version \(adopted.version)") == true)
        #expect(cluster.check() == .linearizable)
        // P, on the cluster's configuration, still reads the value.
        #expect(cluster.outcome(of: .read, key: Self.key, client: 2, proposer: 0, within: .milliseconds(100)) == .ok([1]))
        // A change that lists Q stops at it (Q refuses the change's
        // configuration of its own version), and says why.
        cluster.network.unblock(from: p, to: b)
        cluster.network.unblock(from: q, to: c)
        var stopped: Result<Void, CASPaxosError>?
        cluster.proposers[0].changeMembership(to: adopted.prepareAcceptors) { stopped = $0 }
        cluster.network.run(for: .milliseconds(300))
        guard case .failure(let error)? = stopped else {
            Issue.record("the change did not stop at Q: \(String(describing: stopped))")
            return
        }
        #expect(error.detail.contains("another configuration of version \(adopted.version)") && error.detail.contains("by hand"), "\(error)")
        #expect(cluster.proposers[1].proposer?.quorums == handBuilt, "Q adopted nothing")
    }

    /// After an upgrade, acceptors hold the fence with an unknown digest
    /// (a version-4 log). A change to the current acceptors sends the
    /// fence again, with its digest: from then on a configuration rebuilt
    /// by hand at that version is refused, while the same configuration
    /// with its acceptors listed in another order is not.
    @Test("a change to the current acceptors gives an upgraded fence its digest; the acceptors' order does not matter")
    func changeToSameAcceptorsCompletesTheFence() throws {
        let cluster = try SimulatedCASCluster(seed: 11, proposerCount: 3)
        let (a, b, c) = (cluster.acceptorNodes[0], cluster.acceptorNodes[1], cluster.acceptorNodes[2])
        let d = cluster.addAcceptor()
        var results: [Result<Void, CASPaxosError>] = []
        cluster.proposers[0].changeMembership(to: [a, b, c, d].map(\.localEndpoint)) { results.append($0) }
        cluster.network.run(for: .milliseconds(300))
        let adopted = try #require(cluster.proposers[0].proposer?.quorums)
        #expect(Set(adopted.prepareAcceptors) == Set([a, b, c, d].map(\.localEndpoint)))
        for index in 0..<4 {
            var snapshot = try cluster.store(index).load()
            #expect(snapshot.minimumVersion.number == adopted.version)
            snapshot.minimumVersion.digest = 0
            cluster.restartAcceptor(index, from: snapshot)
        }
        // Q: the cluster's configuration, its acceptors listed backwards.
        cluster.restartProposer(1, on: .majority(of: adopted.prepareAcceptors.reversed(), version: adopted.version))
        cluster.network.run(for: .milliseconds(10))
        cluster.proposers[0].changeMembership(to: adopted.prepareAcceptors) { results.append($0) }
        cluster.network.run(for: .milliseconds(300))
        #expect(results.count == 2 && results.allSatisfy { if case .success = $0 { true } else { false } }, "\(results)")
        let fenced = (0..<4).compactMap { cluster.acceptors[$0]?.acceptor?.snapshot.minimumVersion }
        #expect(fenced.filter { $0 == adopted.configurationVersion }.count >= 3, "a prepare quorum: \(fenced)")
        #expect(cluster.outcome(of: .write([1]), key: Self.key, client: 0, proposer: 1, within: .milliseconds(200)) == .ok([1]))
        #expect(cluster.proposers[1].proposer?.counters.staleConfigurationRefusals == 0)

        // R: a majority of three of the four at the same version (its
        // quorums meet the cluster's here, but nothing says so in general).
        cluster.restartProposer(2, on: .majority(of: [a, b, c].map(\.localEndpoint), version: adopted.version))
        cluster.network.run(for: .milliseconds(10))
        var refused: CASPaxosError?
        cluster.proposers[2].propose(key: Self.key, change: { _ in [3] }) { result in
            if case .failure(let error) = result { refused = error }
        }
        cluster.network.run(for: .milliseconds(200))
        #expect(refused?.code == .staleConfiguration, "\(String(describing: refused))")
        #expect(refused?.detail.contains("another configuration of version \(adopted.version)") == true)
        #expect(cluster.outcome(of: .read, key: Self.key, client: 2, proposer: 0, within: .milliseconds(200)) == .ok([1]))
        #expect(cluster.check() == .linearizable)
    }
}
