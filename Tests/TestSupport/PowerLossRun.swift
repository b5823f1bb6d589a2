import EventCore

/// What one process of a ``PowerLossRun`` did: the states its store went
/// through (once opened, then with each change, acknowledged or not: a
/// change that fails part-way may be what the next process finds) and the
/// last one it acknowledged.
package struct PowerLossProcess<State: Equatable> {
    package var states: [State]
    package var acknowledged: Int?

    package init(states: [State] = []) {
        self.states = states
    }

    /// The states a store recovering after this process may hold.
    package var recoverable: ArraySlice<State> { states[(acknowledged ?? 0)...] }

    /// The store reached `state`, not acknowledged yet.
    package mutating func reach(_ state: State) {
        states.append(state)
    }

    /// The last state reached is acknowledged, if the power is still on.
    package mutating func acknowledgeLast(_ journal: PowerLossJournal) {
        if !journal.isCut { acknowledged = states.count - 1 }
    }
}

/// One power-loss run of a durable store under ``PowerLossJournal``s: a
/// first process writes until it dies after a random system call; a
/// second one starts on what it left (the power still on: the page cache
/// holds what the first wrote and never synced) and writes on until the
/// power is cut after a random call; the disk is then left in one state it
/// could hold. A third process recovers from it (cutting torn tails, and
/// syncing) and writes on until the power is cut again. Half of each
/// process's cuts fall in its recovery or just after it, where a sync the
/// recovery leaves out shows.
package struct PowerLossRun<State: Equatable> {
    /// The call after which the first process died.
    package let crash: Int
    /// The journal of the first two processes, and of the third.
    package let journal: PowerLossJournal
    package let journalAfterPowerLoss: PowerLossJournal
    package private(set) var first: PowerLossProcess<State>
    package private(set) var second = PowerLossProcess<State>()
    package private(set) var third = PowerLossProcess<State>()

    /// Runs both processes and cuts the power.
    ///
    /// - Parameters:
    ///   - root: an empty directory, the store's.
    ///   - callsPerProcess: about how many system calls a process makes.
    ///   - initial: the state of a store that never ran.
    ///   - process: opens the store (as new if `opensNew`, else existing),
    ///     records what it does in the process, and changes the store with
    ///     `random`. A failure once the process died ends it; any other is
    ///     rethrown.
    package init(
        seed: UInt64, root: String, callsPerProcess: Int, initial: State,
        process: (_ opensNew: Bool, _ journal: PowerLossJournal, _ random: inout SeededRandomGenerator,
                  _ into: inout PowerLossProcess<State>) throws -> Void
    ) throws {
        var random = SeededRandomGenerator(seed: seed)
        func callsBeforeTheCut() -> Int {
            Int.random(in: 1...(Bool.random(using: &random) ? 8 : callsPerProcess), using: &random)
        }
        crash = Int.random(in: 1...callsPerProcess, using: &random)
        let journal = try PowerLossJournal(root: root, cutAfter: crash + callsBeforeTheCut())
        self.journal = journal
        defer { journal.stop() }
        journal.crashProcess(afterCall: crash)
        first = PowerLossProcess(states: [initial])
        func run(
            opensNew: Bool, under journal: PowerLossJournal, into record: inout PowerLossProcess<State>
        ) throws {
            do {
                try process(opensNew, journal, &random, &record)
            } catch {
                // The calls of a dead process fail (with EIO); any other
                // failure is one.
                guard journal.hasProcessCrashed, journal.refusedCalls > 0 else { throw error }
            }
        }
        try run(opensNew: true, under: journal, into: &first)
        journal.restartProcess()
        // A first start that did not finish opening left no store anyone
        // relied on: the operator starts it as new again.
        try run(opensNew: first.acknowledged == nil, under: journal, into: &second)
        try journal.restore(seed: random.next())
        let journalAfterPowerLoss = try PowerLossJournal(root: root, cutAfter: callsBeforeTheCut())
        self.journalAfterPowerLoss = journalAfterPowerLoss
        defer { journalAfterPowerLoss.stop() }
        let acknowledged = first.acknowledged != nil || second.acknowledged != nil
        try run(opensNew: !acknowledged, under: journalAfterPowerLoss, into: &third)
        try journalAfterPowerLoss.restore(seed: random.next())
    }

    /// Whether the second process opened a state the first went through
    /// since its last acknowledgement.
    package var restartFoundWhatTheCrashLeft: Bool {
        second.states.first.map { first.recoverable.contains($0) } ?? true
    }

    /// The states a store recovered after the first power loss may hold:
    /// one the second process acknowledged last or went through after (if
    /// it acknowledged nothing, the first's too).
    private var recoverableAfterFirstPowerLoss: [State] {
        second.acknowledged == nil ? first.recoverable + second.states : Array(second.recoverable)
    }

    /// Whether the third process, recovering from the first power loss,
    /// opened a state holding every acknowledgement before it.
    package var recoveryFoundEveryAcknowledgement: Bool {
        third.states.first.map(recoverableAfterFirstPowerLoss.contains) ?? true
    }

    /// Whether anything was acknowledged: the store must then open.
    package var acknowledgedAnything: Bool {
        first.acknowledged != nil || second.acknowledged != nil || third.acknowledged != nil
    }

    /// Whether `recovered`, the state a store opened after the second power
    /// loss, is one the third process acknowledged last or went through
    /// after (if it acknowledged nothing, one the first loss could leave,
    /// or the third's).
    package func holdsEveryAcknowledgement(_ recovered: State) -> Bool {
        let recoverable =
            third.acknowledged == nil ? recoverableAfterFirstPowerLoss + third.states : Array(third.recoverable)
        return recoverable.contains(recovered)
    }

    /// What a failed check reports.
    package var summary: String {
        "process died after call \(crash), power cut after call \(journal.recordedCalls), then after call \(journalAfterPowerLoss.recordedCalls) of the recovery; the processes went through \(first.states.count), \(second.states.count) and \(third.states.count) states, the last acknowledged \([first, second, third].map { $0.acknowledged.map(String.init) ?? "none" })"
    }
}
