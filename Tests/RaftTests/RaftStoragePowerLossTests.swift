import EventCore
import Raft
import TestSupport
import Testing

/// The write-ahead log under power loss (``PowerLossRun``): a process dies
/// after a random system call of its appends, overwrites, votes, snapshots
/// and compactions, a second starts on what it left (the power on), and
/// the power is cut after a random call. The store recovered from the disk
/// must hold every change either process acknowledged (a call, or the
/// second's opening, that returned before the cut), and nothing but
/// changes it was given.
@Suite("FileRaftStorage power loss")
struct RaftStoragePowerLossTests {
    /// What recovery must bring back: the term and vote, the snapshot, and
    /// the entries above it. The commit index is left out (a change of it
    /// alone is written with the next record; the leader teaches it again),
    /// and so is where the log starts below the snapshot (compaction's
    /// business).
    struct Durable: Equatable {
        var term: UInt64 = 0
        var votedFor: NodeID?
        var snapshot: RaftSnapshot?
        var entries: [RaftEntry] = []

        init() {}

        init(_ storage: FileRaftStorage) {
            term = storage.hardState.term
            votedFor = storage.hardState.votedFor
            snapshot = storage.snapshot
            let start = max(storage.firstIndex, (snapshot?.index ?? 0) + 1)
            entries = start > storage.lastIndex ? [] : storage.entries(from: start, through: storage.lastIndex, maximumBytes: .max)
        }

        /// This state after `change`.
        func applying(_ change: Change) -> Durable {
            var next = self
            switch change {
            case .persist(let entries, let hardState):
                next.term = hardState.term
                next.votedFor = hardState.votedFor
                if let first = entries.first?.index { next.entries = next.entries.filter { $0.index < first } + entries }
            case .snapshot(let snapshot):
                let holdsLast = next.entries.contains { $0.index == snapshot.index && $0.term == snapshot.term }
                next.snapshot = snapshot
                next.entries = holdsLast ? next.entries.filter { $0.index > snapshot.index } : []
            case .compact:
                break
            }
            return next
        }
    }

    /// A call that changes the store.
    enum Change {
        case persist([RaftEntry], RaftHardState)
        case snapshot(RaftSnapshot)
        case compact(through: UInt64)
    }

    /// Small segments: the log rolls over, and entries replaced below the
    /// active segment start a new one.
    static let options = FileRaftStorage.Options(segmentSize: 1_024)

