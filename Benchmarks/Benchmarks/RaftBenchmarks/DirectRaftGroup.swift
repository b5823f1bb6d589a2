import EventCore
import Foundation
import Raft
import RaftStateMachines
import WireCodec

/// How a ``DirectRaftGroup`` is built: the storage and state machine of
/// each replica, the replicas' configuration and the command size.
struct RaftGroupSetup {
    var configuration = RaftConfiguration()
    /// Each replica's storage: any ``RaftStorage`` (a file store with
    /// fsync is one closure away; see RaftBenchmarks.swift).
    var makeStorage: (_ replica: Int) throws -> any RaftStorage = { _ in InMemoryRaftStorage() }
    /// Each replica's state machine.
    var makeStateMachine: (_ replica: Int) -> any RaftStateMachine = { _ in CountingStateMachine() }
    /// The size of every proposed command, in bytes.
    var commandSize = 64
    /// A directory for file stores, removed after the run.
    var temporaryDirectory: String?
}

extension RaftGroupSetup {
    /// The defaults, with a new empty ``temporaryDirectory`` (named after
    /// `prefix`) for `makeStorage` to put file stores in.
    init(inTemporaryDirectory prefix: String) throws {
        self.init()
        let name = "\(prefix)-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))"
        let url = FileManager.default.temporaryDirectory.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        temporaryDirectory = url.path
    }
}

/// What one run of a ``DirectRaftGroup`` workload measured.
struct RaftRunOutcome {
    /// Commands committed and applied on the leader during the run.
    var commits = 0
    var seconds = 0.0
    /// Calls of `RaftStorage.persist` (one per ready with entries or a hard
    /// state: what a file store syncs once), on the leader and on all three.
    var leaderPersists = 0
    var persists = 0
    /// Entries the leader persisted (its log entries, its no-op included).
    var leaderEntriesPersisted = 0
    /// fsyncs the leader's `FileRaftStorage` made during the run (0 in
    /// memory), and the entries it persisted meanwhile.
    var leaderSyncs = 0
    var leaderEntriesSynced = 0
    /// Frames encoded and decoded, and their bytes.
    var frames = 0
    var frameBytes = 0
    /// Rounds of the pump (every replica performs its ready, then every
    /// frame in flight is delivered).
    var rounds = 0
    /// Per-commit latencies of a sequential run (propose to applied on
    /// the leader), in nanoseconds, sorted.
    var latencies: [Int64] = []

    var commitsPerSecond: Double { seconds > 0 ? Double(commits) / seconds : 0 }
    var leaderPersistsPerSecond: Double { seconds > 0 ? Double(leaderPersists) / seconds : 0 }
    var leaderSyncsPerSecond: Double { seconds > 0 ? Double(leaderSyncs) / seconds : 0 }
    /// Entries per leader fsync (group commit).
    var entriesPerLeaderSync: Double { leaderSyncs > 0 ? Double(leaderEntriesSynced) / Double(leaderSyncs) : 0 }
    /// Commands per leader persist (a file store's entries per fsync).
    var entriesPerLeaderPersist: Double {
        leaderPersists > 0 ? Double(leaderEntriesPersisted) / Double(leaderPersists) : 0
    }

    /// The `percent` percentile of ``latencies`` (nearest rank, rounded down).
    func latency(_ percent: Int) -> Int64 {
        latencies.isEmpty ? 0 : latencies[(latencies.count - 1) * percent / 100]
    }
}

/// Three ``RaftReplica``s of one group driven directly in one thread, as
/// etcd raft's in-process benchmarks drive their `RawNode`s: no sockets and
/// no timers, but every message is really encoded into a frame
/// (`encodeFrame(into:limits:)`, the bytes a UDP datagram would carry) and
/// decoded on the other side (`Frame.decodeBody` + `RaftMessage(decoding:limits:)`).
///
/// The pump runs in rounds. In a round every replica that has a ready
/// performs it as ``RaftNode`` does (persist its entries and hard state,
/// encode its messages into the destinations' inboxes, apply its committed
/// entries, advance); then every frame in flight is decoded and stepped into
/// its destination. Frames of one round wait in their inbox until the next,
/// so a replica handles all the messages that arrived together before its
/// next ready, as a driver reading a socket would.
///
/// The harness's own state is exempt from dynamic exclusivity checks
/// (`@exclusivity(unchecked)`, as in the simulator): one thread, no
/// overlapping access, and the checks would be a large share of the time
/// measured.
///
/// Replica 0 is elected leader first (its election timeout is made to run
/// out with a manual clock); the clock then stands still, so no heartbeat or
/// election interferes with the measurement.
final class DirectRaftGroup {
    /// Frames waiting for one replica: back to back in one buffer, with
    /// where each ends. Reused, so delivering allocates nothing.
    private struct Inbox {
        var writer = WireWriter(capacity: 1 << 16)
        var ends: [Int] = []
    }

