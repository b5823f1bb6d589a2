@testable import CASPaxos
import EventCore
import Testing
import WireCodec

/// Encoding round trips and hostile input: truncation, garbage, absurd
/// ballots, oversized keys and values never trap; each is a typed error.
@Suite("CASPaxos wire format")
struct WireFormatTests {
    static let configuration = CASPaxosConfiguration()
    static let ballot = Ballot(counter: 5, proposer: NodeID(0xAB))
    static let samples: [CASPaxosMessage] = [
        .prepare(requestID: 1, key: [1, 2], ballot: ballot, age: 3, version: 4),
        .prepare(requestID: 1, key: [1, 2], ballot: ballot, age: 3, version: ConfigurationVersion(4, digest: .max)),
        .promise(requestID: 2, accepted: ballot, value: [9], removalFloor: nil),
        .promise(requestID: 2, accepted: .zero, value: nil, removalFloor: ballot),
        .promise(requestID: 2, accepted: .zero, value: nil, removalFloor: nil),
        .accept(requestID: 3, key: [1], ballot: ballot, age: 0, value: nil, nextBallot: Ballot(counter: 6, proposer: NodeID(1)), version: 1),
        .accepted(requestID: 4),
        .conflict(requestID: 5, highest: ballot, neverAccepted: true),
        .conflict(requestID: 5, highest: ballot, neverAccepted: false),
        .staleAge(requestID: 6, minimumAge: 7),
        .invalidate(requestID: 7, key: [3], ballot: ballot),
        .invalidated(requestID: 8, proposer: NodeID(4), age: 2),
        .setMinimumAges(requestID: 9, ages: [ProposerAge(proposer: NodeID(4), age: 2)]),
        .removeTombstone(requestID: 10, key: [3], ballot: ballot),
        .acknowledged(requestID: 11),
        .reconfigure(requestID: 12, quorums: .majority(of: [.loopbackV4(port: 1), .loopbackV6(port: 2), .loopbackV4(port: 3)])),
        .listKeys(requestID: 13, after: [0], raisingFloorTo: nil, minimumVersion: 0),
        .listKeys(requestID: 13, after: nil, raisingFloorTo: ballot, minimumVersion: 5),
        .keyList(requestID: 14, keys: [[1], [2, 3]], isComplete: true, removalFloor: ballot),
        .configurationRefused(requestID: 15, current: .majority(of: [.loopbackV4(port: 1), .loopbackV4(port: 2)], version: 9)),
        .setMinimumVersion(requestID: 16, version: 7),
        .setMinimumVersion(requestID: 16, version: ConfigurationVersion(7, digest: 0x0123_4567_89AB_CDEF)),
        .staleConfiguration(requestID: 17, minimumVersion: 7),
        .staleConfiguration(requestID: 17, minimumVersion: ConfigurationVersion(1 << 62, digest: 1)),
        .registersFull(requestID: 18),
        .readPrepare(requestID: 19, key: [1, 2], ballot: ballot, age: 3, version: ConfigurationVersion(4, digest: 5)),
        .unrecordedPromise(requestID: 20, removalFloor: nil),
        .unrecordedPromise(requestID: 20, removalFloor: ballot),
        .rewriteTombstone(requestID: 21, key: [3], ballot: ballot, age: 2, version: ConfigurationVersion(4, digest: 5)),
        .collectionPrepare(requestID: 22, key: [4], ballot: ballot, age: 3, version: ConfigurationVersion(5, digest: 6)),
        .promiseWithParent(requestID: 23, accepted: ballot, value: [9], removalFloor: nil, parent: Ballot(counter: 4, proposer: NodeID(2))),
        .promiseWithParent(requestID: 23, accepted: ballot, value: nil, removalFloor: ballot, parent: .zero),
        .acceptWithParent(
            requestID: 24, key: [1], ballot: ballot, age: 1, value: [7], version: 2,
            parent: Ballot(counter: 4, proposer: NodeID(2)), nextBallot: nil),
        .acceptWithParent(
            requestID: 24, key: [1], ballot: ballot, age: 0, value: nil, version: 1, parent: .zero, nextBallot: ballot.successor),
    ]

    static func encode(_ message: CASPaxosMessage) -> [UInt8] {
        var writer = WireWriter()
        message.encode(to: &writer)
        return writer.bytes
    }

