import EventCore

// Garbage collection of deleted keys and membership change (CASPaxos paper,
// sections 2.3 and 3.1): the proposer's answers to invalidations and
// reconfigurations, and the tasks that drive either procedure.
extension Proposer {
    /// Starts the garbage collection of `key`, which should hold a
    /// tombstone (a nil value written by a proposal): re-writes the
    /// tombstone through every acceptor, makes every proposer in
    /// `proposers` forget its cached ballot of the key, fast-forward past
    /// the tombstone and grow one age older, makes every acceptor refuse
    /// those proposers' younger messages, then has every acceptor remove the
    /// key if it still holds that tombstone. Each step waits for every node
    /// it addresses, resending every
    /// ``CASPaxosConfiguration/maintenanceRetryInterval``. If a step fails
    /// (its proposal fails, or the run passes
    /// ``CASPaxosConfiguration/maintenanceTimeout``), the collection starts
    /// over from the first step after a jittered exponential back-off
    /// (counted in ``ProposerCounters/maintenanceRestarts``), until it
    /// completes: every step is idempotent. If the key holds a value again,
    /// nothing is removed and the task succeeds. Ends with
    /// ``CASPaxosEffect/maintenanceCompleted(id:result:)`` on success (a
    /// collection that never gets every node's answer never ends).
    ///
    /// - Parameter proposers: every proposer of the cluster, this one
    ///   included.
    /// - Returns: the task's ID.
    @discardableResult
    public mutating func collectGarbage(
        key: [UInt8], proposers: [Endpoint], now: Instant, into effects: inout [CASPaxosEffect]
    ) -> UInt64 {
        let steps: [MaintenanceTask.Step] = [
            .rewriteTombstone(key: key), .invalidateProposers(key: key), .raiseMinimumAges, .removeTombstone(key: key),
        ]
        return startTask(steps, restartSteps: steps, proposers: proposers, now: now, into: &effects)
    }

    /// Starts changing the acceptors from the current majority
    /// configuration to `acceptors`, which must add or remove exactly one.
    /// Going from an odd 2F+1 to an even count (adding), or from an even
    /// 2F+2 to an odd one (removing), takes the paper's three steps: every
    /// proposer adopts an intermediate configuration (accepts to 2F+2 with
    /// quorum F+2, prepares to 2F+1 with quorum F+1), every key is re-written
    /// by an identity change, then every proposer adopts the majority
    /// configuration of `acceptors`. The other two directions treat the
    /// extra acceptor as one that was always down and take the last step
    /// only. A step that fails (a re-scan's identity change failing, say)
    /// is retried after a back-off until the
    /// ``CASPaxosConfiguration/maintenanceTimeout``, counted in
    /// ``ProposerCounters/maintenanceRestarts``; past it the change fails
    /// and the proposers may be left in the intermediate configuration.
    /// Ends with ``CASPaxosEffect/maintenanceCompleted(id:result:)``.
    ///
    /// - Parameter proposers: every proposer of the cluster, this one
    ///   included.
    /// - Throws: ``CASPaxosError/Code/invalidRequest`` if the change is not
    ///   of one acceptor or the current configuration is mid-change.
    @discardableResult
    public mutating func changeMembership(
        to acceptors: [Endpoint], proposers: [Endpoint], now: Instant, into effects: inout [CASPaxosEffect]
    ) throws(CASPaxosError) -> UInt64 {
        try startTask(membershipSteps(to: acceptors), restartSteps: nil, proposers: proposers, now: now, into: &effects)
    }

    /// Maintenance tasks running.
    public var maintenanceCount: Int { tasks.count }

    func membershipSteps(to target: [Endpoint]) throws(CASPaxosError) -> [MaintenanceTask.Step] {
        let current = quorums.prepareAcceptors
        guard current == quorums.acceptAcceptors, quorums == .majority(of: current, version: quorums.version) else {
            throw CASPaxosError(.invalidRequest, detail: "the configuration \(quorums) is itself mid-change")
        }
        let added = target.filter { !current.contains($0) }
        let removed = current.filter { !target.contains($0) }
        guard added.count + removed.count == 1, Set(target).count == target.count else {
            throw CASPaxosError(
                .invalidRequest, detail: "a membership change adds or removes one acceptor (\(added.count) added, \(removed.count) removed)")
        }
        let version = quorums.version
        let final = AcceptorQuorums.majority(of: target, version: version + 2)
        let smaller = added.isEmpty ? target : current
        let larger = added.isEmpty ? current : target
        guard smaller.count % 2 == 1 else { return [.reconfigure(final)] }
        let f = smaller.count / 2
        let intermediate = AcceptorQuorums(
            version: version + 1, prepareAcceptors: smaller, prepareQuorum: f + 1, acceptAcceptors: larger,
            acceptQuorum: f + 2)
        return [.reconfigure(intermediate), .rescan, .reconfigure(final)]
    }

