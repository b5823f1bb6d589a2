@testable import CASPaxos
import EventCore
import Testing

/// The acceptor's key listing (membership change's re-scan) pages through a
/// sorted index kept up to date, not a sort of every key per page.
@Suite("Key listing")
struct KeyListingTests {
    static let proposer = Endpoint.loopbackV4(port: 9)
    static let tombstoneBallot = Ballot(counter: 1, proposer: NodeID(1))

    static func key(_ number: Int) -> [UInt8] { Array("key-\(number)".utf8) }

    /// One page after `after`, as the acceptor answers it.
    static func page(_ acceptor: inout Acceptor, after: [UInt8]?) -> (keys: [[UInt8]], isComplete: Bool) {
        var effects: [CASPaxosEffect] = []
        acceptor.receive(.listKeys(requestID: 1, after: after, raisingFloorTo: nil, minimumVersion: 0), from: proposer, into: &effects)
        guard case .send(.keyList(_, let keys, let isComplete, _), _) = effects.last else {
            Issue.record("no key list in \(effects)")
            return ([], true)
        }
        return (keys, isComplete)
    }

    @Test("pages are complete and in byte order while keys are added and removed between them")
    func pagesUnderChurn() throws {
        var configuration = CASPaxosConfiguration()
        configuration.maximumKeysPerListing = 16
        // 600 keys, every third a tombstone that garbage collection may remove.
        var registers: [[UInt8]: RegisterState] = [:]
        for number in 0..<600 {
            registers[Self.key(number)] =
                number % 3 == 0
                ? RegisterState(promised: Self.tombstoneBallot, accepted: Self.tombstoneBallot, value: nil)
                : RegisterState(promised: Self.tombstoneBallot, accepted: Self.tombstoneBallot, value: [1])
        }
        var acceptor = try Acceptor(recovering: AcceptorSnapshot(registers: registers), configuration: configuration)
        let initial = Set(registers.keys)
        var everPresent = initial
        var removed: Set<[UInt8]> = []
        var random = SeededRandomGenerator(seed: 42)
        var listed: [[UInt8]] = []
        var cursor: [UInt8]?
        var pages = 0
        var next = 600
        while true {
            let page = Self.page(&acceptor, after: cursor)
            pages += 1
            #expect(page.keys.count <= 16)
            listed += page.keys
            if page.isComplete { break }
            cursor = page.keys.last
            // Between pages: new keys land anywhere (before and after the
            // cursor), and tombstones are removed.
            for _ in 0..<6 {
                var effects: [CASPaxosEffect] = []
                let ballot = Ballot(counter: 2, proposer: NodeID(2))
                acceptor.receive(.prepare(requestID: 2, key: Self.key(next), ballot: ballot, age: 0, version: 1), from: Self.proposer, into: &effects)
                everPresent.insert(Self.key(next))
                next += 1
            }
            for _ in 0..<3 {
                let victim = Self.key(3 * Int.random(in: 0..<200, using: &random))
                var effects: [CASPaxosEffect] = []
                acceptor.receive(
                    .removeTombstone(requestID: 3, key: victim, ballot: Self.tombstoneBallot), from: Self.proposer,
                    into: &effects)
                removed.insert(victim)
            }
        }
        #expect(zip(listed, listed.dropFirst()).allSatisfy { $0.lexicographicallyPrecedes($1) }, "strictly in byte order")
        #expect(Set(listed).isSubset(of: everPresent))
        // Every key present from the first page to the last was listed.
        #expect(initial.subtracting(removed).isSubset(of: Set(listed)))
        #expect(removed.count > 100 && next > 900, "the churn was real")
        #expect(pages >= 30)

        // A listing started afresh sees exactly the keys present.
        var fresh: [[UInt8]] = []
        cursor = nil
        while true {
            let page = Self.page(&acceptor, after: cursor)
            fresh += page.keys
            if page.isComplete { break }
            cursor = page.keys.last
        }
        let present = (0..<next).map(Self.key).filter { acceptor.register($0) != nil }
        #expect(fresh == present.sorted { $0.lexicographicallyPrecedes($1) })
        #expect(present.count == acceptor.registerCount)
    }

    @Test("a listing of long keys fits maximumMessageSize: fewer keys a page, every key listed")
    func longKeys() throws {
        // 64 keys of 256 bytes take 16,512 bytes, more than the 16 KiB a
        // message may take by default: they used to be listed in one page
        // that no frame could carry, so a membership change's re-scan
        // asked for it again until its deadline.
        let configuration = CASPaxosConfiguration()
        let keys = (0..<200).map { number in Array("\(number + 1_000)".utf8) + Array(repeating: 0x2D, count: 252) }
        var registers: [[UInt8]: RegisterState] = [:]
        for key in keys { registers[key] = RegisterState(promised: Self.tombstoneBallot) }
        var acceptor = try Acceptor(recovering: AcceptorSnapshot(registers: registers), configuration: configuration)
        var listed: [[UInt8]] = []
        var cursor: [UInt8]?
        while true {
            var effects: [CASPaxosEffect] = []
            acceptor.receive(.listKeys(requestID: 1, after: cursor, raisingFloorTo: nil, minimumVersion: 0), from: Self.proposer, into: &effects)
            guard case .send(let message, _) = effects.last, case .keyList(_, let page, let isComplete, _) = message else {
                Issue.record("no key list in \(effects)")
                return
            }
            #expect(WireFormatTests.encode(message).count <= configuration.maximumMessageSize)
            #expect(page.count < configuration.maximumKeysPerListing)
            listed += page
            cursor = page.last
            if isComplete { break }
        }
        #expect(listed == keys.sorted { $0.lexicographicallyPrecedes($1) })
    }

