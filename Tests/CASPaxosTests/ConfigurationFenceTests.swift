@testable import CASPaxos
import EventCore
import Simulation
import Testing
import WireCodec

/// In tests, an integer literal is a configuration version with an unknown
/// digest (0), which passes a fence of its version whatever the fence's
/// digest: the tests of versions alone use literals; those of the digest
/// (`ConfigurationDigestTests`) spell both out.
extension ConfigurationVersion: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: UInt64) {
        self.init(value, digest: 0)
    }
}

/// The fence a membership change leaves on the acceptors
/// (``AcceptorSnapshot/minimumVersion``): prepares and accepts of older
/// configurations are refused, and the proposer that sent them fails the
/// proposal at once with a typed error. The whole path, a proposer
/// restarted on its first configuration after changes, is in
/// `ConfigurationRecoveryTests.restartAfterChanges`.
@Suite("Configuration fence")
struct ConfigurationFenceTests {
    static let acceptors = (1...3).map { Endpoint.loopbackV4(port: UInt16($0)) }
    static let proposer = Endpoint.loopbackV4(port: 9)
    static let now = Instant(nanoseconds: 1_000_000_000)
    static let key = Array("k".utf8)
    static let ballot = Ballot(counter: 3, proposer: NodeID(7))

    @Test("an acceptor records the fence before acknowledging it, never lowers it, and refuses older prepares and accepts")
    func acceptorRefusesOlderVersions() throws {
        var acceptor = try Acceptor(configuration: CASPaxosConfiguration())
        var effects: [CASPaxosEffect] = []
        // A real configuration's version and digest: the fence's own
        // version passes below only with its digest.
        let fence = AcceptorQuorums.majority(of: Self.acceptors, version: 5).configurationVersion
        acceptor.receive(.setMinimumVersion(requestID: 1, version: fence), from: Self.proposer, into: &effects)
        guard effects.count == 2, case .persist(.minimumVersion(fence)) = effects[0],
            case .send(.acknowledged(1), Self.proposer) = effects[1]
        else {
            Issue.record("not recorded before the acknowledgement: \(effects)")
            return
        }
        effects.removeAll()
        acceptor.receive(.setMinimumVersion(requestID: 2, version: 3), from: Self.proposer, into: &effects)
        guard effects.count == 1, case .send(.acknowledged(2), Self.proposer) = effects[0] else {
            Issue.record("a lower fence wrote: \(effects)")
            return
        }
        #expect(acceptor.snapshot.minimumVersion == fence)

        effects.removeAll()
        acceptor.receive(
            .prepare(requestID: 3, key: Self.key, ballot: Self.ballot, age: 0, version: 4), from: Self.proposer,
            into: &effects)
        acceptor.receive(
            .accept(requestID: 4, key: Self.key, ballot: Self.ballot, age: 0, value: [1], nextBallot: nil, version: 1),
            from: Self.proposer, into: &effects)
        guard effects.count == 2, case .send(.staleConfiguration(3, fence), Self.proposer) = effects[0],
            case .send(.staleConfiguration(4, fence), Self.proposer) = effects[1]
        else {
            Issue.record("not refused: \(effects)")
            return
        }
        #expect(acceptor.counters.staleConfigurationRefusals == 2)
        #expect(acceptor.register(Self.key) == nil, "nothing was promised or written")

        effects.removeAll()
        acceptor.receive(
            .prepare(requestID: 5, key: Self.key, ballot: Self.ballot, age: 0, version: fence), from: Self.proposer,
            into: &effects)
        #expect(acceptor.counters.promises == 1, "the fence's own version passes: \(effects)")
        acceptor.receive(
            .accept(requestID: 6, key: Self.key, ballot: Self.ballot, age: 0, value: [1], nextBallot: nil, version: 6),
            from: Self.proposer, into: &effects)
        #expect(acceptor.counters.acceptances == 1, "a newer version passes: \(effects)")
    }

    /// A proposer on version 1 of `acceptors`, with one proposal on `key`
    /// started; its prepare's request ID.
    static func proposerWithPrepare(change: @escaping CASPaxosChange = { _ in [1] }) throws -> (Proposer, UInt64, UInt64) {
        var proposer = try Proposer(
            id: NodeID(7), quorums: .majority(of: acceptors), configuration: CASPaxosConfiguration(), seed: 1)
        var effects: [CASPaxosEffect] = []
        let proposal = try proposer.propose(key: key, change: change, now: now, into: &effects)
        let request = try #require(ProposerRestartTests.prepareRequest(in: effects), "no prepare: \(effects)")
        if case .sendToEach(.prepare(_, _, _, _, let version), _)? = effects.first {
            #expect(version == proposer.quorums.configurationVersion, "the prepare carries the configuration's version")
            #expect(version.number == 1 && version.digest == AcceptorQuorums.majority(of: acceptors).digest)
        } else {
            Issue.record("the prepare is not the first effect: \(effects)")
        }
        return (proposer, proposal, request)
    }