    private mutating func startTask(
        _ steps: [MaintenanceTask.Step], restartSteps: [MaintenanceTask.Step]?, proposers: [Endpoint], now: Instant,
        into effects: inout [CASPaxosEffect]
    ) -> UInt64 {
        let taskID = nextProposalID
        nextProposalID += 1
        let deadline = now + configuration.maintenanceTimeout
        tasks[taskID] = MaintenanceTask(
            id: taskID, deadline: deadline, proposers: proposers, steps: steps, restartSteps: restartSteps,
            finalDeadline: restartSteps == nil ? deadline : .distantFuture)
        startStep(taskID, now: now, into: &effects)
        return taskID
    }

    // MARK: Answering

    mutating func receiveMaintenance(
        _ message: CASPaxosMessage, from sender: Endpoint, now: Instant, into effects: inout [CASPaxosEffect]
    ) {
        switch message {
        case .invalidate(let requestID, let key, let ballot):
            cache[key] = nil
            counter = max(counter, ballot.counter)
            age += 1
            counters.invalidations += 1
            effects.append(.send(.invalidated(requestID: requestID, proposer: id, age: age), to: sender))
        case .reconfigure(let requestID, let newQuorums):
            if newQuorums.version > quorums.version { adopt(newQuorums, now: now) }
            effects.append(.send(.acknowledged(requestID: requestID), to: sender))
        case .invalidated(let requestID, let proposer, let proposerAge):
            guard var task = answeringTask(requestID, from: sender) else { return }
            task.ages.append(ProposerAge(proposer: proposer, age: proposerAge))
            tasks[task.id] = task
            stepAnswered(task.id, now: now, into: &effects)
        case .acknowledged(let requestID):
            guard answeringTask(requestID, from: sender) != nil, let taskID = taskByRequest[requestID] else { return }
            stepAnswered(taskID, now: now, into: &effects)
        case .keyList(let requestID, let keys, let isComplete):
            receiveKeyList(requestID, keys, isComplete, from: sender, now: now, into: &effects)
        default:
            counters.unexpectedMessages += 1
        }
    }

    /// Adopts a newer configuration: cached ballots are dropped and every
    /// attempt in flight starts over under the new quorums (none may finish
    /// under the old ones once this proposer has acknowledged).
    private mutating func adopt(_ newQuorums: AcceptorQuorums, now: Instant) {
        quorums = newQuorums
        counters.reconfigurations += 1
        cache.removeAll()
        for proposalID in proposals.keys.sorted() {
            guard var proposal = proposals[proposalID], proposal.isInFlight else { continue }
            proposalByRequest[proposal.requestID] = nil
            proposal.phase = .backingOff(until: now)
            proposals[proposalID] = proposal
        }
    }

    /// The task whose current step waits for `sender`'s answer to
    /// `requestID`, after recording the answer; nil for a duplicate or
    /// stale answer.
    private mutating func answeringTask(_ requestID: UInt64, from sender: Endpoint) -> MaintenanceTask? {
        guard let taskID = taskByRequest[requestID], var task = tasks[taskID], task.requestID == requestID,
            task.targets.contains(sender), task.answered.insert(sender).inserted
        else {
            counters.staleReplies += 1
            return nil
        }
        tasks[taskID] = task
        return task
    }

    private mutating func stepAnswered(_ taskID: UInt64, now: Instant, into effects: inout [CASPaxosEffect]) {
        guard let task = tasks[taskID], task.answered.count == task.targets.count else { return }
        nextStep(taskID, now: now, into: &effects)
    }

    // MARK: Driving tasks

