import EventCore
@testable import Raft

/// Replicas of one group driven by hand, for the paper-conformance tests:
/// no network, no timers. Messages collect in `inFlight` until delivered;
/// readies are performed as a driver would (persist, send, apply, advance).
/// Replica `i` has ID `i + 1`.
final class ReplicaGroup {
    var replicas: [RaftReplica]
    let storages: [InMemoryRaftStorage]
    /// Messages sent and not yet delivered, in the order sent.
    var inFlight: [RaftMessage] = []
    /// Entries each replica applied, in order.
    var applied: [[RaftEntry]]
    /// The reads each replica confirmed, in order.
    var confirmedReads: [[RaftReadState]]
    /// Replicas whose messages are dropped, both ways.
    var isolated: [Int] = []
    var now = Instant(nanoseconds: 1_000_000_000)

    /// The paper's Raft: PreVote and CheckQuorum off.
    static let paperConfiguration: RaftConfiguration = {
        var configuration = RaftConfiguration()
        configuration.preVote = false
        configuration.checkQuorum = false
        return configuration
    }()

    init(
        count: Int, configuration: RaftConfiguration = ReplicaGroup.paperConfiguration,
        storages given: [InMemoryRaftStorage]? = nil, seed: UInt64 = 1
    ) throws {
        let storages = given ?? (0..<count).map { _ in InMemoryRaftStorage() }
        self.storages = storages
        let ids = (1...count).map { NodeID(UInt64($0)) }
        replicas = try (0..<count).map { index in
            try RaftReplica(
                id: ids[index], group: 9, peers: ids.filter { $0 != ids[index] }, storage: storages[index],
                configuration: configuration, seed: seed &+ UInt64(index), now: Instant(nanoseconds: 1_000_000_000))
        }
        applied = Array(repeating: [], count: count)
        confirmedReads = Array(repeating: [], count: count)
    }

    static func id(_ index: Int) -> NodeID { NodeID(UInt64(index + 1)) }
    static func index(_ id: NodeID) -> Int { Int(id.rawValue) - 1 }

    /// Performs replica `index`'s readies until it has none; returns the
    /// messages it sent.
    @discardableResult
    func process(_ index: Int) -> [RaftMessage] {
        var sent: [RaftMessage] = []
        while replicas[index].hasReady {
            let ready = replicas[index].ready()
            if let snapshot = ready.snapshot { try! storages[index].saveSnapshot(snapshot) }
            try! storages[index].persist(ready.entries, hardState: ready.hardState)
            sent += ready.messages
            applied[index] += ready.committedEntries
            confirmedReads[index] += ready.readStates
            replicas[index].advance(ready)
        }
        inFlight += sent
        return sent
    }

    func processAll() {
        for index in replicas.indices { process(index) }
    }

    /// Takes the messages in flight (after processing everyone).
    func takeMessages() -> [RaftMessage] {
        processAll()
        defer { inFlight = [] }
        return inFlight
    }

    /// Steps `message` into its receiver (unless either end is isolated).
    func deliver(_ message: RaftMessage) {
        let from = Self.index(message.from)
        let to = Self.index(message.to)
        guard !isolated.contains(from), !isolated.contains(to), replicas.indices.contains(to) else { return }
        replicas[to].step(message, now: now)
    }

    /// Delivers messages until none is left (or `limit` were); returns
    /// every one sent.
    @discardableResult
    func deliverAll(limit: Int = 100_000) -> [RaftMessage] {
        var delivered: [RaftMessage] = []
        while delivered.count < limit {
            let batch = takeMessages()
            if batch.isEmpty { break }
            for message in batch { deliver(message) }
            delivered += batch
        }
        return delivered
    }

    /// Replica `index`'s election timeout runs out (time moves to its
    /// deadline; no other replica is ticked).
    func timeOut(_ index: Int) {
        now = max(now, replicas[index].nextDeadline)
        replicas[index].tick(now: now)
    }

    /// Makes replica `index` leader (times it out and delivers everything).
    func elect(_ index: Int) {
        timeOut(index)
        deliverAll()
    }

    /// Proposes `command` at replica `index` and delivers everything.
    @discardableResult
    func propose(_ index: Int, _ command: String) throws -> RaftEntryID {
        let entry = try replicas[index].propose(Array(command.utf8))
        deliverAll()
        return entry
    }

    /// A message to replica `to` from `from`, in this group.
    static func message(from: Int, to: Int, term: UInt64, _ body: RaftMessage.Body) -> RaftMessage {
        RaftMessage(group: 9, from: id(from), to: id(to), term: term, body: body)
    }

    /// A storage preloaded with entries of the given terms (commands
    /// "t<term>i<index>") and hard state term `term`.
    static func storage(terms: [UInt64], term: UInt64) -> InMemoryRaftStorage {
        let storage = InMemoryRaftStorage()
        let entries = terms.enumerated().map { offset, entryTerm in
            RaftEntry(term: entryTerm, index: UInt64(offset + 1), command: Array("t\(entryTerm)i\(offset + 1)".utf8))
        }
        try! storage.persist(entries, hardState: RaftHardState(term: term))
        return storage
    }
}