    /// The failure `effects` completes `proposal` with.
    static func failure(of proposal: UInt64, in effects: [CASPaxosEffect]) -> CASPaxosError? {
        for case .proposalCompleted(proposal, .failure(let error)) in effects { return error }
        return nil
    }

    @Test("a refused prepare fails its proposal at once, definitely, with staleConfiguration")
    func refusedPrepareFailsDefinitely() throws {
        var (proposer, proposal, request) = try Self.proposerWithPrepare()
        var effects: [CASPaxosEffect] = []
        proposer.receive(
            .staleConfiguration(requestID: request, minimumVersion: 3), from: Self.acceptors[0], now: Self.now,
            into: &effects)
        let error = try #require(Self.failure(of: proposal, in: effects), "\(effects)")
        #expect(error.code == .staleConfiguration && !error.isIndeterminate)
        #expect(error.detail.contains("version 3") && error.detail.contains("changeMembership"), "\(error)")
        #expect(proposer.counters.staleConfigurationRefusals == 1 && proposer.pendingCount == 0)
        // The other acceptors' refusals of the same request are stale.
        effects.removeAll()
        proposer.receive(
            .staleConfiguration(requestID: request, minimumVersion: 3), from: Self.acceptors[1], now: Self.now,
            into: &effects)
        #expect(effects.isEmpty && proposer.counters.staleReplies == 1)
    }

    @Test("a refusal after the proposal sent an accept fails it indeterminate (conflict)")
    func refusedAfterAcceptIsIndeterminate() throws {
        var (proposer, proposal, request) = try Self.proposerWithPrepare()
        var effects: [CASPaxosEffect] = []
        for acceptor in Self.acceptors[0..<2] {
            proposer.receive(
                .promise(requestID: request, accepted: .zero, value: nil, removalFloor: nil), from: acceptor,
                now: Self.now, into: &effects)
        }
        guard case .sendToEach(.acceptWithParent(let acceptRequest, _, _, _, _, let version, _, _), _)? = effects.last else {
            Issue.record("no accept: \(effects)")
            return
        }
        #expect(version == proposer.quorums.configurationVersion)
        effects.removeAll()
        proposer.receive(
            .staleConfiguration(requestID: acceptRequest, minimumVersion: 3), from: Self.acceptors[2], now: Self.now,
            into: &effects)
        let error = try #require(Self.failure(of: proposal, in: effects), "\(effects)")
        #expect(error.code == .conflict && error.isIndeterminate, "\(error)")
    }

    @Test("a refusal of a request from before the proposer adopted a newer configuration changes nothing")
    func delayedRefusalIsStale() throws {
        var (proposer, _, request) = try Self.proposerWithPrepare()
        var effects: [CASPaxosEffect] = []
        let newer = AcceptorQuorums.majority(of: Self.acceptors, version: 3)
        proposer.receive(.reconfigure(requestID: 50, quorums: newer), from: Self.proposer, now: Self.now, into: &effects)
        #expect(proposer.quorums == newer)
        effects.removeAll()
        let stale = proposer.counters.staleReplies
        proposer.receive(
            .staleConfiguration(requestID: request, minimumVersion: 3), from: Self.acceptors[0], now: Self.now,
            into: &effects)
        #expect(effects.isEmpty && proposer.pendingCount == 1, "\(effects)")
        #expect(proposer.counters.staleReplies == stale + 1 && proposer.counters.staleConfigurationRefusals == 0)
    }

    @Test("a listing raises the fence to the re-scan's version before it answers")
    func listingRaisesFence() throws {
        var acceptor = try Acceptor(configuration: CASPaxosConfiguration())
        var effects: [CASPaxosEffect] = []
        acceptor.receive(
            .listKeys(requestID: 1, after: nil, raisingFloorTo: nil, minimumVersion: 2), from: Self.proposer,
            into: &effects)
        guard effects.count == 2, case .persist(.minimumVersion(2)) = effects[0],
            case .send(.keyList(1, [], true, .zero), Self.proposer) = effects[1]
        else {
            Issue.record("not fenced before the listing: \(effects)")
            return
        }
        effects.removeAll()
        acceptor.receive(
            .listKeys(requestID: 2, after: nil, raisingFloorTo: nil, minimumVersion: 1), from: Self.proposer,
            into: &effects)
        #expect(effects.count == 1 && acceptor.snapshot.minimumVersion == 2, "\(effects)")
    }