    /// The replicas, in memory the group allocates: reading a field of an
    /// `Array` element held by a class can copy the whole `RaftReplica`
    /// first (it did, once the replica grew), which the measurement would
    /// count.
    let replicas: UnsafeMutableBufferPointer<RaftReplica>
    let storages: [any RaftStorage]
    let stateMachines: [any RaftStateMachine]
    let setup: RaftGroupSetup
    private let limits: WireLimits
    @exclusivity(unchecked) private var inboxes: [Inbox]
    @exclusivity(unchecked) private var spare = Inbox()
    @exclusivity(unchecked) private var now = Instant(nanoseconds: 1_000_000_000)
    /// 1,024 distinct commands, proposed in turn (shared arrays: proposing
    /// one allocates nothing).
    private let commands: [[UInt8]]
    @exclusivity(unchecked) private var nextCommand = 0
    /// Command entries the leader applied.
    @exclusivity(unchecked) private var leaderApplied = 0
    /// ReadIndex reads the leader confirmed and served: a read's index is
    /// the commit index, applied in the same ready, so each is served at
    /// once, by a lookup in the leader's map (if it has a
    /// ``KeyValueStateMachine``), of the key its ID names.
    @exclusivity(unchecked) private var readsConfirmed = 0
    @exclusivity(unchecked) private var readsFound = 0
    private let leaderMap: KeyValueStateMachine?
    private let keys: [String]
    /// `KeyValueCommand.get` commands of the same keys, for reads through
    /// the log.
    private let gets: [[UInt8]]
    @exclusivity(unchecked) private var outcome = RaftRunOutcome()

    init(_ setup: RaftGroupSetup) throws {
        self.setup = setup
        let ids = (1...3).map { NodeID(UInt64($0)) }
        let storages = try (0..<3).map { try setup.makeStorage($0) }
        self.storages = storages
        stateMachines = (0..<3).map { setup.makeStateMachine($0) }
        let start = now
        let made = try (0..<3).map { index in
            try RaftReplica(
                id: ids[index], group: 1, peers: ids.filter { $0 != ids[index] }, storage: storages[index],
                configuration: setup.configuration, seed: UInt64(index + 1), now: start)
        }
        replicas = .allocate(capacity: 3)
        _ = replicas.initialize(from: made)
        limits = RaftMessage.decodingLimits  // RaftNode's
        inboxes = Array(repeating: Inbox(), count: 3)
        commands = (0..<1_024).map { Self.command(number: $0, size: setup.commandSize) }
        keys = (0..<1_024).map { "key-\(String($0 + 10_000).dropFirst())" }
        gets = keys.map { KeyValueCommand.get(key: $0).encoded }
        leaderMap = stateMachines[0] as? KeyValueStateMachine
    }

    deinit {
        replicas.deinitialize()
        replicas.deallocate()
    }

    /// A `KeyValueCommand.put` of key "key-NNNN" whose value pads it to
    /// `size` bytes (so a ``KeyValueStateMachine`` can apply it too).
    static func command(number: Int, size: Int) -> [UInt8] {
        let key = "key-\(String(number + 10_000).dropFirst())"
        let overhead = KeyValueCommand.put(key: key, value: []).encoded.count
        precondition(
            (overhead...(overhead + 127)).contains(size), "commands of \(overhead) ... \(overhead + 127) bytes")
        return KeyValueCommand.put(key: key, value: Array(repeating: 0x2A, count: size - overhead)).encoded
    }

    var leader: RaftReplica { replicas[0] }