    private mutating func startStep(_ taskID: UInt64, now: Instant, into effects: inout [CASPaxosEffect]) {
        guard var task = tasks[taskID] else { return }
        guard let step = task.steps.first else {
            return finishTask(taskID, .success(()), into: &effects)
        }
        forgetRequests(of: task)
        task.listingRequests = [:]
        task.requestID = newRequestID()
        taskByRequest[task.requestID] = taskID
        task.answered = []
        task.message = nil
        task.targets = []
        switch step {
        case .rewriteTombstone(let key):
            tasks[taskID] = task
            startProposal(taskID, key: key, needsEveryAcceptor: true, now: now, into: &effects)
            return
        case .invalidateProposers(let key):
            task.ages = []
            task.targets = task.proposers
            task.message = .invalidate(requestID: task.requestID, key: key, ballot: task.tombstone)
        case .raiseMinimumAges:
            task.targets = quorums.allAcceptors
            task.message = .setMinimumAges(requestID: task.requestID, ages: task.ages)
        case .removeTombstone(let key):
            task.targets = quorums.allAcceptors
            task.message = .removeTombstone(requestID: task.requestID, key: key, ballot: task.tombstone)
        case .reconfigure(let newQuorums):
            task.targets = task.proposers
            task.message = .reconfigure(requestID: task.requestID, quorums: newQuorums)
        case .rescan:
            task.targets = quorums.prepareAcceptors
            task.listingCursor = [:]
            task.listingDone = []
            task.keys = []
        }
        tasks[taskID] = task
        sendStep(taskID, now: now, into: &effects)
    }

    /// Sends the current step's message to every target that has not
    /// answered (or the next listing request to every incomplete acceptor).
    private mutating func sendStep(_ taskID: UInt64, now: Instant, into effects: inout [CASPaxosEffect]) {
        guard var task = tasks[taskID] else { return }
        task.resendAt = now + configuration.maintenanceRetryInterval
        if let message = task.message {
            for target in task.targets where !task.answered.contains(target) {
                effects.append(.send(message, to: target))
            }
        } else if task.proposals.isEmpty, case .rescan = task.steps.first {
            for target in task.targets where !task.listingDone.contains(target) {
                let request = newRequestID()
                for (old, acceptor) in task.listingRequests where acceptor == target { taskByRequest[old] = nil }
                task.listingRequests = task.listingRequests.filter { $0.value != target }
                task.listingRequests[request] = target
                taskByRequest[request] = taskID
                effects.append(.send(.listKeys(requestID: request, after: task.listingCursor[target]), to: target))
            }
        }
        tasks[taskID] = task
    }