    /// Found by a review: inside a batch, messages follow each other with
    /// no length of their own, so a layout read as another (a field added
    /// at the end) shifts every message after it rather than failing. Each
    /// layout has its own tags: those without the version (1, 3, 13) and
    /// those with the version but not its digest (17 ... 21) are refused as
    /// unknown, alone or in a batch, whole.
    @Test("the layouts before the version, and before its digest, are refused as unknown tags, batches whole")
    func olderLayoutsAreRefused() throws {
        let current: [CASPaxosMessage] = [
            .prepare(requestID: 1, key: Self.key, ballot: Self.ballot, age: 0, version: 1),
            .accept(requestID: 2, key: Self.key, ballot: Self.ballot, age: 0, value: nil, nextBallot: nil, version: 1),
            .listKeys(requestID: 3, after: nil, raisingFloorTo: nil, minimumVersion: 1),
            .setMinimumVersion(requestID: 4, version: 1),
            .staleConfiguration(requestID: 5, minimumVersion: 1),
        ]
        // Each layout as the bytes the current one ends with dropped: the
        // digest (8 bytes), or the digest and the version (1 byte).
        let withoutVersion: [(UInt8, Int)] = [(1, 9), (3, 9), (13, 9), (0, 0), (0, 0)]
        let withoutDigest: [(UInt8, Int)] = [(19, 8), (20, 8), (21, 8), (17, 8), (18, 8)]
        for (message, layouts) in zip(current, zip(withoutVersion, withoutDigest)) {
            for (oldTag, dropped) in [layouts.0, layouts.1] where oldTag != 0 {
                var old = WireFormatTests.encode(message)
                old.removeLast(dropped)
                old[0] = oldTag
                do {
                    _ = try WireFormatTests.decode(old)
                    Issue.record("tag \(oldTag) decoded")
                } catch {
                    #expect(error.code == .invalidValue && error.detail.contains("unknown CASPaxos message tag \(oldTag)"))
                }
                let batch = BatchWireFormatTests.batchBody(count: 2, [.accepted(requestID: 9)]) + old
                BatchWireFormatTests.expectError(.invalidValue, decoding: batch, "tag \(oldTag) in a batch")
            }
        }
    }

    @Test("a stale-configuration refusal from an endpoint that is not one of the proposer's acceptors is ignored")
    func refusalFromOutsiderIsIgnored() throws {
        var (proposer, _, request) = try Self.proposerWithPrepare()
        var effects: [CASPaxosEffect] = []
        proposer.receive(
            .staleConfiguration(requestID: request, minimumVersion: 9), from: Endpoint.loopbackV4(port: 77),
            now: Self.now, into: &effects)
        #expect(effects.isEmpty && proposer.pendingCount == 1 && proposer.counters.staleConfigurationRefusals == 0)
    }

    /// Found by a review: the fence at the change's end came after its
    /// re-scan, so a proposer restarted on the start configuration while
    /// the change ran could still complete a write on the old acceptors
    /// that the re-scan had not listed, and that a later configuration's
    /// quorums need not hold. Each acceptor now takes the fence as it
    /// lists: Q, restarted on {A, B, C} after the re-scan of 3 → 4 and cut
    /// off from B (and from the final configuration), writes through A
    /// and C, and is refused.
    @Test("a proposer restarted on the start configuration during a change cannot write past the re-scan")
    func restartDuringChangeIsFenced() throws {
        let key = Array("late".utf8)
        let cluster = try SimulatedCASCluster(seed: 7)
        let network = cluster.network
        let b = cluster.acceptorNodes[1]
        let (p, q) = (cluster.proposerNodes[0], cluster.proposerNodes[1])
        let target = cluster.acceptorNodes.map(\.localEndpoint) + [cluster.addAcceptor().localEndpoint]
        var changed: Result<Void, CASPaxosError>?
        var written: Result<[UInt8]?, CASPaxosError>?
        var restarted = false
        // Steps left: the final configuration, the fence, the release.
        let waitEnds = network.now + .seconds(1)
        MembershipResumeTests.when(network, while: { network.now < waitEnds }, { MembershipResumeTests.isRunning(cluster, stepsLeft: 3) }) {
            restarted = true
            network.block(from: p, to: q)
            network.crash(q)
            network.restart(q)
            network.block(from: q, to: b)
            cluster.proposers[1].propose(key: key, change: { _ in [9] }) { written = $0 }
        }
        cluster.proposers[0].changeMembership(to: target) { changed = $0 }
        network.run(for: .milliseconds(200))
        #expect(restarted)
        #expect(cluster.proposers[1].proposer?.quorums.version == 1)
        guard case .failure(let error)? = written else {
            Issue.record("the write was not refused: \(String(describing: written))")
            return
        }
        #expect(error.code == .staleConfiguration, "\(error)")

        network.unblock(from: p, to: q)
        network.unblock(from: q, to: b)
        network.run(for: .milliseconds(500))
        if case .success? = changed {} else { Issue.record("the change: \(String(describing: changed))") }
        #expect(cluster.proposers[1].proposer?.quorums == .majority(of: target, version: 3))
        #expect(cluster.outcome(of: .read, key: key, client: 1, proposer: 1, within: .milliseconds(200)) == .ok(nil))
        #expect(cluster.check() == .linearizable)
    }

