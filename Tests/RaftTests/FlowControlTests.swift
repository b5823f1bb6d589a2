import EventCore
import Testing
@testable import Raft

/// Per-follower flow control (probe and replicate states, the inflight
/// window) and batching of proposals, on replicas driven by hand.
@Suite("Flow control and batching")
struct FlowControlTests {
    static func appends(_ messages: [RaftMessage], to index: Int) -> [[RaftEntry]] {
        messages.compactMap { message in
            guard message.to == ReplicaGroup.id(index), case .append(_, _, let entries, _) = message.body else { return nil }
            return entries
        }
    }

    /// A group whose leader (replica 0) has every follower in the
    /// replicate state.
    static func settled(_ configuration: RaftConfiguration = ReplicaGroup.paperConfiguration) throws -> ReplicaGroup {
        let group = try ReplicaGroup(count: 3, configuration: configuration)
        group.elect(0)
        try group.propose(0, "warm-up")
        return group
    }

    /// Bounded by bytes alone, the storage copied every entry of a run of
    /// empty commands for each append of 1,024 (found by review): a
    /// follower far behind caught up in quadratic time.
    @Test("an append's entries are read from storage at most an append's count at a time")
    func storageReadsBounded() throws {
        final class ReadSpy: ForwardingRaftStorage {
            var largestRead = 0
            override func entries(from start: UInt64, through end: UInt64, maximumBytes: Int) -> [RaftEntry] {
                largestRead = max(largestRead, Int(end - start + 1))
                return super.entries(from: start, through: end, maximumBytes: maximumBytes)
            }
        }
        let inner = InMemoryRaftStorage()
        try inner.persist((1...10_000).map { RaftEntry(term: 1, index: $0, command: []) }, hardState: RaftHardState(term: 1))
        let spy = ReadSpy(inner)
        let log = RaftLog(storage: spy, applied: 0)
        let read = log.entries(from: 1, through: 10_000, maximumBytes: 1 << 20, maximumCount: RaftMessage.maximumEntriesPerAppend)
        #expect(read.count == RaftMessage.maximumEntriesPerAppend)
        #expect(spy.largestRead <= RaftMessage.maximumEntriesPerAppend)
        #expect(log.entries(from: 9_990, through: 10_000, maximumBytes: 1 << 20).count == 11)
    }

    /// Taken, it moved `next` past the log, which reads as compacted: with
    /// no snapshot stored, no append went to the follower for the rest of
    /// the term (its heartbeats kept it from an election).
    @Test("a rejection past the leader's log is dropped and counted; the follower keeps getting appends")
    func rejectionPastLogDropped() throws {
        let group = try Self.settled()
        let term = group.replicas[0].term
        let dropped = group.replicas[0].counters.messagesDropped
        let huge = RaftMessage.maximumTermOrIndex
        group.deliver(ReplicaGroup.message(
            from: 1, to: 0, term: term,
            .appendResponse(.rejected(rejectedIndex: huge, conflictTerm: 0, conflictIndex: huge))))
        #expect(group.replicas[0].counters.messagesDropped == dropped + 1)
        try group.propose(0, "after")
        #expect(group.storages[1].allEntries.last?.command == Array("after".utf8))
    }

    @Test("proposals made between two readies travel in one append per follower")
    func proposalsBatched() throws {
        let group = try Self.settled()
        for command in 0..<10 { try group.replicas[0].propose([UInt8(command)]) }
        let sent = group.takeMessages()
        for follower in [1, 2] {
            let appends = Self.appends(sent, to: follower)
            #expect(appends.count == 1)
            #expect(appends.first?.map(\.command) == (0..<10).map { [UInt8($0)] })
        }
    }

    @Test("in the probe state a leader sends one append and waits for its answer")
    func probeSendsOne() throws {
        let group = try ReplicaGroup(count: 3)
        group.timeOut(0)
        for request in group.takeMessages() { group.deliver(request) }
        for vote in group.takeMessages() { group.deliver(vote) }
        let first = group.takeMessages()
        #expect(Self.appends(first, to: 1).count == 1, "the probe carrying the new leader's no-op")
        for command in 0..<3 {
            try group.replicas[0].propose([UInt8(command)])
            #expect(Self.appends(group.takeMessages(), to: 1).isEmpty, "nothing more until the probe is answered")
        }
        #expect(group.replicas[0].progress[ReplicaGroup.id(1)]?.state == .probe)
        for message in first { group.deliver(message) }
        group.deliverAll()
        #expect(group.replicas[0].progress[ReplicaGroup.id(1)]?.state == .replicate)
        #expect(group.storages[1].allEntries.count == 4)
        let progress = group.replicas[0].replicationProgress(of: ReplicaGroup.id(1))
        #expect(progress?.match == 4 && progress?.next == 5)
        #expect(group.replicas[1].replicationProgress(of: ReplicaGroup.id(0)) == nil, "only a leader tracks progress")
    }

