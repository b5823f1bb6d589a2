@testable import CASPaxos
import EventCore
import TestSupport
import Testing

/// The durable store under power loss (``PowerLossRun``): a process dies
/// after a random system call of its writes, syncs and compactions, a
/// second starts on what it left (the power on), and the power is cut
/// after a random call. The store recovered from the disk must hold every
/// write either process acknowledged (a sync, or the second's load, that
/// returned before the cut), and nothing but writes it was given.
@Suite("FileAcceptorStore power loss")
struct AcceptorPowerLossTests {
    @Test("every acknowledged write survives a process crash, a restart, then a power loss", arguments: 0..<400)
    func acknowledgedWritesSurvive(seed: UInt64) throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = temporary.path + "/acceptor.log"
        let run = try PowerLossRun(seed: seed, root: temporary.path, callsPerProcess: 140, initial: AcceptorSnapshot()) {
            opensNew, journal, random, process in
            try Self.writes(path: path, opening: opensNew ? .new : .existing, journal: journal, using: &random, into: &process)
        }
        #expect(run.restartFoundWhatTheCrashLeft, "seed \(seed): the restart loaded a state the first process never went through since its last acknowledgement; \(run.summary)")
        #expect(run.recoveryFoundEveryAcknowledgement, "seed \(seed): the recovery after the power loss lost an acknowledged state; \(run.summary)")
        guard run.acknowledgedAnything else { return }
        let recovered = try FileAcceptorStore(path: path, opening: .existing).load()
        #expect(run.holdsEveryAcknowledgement(recovered), "seed \(seed): \(run.summary)")
    }

    /// Linux reports a failed write-back once, then marks the pages clean:
    /// a sync tried again could succeed. Here it would have, with the
    /// failed batch missing from the log and a later one in it.
    @Test("a failed sync stops the store: the next sync throws it again, unmade, though system calls succeed again")
    func failedSyncStopsTheStore() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let journal = try PowerLossJournal(root: temporary.path, cutAfter: .max)
        defer { journal.stop() }
        let path = temporary.path + "/acceptor.log"
        let store = try FileAcceptorStore(path: path, opening: .new)
        _ = try store.load()
        func register(_ key: UInt8) -> AcceptorWrite {
            let ballot = Ballot(counter: UInt64(key), proposer: NodeID(1))
            return .register(key: [key], state: RegisterState(promised: ballot, accepted: ballot, value: [key]))
        }
        store.apply(register(1))
        try store.sync()
        store.apply(register(2))
        // The batch is written, its fdatasync fails.
        journal.crashProcess(afterCall: journal.recordedCalls + 1)
        #expect(throws: AcceptorStoreError.self) { try store.sync() }
        journal.restartProcess()
        store.apply(register(3))
        let calls = journal.recordedCalls
        do {
            try store.sync()
            Issue.record("a sync after a failed one succeeded")
        } catch {
            #expect(error.code == .io && error.detail.contains("an earlier call failed"), "\(error)")
        }
        #expect(throws: AcceptorStoreError.self) { _ = try store.load() }
        #expect(journal.recordedCalls == calls, "the stopped store made a system call")
        store.close()
        let recovered = try FileAcceptorStore(path: path, opening: .existing).load()
        #expect(recovered.register([1]) != nil && recovered.register([3]) == nil)
    }

    /// One process: opens the store, loads it, and makes 40 rounds of
    /// writes each followed by a sync.
    static func writes(
        path: String, opening: FileAcceptorStore.Opening, journal: PowerLossJournal,
        using random: inout SeededRandomGenerator, into process: inout PowerLossProcess<AcceptorSnapshot>
    ) throws {
        // Small batches and threshold: compactions, and batches split.
        let store = try FileAcceptorStore(path: path, opening: opening, compactionThreshold: 2_048, maximumBatchPayload: 700)
        defer { store.close() }
        var state = try store.load()
        process.reach(state)
        process.acknowledgeLast(journal)
        var counter = (state.table.values.map(\.promised.counter) + [state.removalFloor.counter]).max()!
        for _ in 0..<40 {
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let write = Self.write(&counter, state, using: &random)
                store.apply(write)
                state.apply(write)
                // A sync writes the records in order, in batches synced one
                // by one: one that fails, or a crash, may leave any number.
                process.reach(state)
            }
            try store.sync()
            process.acknowledgeLast(journal)
        }
        #expect(store.compactionCount > 0)
    }

    /// A random write: mostly a register of one of a few keys accepted at
    /// the next ballot, with a value of up to 300 bytes (or a tombstone);
    /// sometimes a removal, a floor, a proposer's minimum age.
    static func write(
        _ counter: inout UInt64, _ state: AcceptorSnapshot, using random: inout SeededRandomGenerator
    ) -> AcceptorWrite {
        counter += 1
        let ballot = Ballot(counter: counter, proposer: NodeID(UInt64.random(in: 1...3, using: &random)))
        let key = [UInt8(UInt8.random(in: 0..<12, using: &random))]
        switch Int.random(in: 0..<20, using: &random) {
        case 0:
            return .remove(key: key, floor: state.register(key)?.promised ?? ballot)
        case 1:
            return .removalFloor(ballot)
        case 2:
            return .minimumAge(proposer: ballot.proposer, age: counter)
        case 3:
            return .register(key: key, state: RegisterState(promised: ballot, accepted: ballot, value: nil))
        default:
            let value = (0..<Int.random(in: 0...300, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            return .register(key: key, state: RegisterState(promised: ballot.successor, accepted: ballot, value: value))
        }
    }
}