    /// Found by a review: nothing made a change's driver list itself among
    /// the proposers, and a driver that does not adopt its own steps
    /// plans the re-scan and the fence from the configuration it started
    /// in. `CASPaxosNode` now adds its own endpoint.
    @Test("a node whose proposers list leaves it out still adopts its own change's steps and fences the final configuration")
    func driverLeftOutOfItsList() throws {
        let network = SimulatedNetwork(seed: 21)
        let acceptorNodes = (0..<4).map { _ in network.addNode() }
        let acceptors = try acceptorNodes.enumerated().map { index, node in
            try CASPaxosNode(
                transport: node, scheduler: node, quorums: nil, acceptorStore: InMemoryAcceptorStore(),
                seed: UInt64(index))
        }
        let three = acceptorNodes[0..<3].map(\.localEndpoint)
        let proposerNode = network.addNode()
        let proposer = try CASPaxosNode(
            transport: proposerNode, scheduler: proposerNode, quorums: .majority(of: three), acceptorStore: nil,
            seed: 9)
        #expect(proposer.proposerEndpoints.isEmpty)
        var written: Result<[UInt8]?, CASPaxosError>?
        proposer.propose(key: Self.key, change: { _ in [5] }) { written = $0 }
        network.run(for: .milliseconds(50))
        #expect(written.map { if case .success([5]) = $0 { true } else { false } } == true, "\(String(describing: written))")

        let four = acceptorNodes.map(\.localEndpoint)
        var changed: Result<Void, CASPaxosError>?
        proposer.changeMembership(to: four) { changed = $0 }
        network.run(for: .seconds(1))
        if case .success? = changed {} else { Issue.record("the change: \(String(describing: changed))") }
        #expect(proposer.proposer?.quorums == .majority(of: four, version: 3))
        let fenced = acceptors.compactMap { $0.acceptor?.snapshot.minimumVersion }.filter {
            $0 == AcceptorQuorums.majority(of: four, version: 3).configurationVersion
        }
        #expect(fenced.count >= 3, "a prepare quorum of the four")
        var read: Result<[UInt8]?, CASPaxosError>?
        proposer.read(key: Self.key) { read = $0 }
        network.run(for: .milliseconds(50))
        #expect(
            read.map { if case .success([5]) = $0 { true } else { false } } == true,
            "\(String(describing: read)); proposer \(String(describing: proposer.proposer?.counters))")
        // The acceptors' nodes must outlive the read: released after their
        // last use above, they would stop answering (as an optimized build
        // did).
        withExtendedLifetime(acceptors) {}
    }

    /// Asked for by a review: a proposer the change never reached, alive
    /// throughout, whose cache lets it take its next write of a key
    /// straight to the accept phase. The accept carries its old version:
    /// the fenced acceptors refuse it, and since an accept left, the write
    /// ends indeterminate (`.conflict`); with nothing cached, the next
    /// write is refused at its prepare, definitely.
    @Test("a live proposer the change did not list is refused on its cached-ballot accept, then at its prepare")
    func unlistedProposerCachedAccept() throws {
        let key = Array("cached".utf8)
        let cluster = try SimulatedCASCluster(seed: 13)
        let network = cluster.network
        let (p, q) = (cluster.proposers[0], cluster.proposers[1])
        p.proposerEndpoints = [cluster.proposerNodes[0].localEndpoint]
        #expect(cluster.outcome(of: .write([1]), key: key, client: 1, proposer: 1, within: .milliseconds(100)) == .ok([1]))
        #expect(q.proposer?.counters.oneRoundTripAttempts == 0)

        // 3 → 4 → 3: D in, then A out; Q is left on {A, B, C} at version 1.
        let four = cluster.acceptorNodes.map(\.localEndpoint) + [cluster.addAcceptor().localEndpoint]
        for target in [four, Array(four.dropFirst())] {
            var changed: Result<Void, CASPaxosError>?
            p.changeMembership(to: target) { changed = $0 }
            network.run(for: .seconds(1))
            if case .success? = changed {} else { Issue.record("the change: \(String(describing: changed))") }
        }
        #expect(q.proposer?.quorums.version == 1)

        let accepts = q.proposer?.counters.oneRoundTripAttempts ?? 0
        let first = cluster.history.operations.count
        cluster.perform(.write([2]), key: key, client: 2, proposer: 1)
        network.run(for: .milliseconds(200))
        #expect(q.proposer?.counters.oneRoundTripAttempts == accepts + 1, "the write took the cached ballot")
        #expect(cluster.history.operations[first].outcome == .unknown)
        #expect((q.proposer?.counters.staleConfigurationRefusals ?? 0) > 0)
        var second: Result<[UInt8]?, CASPaxosError>?
        cluster.perform(.write([3]), key: key, client: 2, proposer: 1) { second = $0 }
        network.run(for: .milliseconds(200))
        guard case .failure(let error)? = second else {
            Issue.record("the second write was not refused: \(String(describing: second))")
            return
        }
        #expect(error.code == .staleConfiguration, "\(error)")

        #expect(cluster.outcome(of: .read, key: key, client: 3, proposer: 0, within: .milliseconds(200)) == .ok([1]))
        #expect(cluster.check() == .linearizable)
    }

    /// Asked for by a review: a re-scan that lists in pages. Each acceptor
    /// takes the fence at its first page, so a proposer restarted on the
    /// start configuration between pages cannot write a key that sorts
    /// behind the cursor (where the listing would miss it) through
    /// acceptors that listed; a second change then finds the history
    /// intact.
    @Test("a write behind a paged listing's cursor, between pages, is refused; a second change keeps the history")
    func writeBehindPagedListing() throws {
        var configuration = CASPaxosConfiguration()
        configuration.maximumKeysPerListing = 2
        let cluster = try SimulatedCASCluster(seed: 11, configuration: configuration)
        let network = cluster.network
        let original = cluster.acceptors
        let q = cluster.proposerNodes[1]
        for number in 1...6 { cluster.perform(.write([UInt8(number)]), key: Array("k\(number)".utf8), client: 99, proposer: 0) }
        network.run(for: .milliseconds(50))
        let behind = Array("a".utf8)
        var written: Result<[UInt8]?, CASPaxosError>?
        var restarted = false
        var fencedBeforeWrite = 0
        let fencedAtTrigger = { original.compactMap { $0?.acceptor?.snapshot.minimumVersion }.filter { $0.number > 0 }.count }
        // Between pages: two acceptors listed a first page, and neither
        // listed its last.
        let betweenPages = {
            cluster.proposers[0].proposer!.tasks.values.contains { task in
                guard case .rescan = task.steps.first else { return false }
                return task.listingCursor.count >= 2 && task.listingDone.isEmpty
            }
        }
        let waitEnds = network.now + .seconds(1)
        MembershipResumeTests.when(network, while: { network.now < waitEnds }, betweenPages) {
            restarted = true
            fencedBeforeWrite = fencedAtTrigger()
            network.crash(q)
            network.restart(q)
            cluster.perform(.write([9]), key: behind, client: 2, proposer: 1) { written = $0 }
        }
        let four = cluster.acceptorNodes.map(\.localEndpoint) + [cluster.addAcceptor().localEndpoint]
        var changes: [Result<Void, CASPaxosError>] = []
        cluster.proposers[0].changeMembership(to: four) { changes.append($0) }
        network.run(for: .seconds(1))
        #expect(restarted)
        #expect(fencedBeforeWrite >= 2, "the acceptors that listed a page are fenced")
        guard case .failure(let error)? = written else {
            Issue.record("the write behind the cursor was not refused: \(String(describing: written))")
            return
        }
        #expect(error.code == .staleConfiguration, "\(error)")

        cluster.proposers[0].changeMembership(to: Array(four.dropFirst())) { changes.append($0) }
        network.run(for: .seconds(1))
        #expect(changes.count == 2 && changes.allSatisfy(MembershipResumeTests.succeeded), "\(changes)")
        #expect(cluster.outcome(of: .read, key: behind, client: 1, proposer: 0, within: .milliseconds(200)) == .ok(nil))
        for number in 1...6 {
            let read = cluster.outcome(
                of: .read, key: Array("k\(number)".utf8), client: 1, proposer: 0, within: .milliseconds(200))
            #expect(read == .ok([UInt8(number)]), "k\(number)")
        }
        #expect(cluster.check() == .linearizable)
    }
}