    @Test("a leader notes when each follower last answered it (a forged answer does not count); followers and a new leader have no contact yet")
    func lastContact() throws {
        let group = try ReplicaGroup(count: 3)
        group.timeOut(0)
        for request in group.takeMessages() { group.deliver(request) }
        for vote in group.takeMessages() { group.deliver(vote) }
        #expect(group.replicas[0].role == .leader)
        #expect(group.replicas[0].lastContact(with: ReplicaGroup.id(1)) == nil, "no answer yet")
        for append in group.takeMessages() { group.deliver(append) }
        group.now = group.now + .milliseconds(7)
        let answered = group.now
        for answer in group.takeMessages() where answer.from == ReplicaGroup.id(1) { group.deliver(answer) }
        #expect(group.replicas[0].lastContact(with: ReplicaGroup.id(1)) == answered)
        #expect(group.replicas[0].lastContact(with: ReplicaGroup.id(2)) == nil)
        #expect(group.replicas[1].lastContact(with: ReplicaGroup.id(0)) == nil, "only a leader has contacts")

        // A heartbeat answer for a read round this leader never sent is
        // forged: dropped, and no contact.
        group.now = group.now + .milliseconds(5)
        let term = group.replicas[0].term
        group.deliver(ReplicaGroup.message(from: 2, to: 0, term: term, .heartbeatResponse(readRound: 1_000)))
        #expect(group.replicas[0].lastContact(with: ReplicaGroup.id(2)) == nil)
        group.deliver(ReplicaGroup.message(from: 1, to: 0, term: term, .heartbeatResponse(readRound: 0)))
        #expect(group.replicas[0].lastContact(with: ReplicaGroup.id(1)) == group.now)

        // Replica 2 takes over: its contacts start empty.
        group.deliverAll()
        group.timeOut(1)
        for request in group.takeMessages() { group.deliver(request) }
        for vote in group.takeMessages() { group.deliver(vote) }
        #expect(group.replicas[1].role == .leader)
        #expect(group.replicas[1].lastContact(with: ReplicaGroup.id(0)) == nil)
        #expect(group.replicas[0].lastContact(with: ReplicaGroup.id(1)) == nil)
    }

    @Test("in the replicate state appends are pipelined up to maximumInflightMessages")
    func pipelineBoundedByMessages() throws {
        var configuration = ReplicaGroup.paperConfiguration
        configuration.maximumInflightMessages = 4
        let group = try Self.settled(configuration)
        var sent: [RaftMessage] = []
        for command in 0..<10 {
            try group.replicas[0].propose([UInt8(command)])
            sent += group.takeMessages()
        }
        #expect(Self.appends(sent, to: 1).count == 4)
        #expect(Self.appends(sent, to: 1).map(\.count) == [1, 1, 1, 1])
        for message in sent { group.deliver(message) }
        group.deliverAll()
        #expect(group.storages[1].allEntries.count == group.storages[0].allEntries.count)
        #expect(group.replicas[0].commitIndex == group.replicas[0].lastIndex)
    }

    @Test("in the replicate state appends are bounded by maximumInflightBytes and each by maximumAppendBytes")
    func pipelineBoundedByBytes() throws {
        var configuration = ReplicaGroup.paperConfiguration
        configuration.maximumAppendBytes = 1_024
        configuration.maximumInflightBytes = 2_048
        let group = try Self.settled(configuration)
        for _ in 0..<6 { try group.replicas[0].propose(Array(repeating: 1, count: 600)) }
        let sent = group.takeMessages()
        // 600 bytes per append (two would exceed 1,024), until 2,048 bytes are in flight: 4 appends.
        #expect(Self.appends(sent, to: 1).map(\.count) == [1, 1, 1, 1])
        for message in sent { group.deliver(message) }
        group.deliverAll()
        #expect(group.storages[2].allEntries.count == group.storages[0].allEntries.count)
    }

    @Test("a lost append in the replicate state is sent again after a heartbeat is answered")
    func lostAppendRecovered() throws {
        let group = try Self.settled()
        try group.replicas[0].propose(Array("lost".utf8))
        group.isolated = [1]
        group.deliverAll()
        group.isolated = []
        #expect(group.replicas[0].commitIndex == group.replicas[0].lastIndex, "committed with replica 2")
        #expect(group.storages[1].allEntries.count == group.storages[0].allEntries.count - 1)
        group.now = group.now + group.replicas[0].configuration.heartbeatInterval
        group.replicas[0].tick(now: group.now)
        group.deliverAll()
        #expect(group.storages[1].allEntries == group.storages[0].allEntries)
    }
}
