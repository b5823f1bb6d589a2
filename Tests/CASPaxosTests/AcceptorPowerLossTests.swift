@testable import CASPaxos
import EventCore
import TestSupport
import Testing

/// The durable store under power loss (``PowerLossJournal``). A first
/// process writes, syncs and compacts until it dies after a random system
/// call; a second one starts on what it left (the power still on: the
/// page cache holds what the first wrote and never synced) and writes on
/// until the power is cut after a random call. The disk is then left in
/// one state it could hold, and the store recovered from it must hold
/// every write either process acknowledged (a sync, or the second's load,
/// that returned before the cut), and nothing but writes it was given.
@Suite("FileAcceptorStore power loss")
struct AcceptorPowerLossTests {
    /// The system calls a process makes in a run, about: each cut falls
    /// anywhere among them.
    static let callsPerRun = 140

    /// What one process did: the states its store went through (at its
    /// load, then after each write, acknowledged by a sync or not) and the
    /// last one it acknowledged.
    struct Process {
        var states: [AcceptorSnapshot] = []
        var acknowledged: Int?

        /// The states a store recovering after this process may hold.
        var recoverable: ArraySlice<AcceptorSnapshot> { states[(acknowledged ?? 0)...] }

        /// The last state given is acknowledged, if the power is still on.
        mutating func acknowledgeLast(_ journal: PowerLossJournal) {
            if !journal.isCut { acknowledged = states.count - 1 }
        }
    }

    @Test("every acknowledged write survives a process crash, a restart, then a power loss", arguments: 0..<400)
    func acknowledgedWritesSurvive(seed: UInt64) throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        var random = SeededRandomGenerator(seed: seed)
        let crash = Int.random(in: 1...Self.callsPerRun, using: &random)
        // Half the cuts fall in the restart's recovery or just after it,
        // where a sync the recovery leaves out shows.
        let afterCrash = Int.random(in: 1...(Bool.random(using: &random) ? 8 : Self.callsPerRun), using: &random)
        let journal = PowerLossJournal(root: temporary.path, cutAfter: crash + afterCrash)
        journal.crashProcess(afterCall: crash)
        let path = temporary.path + "/acceptor.log"
        // A first start that did not finish its load left no log anyone
        // relied on: the operator starts it as new again.
        var first = Process(states: [AcceptorSnapshot()])
        try Self.run(path: path, opening: .new, journal: journal, using: &random, into: &first)
        journal.restartProcess()
        var second = Process()
        try Self.run(
            path: path, opening: first.acknowledged == nil ? .new : .existing, journal: journal, using: &random,
            into: &second)
        let crashLeft = second.states.first.map { first.recoverable.contains($0) } ?? true
        #expect(crashLeft, "seed \(seed): the restart after the process died at call \(crash) loaded a state the first process never acknowledged nor went through")
        try journal.restore(seed: random.next())
        guard first.acknowledged != nil || second.acknowledged != nil else { return }
        let recovered = try FileAcceptorStore(path: path, opening: .existing).load()
        let recoverable = second.acknowledged == nil ? first.recoverable + second.states : Array(second.recoverable)
        let survived = recoverable.contains(recovered)
        #expect(
            survived,
            "seed \(seed): process died after call \(crash), power cut after call \(journal.recordedCalls); the state recovered is not one the second process acknowledged last, or went through after it (\(second.states.count) states, the last acknowledged \(second.acknowledged.map(String.init) ?? "none"))")
    }

    /// One process: opens the store, loads it, and makes 40 rounds of
    /// writes each followed by a sync, until done or until the process
    /// dies (a store call fails once ``PowerLossJournal/hasProcessCrashed``).
    static func run(
        path: String, opening: FileAcceptorStore.Opening, journal: PowerLossJournal,
        using random: inout SeededRandomGenerator, into process: inout Process
    ) throws {
        do {
            // Small batches and threshold: compactions, and batches split.
            let store = try FileAcceptorStore(
                path: path, opening: opening, compactionThreshold: 2_048, maximumBatchPayload: 700)
            defer { store.close() }
            var state = try store.load()
            process.states.append(state)
            process.acknowledgeLast(journal)
            var counter = (state.table.values.map(\.promised.counter) + [state.removalFloor.counter]).max()!
            for _ in 0..<40 {
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    let write = Self.write(&counter, state, using: &random)
                    store.apply(write)
                    state.apply(write)
                    // A sync writes the records in order, in batches synced
                    // one by one: one that fails, or a crash, may leave any
                    // number of them.
                    process.states.append(state)
                }
                try store.sync()
                process.acknowledgeLast(journal)
            }
            #expect(store.compactionCount > 0)
        } catch {
            // The calls of a dead process fail; any other failure is one.
            guard journal.hasProcessCrashed else { throw error }
        }
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