    @Test("the sorted index agrees with a sorted set through insertions, removals, merges and rebuilds")
    func indexAgreesWithModel() {
        var random = SeededRandomGenerator(seed: 7)
        let universe = (0..<1_200).map { Array("k\($0)".utf8) }
        var model = Set(universe.prefix(900))
        var index = SortedKeyIndex(model)
        // Phases of mostly removals (rebuilds drop the removed keys), mostly
        // insertions (merges of the recent keys) and both (keys coming back).
        for round in 0..<9_000 {
            let key = universe[Int.random(in: 0..<universe.count, using: &random)]
            let phase = round / 1_500 % 3
            if model.contains(key) {
                guard phase != 1 else { continue }
                model.remove(key)
                index.remove(key)
            } else {
                guard phase != 0 else { continue }
                model.insert(key)
                index.insert(key)
            }
            guard round % 90 == 0 else { continue }
            #expect(index.count == model.count)
            let sorted = model.sorted { $0.lexicographicallyPrecedes($1) }
            let after: [UInt8]? = Bool.random(using: &random) ? nil : universe[Int.random(in: 0..<universe.count, using: &random)]
            let limit = Int.random(in: 1...100, using: &random)
            // Keys here take 3 to 6 bytes with their length.
            let bytes = Int.random(in: 1...400, using: &random)
            let rest = after.map { bound in sorted.filter { bound.lexicographicallyPrecedes($0) } } ?? sorted
            var expected: [[UInt8]] = []
            var used = 0
            for key in rest.prefix(limit) {
                guard expected.isEmpty || used + 1 + key.count <= bytes else { break }
                used += 1 + key.count
                expected.append(key)
            }
            let page = index.page(after: after, limit: limit, bytes: bytes)
            #expect(page.keys == expected, "round \(round)")
            #expect(page.isComplete == (expected.count == rest.count), "round \(round)")
        }
    }

    /// Pages a hostile acceptor answers a re-scan's listing with.
    enum HostilePages: CaseIterable {
        /// Keys out of order in the first page.
        case outOfOrder
        /// An empty first page that says more follow (a listing that
        /// never ends).
        case emptyBeforeLast
        /// A first page, then a second that repeats its last key.
        case repeatsCursor
        /// A key longer than the proposer may propose (which a node's
        /// decoder refuses; a bare `Proposer` may be handed it).
        case keyOverLimit

        /// The answer to a listing request after `cursor`.
        func page(after cursor: [UInt8]?) -> (keys: [[UInt8]], isComplete: Bool) {
            switch self {
            case .outOfOrder: ([KeyListingTests.key(2), KeyListingTests.key(1)], false)
            case .emptyBeforeLast: ([], false)
            case .repeatsCursor: ([KeyListingTests.key(1)], false)
            case .keyOverLimit: ([[UInt8](repeating: 7, count: CASPaxosConfiguration().maximumKeySize + 1)], true)
            }
        }
    }

    @Test("a re-scan refuses a listing out of key order or empty before its last page, and never skips a key it cannot re-write: the change fails",
          arguments: HostilePages.allCases)
    func hostilePages(pages: HostilePages) throws {
        // A proposer changing three acceptors to four, every message
        // delivered at once (time moving on when none is in flight); the
        // acceptors answer its listing requests with `pages`. The run fails
        // at each such page (and each resume), so the change, which then
        // makes no progress, fails after maintenanceTimeout.
        var configuration = CASPaxosConfiguration()
        configuration.maintenanceTimeout = .seconds(1)
        let acceptorEndpoints = (1...4).map { Endpoint.loopbackV4(port: UInt16($0)) }
        var acceptors = try (0..<4).map { _ in try Acceptor(configuration: configuration) }
        var proposer = try Proposer(
            id: NodeID(1), quorums: .majority(of: Array(acceptorEndpoints[0..<3])), configuration: configuration,
            seed: 1)
        var now = Instant(nanoseconds: 1_000_000_000)
        var effects: [CASPaxosEffect] = []
        let change = try proposer.changeMembership(
            to: acceptorEndpoints, proposers: [Self.proposer], now: now, into: &effects)
        var result: Result<Void, CASPaxosError>?
        for _ in 0..<100_000 where result == nil {
            var next: [CASPaxosEffect] = []
            for effect in effects {
                let sends: [(CASPaxosMessage, Endpoint)]
                switch effect {
                case .send(let message, let destination): sends = [(message, destination)]
                case .sendToEach(let message, let destinations): sends = destinations.map { (message, $0) }
                case .maintenanceCompleted(change, let outcome): result = outcome; continue
                case .persist, .proposalCompleted, .maintenanceCompleted: continue
                }
                for (message, destination) in sends {
                    guard let index = acceptorEndpoints.firstIndex(of: destination) else {
                        proposer.receive(message, from: Self.proposer, now: now, into: &next)
                        continue
                    }
                    var replies: [CASPaxosEffect] = []
                    if case .listKeys(let requestID, let cursor, _, _) = message {
                        let page = pages.page(after: cursor)
                        replies = [.send(.keyList(requestID: requestID, keys: page.keys, isComplete: page.isComplete, removalFloor: .zero), to: Self.proposer)]
                    } else {
                        acceptors[index].receive(message, from: Self.proposer, into: &replies)
                    }
                    for case .send(let reply, _) in replies {
                        proposer.receive(reply, from: destination, now: now, into: &next)
                    }
                }
            }
            if next.isEmpty {
                now = now + .milliseconds(10)
                proposer.tick(now: now, into: &next)
            }
            effects = next
        }
        #expect(result.map { if case .failure = $0 { true } else { false } } == true, "\(String(describing: result))")
        #expect(proposer.counters.maintenanceRestarts >= 1)
        #expect(pages == .keyOverLimit || proposer.counters.unexpectedMessages >= 1)
    }
}
