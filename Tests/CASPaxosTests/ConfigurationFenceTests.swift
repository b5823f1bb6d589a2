@testable import CASPaxos
import EventCore
import Testing

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
        acceptor.receive(.setMinimumVersion(requestID: 1, version: 5), from: Self.proposer, into: &effects)
        guard effects.count == 2, case .persist(.minimumVersion(5)) = effects[0],
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
        #expect(acceptor.snapshot.minimumVersion == 5)

        effects.removeAll()
        acceptor.receive(
            .prepare(requestID: 3, key: Self.key, ballot: Self.ballot, age: 0, version: 4), from: Self.proposer,
            into: &effects)
        acceptor.receive(
            .accept(requestID: 4, key: Self.key, ballot: Self.ballot, age: 0, version: 1, value: [1], nextBallot: nil),
            from: Self.proposer, into: &effects)
        guard effects.count == 2, case .send(.staleConfiguration(3, 5), Self.proposer) = effects[0],
            case .send(.staleConfiguration(4, 5), Self.proposer) = effects[1]
        else {
            Issue.record("not refused: \(effects)")
            return
        }
        #expect(acceptor.counters.staleConfigurationRefusals == 2)
        #expect(acceptor.register(Self.key) == nil, "nothing was promised or written")

        effects.removeAll()
        acceptor.receive(
            .prepare(requestID: 5, key: Self.key, ballot: Self.ballot, age: 0, version: 5), from: Self.proposer,
            into: &effects)
        #expect(acceptor.counters.promises == 1, "the fence's own version passes: \(effects)")
        acceptor.receive(
            .accept(requestID: 6, key: Self.key, ballot: Self.ballot, age: 0, version: 6, value: [1], nextBallot: nil),
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
        guard case .sendToEach(.prepare(let request, _, _, _, let version), _) = effects.first else {
            throw TestFailure("no prepare: \(effects)")
        }
        #expect(version == 1, "the prepare carries the configuration's version")
        return (proposer, proposal, request)
    }

    struct TestFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
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
        guard case .sendToEach(.accept(let acceptRequest, _, _, _, let version, _, _), _)? = effects.last else {
            Issue.record("no accept: \(effects)")
            return
        }
        #expect(version == 1)
        effects.removeAll()
        proposer.receive(
            .staleConfiguration(requestID: acceptRequest, minimumVersion: 3), from: Self.acceptors[2], now: Self.now,
            into: &effects)
        let error = try #require(Self.failure(of: proposal, in: effects), "\(effects)")
        #expect(error.code == .conflict && error.isIndeterminate, "\(error)")
    }

    @Test("a refusal of a version the proposer has since left behind changes nothing")
    func delayedRefusalIsStale() throws {
        var (proposer, _, request) = try Self.proposerWithPrepare()
        var effects: [CASPaxosEffect] = []
        proposer.receive(
            .staleConfiguration(requestID: request, minimumVersion: 1), from: Self.acceptors[0], now: Self.now,
            into: &effects)
        #expect(effects.isEmpty && proposer.pendingCount == 1 && proposer.counters.staleReplies == 1)
    }
}
