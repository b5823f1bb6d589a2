import EventCore
import Raft
import Simulation
import Testing
import TestSupport
import WireCodec

/// Snapshots and log compaction (Raft §7) in the simulator: nodes snapshot
/// their state machine every few entries and compact their logs; a follower
/// that fell behind the compaction point receives the leader's snapshot in
/// chunks, over lossy links; a restarted node starts from its stored
/// snapshot. ``RaftCluster``'s invariants hold throughout.
@Suite("Raft snapshots and compaction")
struct SnapshotTests {
    /// Snapshots every 20 entries, keeps 5, sends 1 KiB chunks: larger
    /// than the 512-byte command limit, which must not bound a chunk.
    static let configuration: RaftConfiguration = {
        var configuration = RaftConfiguration()
        configuration.maximumCommandSize = 512
        configuration.snapshotInterval = 20
        configuration.entriesKeptAfterSnapshot = 5
        configuration.snapshotChunkSize = 1_024
        configuration.maximumSnapshotChunksInFlight = 4
        return configuration
    }()

    static func store(_ cluster: RaftCluster, _ index: Int) -> [String: [UInt8]] {
        (cluster.stateMachines[index] as? KeyValueStateMachine)?.values ?? [:]
    }

    /// Puts `count` 200-byte values under distinct keys at the leader.
    static func write(_ count: Int, from start: Int, in cluster: RaftCluster) throws {
        for number in start..<(start + count) {
            let leader = try #require(cluster.leader)
            let value = Array(repeating: UInt8(truncatingIfNeeded: number), count: 200)
            cluster.propose(KeyValueCommand.put(key: "key\(number)", value: value).encoded, at: leader)
            cluster.run(for: .milliseconds(2))
        }
    }

    /// Elects a leader, crashes a follower and writes 200 values without
    /// it, far past the leader's compaction point; returns the follower.
    static func leaveBehind(in cluster: RaftCluster) throws -> Int {
        #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(5)))
        let lagging = try #require(cluster.indices.first { $0 != cluster.leader })
        cluster.crash(lagging)
        try write(200, from: 0, in: cluster)
        #expect(cluster.run(until: { cluster.acknowledged.count == 200 }, limit: .seconds(10)))
        return lagging
    }

    /// Three key-value replicas with `configuration`, one left behind
    /// (``leaveBehind(in:)``): the cluster and that follower.
    static func clusterLeftBehind(seed: UInt64, configuration: RaftConfiguration) throws -> (RaftCluster, Int) {
        let cluster = try RaftCluster(
            count: 3, seed: seed, configuration: configuration, makeStateMachine: { KeyValueStateMachine() })
        return (cluster, try leaveBehind(in: cluster))
    }