    static func decode(_ bytes: [UInt8]) throws(WireError) -> CASPaxosMessage {
        let result: Result<CASPaxosMessage, WireError> = bytes.withUnsafeBytes { raw in
            do throws(WireError) { return .success(try CASPaxosMessage(decoding: raw, configuration: configuration)) } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    @Test("every message round-trips, and every truncation of it is refused")
    func roundTripAndTruncation() throws {
        for message in Self.samples {
            let bytes = Self.encode(message)
            #expect(try Self.decode(bytes) == message)
            for length in 0..<bytes.count {
                #expect(throws: WireError.self) { try Self.decode(Array(bytes[..<length])) }
            }
            #expect(throws: WireError.self) { try Self.decode(bytes + [0]) }
        }
    }

    /// Builds refuse a frame holding a tag they do not know, so a tag, once
    /// shipped, keeps its number.
    @Test("the tags added after the batch keep their numbers")
    func addedTags() {
        let ballot = Self.ballot
        let tags: [(CASPaxosMessage, UInt8)] = [
            (.registersFull(requestID: 1), 27),
            (.readPrepare(requestID: 1, key: [1], ballot: ballot, age: 0, version: 1), 28),
            (.unrecordedPromise(requestID: 1, removalFloor: nil), 29),
            (.rewriteTombstone(requestID: 1, key: [1], ballot: ballot, age: 0, version: 1), 30),
            (.collectionPrepare(requestID: 1, key: [1], ballot: ballot, age: 0, version: 1), 31),
            (.promiseWithParent(requestID: 1, accepted: ballot, value: nil, removalFloor: nil, parent: .zero), 32),
            (.acceptWithParent(requestID: 1, key: [1], ballot: ballot, age: 0, value: nil, version: 1, parent: .zero, nextBallot: nil), 33),
        ]
        for (message, tag) in tags { #expect(Self.encode(message).first == tag, "\(message)") }
    }

    @Test("absurd ballots, unknown tags and oversized keys or values are typed errors")
    func hostile() throws {
        // Every ballot a message carries, at the largest counter (decodes)
        // and past it (refused, naming the counter).
        let withBallot: [(Ballot) -> CASPaxosMessage] = [
            { .prepare(requestID: 1, key: [1], ballot: $0, age: 0, version: 1) },
            { .accept(requestID: 2, key: [1], ballot: $0, age: 0, value: [2], nextBallot: nil, version: 1) },
            { .accept(requestID: 2, key: [1], ballot: Self.ballot, age: 0, value: [2], nextBallot: $0, version: 1) },
            { .promise(requestID: 3, accepted: $0, value: [2], removalFloor: nil) },
            { .promise(requestID: 3, accepted: .zero, value: nil, removalFloor: $0) },
            { .promiseWithParent(requestID: 3, accepted: Self.ballot, value: [2], removalFloor: nil, parent: $0) },
            { .acceptWithParent(requestID: 2, key: [1], ballot: Self.ballot, age: 0, value: [2], version: 1, parent: $0, nextBallot: nil) },
            { .conflict(requestID: 4, highest: $0, neverAccepted: true) },
            { .invalidate(requestID: 5, key: [1], ballot: $0) },
            { .removeTombstone(requestID: 6, key: [1], ballot: $0) },
            { .rewriteTombstone(requestID: 6, key: [1], ballot: $0, age: 0, version: 1) },
            { .collectionPrepare(requestID: 6, key: [1], ballot: $0, age: 0, version: 1) },
            { .listKeys(requestID: 7, after: nil, raisingFloorTo: $0, minimumVersion: 0) },
            { .keyList(requestID: 8, keys: [[1]], isComplete: true, removalFloor: $0) },
        ]
        let largest = Ballot(counter: Ballot.maximumCounter, proposer: NodeID(2))
        for message in withBallot {
            #expect(try Self.decode(Self.encode(message(largest))) == message(largest))
            for counter in [Ballot.maximumCounter + 1, UInt64.max] {
                let absurd = message(Ballot(counter: counter, proposer: NodeID(2)))
                do {
                    _ = try Self.decode(Self.encode(absurd))
                    Issue.record("ballot counter \(counter) decoded in \(absurd)")
                } catch {
                    #expect(error.code == .invalidValue && error.detail.contains("ballot counter"), "\(error)")
                }
            }
        }
        do {
            _ = try Self.decode([0xEE, 1])
            Issue.record("an unknown tag decoded")
        } catch {
            #expect(error.code == .invalidValue && error.detail.contains("unknown CASPaxos message tag"), "\(error)")
        }
        let bigKey = Self.encode(.prepare(requestID: 1, key: [UInt8](repeating: 1, count: 257), ballot: Self.ballot, age: 0, version: 1))
        do {
            _ = try Self.decode(bigKey)
            Issue.record("an oversized key decoded")
        } catch {
            #expect(error.code == .lengthExceedsLimit)
        }
        let bigValue = Self.encode(.promise(requestID: 1, accepted: Self.ballot, value: [UInt8](repeating: 0, count: 8_193), removalFloor: nil))
        #expect(throws: WireError.self) { try Self.decode(bigValue) }
    }

    /// Found by `Scripts/fuzz caspaxos`: a stale-age refusal claiming age
    /// 2⁶⁴ - 1 aged the proposer to it, and the next invalidation's
    /// `age += 1` trapped.
    @Test("ages above 2^62 are typed errors; a proposer at the largest age stays there when invalidated, and its answer decodes")
    func absurdAges() throws {
        let maximum = ProposerAge.maximumAge
        let withAge: [(UInt64) -> CASPaxosMessage] = [
            { .prepare(requestID: 1, key: [1], ballot: Self.ballot, age: $0, version: 1) },
            { .accept(requestID: 2, key: [1], ballot: Self.ballot, age: $0, value: [2], nextBallot: nil, version: 1) },
            { .rewriteTombstone(requestID: 2, key: [1], ballot: Self.ballot, age: $0, version: 1) },
            { .collectionPrepare(requestID: 2, key: [1], ballot: Self.ballot, age: $0, version: 1) },
            { .staleAge(requestID: 3, minimumAge: $0) },
            { .invalidated(requestID: 4, proposer: NodeID(4), age: $0) },
            { .setMinimumAges(requestID: 5, ages: [ProposerAge(proposer: NodeID(4), age: $0)]) },
        ]
        for message in withAge {
            #expect(try Self.decode(Self.encode(message(maximum))) == message(maximum))
            for absurd in [maximum + 1, UInt64.max] {
                do {
                    _ = try Self.decode(Self.encode(message(absurd)))
                    Issue.record("age \(absurd) decoded in \(message(absurd))")
                } catch {
                    #expect(error.code == .invalidValue)
                }
            }
        }

        var proposer = try Proposer(
            id: NodeID(1), quorums: .majority(of: (1...3).map { Endpoint.loopbackV4(port: $0) }),
            configuration: Self.configuration, seed: 1)
        var effects: [CASPaxosEffect] = []
        let sender = Endpoint.loopbackV4(port: 1)
        // A stale-age refusal of a request of its own brings it to the
        // largest age; an invalidation keeps it there, so that its answer
        // decodes (at that age the proposer proposes nothing: see
        // CounterLimitTests).
        _ = try proposer.propose(key: [1], change: { _ in [1] }, now: .zero, into: &effects)
        let request = try #require(ProposerRestartTests.prepareRequest(in: effects))
        proposer.receive(.staleAge(requestID: request, minimumAge: maximum), from: sender, now: .zero, into: &effects)
        #expect(proposer.age == maximum)
        proposer.receive(.invalidate(requestID: 10, key: [1], ballot: Self.ballot), from: sender, now: .zero, into: &effects)
        #expect(proposer.age == maximum)
        guard case .send(let answer, sender) = effects.last, case .invalidated(10, NodeID(1), maximum) = answer else {
            Issue.record("no invalidated answer: \(effects)")
            return
        }
        #expect(try Self.decode(Self.encode(answer)) == answer)
    }

    @Test("configuration versions above 2^62 are typed errors; a proposer at the largest one refuses to change")
    func absurdVersions() throws {
        let acceptors = (1...3).map { Endpoint.loopbackV4(port: $0) }
        let maximum = AcceptorQuorums.maximumVersion
        let reconfigure = { (version: UInt64) in
            CASPaxosMessage.reconfigure(requestID: 1, quorums: .majority(of: acceptors, version: version))
        }
        #expect(try Self.decode(Self.encode(reconfigure(maximum))) == reconfigure(maximum))
        for absurd in [maximum + 1, UInt64.max] {
            do {
                _ = try Self.decode(Self.encode(reconfigure(absurd)))
                Issue.record("version \(absurd) decoded")
            } catch {
                #expect(error.code == .invalidValue)
            }
            let fence = CASPaxosMessage.setMinimumVersion(requestID: 1, version: ConfigurationVersion(absurd, digest: 1))
            #expect(throws: WireError.self) { try Self.decode(Self.encode(fence)) }
            #expect(throws: ConfigurationError.self) {
                _ = try Proposer(
                    id: NodeID(1), quorums: .majority(of: acceptors, version: absurd), configuration: Self.configuration,
                    seed: 1)
            }
        }
        // A peer moved this proposer to the largest version: a change would
        // step past it, so it is refused, not trapped on.
        var proposer = try Proposer(
            id: NodeID(1), quorums: .majority(of: acceptors), configuration: Self.configuration, seed: 1)
        var effects: [CASPaxosEffect] = []
        proposer.receive(reconfigure(maximum), from: .loopbackV4(port: 9), now: .zero, into: &effects)
        #expect(proposer.quorums.version == maximum)
        do {
            _ = try proposer.changeMembership(to: acceptors + [.loopbackV4(port: 4)], proposers: [], now: .zero, into: &effects)
            Issue.record("a change past the largest version started")
        } catch {
            #expect(error.code == .invalidRequest)
        }
    }

    @Test("a garbage collection's minimum ages for every proposer it may list fit one message and decode")
    func fullMinimumAges() throws {
        for size in [CASPaxosConfiguration().maximumMessageSize, 65_536] {
            var configuration = CASPaxosConfiguration()
            configuration.maximumMessageSize = size
            configuration.maximumTrackedProposers = 1_048_576
            let limit = configuration.trackedProposerLimit
            #expect(limit == (size - 64) / 17)
            let ages = (1...limit).map {
                ProposerAge(proposer: NodeID(UInt64.max - UInt64($0)), age: ProposerAge.maximumAge)
            }
            let message = CASPaxosMessage.setMinimumAges(requestID: UInt64.max, ages: ages)
            var writer = WireWriter()
            try message.encodeFrame(into: &writer, maximumMessageSize: size)
            let decoded = writer.bytes.withUnsafeBytes { frame -> Result<[CASPaxosMessage], WireError> in
                do throws(WireError) {
                    var messages: [CASPaxosMessage] = []
                    let body = try Frame.decodeBody(frame, of: .casPaxos, limits: WireLimits(maximumFrameLength: size))
                    try CASPaxosMessage.decodeFrameBody(body, configuration: configuration, into: &messages)
                    return .success(messages)
                } catch {
                    return .failure(error)
                }
            }
            #expect(try decoded.get() == [message])
        }

        var proposer = try Proposer(
            id: NodeID(1), quorums: .majority(of: (1...3).map { Endpoint.loopbackV4(port: $0) }),
            configuration: Self.configuration, seed: 1)
        var effects: [CASPaxosEffect] = []
        let proposers = (1...(Self.configuration.trackedProposerLimit + 1)).map { Endpoint.loopbackV4(port: UInt16($0)) }
        do {
            _ = try proposer.collectGarbage(key: [1], proposers: proposers, now: .zero, into: &effects)
            Issue.record("a collection listing more proposers than the acceptors track started")
        } catch {
            #expect(error.code == .invalidRequest)
        }
        #expect(effects.isEmpty)
    }

    @Test("random garbage never traps (fixed seed)")
    func garbage() {
        var random = SeededRandomGenerator(seed: 42)
        var decoded = 0
        for _ in 0..<20_000 {
            let count = Int.random(in: 0..<40, using: &random)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
            if !bytes.isEmpty { bytes[0] = UInt8.random(in: 1...14, using: &random) }
            if (try? Self.decode(bytes)) != nil { decoded += 1 }
        }
        #expect(decoded < 20_000)
    }

    @Test("an acceptor drops a zero ballot and refuses a stale one with the highest it saw")
    func acceptorRules() throws {
        var acceptor = try Acceptor(configuration: Self.configuration)
        var effects: [CASPaxosEffect] = []
        let sender = Endpoint.loopbackV4(port: 9)
        acceptor.receive(.prepare(requestID: 1, key: [1], ballot: .zero, age: 0, version: 1), from: sender, into: &effects)
        #expect(effects.isEmpty)
        #expect(acceptor.counters.invalidBallots == 1)
        acceptor.receive(.prepare(requestID: 2, key: [1], ballot: Self.ballot, age: 0, version: 1), from: sender, into: &effects)
        acceptor.receive(
            .prepare(requestID: 3, key: [1], ballot: Ballot(counter: 4, proposer: NodeID(1)), age: 0, version: 1), from: sender,
            into: &effects)
        guard case .send(.conflict(3, let highest, let neverAccepted), _) = effects.last else {
            Issue.record("no conflict: \(effects)")
            return
        }
        #expect(highest == Self.ballot)
        #expect(neverAccepted)
    }

    @Test("an acceptor keeps an accepted value's parent and names it in its promises; it drops an accept whose parent is not below its ballot")
    func acceptorKeepsParents() throws {
        var acceptor = try Acceptor(configuration: Self.configuration)
        var effects: [CASPaxosEffect] = []
        let sender = Endpoint.loopbackV4(port: 9)
        let parent = Ballot(counter: 4, proposer: NodeID(1))
        for (id, bad) in [(UInt64(1), Self.ballot), (2, Self.ballot.successor)] {
            acceptor.receive(
                .acceptWithParent(
                    requestID: id, key: [1], ballot: Self.ballot, age: 0, value: [2], version: 1, parent: bad, nextBallot: nil),
                from: sender, into: &effects)
        }
        #expect(effects.isEmpty && acceptor.counters.invalidBallots == 2)
        acceptor.receive(
            .acceptWithParent(
                requestID: 3, key: [1], ballot: Self.ballot, age: 0, value: [2], version: 1, parent: parent, nextBallot: nil),
            from: sender, into: &effects)
        #expect(acceptor.register([1])?.parent == parent)
        guard case .persist(.register(_, let stored)) = effects.first else {
            Issue.record("not stored: \(effects)")
            return
        }
        #expect(stored.parent == parent, "the store gets the parent with the value")
        effects.removeAll()
        acceptor.receive(
            .prepare(requestID: 4, key: [1], ballot: Self.ballot.successor, age: 0, version: 1), from: sender, into: &effects)
        guard case .send(.promiseWithParent(4, Self.ballot, [2], nil, let named), _) = effects.last else {
            Issue.record("no promise: \(effects)")
            return
        }
        #expect(named == parent)
        // An accept without one (a build before parents) leaves it unknown.
        acceptor.receive(
            .accept(requestID: 5, key: [1], ballot: Self.ballot.successor, age: 0, value: [3], nextBallot: nil, version: 1),
            from: sender, into: &effects)
        #expect(acceptor.register([1])?.parent == nil)
    }

    @Test("minimum ages past the limit forget proposers the update does not list; an update listing more is dropped")
    func minimumAgesAreBounded() throws {
        var configuration = CASPaxosConfiguration()
        configuration.maximumTrackedProposers = 2
        var acceptor = try Acceptor(configuration: configuration)
        var effects: [CASPaxosEffect] = []
        let sender = Endpoint.loopbackV4(port: 9)
        let two = [ProposerAge(proposer: NodeID(1), age: 1), ProposerAge(proposer: NodeID(2), age: 1)]
        acceptor.receive(.setMinimumAges(requestID: 1, ages: two), from: sender, into: &effects)
        #expect(Self.acknowledged(effects.last) == 1)
        effects.removeAll()
        // A restarted proposer (new ID 3) with 2: room is made by forgetting
        // 1, which this collection does not list, and only 1.
        acceptor.receive(
            .setMinimumAges(requestID: 2, ages: [ProposerAge(proposer: NodeID(2), age: 2),
                                                ProposerAge(proposer: NodeID(3), age: 1)]),
            from: sender, into: &effects)
        #expect(Self.acknowledged(effects.last) == 2)
        #expect(effects.contains { effect in
            if case .persist(.forgetMinimumAge(NodeID(1))) = effect { return true }
            return false
        })
        #expect(acceptor.snapshot.minimumAges == [NodeID(2): 2, NodeID(3): 1])
        #expect(acceptor.counters.minimumAgesForgotten == 1)
        // An update that alone lists more proposers than the limit.
        effects.removeAll()
        let three = (4...6).map { ProposerAge(proposer: NodeID(UInt64($0)), age: 1) }
        acceptor.receive(.setMinimumAges(requestID: 3, ages: three), from: sender, into: &effects)
        #expect(effects.isEmpty)
        #expect(acceptor.counters.minimumAgesRefused == 1)
        #expect(acceptor.snapshot.minimumAges == [NodeID(2): 2, NodeID(3): 1])
        // Raising a known proposer's age still works at the limit.
        acceptor.receive(
            .setMinimumAges(requestID: 4, ages: [ProposerAge(proposer: NodeID(2), age: 5)]), from: sender, into: &effects)
        #expect(Self.acknowledged(effects.last) == 4)
        #expect(acceptor.snapshot.minimumAges[NodeID(2)] == 5)
    }

    /// The request ID of an acknowledgment sent, or nil.
    static func acknowledged(_ effect: CASPaxosEffect?) -> UInt64? {
        guard case .send(.acknowledged(let id), _) = effect else { return nil }
        return id
    }
}