    @Test("every acknowledged change survives a process crash, a restart, then a power loss", arguments: 0..<400)
    func acknowledgedChangesSurvive(seed: UInt64) throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let directory = temporary.path + "/replica"
        let run = try PowerLossRun(seed: seed, root: temporary.path, callsPerProcess: 220, initial: Durable()) {
            opensNew, journal, random, process in
            try Self.changes(directory: directory, opening: opensNew ? .new : .existing, journal: journal, using: &random, into: &process)
        }
        #expect(run.restartFoundWhatTheCrashLeft, "seed \(seed): the restart opened a state the first process never went through since its last acknowledgement; \(run.summary)")
        #expect(run.recoveryFoundEveryAcknowledgement, "seed \(seed): the recovery after the power loss lost an acknowledged state; \(run.summary)")
        guard run.acknowledgedAnything else { return }
        let recovered = Durable(try FileRaftStorage(directory: directory, opening: .existing, options: Self.options))
        #expect(run.holdsEveryAcknowledgement(recovered), "seed \(seed): \(run.summary)")
    }

    /// One process: opens the store and makes 60 random changes.
    static func changes(
        directory: String, opening: FileRaftStorage.Opening, journal: PowerLossJournal,
        using random: inout SeededRandomGenerator, into process: inout PowerLossProcess<Durable>
    ) throws {
        let storage = try FileRaftStorage(directory: directory, opening: opening, options: options)
        defer { storage.close() }
        var state = Durable(storage)
        process.reach(state)
        process.acknowledgeLast(journal)
        for _ in 0..<60 {
            let change = Self.change(storage, using: &random)
            // Made in part before a call fails, the change may be what the
            // next process finds.
            state = state.applying(change)
            process.reach(state)
            switch change {
            case .persist(let entries, let hardState): try storage.persist(entries, hardState: hardState)
            case .snapshot(let snapshot): try storage.saveSnapshot(snapshot)
            case .compact(let index): try storage.compact(through: index)
            }
            process.acknowledgeLast(journal)
            #expect(Durable(storage) == state, "the store holds the change it acknowledged")
        }
    }

    /// Linux reports a failed write-back once, then marks the pages clean:
    /// a write tried again could succeed on a log missing the failed one.
    @Test("a failed sync stops the store: every later write throws it again, unmade, though system calls succeed again")
    func failedSyncStopsTheStore() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let journal = try PowerLossJournal(root: temporary.path, cutAfter: .max)
        defer { journal.stop() }
        let directory = temporary.path + "/replica"
        let storage = try FileRaftStorage(directory: directory, opening: .new)
        let first = RaftEntry(term: 1, index: 1, command: [1])
        try storage.persist([first], hardState: RaftHardState(term: 1))
        // The record is written, its fdatasync fails.
        journal.crashProcess(afterCall: journal.recordedCalls + 1)
        let second = RaftEntry(term: 1, index: 2, command: [2])
        #expect(throws: RaftStorageError.self) { try storage.persist([second], hardState: RaftHardState(term: 1)) }
        journal.restartProcess()
        let calls = journal.recordedCalls
        do {
            try storage.persist([second], hardState: RaftHardState(term: 1))
            Issue.record("a write after a failed sync succeeded")
        } catch {
            #expect(error.detail.contains("an earlier call failed"), "\(error)")
        }
        #expect(throws: RaftStorageError.self) { try storage.saveSnapshot(RaftSnapshot(index: 1, term: 1, data: [])) }
        #expect(throws: RaftStorageError.self) { try storage.compact(through: 1) }
        #expect(journal.recordedCalls == calls, "the stopped store made a system call")
        #expect(storage.lastIndex == 1)
        storage.close()
    }

    /// A process died after writing a segment that supersedes two others
    /// (entries replaced from index 1), before removing them; the next
    /// process's recovery removes them, and dies after its `k`-th call, for
    /// every `k` up to past the end of the recovery. A third opening must
    /// find a log that replays (before, the oldest was removed first, and
    /// the one left started after a gap: `.missingSegment`), and what it
    /// answered from must outlive a power loss.
    @Test("a crash at any call of a recovery that removes superseded segments leaves a log that opens")
    func recoveryRemovesSupersededSegments() throws {
        for k in 1...12 {
            let temporary = try TemporaryDirectory()
            defer { temporary.remove() }
            let journal = try PowerLossJournal(root: temporary.path, cutAfter: .max)
            defer { journal.stop() }
            let directory = temporary.path + "/replica"
            // Segments of about 300 bytes: two of them, then one from index 1.
            let options = FileRaftStorage.Options(segmentSize: 300)
            var states: [Durable] = []
            do {
                let storage = try FileRaftStorage(directory: directory, opening: .new, options: options)
                defer { storage.close() }
                for index in 1...4 as ClosedRange<UInt64> {
                    let entry = RaftEntry(term: 1, index: index, command: [UInt8](repeating: UInt8(index), count: 150))
                    try storage.persist([entry], hardState: RaftHardState(term: 1))
                }
                states.append(Durable(storage))
                let replacing = [RaftEntry(term: 2, index: 1, command: [9])]
                states.append(states[0].applying(.persist(replacing, RaftHardState(term: 2))))
                // Its segment is written and named (5 calls); the removals die.
                journal.crashProcess(afterCall: journal.recordedCalls + 5)
                #expect(throws: RaftStorageError.self) { try storage.persist(replacing, hardState: RaftHardState(term: 2)) }
            }
            let segments = try DurableFile.contents(ofDirectory: directory).filter { $0.hasSuffix(".log") }
            #expect(segments.count == 3, "the scenario leaves the two superseded segments")
            journal.restartProcess()
            journal.crashProcess(afterCall: journal.recordedCalls + k)
            do {
                let storage = try FileRaftStorage(directory: directory, opening: .existing, options: options)
                storage.close()
            } catch {
                // The calls of a dead process fail; any other failure is one.
                guard journal.hasProcessCrashed else { throw error }
            }
            journal.restartProcess()
            let reopened = Durable(try FileRaftStorage(directory: directory, opening: .existing, options: options))
            #expect(reopened == states[1], "k = \(k)")
            // And the power goes: what the third opening answered from stays.
            try journal.restore(seed: UInt64(k))
            #expect(Durable(try FileRaftStorage(directory: directory, opening: .existing, options: options)) == states[1])
        }
    }

    /// One random change, as a replica makes them: mostly entries appended
    /// in the current term; sometimes a new term and vote, entries that
    /// replace the log's tail in a new term, a snapshot (of an entry held,
    /// or beyond the log, as a leader sends one), a compaction.
    static func change(_ storage: FileRaftStorage, using random: inout SeededRandomGenerator) -> Change {
        var hardState = storage.hardState
        let floor = (storage.snapshot?.index ?? 0) + 1
        func entries(from start: UInt64, term: UInt64) -> [RaftEntry] {
            (0..<UInt64.random(in: 1...5, using: &random)).map { offset in
                let size = Int.random(in: 0...200, using: &random)
                return RaftEntry(term: term, index: start + offset, command: (0..<size).map { _ in UInt8.random(in: 0...255, using: &random) })
            }
        }
        switch Int.random(in: 0..<20, using: &random) {
        case 0...1:
            hardState.term += 1
            hardState.votedFor = NodeID(UInt64.random(in: 1...3, using: &random))
            return .persist([], hardState)
        case 2...3 where storage.lastIndex >= floor:
            hardState.term += 1
            let start = UInt64.random(in: floor...storage.lastIndex, using: &random)
            return .persist(entries(from: start, term: hardState.term), hardState)
        case 4 where storage.lastIndex >= floor:
            let index = UInt64.random(in: floor...storage.lastIndex, using: &random)
            return .snapshot(RaftSnapshot(index: index, term: storage.term(at: index)!, data: [UInt8(index % 256)]))
        case 5:
            let index = storage.lastIndex + UInt64.random(in: 1...3, using: &random)
            return .snapshot(RaftSnapshot(index: index, term: hardState.term, data: [UInt8(index % 256)]))
        case 6:
            return .compact(through: storage.snapshot?.index ?? 0)
        default:
            if hardState.term == 0 { hardState.term = 1 }
            return .persist(entries(from: storage.lastIndex + 1, term: hardState.term), hardState)
        }
    }
}