    @Test("a follower behind the leader's compaction point catches up from a chunked snapshot over lossy links",
          arguments: [UInt64(1), 2, 3])
    func laggingFollowerGetsSnapshot(seed: UInt64) throws {
        let cluster = try RaftCluster(
            count: 3, seed: seed, link: RaftSimulationTests.faultyLink, configuration: Self.configuration,
            makeStateMachine: { KeyValueStateMachine() })
        let lagging = try Self.leaveBehind(in: cluster)
        let leader = try #require(cluster.leader)
        #expect((cluster.storages[leader]?.firstIndex ?? 0) > 20, "the leader compacted its log")

        try cluster.restart(lagging)
        #expect(cluster.run(until: { cluster.converged && Self.store(cluster, lagging).count == 200 },
                            limit: .seconds(20)))
        let newLeader = try #require(cluster.leader)
        #expect((cluster.rafts[newLeader]?.counters.snapshotsSent ?? 0) >= 1)
        #expect((cluster.rafts[lagging]?.counters.snapshotsInstalled ?? 0) >= 1)
        // 200 values of 200 bytes: the snapshot spans dozens of chunks.
        #expect(Self.store(cluster, lagging) == Self.store(cluster, newLeader))
        #expect(cluster.lostAcknowledgements().isEmpty)
        cluster.checkLogMatching()
        #expect(cluster.violations.isEmpty, "\(cluster.violations.prefix(3))")
    }

    /// The follower would refuse it, silently: sent, its chunks would go
    /// again every other heartbeat for ever.
    @Test("a leader does not send a snapshot above maximumSnapshotSize; it counts each time it withholds one")
    func oversizedSnapshotWithheld() throws {
        var configuration = Self.configuration
        configuration.maximumSnapshotSize = 4_096
        let (cluster, lagging) = try Self.clusterLeftBehind(seed: 1, configuration: configuration)
        try cluster.restart(lagging)
        cluster.run(for: .seconds(5))
        let leader = try #require(cluster.leader)
        #expect((cluster.rafts[leader]?.counters.snapshotsWithheld ?? 0) > 0)
        #expect(cluster.rafts[leader]?.counters.snapshotsSent == 0)
        #expect(cluster.rafts[lagging]?.counters.snapshotsRefused == 0, "chunks went out and were refused")
        #expect(cluster.violations.isEmpty, "\(cluster.violations.prefix(3))")
    }

    /// Decoding with its own limits, a follower whose snapshotChunkSize
    /// (and command limit) were below the leader's dropped every chunk as
    /// malformed, and the leader sent them again for ever.
    @Test("a follower configured with smaller chunks and commands than the leader's still decodes its snapshot")
    func followerWithSmallerLimitsCatchesUp() throws {
        var configuration = Self.configuration
        configuration.snapshotChunkSize = 8_192
        let (cluster, lagging) = try Self.clusterLeftBehind(seed: 4, configuration: configuration)
        cluster.configurations[lagging] = Self.configuration  // 1 KiB chunks, 512-byte commands
        try cluster.restart(lagging)
        #expect(cluster.run(until: { cluster.converged && Self.store(cluster, lagging).count == 200 },
                            limit: .seconds(20)))
        #expect(cluster.rafts[lagging]?.counters.malformedFramesDropped == 0)
    }

    /// A follower whose limit is below the leader's used to drop the
    /// chunks without a word: the leader sent them again every other
    /// heartbeat, for ever.
    @Test("a follower refuses a snapshot above its smaller limit, says so, and the leader stops; raised, it catches up")
    func followerRefusesOversizedSnapshot() throws {
        let errors = RecordedLogLines(level: .error)
        let cluster = try RaftCluster(
            count: 3, seed: 3, configuration: Self.configuration, logger: errors,
            makeStateMachine: { KeyValueStateMachine() })
        let lagging = try Self.leaveBehind(in: cluster)
        cluster.configurations[lagging].maximumSnapshotSize = 4_096  // the snapshot holds 200 × 200 bytes
        try cluster.restart(lagging)
        // 3 s: 60 heartbeats, within one refusal's 100.
        cluster.run(for: .seconds(3))
        let leader = try #require(cluster.leader)
        let refusedByFollowers = cluster.rafts[leader]?.counters.snapshotsRefusedByFollowers ?? 0
        let chunksRefused = cluster.rafts[lagging]?.counters.snapshotsRefused ?? 0
        #expect(refusedByFollowers == 1)
        // One window of chunks went out, and perhaps a resend of it before
        // the refusal came back; then none.
        #expect(chunksRefused >= 1 && chunksRefused <= 2 * Self.configuration.maximumSnapshotChunksInFlight)
        #expect((cluster.rafts[leader]?.counters.snapshotsWithheld ?? 0) > 0)
        #expect(Self.store(cluster, lagging).isEmpty)
        #expect(errors.all.contains { $0.contains("refused the snapshot through index") && $0.contains("from leader") })
        #expect(errors.all.contains { $0.contains("follower \(RaftCluster.id(lagging)) refused the snapshot") })

        // Restarted with the group's limit, it gets the snapshot once the
        // refusal expires.
        cluster.crash(lagging)
        cluster.configurations[lagging] = Self.configuration
        try cluster.restart(lagging)
        #expect(cluster.run(until: { cluster.converged && Self.store(cluster, lagging).count == 200 },
                            limit: .seconds(20)))
        let newLeader = try #require(cluster.leader)
        let same = Self.store(cluster, lagging) == Self.store(cluster, newLeader)
        #expect(same, "the follower's map differs from the leader's")
        #expect(cluster.violations.isEmpty, "\(cluster.violations.prefix(3))")
    }

    /// Records the durable term at each snapshot save.
    final class SnapshotOrderSpy: ForwardingRaftStorage {
        private(set) var termsAtSnapshotSave: [UInt64] = []

        init() { super.init(InMemoryRaftStorage()) }

        override func saveSnapshot(_ snapshot: RaftSnapshot) throws {
            termsAtSnapshotSave.append(inner.hardState.term)
            try super.saveSnapshot(snapshot)
        }
    }

    /// Saved before the ready's hard state, a snapshot that came with a new
    /// leader's term left, at a crash between the two, a log holding that
    /// term under the older current term (a file store restarts its log
    /// with the hard state it holds).
    @Test("a snapshot that comes with a new term is saved after the term is durable")
    func snapshotSavedAfterItsTerm() throws {
        let network = SimulatedNetwork(seed: 41)
        let follower = network.addNode()
        let leader = network.addNode()
        let storage = SnapshotOrderSpy()
        let node = try RaftNode(
            id: NodeID(2), group: 1, peers: [NodeID(1): leader.localEndpoint], storage: storage,
            stateMachine: KeyValueStateMachine(), transport: follower, scheduler: follower,
            configuration: Self.configuration, seed: 41)
        let state = KeyValueStateMachine()
        _ = state.apply(KeyValueCommand.put(key: "k", value: [1, 2, 3]).encoded, at: 1)
        let data = [0] + state.snapshot()  // a snapshot payload: no membership, then the state
        // The whole snapshot in one chunk, the first message of term 5.
        let chunk = RaftMessage(
            group: 1, from: NodeID(1), to: NodeID(2), term: 5,
            body: .snapshotChunk(snapshotIndex: 10, snapshotTerm: 5, totalSize: UInt64(data.count), offset: 0,
                                 data: data))
        var writer = WireWriter()
        try chunk.encodeFrame(into: &writer)
        try leader.send(writer.bytes, to: follower.localEndpoint)
        let end = network.now + .milliseconds(20)
        while network.now < end && network.step() {}
        #expect(storage.snapshot?.index == 10)
        #expect(storage.termsAtSnapshotSave == [5], "the term was not durable when the snapshot was saved")
        #expect(storage.hardState.term == 5 && node.term == 5)
    }

    /// How many times each proposal's completion ran.
    final class CompletionCounts {
        var counts: [Int] = []
        func track(_ raft: RaftNode, _ command: String, onFirst: (() -> Void)? = nil) {
            let number = counts.count
            counts.append(0)
            raft.propose(Array(command.utf8)) { [self] _ in
                counts[number] += 1
                if counts[number] == 1 { onFirst?() }
            }
        }
    }

    /// An old leader cut off with proposals of its own, and the rest of the
    /// group writing on until its snapshot is its last entry: the cluster,
    /// the old leader, and the snapshot's index once healed.
    static func deposedLeader(
        proposals: Int, seed: UInt64, _ propose: (RaftNode, Int) -> Void
    ) throws -> (RaftCluster, Int) {
        let cluster = try RaftCluster(
            count: 3, seed: seed, configuration: Self.configuration, makeStateMachine: { KeyValueStateMachine() })
        #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(5)))
        let old = try #require(cluster.leader)
        let others = cluster.indices.filter { $0 != old }
        cluster.network.partition([cluster.simulatedNodes[old]], others.map { cluster.simulatedNodes[$0] })
        let raft = try #require(cluster.rafts[old])
        for number in 0..<proposals { propose(raft, number) }
        cluster.run(for: .milliseconds(50))
        #expect(cluster.run(until: { cluster.leader.map { others.contains($0) } ?? false }, limit: .seconds(5)))
        // Writes until the new leader's last entry is its snapshot's.
        var written = 0
        while written < 200 {
            let leader = try #require(cluster.leader)
            try Self.write(1, from: written, in: cluster)
            written += 1
            cluster.run(for: .milliseconds(20))
            if let storage = cluster.storages[leader], let snapshot = storage.snapshot, snapshot.index >= 40,
                snapshot.index == storage.lastIndex
            {
                break
            }
        }
        cluster.network.heal()
        return (cluster, old)
    }

    /// Settled only by a later commit, which need not come: a group gone
    /// idle left them pending for ever.
    @Test("proposals above a received snapshot, of an earlier term than its, fail at once")
    func proposalsAboveSnapshotFail() throws {
        let completions = CompletionCounts()
        let (cluster, old) = try Self.deposedLeader(proposals: 100, seed: 5) { raft, number in
            completions.track(raft, "old\(number)")
        }
        let snapshotIndex = try #require(cluster.leader.flatMap { cluster.storages[$0]?.snapshot?.index })
        #expect(snapshotIndex < 100, "some proposals lie above the snapshot")
        #expect(cluster.run(until: { (cluster.rafts[old]?.counters.snapshotsInstalled ?? 0) >= 1 }, limit: .seconds(5)))
        cluster.run(for: .milliseconds(200))
        #expect(cluster.rafts[old]?.pendingProposalCount == 0)
        #expect(completions.counts.allSatisfy { $0 == 1 }, "\(completions.counts)")
    }

    /// A completion that stops the node used to see the proposals after
    /// its own failed twice: by the stop, then by the loop that called it.
    @Test("a completion that stops the node while a snapshot settles proposals: each completion runs once")
    func completionStopsDuringInstall() throws {
        let completions = CompletionCounts()
        var stopper: RaftNode?
        let (cluster, old) = try Self.deposedLeader(proposals: 10, seed: 6) { raft, number in
            completions.track(raft, "old\(number)", onFirst: number == 0 ? { stopper?.stop() } : nil)
            stopper = raft
        }
        #expect(cluster.run(until: { cluster.rafts[old]?.stopped == true }, limit: .seconds(5)))
        cluster.run(for: .milliseconds(100))
        #expect(completions.counts == Array(repeating: 1, count: 10), "\(completions.counts)")
    }

    /// A key-value map whose restores fail while `refuses` is set (a
    /// state machine that cannot read the leader's snapshot).
    final class RefusingStateMachine: RaftStateMachine {
        struct Refused: Error {}
        let inner = KeyValueStateMachine()
        nonisolated(unsafe) static var refuses = false

        func apply(_ command: [UInt8], at index: UInt64) -> [UInt8] { inner.apply(command, at: index) }
        func snapshot() -> [UInt8] { inner.snapshot() }
        func restore(from snapshot: [UInt8]) throws {
            if Self.refuses { throw Refused() }
            try inner.restore(from: snapshot)
        }
    }

    @Test("a follower whose state machine refuses the leader's snapshot stops with its storage unchanged, and starts again")
    func refusedSnapshot() throws {
        RefusingStateMachine.refuses = false
        defer { RefusingStateMachine.refuses = false }
        let cluster = try RaftCluster(
            count: 3, seed: 7, configuration: Self.configuration, makeStateMachine: { RefusingStateMachine() })
        let lagging = try Self.leaveBehind(in: cluster)
        RefusingStateMachine.refuses = true
        try cluster.restart(lagging)
        #expect(cluster.run(until: { cluster.rafts[lagging]?.stopped == true }, limit: .seconds(5)))
        #expect(cluster.storages[lagging]?.snapshot?.index == nil, "the refused snapshot was saved")
        // It starts again (and, still refusing, stops again at the next
        // snapshot): a saved snapshot would make every start throw.
        cluster.crash(lagging)
        #expect(throws: Never.self) { try cluster.restart(lagging) }
    }

    @Test("a restarted node restores its stored snapshot, then applies only the entries after it")
    func restartFromSnapshot() throws {
        let cluster = try RaftCluster(count: 3, seed: 11, configuration: Self.configuration,
                                      makeStateMachine: { KeyValueStateMachine() })
        #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(5)))
        try Self.write(50, from: 0, in: cluster)
        #expect(cluster.run(until: { cluster.acknowledged.count == 50 && cluster.converged }, limit: .seconds(5)))
        let follower = try #require(cluster.indices.first { $0 != cluster.leader })
        let stored = try #require(cluster.storages[follower]?.snapshot)
        #expect(stored.index >= 40)
        let restoresBefore = cluster.restores
        cluster.crash(follower)
        try cluster.restart(follower)
        #expect(cluster.restores == restoresBefore + 1)
        #expect(cluster.rafts[follower]?.appliedIndex ?? 0 >= stored.index, "restored, not replayed from index 1")
        try Self.write(30, from: 50, in: cluster)
        #expect(cluster.run(until: { cluster.acknowledged.count == 80 && cluster.converged }, limit: .seconds(5)))
        #expect(Self.store(cluster, follower).count == 80)
        #expect(cluster.lostAcknowledgements().isEmpty)
        #expect(cluster.violations.isEmpty, "\(cluster.violations.prefix(3))")
    }

    /// A follower held a prefix that did not end where the leader's chunks
    /// start (a leader restarted with another snapshotChunkSize): the
    /// chunk overlapping its end was ignored, the next reported a gap,
    /// the rewind sent the first again, for ever.
    @Test("a chunk that overlaps the end of the held prefix adds what is not held")
    func overlappingChunkExtendsPrefix() throws {
        var replica = try RaftReplica(id: NodeID(2), group: 1, peers: [NodeID(1), NodeID(3)],
                                      storage: InMemoryRaftStorage(), configuration: RaftConfiguration(), seed: 1,
                                      now: Instant(nanoseconds: 0))
        // A snapshot payload: no membership (a 0 byte), then the state.
        let data = [0] + (1..<3_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        func chunk(_ range: Range<Int>) -> RaftMessage {
            RaftMessage(group: 1, from: NodeID(1), to: NodeID(2), term: 3,
                        body: .snapshotChunk(snapshotIndex: 50, snapshotTerm: 2, totalSize: 3_000,
                                             offset: UInt64(range.lowerBound), data: Array(data[range])))
        }
        let now = Instant(nanoseconds: 1_000)
        // 1,500 bytes in chunks of 750; then chunks of 1,000.
        replica.step(chunk(0..<750), now: now)
        replica.step(chunk(750..<1_500), now: now)
        replica.step(chunk(1_000..<2_000), now: now)
        replica.step(chunk(2_000..<3_000), now: now)
        let ready = replica.ready()
        #expect(ready.messages.map(\.body).last == .appendResponse(.accepted(matchIndex: 50)))
        #expect(ready.snapshot?.data == Array(data.dropFirst()))
    }

    /// A late copy of a chunk of a snapshot the log already covers used to
    /// discard the transfer in progress, which then started again from
    /// byte 0.
    @Test("a late chunk of a snapshot the log covers leaves a later transfer in progress alone")
    func lateChunkKeepsTransfer() throws {
        let storage = InMemoryRaftStorage()
        let entries = (1...60).map { RaftEntry(term: 2, index: UInt64($0), command: [UInt8($0)]) }
        try storage.persist(entries, hardState: RaftHardState(term: 3, commitIndex: 60))
        var replica = try RaftReplica(id: NodeID(2), group: 1, peers: [NodeID(1), NodeID(3)], storage: storage,
                                      configuration: RaftConfiguration(), seed: 1, now: Instant(nanoseconds: 0))
        func chunk(_ index: UInt64, _ total: UInt64, _ offset: UInt64, _ byte: UInt8) -> RaftMessage {
            RaftMessage(group: 1, from: NodeID(1), to: NodeID(2), term: 3,
                        body: .snapshotChunk(snapshotIndex: index, snapshotTerm: 3, totalSize: total, offset: offset,
                                             data: Array(repeating: byte, count: 1_024)))
        }
        let now = Instant(nanoseconds: 1_000)
        replica.step(chunk(100, 2_048, 0, 0), now: now)  // 0: a payload with no membership
        replica.step(chunk(50, 1_024, 0, 9), now: now)  // covered: commit is 60
        replica.step(chunk(100, 2_048, 1_024, 2), now: now)
        let ready = replica.ready()
        #expect(ready.messages.map(\.body) == [
            .snapshotProgress(snapshotIndex: 100, receivedBytes: 1_024, outOfOrder: false),
            .appendResponse(.accepted(matchIndex: 60)),
            .appendResponse(.accepted(matchIndex: 100)),
        ])
        #expect(ready.snapshot?.index == 100)
    }

    @Test("a follower refuses a snapshot above its size limit, counts it and tells the leader; chunks out of order are reported")
    func hostileChunks() throws {
        var configuration = RaftConfiguration()
        configuration.maximumSnapshotSize = 4_096
        configuration.snapshotChunkSize = 1_024
        let storage = InMemoryRaftStorage()
        var replica = try RaftReplica(id: NodeID(2), group: 1, peers: [NodeID(1), NodeID(3)], storage: storage,
                                      configuration: configuration, seed: 1, now: Instant(nanoseconds: 0))
        func chunk(_ total: UInt64, _ offset: UInt64, _ data: [UInt8]) -> RaftMessage {
            RaftMessage(group: 1, from: NodeID(1), to: NodeID(2), term: 3,
                        body: .snapshotChunk(snapshotIndex: 50, snapshotTerm: 2, totalSize: total, offset: offset,
                                             data: data))
        }
        let now = Instant(nanoseconds: 1_000)
        replica.step(chunk(1 << 20, 0, Array(repeating: 1, count: 1_024)), now: now)
        #expect(replica.counters.snapshotsRefused == 1)
        let refusal = replica.ready()
        #expect(refusal.messages.map(\.body) == [.snapshotRefused(snapshotIndex: 50, maximumSize: 4_096)])
        replica.advance(refusal)
        replica.step(chunk(2_048, 1_024, Array(repeating: 1, count: 1_024)), now: now)
        var messages = replica.ready().messages
        #expect(messages.map(\.body) == [.snapshotProgress(snapshotIndex: 50, receivedBytes: 0, outOfOrder: true)])
        // Payload bytes: a 0 first (no membership), then the state.
        replica.step(chunk(2_048, 0, Array(repeating: 0, count: 1_024)), now: now)
        replica.step(chunk(2_048, 0, Array(repeating: 0, count: 1_024)), now: now)  // a duplicate
        replica.step(chunk(2_048, 1_024, Array(repeating: 2, count: 1_024)), now: now)
        let ready = replica.ready()
        messages = ready.messages
        #expect(messages.map(\.body) == [
            .snapshotProgress(snapshotIndex: 50, receivedBytes: 1_024, outOfOrder: false),
            .snapshotProgress(snapshotIndex: 50, receivedBytes: 1_024, outOfOrder: false),
            .appendResponse(.accepted(matchIndex: 50)),
        ])
        #expect(ready.snapshot?.index == 50 && ready.snapshot?.data == Array(repeating: 0, count: 1_023) + Array(repeating: 2, count: 1_024))
        try storage.saveSnapshot(try #require(ready.snapshot))
        try storage.persist(ready.entries, hardState: ready.hardState)
        replica.advance(ready)
        #expect(replica.commitIndex == 50 && replica.appliedIndex == 50 && replica.counters.snapshotsInstalled == 1)
        #expect(storage.firstIndex == 51 && storage.term(at: 50) == 2 && storage.hardState.commitIndex == 50)
    }
}