    /// Makes replica 0 leader and commits its no-op entry.
    func elect() throws {
        now = max(now, replicas[0].nextDeadline)
        replicas[0].tick(now: now)
        pumpUntilIdle()
        guard replicas[0].role == .leader, replicas[0].commitIndex == replicas[0].lastIndex else {
            throw BenchmarkSetupError(
                "replica 1 did not become leader: \(replicas.map(\.role)), "
                    + "commit \(replicas.map(\.commitIndex)), last \(replicas.map(\.lastIndex))")
        }
        outcome = RaftRunOutcome()
    }

    // MARK: Workloads

    /// Keeps `inFlight` proposals outstanding (proposed on the leader, not
    /// yet applied there) until `commits` have been applied on the leader:
    /// before each round, proposals top the count back up. With 1,000 in
    /// flight this is the pipelined run; with 64 it stands for 64 closed-loop
    /// clients (each proposes again as soon as its command is applied).
    func runClosedLoop(inFlight: Int, commits: Int) throws -> RaftRunOutcome {
        let clock = ContinuousClock()
        let started = clock.now
        let (syncsBefore, entriesBefore) = (leaderSyncCount, outcome.leaderEntriesPersisted)
        let target = leaderApplied + commits
        var proposed = leaderApplied
        while leaderApplied < target {
            while proposed - leaderApplied < inFlight && proposed < target {
                try propose()
                proposed += 1
            }
            guard round() else { throw BenchmarkSetupError("the group went idle with proposals outstanding") }
        }
        pumpUntilIdle()
        outcome.seconds = (clock.now - started).seconds
        outcome.commits = commits
        outcome.leaderSyncs = leaderSyncCount - syncsBefore
        outcome.leaderEntriesSynced = outcome.leaderEntriesPersisted - entriesBefore
        return outcome
    }

    /// The fsyncs of the leader's storage so far, if it is a file store.
    private var leaderSyncCount: Int { (storages[0] as? FileRaftStorage)?.syncCount ?? 0 }

    /// One proposal at a time, `commits` times: propose on the leader, pump
    /// until the leader has applied it (the latency: it stops right after
    /// the leader's ready that applied it), then let the remaining messages
    /// (the followers learning the new commit index) settle, outside the
    /// latency but inside the run's time.
    func runSequential(commits: Int) throws -> RaftRunOutcome {
        let clock = ContinuousClock()
        outcome.latencies.reserveCapacity(commits)
        let started = clock.now
        for _ in 0..<commits {
            let target = leaderApplied + 1
            let began = clock.now
            try propose()
            while leaderApplied < target {
                guard round(stopOnceLeaderApplied: target) else {
                    throw BenchmarkSetupError("the group went idle with a proposal outstanding")
                }
            }
            let latency = clock.now - began
            outcome.latencies.append(latency.nanoseconds)
            pumpUntilIdle()
        }
        outcome.seconds = (clock.now - started).seconds
        outcome.commits = commits
        outcome.latencies.sort()
        return outcome
    }

    /// Keeps `inFlight` ReadIndex reads outstanding on the leader until
    /// `reads` have been confirmed (and so served: see
    /// ``readsConfirmed``); reads asked before a round share it. Or, with
    /// `throughLog`, the same number of `KeyValueCommand.get` proposals
    /// (the read as a log entry, appended, persisted and applied on every
    /// replica). `commits` counts the reads either way.
    func runClosedLoopReads(inFlight: Int, reads: Int, throughLog: Bool) throws -> RaftRunOutcome {
        let clock = ContinuousClock()
        let started = clock.now
        let (syncsBefore, entriesBefore) = (leaderSyncCount, outcome.leaderEntriesPersisted)
        var done: Int { throughLog ? leaderApplied : readsConfirmed }
        let target = done + reads
        var asked = done
        while done < target {
            while asked - done < inFlight && asked < target {
                do throws(RaftError) {
                    if throughLog {
                        try replicas[0].propose(gets[asked & 1_023])
                    } else {
                        try replicas[0].readIndex(UInt64(asked))
                    }
                } catch {
                    throw BenchmarkSetupError("read refused: \(error)")
                }
                asked += 1
            }
            guard round() else { throw BenchmarkSetupError("the group went idle with reads outstanding") }
        }
        pumpUntilIdle()
        outcome.seconds = (clock.now - started).seconds
        outcome.commits = reads
        outcome.leaderSyncs = leaderSyncCount - syncsBefore
        outcome.leaderEntriesSynced = outcome.leaderEntriesPersisted - entriesBefore
        return outcome
    }