    private mutating func receiveKeyList(
        _ requestID: UInt64, _ keys: [[UInt8]], _ isComplete: Bool, from sender: Endpoint, now: Instant,
        into effects: inout [CASPaxosEffect]
    ) {
        guard let taskID = taskByRequest[requestID], var task = tasks[taskID],
            task.listingRequests[requestID] == sender, task.proposals.isEmpty
        else {
            counters.staleReplies += 1
            return
        }
        task.listingRequests[requestID] = nil
        taskByRequest[requestID] = nil
        task.keys.formUnion(keys)
        guard task.keys.count <= configuration.maximumRegisters else {
            // More keys than an acceptor may hold: a hostile listing.
            counters.unexpectedMessages += 1
            tasks[taskID] = task
            return taskFailed(
                taskID, CASPaxosError(.invalidRequest, detail: "the acceptors listed more than \(configuration.maximumRegisters) keys"),
                now: now, into: &effects)
        }
        if let last = keys.last { task.listingCursor[sender] = last }
        if isComplete { task.listingDone.insert(sender) }
        tasks[taskID] = task
        if task.listingDone.count >= quorums.prepareQuorum {
            for key in task.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                startProposal(taskID, key: key, needsEveryAcceptor: false, now: now, into: &effects)
            }
            if let task = tasks[taskID], task.proposals.isEmpty { nextStep(taskID, now: now, into: &effects) }
        } else if !isComplete {
            let request = newRequestID()
            task.listingRequests[request] = sender
            taskByRequest[request] = taskID
            tasks[taskID] = task
            effects.append(.send(.listKeys(requestID: request, after: task.listingCursor[sender]), to: sender))
        }
    }

    private mutating func startProposal(
        _ taskID: UInt64, key: [UInt8], needsEveryAcceptor: Bool, now: Instant, into effects: inout [CASPaxosEffect]
    ) {
        // The key came from this proposer's caller or an acceptor's listing,
        // both within the key limit; the pending limit is not applied to
        // maintenance, which must be able to finish.
        let proposalID = nextProposalID
        guard
            (try? propose(
                key: key, change: { $0 }, isIdentity: true, needsEveryAcceptor: needsEveryAcceptor, now: now,
                into: &effects))
                != nil
        else {
            return taskFailed(
                taskID, CASPaxosError(.overloaded, detail: "cannot start an identity change"), now: now, into: &effects)
        }
        tasks[taskID]?.proposals.insert(proposalID)
    }

    /// Called by ``complete`` for every proposal: advances the task waiting
    /// for it.
    mutating func proposalFinished(
        _ proposalID: UInt64, _ result: Result<[UInt8]?, CASPaxosError>, ballot: Ballot, now: Instant,
        into effects: inout [CASPaxosEffect]
    ) {
        guard let taskID = tasks.first(where: { $0.value.proposals.contains(proposalID) })?.key,
            var task = tasks[taskID]
        else { return }
        task.proposals.remove(proposalID)
        tasks[taskID] = task
        switch result {
        case .failure(let error):
            taskFailed(taskID, error, now: now, into: &effects)
        case .success(let value):
            if case .rewriteTombstone = task.steps.first {
                // A value written after the delete: nothing to collect.
                guard value == nil else { return finishTask(taskID, .success(()), into: &effects) }
                tasks[taskID]?.tombstone = ballot
            }
            if tasks[taskID]?.proposals.isEmpty == true { nextStep(taskID, now: now, into: &effects) }
        }
    }

    private mutating func nextStep(_ taskID: UInt64, now: Instant, into effects: inout [CASPaxosEffect]) {
        guard tasks[taskID] != nil else { return }
        tasks[taskID]?.steps.removeFirst()
        startStep(taskID, now: now, into: &effects)
    }

    /// A run of the task failed: after a back-off, a garbage collection
    /// starts over and a membership change retries the step that failed,
    /// unless that would pass the task's final deadline.
    private mutating func taskFailed(
        _ taskID: UInt64, _ error: CASPaxosError, now: Instant, into effects: inout [CASPaxosEffect]
    ) {
        guard var task = tasks[taskID] else { return }
        task.restarts += 1
        let pause = jitteredBackoff(
            initial: configuration.maintenanceRetryInterval, maximum: configuration.maintenanceRetryInterval * 64,
            failures: task.restarts)
        guard now + pause < task.finalDeadline else { return finishTask(taskID, .failure(error), into: &effects) }
        forgetRequests(of: task)
        counters.maintenanceRestarts += 1
        if let restartSteps = task.restartSteps { task.steps = restartSteps }
        task.proposals = []
        task.listingRequests = [:]
        task.message = nil
        task.targets = []
        task.resendAt = .distantFuture
        task.restartAt = now + pause
        task.deadline = min(now + pause + configuration.maintenanceTimeout, task.finalDeadline)
        tasks[taskID] = task
    }

    private mutating func forgetRequests(of task: MaintenanceTask) {
        taskByRequest[task.requestID] = nil
        for request in task.listingRequests.keys { taskByRequest[request] = nil }
    }

    private mutating func finishTask(
        _ taskID: UInt64, _ result: Result<Void, CASPaxosError>, into effects: inout [CASPaxosEffect]
    ) {
        guard let task = tasks.removeValue(forKey: taskID) else { return }
        forgetRequests(of: task)
        effects.append(.maintenanceCompleted(id: taskID, result: result))
    }

    mutating func tickMaintenance(now: Instant, into effects: inout [CASPaxosEffect]) {
        for taskID in tasks.keys.sorted() {
            guard var task = tasks[taskID] else { continue }
            if let restartAt = task.restartAt {
                guard now >= restartAt else { continue }
                task.restartAt = nil
                tasks[taskID] = task
                startStep(taskID, now: now, into: &effects)
            } else if now >= task.deadline {
                taskFailed(
                    taskID, CASPaxosError(.timeout, detail: "maintenance task \(taskID) did not finish"), now: now,
                    into: &effects)
            } else if now >= task.resendAt {
                sendStep(taskID, now: now, into: &effects)
            }
        }
    }

    var maintenanceDeadline: Instant {
        tasks.values.reduce(Instant.distantFuture) { min($0, $1.restartAt ?? min($1.deadline, $1.resendAt)) }
    }
}