    private func propose() throws {
        let command = commands[nextCommand]
        nextCommand = (nextCommand + 1) & 1_023
        do throws(RaftError) {
            try replicas[0].propose(command)
        } catch {
            throw BenchmarkSetupError("proposal refused: \(error)")
        }
    }

    // MARK: The pump

    func pumpUntilIdle() {
        while round() {}
    }

    /// Every replica performs its ready, then every frame in flight is
    /// delivered. Returns whether anything happened. Stops early, right
    /// after the ready in which the leader applied its `target`th command
    /// (the moment its client would have the answer); what is left is
    /// performed in the next round.
    @discardableResult
    func round(stopOnceLeaderApplied target: Int = .max) -> Bool {
        var busy = false
        for index in 0..<3 where Self.hasReady(&replicas[index]) {
            perform(index)
            busy = true
            if leaderApplied >= target {
                outcome.rounds += 1
                return true
            }
        }
        for index in 0..<3 where !inboxes[index].ends.isEmpty {
            deliver(to: index)
            busy = true
        }
        if busy { outcome.rounds += 1 }
        return busy
    }

    /// `replica.hasReady`, reached through an exclusive (`inout`) access:
    /// read in place from the group's memory, a non-inlined getter made
    /// the pump copy the whole replica first, to protect it for the call.
    private static func hasReady(_ replica: inout RaftReplica) -> Bool {
        replica.hasReady
    }

    /// Performs replica `index`'s ready in ``RaftReady``'s order.
    private func perform(_ index: Int) {
        let ready = replicas[index].ready()
        if !ready.entries.isEmpty || ready.hardState != nil {
            do {
                try storages[index].persist(ready.entries, hardState: ready.hardState)
            } catch {
                fatalError("storage of replica \(index + 1) failed: \(error)")
            }
            outcome.persists += 1
            if index == 0 {
                outcome.leaderPersists += 1
                outcome.leaderEntriesPersisted += ready.entries.count
            }
        }
        for message in ready.messages {
            let destination = Int(message.to.rawValue) - 1
            let before = inboxes[destination].writer.count
            do throws(WireError) {
                try message.encodeFrame(into: &inboxes[destination].writer, limits: limits)
            } catch {
                fatalError("cannot encode \(message.body): \(error)")
            }
            inboxes[destination].ends.append(inboxes[destination].writer.count)
            outcome.frames += 1
            outcome.frameBytes += inboxes[destination].writer.count - before
        }
        let stateMachine = stateMachines[index]
        for entry in ready.committedEntries where entry.kind == .command {
            _ = stateMachine.apply(entry.command, at: entry.index)
            if index == 0 { leaderApplied += 1 }
        }
        if index == 0 {
            for read in ready.readStates {
                if leaderMap?.values[keys[Int(read.id & 1_023)]] != nil { readsFound += 1 }
            }
            readsConfirmed += ready.readStates.count
        }
        replicas[index].advance(ready)
    }

    /// Decodes and steps every frame waiting for replica `index`.
    private func deliver(to index: Int) {
        swap(&inboxes[index], &spare)
        let limits = limits
        let now = now
        spare.writer.withUnsafeBytes { buffer in
            var start = 0
            for end in spare.ends {
                let frame = UnsafeRawBufferPointer(rebasing: buffer[start..<end])
                start = end
                let message: RaftMessage
                do throws(WireError) {
                    let body = try Frame.decodeBody(frame, of: .raft, limits: limits)
                    message = try RaftMessage(decoding: body, limits: limits)
                } catch {
                    fatalError("a frame to replica \(index + 1) did not decode: \(error)")
                }
                replicas[index].step(message, now: now)
            }
        }
        spare.writer.removeAll()
        spare.ends.removeAll(keepingCapacity: true)
    }
}

struct BenchmarkSetupError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
