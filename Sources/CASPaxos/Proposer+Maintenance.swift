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
    /// (its proposal fails, or the run finishes no step for
    /// ``CASPaxosConfiguration/maintenanceTimeout``), the collection starts
    /// over from the first step after a jittered exponential back-off
    /// (counted in ``ProposerCounters/maintenanceRestarts``), until it
    /// completes, or for ``CASPaxosConfiguration/garbageCollectionTimeout``:
    /// every step is idempotent (unless this proposer is fenced
    /// off: a proposal refused with ``CASPaxosError/Code/staleConfiguration``
    /// stops the collection with that error). If the key holds a value again,
    /// nothing is removed and the task succeeds. Ends with
    /// ``CASPaxosEffect/maintenanceCompleted(id:result:)``: success, or the
    /// last run's error once the timeout has passed (``CASPaxosError/Code/timeout``
    /// naming the step and the nodes that did not answer it; the tombstone
    /// stays where it was not removed yet, and the key reads as empty:
    /// collect it again later).
    ///
    /// A collection waits only for the proposers still listed: one that
    /// left the cluster for good is dropped with
    /// ``updateProposers(_:now:into:)``, and the collections running stop
    /// waiting for it (a listed proposer that never answers keeps its
    /// collections retrying, and their slots taken, until it answers, is
    /// dropped, or the collections time out).
    ///
    /// - Parameter proposers: every proposer of the cluster, this one
    ///   included.
    /// - Returns: the task's ID.
    /// - Throws: ``CASPaxosError/Code/overloaded`` (definite: nothing was
    ///   started, the tombstone stays and reads as empty) with
    ///   ``CASPaxosConfiguration/maximumGarbageCollections`` collections
    ///   running; counted in ``ProposerCounters/garbageCollectionsRefused``.
    ///   Call again later to collect the key. `.invalidRequest` for the key
    ///   membership changes reserve, or for more `proposers` than
    ///   ``CASPaxosConfiguration/maximumTrackedProposers`` (their ages
    ///   would not fit the acceptors' records, nor one message).
    @discardableResult
    public mutating func collectGarbage(
        key: [UInt8], proposers: [Endpoint], now: Instant, into effects: inout [CASPaxosEffect]
    ) throws(CASPaxosError) -> UInt64 {
        try Self.refuseReserved(key)
        let listed = Set(proposers).count
        guard listed <= configuration.trackedProposerLimit else {
            throw CASPaxosError(
                .invalidRequest,
                detail: "\(listed) proposers to collect with, limit \(configuration.trackedProposerLimit) (maximumTrackedProposers, and what one message carries)")
        }
        let running = garbageCollectionCount
        guard running < configuration.maximumGarbageCollections else {
            counters.garbageCollectionsRefused += 1
            throw CASPaxosError(
                .overloaded,
                detail: "\(running) garbage collections running, limit \(configuration.maximumGarbageCollections)")
        }
        let steps: [MaintenanceTask.Step] = [
            .rewriteTombstone(key: key), .invalidateProposers(key: key), .raiseMinimumAges, .removeTombstone(key: key),
        ]
        return startTask(steps, restartSteps: steps, proposers: proposers, now: now, into: &effects)
    }

    /// Starts changing the acceptors to `acceptors`, or finishes a change
    /// that failed (the paper's section 2.3, one acceptor at a time).
    ///
    /// From a majority configuration of 2F+1 acceptors to 2F+2 (adding one),
    /// or of 2F+2 to 2F+1 (removing one), the change takes the paper's three
    /// steps: every proposer adopts an intermediate configuration (accepts
    /// to the 2F+2 with quorum F+2, prepares to the 2F+1 with quorum F+1),
    /// every key listed by a prepare quorum is re-written by an identity
    /// change, then every proposer adopts the majority configuration of
    /// `acceptors`.
    ///
    /// An acceptor being added may hold keys from an earlier membership,
    /// deleted and collected on the others since; a prepare quorum that
    /// took its stale value and found nothing elsewhere would bring the
    /// key back. So an addition's re-scan also lists every key of the new
    /// acceptor (which must answer; the re-writes read from the old
    /// acceptors only), and 2F+2 → 2F+3, which the paper could take in its
    /// last step alone (an empty new acceptor is as if it had always been
    /// down), goes through an intermediate configuration too (prepares to
    /// the 2F+2 and accepts to the 2F+3, both with quorum F+2) and its
    /// re-scan. Removing one from 2F+3 to 2F+2 takes the last step, then
    /// re-scans in the new configuration, so that every key is on F+2 of
    /// the 2F+2 before the next change, whose intermediate prepares on F+1
    /// of 2F+1, may start.
    /// Versions: the intermediate is the current version + 1, the final + 2.
    /// The change fences older configurations off as it goes: each
    /// re-scan's listing makes the acceptors it lists refuse configurations
    /// older than the one every proposer adopted for it, and the last step
    /// (every proposer in the final configuration) makes them refuse those
    /// older than the final one; refused prepares and accepts get
    /// ``CASPaxosMessage/staleConfiguration(requestID:minimumVersion:)``
    /// (see ``lastSteps(into:afterAddition:)``), so a proposer left behind
    /// (restarted on an old configuration, or not listed) fails its
    /// proposals with ``CASPaxosError/Code/staleConfiguration`` instead of
    /// using quorums that need not meet the others'. A change started on
    /// such a proposer stops with that error too.
    ///
    /// One change at a time in the cluster: before its first step the
    /// change writes its record (the acceptors it starts from and those it
    /// leads to) into a reserved register with a compare-and-set that only
    /// fills an empty register, and after its last step it empties the
    /// register again. Two changes started together on different proposers
    /// cannot both take it: the one that finds another's record fails with
    /// ``CASPaxosError/Code/conflict`` (definite: it changed nothing),
    /// naming the change that runs, unless its `acceptors` are one of that
    /// record's two sets (it then finishes, or abandons, that change, as
    /// below). The register is a key like any other for the re-scan, so
    /// every configuration on the way holds it.
    ///
    /// A step that fails (a re-scan's identity change failing, say) is
    /// retried after a back-off, counted in
    /// ``ProposerCounters/maintenanceRestarts``; a re-scan goes on from the
    /// keys it had not re-written yet. The change goes on for as long as it
    /// makes progress (a step finished, a page of keys listed, a key
    /// re-written), however long the re-scan of many keys takes; once it
    /// has made none for ``CASPaxosConfiguration/maintenanceTimeout``, it
    /// fails with the step's error (`.timeout` if it was waiting for
    /// answers), naming the step. It then leaves each proposer
    /// in the configuration it started from, the intermediate one or the
    /// final one, and the keys partly re-written. Every two of those
    /// configurations have intersecting quorums, so proposals stay
    /// linearizable meanwhile, and the register keeps the change's record,
    /// so no other change can start before it is finished: call this again
    /// with the same `acceptors`, on any proposer, once the cause is gone.
    /// It goes on from the step that proposer's configuration shows, every
    /// step being idempotent:
    /// - in the configuration the change started from: the whole change
    ///   again, with the same versions and configurations; or, to abandon
    ///   it (`acceptors` is that configuration's set), the steps a proposer
    ///   in the configuration of the change's first step would take (the
    ///   others may be there: this proposer may be the one it waited for);
    /// - in the intermediate configuration (version w): the intermediate
    ///   again at version w + 2 (above the final, w + 1, which the failed
    ///   change may have sent to some proposers, who come back to the
    ///   intermediate), the re-scan, then the final at w + 3. `acceptors`
    ///   may be either set of the intermediate: its accept acceptors
    ///   (finishing an addition or abandoning a removal; the re-scan lists
    ///   the acceptor outside the prepare set, as for an addition) or its
    ///   prepare acceptors (finishing a removal or abandoning an addition,
    ///   with one more re-scan after the final if its count is even);
    /// - in the final configuration (`acceptors` is the current set): that
    ///   configuration is sent again to every proposer at its own version
    ///   (and, for an even count, the re-scan runs again).
    ///
    /// A proposer acknowledges a step's configuration only when it adopts
    /// it or is in it already (the same acceptors and quorums, in any
    /// order). One past it (this proposer was cut off while a resume moved
    /// the others on), or in another configuration of its version, answers
    /// with its own: the change fails with
    /// ``CASPaxosError/Code/conflict`` naming that proposer and its
    /// configuration. Call this again on a proposer in the newest
    /// configuration to go on from there (this one adopts nothing from the
    /// answer: a configuration given by mistake at start-up must not
    /// spread).
    ///
    /// - Parameter proposers: every proposer of the cluster, this one
    ///   included (those dropped by ``updateProposers(_:now:into:)`` are
    ///   no longer waited for: they must have stopped for good; one left
    ///   in an old configuration is refused by the fence from the change's
    ///   first re-scan on).
    /// - Throws: ``CASPaxosError/Code/invalidRequest`` if `acceptors` is
    ///   not one of the above (more than one acceptor added or removed, a
    ///   duplicate, no acceptor left or more than 255 in a configuration
    ///   the change would reach, a mid-change configuration that is not a
    ///   membership change's intermediate or a target it cannot lead to), this
    ///   proposer already runs a membership change, or
    ///   ``CASPaxosConfiguration/maximumValueSize`` is too small for the
    ///   change's record (1 byte, then 7 per IPv4 and 19 per IPv6
    ///   acceptor of both configurations, with two counts, then 8).
    @discardableResult
    public mutating func changeMembership(
        to acceptors: [Endpoint], proposers: [Endpoint], now: Instant, into effects: inout [CASPaxosEffect]
    ) throws(CASPaxosError) -> UInt64 {
        guard !tasks.values.contains(where: { !$0.isGarbageCollection }) else {
            throw CASPaxosError(.invalidRequest, detail: "a membership change is already running on this proposer")
        }
        // Planned again once the register is taken: another change may
        // finish meanwhile.
        _ = try membershipSteps(to: acceptors)
        // The change holds its record in a register, as a value.
        let record = MembershipChangeRecord(from: quorums.prepareAcceptors, to: acceptors).encoded.count
        guard record <= configuration.maximumValueSize else {
            throw CASPaxosError(
                .invalidRequest,
                detail: "the change's record takes \(record) bytes, more than maximumValueSize \(configuration.maximumValueSize)")
        }
        return startTask(
            [.takeMembershipRecord(to: acceptors), .releaseMembershipRecord], restartSteps: nil, proposers: proposers,
            now: now, into: &effects)
    }

    /// The cluster's proposers are now `proposers`: every running garbage
    /// collection and membership change stops waiting for a proposer no
    /// longer listed (its current step goes on without it, its later steps
    /// and runs leave it out, and nothing is resent to it). This is how a
    /// proposer that left the cluster stops holding up garbage collection:
    /// the rule is that only the proposers listed are waited for, and the
    /// operator drops a proposer once it has stopped for good (one
    /// restarted at the same endpoint stays listed and answers as its new
    /// incarnation).
    ///
    /// Garbage collection stays linearizable even if a dropped proposer is
    /// in fact alive (cut off, say) with a cached ballot or an accept still
    /// on the wire: the invalidation it misses guards against those
    /// writing the key again after its removal, and the acceptors refuse
    /// them on their own. The collection's re-write accepted the tombstone
    /// on every acceptor at a ballot r, so above every ballot any acceptor
    /// had promised the dropped proposer before (no acceptor accepts below
    /// its promise, and ballots of different proposers differ); an
    /// acceptor that then removes the key
    /// keeps its promise, at least r, as the removal floor that every
    /// absent key is promised at. So an accept at a ballot up to r is
    /// refused everywhere, and one above r follows a prepare (or a cached
    /// promise) that every acceptor answered after accepting r, so it
    /// builds on the tombstone or a later value: the empty value a removed
    /// key has. The paper needs the invalidation because its removal
    /// forgets the promise; the removal floor is what makes skipping it
    /// safe. The floor also keeps a write of the dropped proposer's that
    /// was chosen, read, deleted and collected while its answers were lost
    /// from being applied again by its retry: promises name the floor, and
    /// a retry whose first accept is below it ends indeterminate. A
    /// membership change is another matter: a dropped proposer
    /// that is alive keeps its old configuration and could write where
    /// later readers do not look, so drop only proposers that have stopped.
    public mutating func updateProposers(
        _ proposers: [Endpoint], now: Instant, into effects: inout [CASPaxosEffect]
    ) {
        let listed = Set(proposers)
        for taskID in tasks.keys.sorted() {
            guard var task = tasks[taskID], task.proposers.contains(where: { !listed.contains($0) }) else { continue }
            task.proposers.removeAll { !listed.contains($0) }
            let waitsForProposers: Bool
            switch task.steps.first {
            case .invalidateProposers, .reconfigure: waitsForProposers = task.restartAt == nil
            case .rewriteTombstone, .raiseMinimumAges, .removeTombstone, .rescan, .takeMembershipRecord,
                .releaseMembershipRecord, .raiseMinimumVersion, nil:
                waitsForProposers = false
            }
            if waitsForProposers {
                task.targets.removeAll { !listed.contains($0) }
                task.answered = task.answered.filter { listed.contains($0) }
            }
            tasks[taskID] = task
            if waitsForProposers { stepAnswered(taskID, now: now, into: &effects) }
        }
    }

    /// Garbage collections and membership changes running.
    public var maintenanceCount: Int { tasks.count }
    /// Garbage collections running (at most
    /// ``CASPaxosConfiguration/maximumGarbageCollections``).
    public var garbageCollectionCount: Int { tasks.values.count(where: \.isGarbageCollection) }

    /// The steps that take this proposer's configuration to `target`, or
    /// finish the change that left it where it is (see
    /// ``changeMembership(to:proposers:now:into:)``).
    func membershipSteps(to target: [Endpoint]) throws(CASPaxosError) -> [MaintenanceTask.Step] {
        try Self.membershipSteps(from: quorums, to: target)
    }

    /// The steps of a change to `target` that took the membership-change
    /// register, which holds `held` (its own record, or that of an
    /// unfinished change it finishes or abandons).
    ///
    /// A proposer still in the start configuration of the change `held`
    /// names may be the one that change waited for: the others may have
    /// taken its first step, which every proposer must acknowledge before
    /// any goes further. Abandoning it from there with the start
    /// configuration at its own version would change nothing (a proposer
    /// adopts only a higher version) and leave them where they are, so such
    /// a proposer plans from the configuration that first step sends, as a
    /// proposer there would: from an intermediate configuration, its copy
    /// two versions on and then the start acceptors; from the final one of
    /// a removal that had no intermediate, the way back as an addition.
    /// Finishing the change needs nothing of the kind: its steps from the
    /// start are the change's own, at the same versions.
    func membershipSteps(to target: [Endpoint], holding held: MembershipChangeRecord) throws(CASPaxosError)
        -> [MaintenanceTask.Step]
    {
        let start = quorums.prepareAcceptors
        guard Set(target) == Set(held.from), Set(held.to) != Set(held.from), Set(start) == Set(held.from),
            quorums == .majority(of: start, version: quorums.version),
            case .reconfigure(let reached)? = try? Self.membershipSteps(from: quorums, to: held.to).first
        else { return try membershipSteps(to: target) }
        return try Self.membershipSteps(from: reached, to: target)
    }

    /// The steps that take a proposer in `quorums` to `target`; every
    /// configuration they reach passes ``AcceptorQuorums/validate()`` (a
    /// change to no acceptor, or to 256, is refused here: adopted, it
    /// would fail every proposal and make the acceptor log's record of it
    /// unreadable).
    static func membershipSteps(
        from quorums: AcceptorQuorums, to target: [Endpoint]
    ) throws(CASPaxosError) -> [MaintenanceTask.Step] {
        let steps = try plannedSteps(from: quorums, to: target)
        for case .reconfigure(let reached) in steps {
            do throws(ConfigurationError) {
                try reached.validate()
            } catch {
                throw CASPaxosError(
                    .invalidRequest, detail: "the change to \(target.count) acceptors would reach an invalid configuration: \(error)")
            }
        }
        return steps
    }

    private static func plannedSteps(
        from quorums: AcceptorQuorums, to target: [Endpoint]
    ) throws(CASPaxosError) -> [MaintenanceTask.Step] {
        guard Set(target).count == target.count else {
            throw CASPaxosError(.invalidRequest, detail: "the acceptors \(target) include a duplicate")
        }
        let version = quorums.version
        guard version <= AcceptorQuorums.maximumVersion - 3 else {
            throw CASPaxosError(
                .invalidRequest, detail: "the configuration version \(version) leaves no room for a change's steps")
        }
        let prepare = quorums.prepareAcceptors
        guard prepare == quorums.acceptAcceptors else {
            // Mid-change: a change stopped in its intermediate configuration
            // and may have sent its final (version + 1) to some proposers.
            let accept = quorums.acceptAcceptors
            guard accept.count == prepare.count + 1, Set(prepare).isSubset(of: accept),
                quorums == Self.intermediate(from: prepare, to: accept, version: version),
                Set(target) == Set(prepare) || Set(target) == Set(accept)
            else {
                throw CASPaxosError(
                    .invalidRequest,
                    detail: "the configuration \(quorums) is mid-change: only its prepare or its accept acceptors can finish it")
            }
            var intermediate = quorums
            intermediate.version = version + 2
            // Finishing an addition re-scans the acceptor it adds; abandoning
            // it (back to the prepare set) leaves that acceptor out.
            let adding = Set(target) == Set(accept)
            let joining = adding ? accept.filter { !prepare.contains($0) } : []
            return [.reconfigure(intermediate), .rescan(joining: joining)]
                + Self.lastSteps(into: .majority(of: target, version: version + 3), afterAddition: adding)
        }
        guard quorums == .majority(of: prepare, version: version) else {
            throw CASPaxosError(.invalidRequest, detail: "the configuration \(quorums) is not a majority one")
        }
        if Set(target) == Set(prepare) {
            // The last step of a change to these acceptors, again.
            return Self.lastSteps(into: quorums, afterAddition: false)
        }
        let added = target.filter { !prepare.contains($0) }
        let removed = prepare.filter { !target.contains($0) }
        guard added.count + removed.count == 1 else {
            throw CASPaxosError(
                .invalidRequest, detail: "a membership change adds or removes one acceptor (\(added.count) added, \(removed.count) removed)")
        }
        let final = AcceptorQuorums.majority(of: target, version: version + 2)
        guard removed.isEmpty || target.count % 2 == 1 else {
            // 2F+3 → 2F+2: the last step alone (the majorities of both need
            // F+2; the acceptor removed is as if it were down from now on).
            return Self.lastSteps(into: final, afterAddition: false)
        }
        // 2F+1 ↔ 2F+2, the paper's three steps, and 2F+2 → 2F+3: an
        // intermediate configuration, a re-scan, the final. The paper takes
        // 2F+2 → 2F+3 in its last step alone (an empty new acceptor is as if
        // it had always been down), but the acceptor may hold keys from an
        // earlier membership, collected since on the others: a prepare
        // quorum of the 2F+3 that took its stale value and found nothing on
        // the rest would bring the key back. So every addition prepares on
        // the old acceptors only while its re-scan re-writes the keys they
        // list and the new acceptor's own.
        let (smaller, larger) = added.isEmpty ? (target, prepare) : (prepare, target)
        let intermediate = Self.intermediate(from: smaller, to: larger, version: version + 1)
        return [.reconfigure(intermediate), .rescan(joining: added)]
            + Self.lastSteps(into: final, afterAddition: !added.isEmpty)
    }

    /// A change's last step into the majority configuration `final`, and
    /// the re-scan an even count ends with unless an addition's re-scan
    /// just wrote every key onto F+2 of it: after a removal from 2F+3, a
    /// value accepted by F+2 of the 2F+3 may be left on F+1 of the 2F+2,
    /// which its majority (F+2) meets but the next removal's intermediate
    /// configuration (prepares on F+1 of 2F+1) may not. So every key is
    /// re-written onto F+2 of the 2F+2 before the change ends and another
    /// may start.
    ///
    /// Then the fence: every proposer listed is in `final`, so the
    /// acceptors are told to refuse older configurations. A proposer left
    /// behind (restarted on an old configuration without a store that kept
    /// the newer one, or one not listed) would otherwise use quorums that
    /// need not meet the others' once the cluster is two steps on, reading
    /// stale values and writing over newer ones. A prepare quorum of
    /// `final` is enough: in every configuration the change went through
    /// (and the one it started from), the acceptors outside it are fewer
    /// than a prepare quorum and than an accept quorum, so such a proposer
    /// gets too few promises (and too few acceptances for an accept it
    /// sends straight away with a cached ballot), and its proposals fail
    /// with ``CASPaxosError/Code/staleConfiguration``. Each re-scan's
    /// listing raises the fence first too (to the configuration it runs
    /// in), so that a write such a proposer completes while the change runs
    /// is on an acceptor that lists it (see `requestListing`).
    static func lastSteps(into final: AcceptorQuorums, afterAddition: Bool) -> [MaintenanceTask.Step] {
        (final.prepareAcceptors.count % 2 == 0 && !afterAddition
            ? [.reconfigure(final), .rescan(joining: [])] : [.reconfigure(final)])
            + [.raiseMinimumVersion(final: final)]
    }

    /// The intermediate configuration between `smaller` and `larger`, one
    /// acceptor more: prepares go to the smaller set and accepts to the
    /// larger. Between 2F+1 and 2F+2 (the paper's), quorums F+1 and F+2;
    /// from 2F+2 to 2F+3, F+2 and F+2. Every quorum of it meets every
    /// quorum of both majority configurations.
    static func intermediate(from smaller: [Endpoint], to larger: [Endpoint], version: UInt64) -> AcceptorQuorums {
        let f = (smaller.count - 1) / 2
        return AcceptorQuorums(
            version: version, prepareAcceptors: smaller, prepareQuorum: smaller.count / 2 + 1,
            acceptAcceptors: larger, acceptQuorum: f + 2)
    }

    private mutating func startTask(
        _ steps: [MaintenanceTask.Step], restartSteps: [MaintenanceTask.Step]?, proposers: [Endpoint], now: Instant,
        into effects: inout [CASPaxosEffect]
    ) -> UInt64 {
        let taskID = takeProposalID()
        let deadline = now + configuration.maintenanceTimeout
        // Each proposer once: a step ends when every target answered, and
        // one listed twice answers once.
        var listed = Set<Endpoint>()
        let proposers = proposers.filter { listed.insert($0).inserted }
        tasks[taskID] = MaintenanceTask(
            id: taskID, deadline: deadline, proposers: proposers, steps: steps, restartSteps: restartSteps,
            finalDeadline: restartSteps == nil ? deadline : now + configuration.garbageCollectionTimeout)
        startStep(taskID, now: now, into: &effects)
        return taskID
    }

    // MARK: Answering

    mutating func receiveMaintenance(
        _ message: CASPaxosMessage, from sender: Endpoint, now: Instant, into effects: inout [CASPaxosEffect]
    ) {
        switch message {
        case .invalidate(let requestID, let key, let ballot):
            keys.dropCached(key)
            follow(ballot.counter, for: nil)
            // At ProposerAge.maximumAge (reachable only from an absurd
            // stale-age refusal) the proposer stays there, so that its
            // answer decodes, and sends nothing more (see beginAttempt):
            // every message it sent before carries a lower age, which the
            // collection's minimum refuses.
            age = min(age + 1, ProposerAge.maximumAge)
            counters.invalidations += 1
            effects.append(.send(.invalidated(requestID: requestID, proposer: id, age: age), to: sender))
        case .reconfigure(let requestID, let newQuorums):
            if newQuorums.version > quorums.version {
                adopt(newQuorums, now: now)
            } else if !newQuorums.isSameConfiguration(as: quorums) {
                // Past it, or another configuration at its version (a change
                // planned from behind): acknowledged, the change would go on
                // as if this proposer were where it put it.
                counters.configurationsRefused += 1
                return effects.append(.send(.configurationRefused(requestID: requestID, current: quorums), to: sender))
            }
            // Durable before the acknowledgement, where the node has a
            // store: restarted, it must not fall back to an older one. Again
            // for the configuration it is in already (a change re-sends until
            // answered): a node whose store failed as it adopted it drops an
            // acknowledgement only behind a record.
            effects.append(.persist(.proposerConfiguration(quorums)))
            effects.append(.send(.acknowledged(requestID: requestID), to: sender))
        case .configurationRefused(let requestID, let current):
            // Not adopted: a proposer may hold a configuration no change
            // sent (an operator's mistake at start-up), which must not
            // spread. The change stops; resumed on a proposer in the newest
            // configuration, it goes on from there.
            guard let task = answeringTask(requestID, from: sender), case .reconfigure(_, let sent)? = task.message
            else { return }
            let detail =
                current.version == sent.version
                ? "proposer \(sender) holds another configuration of version \(sent.version) (\(current)) than this change's step (\(sent)): the change stopped. "
                    + "Either it was given its quorums by hand (restart it with the cluster's configuration, then call changeMembership(to:) again), "
                    + "or another run of this change reached it first (call changeMembership(to:) again on a proposer in its configuration; "
                    + "if two runs resumed from the intermediate toward opposite ends split the proposers between them, each side refuses the other's "
                    + "configuration of this version, and only a change toward the other side's acceptors, from either, goes on)"
                : "proposer \(sender) is in \(current), which this change's step to \(sent) does not lead to: the change stopped; call changeMembership(to:) again on a proposer in the newest configuration (that one, if it is) to go on from there"
            finishTask(task.id, .failure(CASPaxosError(.conflict, detail: detail)), into: &effects)
        case .invalidated(let requestID, let proposer, let proposerAge):
            guard var task = answeringTask(requestID, from: sender) else { return }
            task.ages.append(ProposerAge(proposer: proposer, age: proposerAge))
            tasks[task.id] = task
            stepAnswered(task.id, now: now, into: &effects)
        case .acknowledged(let requestID):
            guard answeringTask(requestID, from: sender) != nil, let taskID = taskByRequest[requestID] else { return }
            stepAnswered(taskID, now: now, into: &effects)
        case .keyList(let requestID, let keys, let isComplete, let removalFloor):
            receiveKeyList(requestID, keys, isComplete, removalFloor, from: sender, now: now, into: &effects)
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
        keys.removeAllCached()
        for proposalID in proposals.sortedIDs {
            guard
                let (lastAccept, attempt) = proposals.update(proposalID, { proposal -> (UInt64?, UInt64?) in
                    // Refusals of the last accept are counted by position in
                    // the directory, which the new configuration changes
                    // (and may shrink): none counts from here on, and the
                    // accept stays among those that may have been written.
                    let lastAccept = proposal.lastAccept?.requestID
                    proposal.lastAccept = nil
                    guard proposal.isInFlight else { return (lastAccept, nil) }
                    proposal.phase = .backingOff(until: now)
                    return (lastAccept, proposal.requestID)
                })
            else { continue }
            if let lastAccept { proposalByRequest.remove(lastAccept) }
            if let attempt, attempt != lastAccept { proposalByRequest.remove(attempt) }
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
        guard let task = tasks[taskID] else { return }
        if case .raiseMinimumVersion(let final) = task.steps.first {
            guard task.answered.intersection(final.prepareAcceptors).count >= final.prepareQuorum else { return }
        } else {
            guard task.answered.count == task.targets.count else { return }
        }
        nextStep(taskID, now: now, into: &effects)
    }

    // MARK: Driving tasks

    private mutating func startStep(_ taskID: UInt64, now: Instant, into effects: inout [CASPaxosEffect]) {
        guard var task = tasks[taskID] else { return }
        guard let step = task.steps.first else {
            return finishTask(taskID, task.failure.map { .failure($0) } ?? .success(()), into: &effects)
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
        case .takeMembershipRecord(let target):
            tasks[taskID] = task
            // An empty register takes this run's record; one holding a
            // record this change may finish or abandon takes this run in
            // it (see MembershipChangeRecord); any other value stays.
            // The proposer's ID mixed in: two proposers given one seed draw
            // the same numbers.
            let run = random.next() ^ (id.rawValue &* 0x9E37_79B9_7F4A_7C15)
            let encoded = MembershipChangeRecord(from: quorums.prepareAcceptors, to: target, run: run).encoded
            startProposal(
                taskID, key: MembershipChangeRecord.key,
                change: { current in
                    guard let current else { return encoded }
                    guard var held = MembershipChangeRecord(decoding: current), held.allows(target) else { return current }
                    held.run = run
                    return held.encoded
                }, now: now, into: &effects)
            return
        case .releaseMembershipRecord:
            tasks[taskID] = task
            let held = task.membershipRecord
            startProposal(
                taskID, key: MembershipChangeRecord.key, change: { $0 == held ? nil : $0 }, now: now, into: &effects)
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
        case .raiseMinimumVersion(let final):
            task.targets = final.allAcceptors
            task.message = .setMinimumVersion(requestID: task.requestID, version: final.configurationVersion)
        case .rescan(let joining):
            task.targets = quorums.prepareAcceptors + joining.filter { !quorums.prepareAcceptors.contains($0) }
            // A run that failed under this configuration left its listing
            // and the keys it had not re-written: go on from there.
            if task.rescanVersion != configurationVersion {
                task.rescanVersion = configurationVersion
                task.listingCursor = [:]
                task.listingDone = []
                task.keys = []
                task.rewritesLeft = []
                task.rescanFloor = .zero
            } else if isListingComplete(task) {
                tasks[taskID] = task
                startRewrites(taskID, now: now, into: &effects)
                if isStepDone(taskID) { nextStep(taskID, now: now, into: &effects) }
                return
            }
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
            let listsJoining = isPrepareListingComplete(task)
            for target in task.targets where !task.listingDone.contains(target) {
                guard listsJoining || quorums.prepareAcceptors.contains(target) else { continue }
                requestListing(&task, from: target, into: &effects)
            }
        }
        tasks[taskID] = task
    }

    /// Asks `acceptor` for its next page of keys. A request still
    /// outstanding to it (a page arriving removes it) is sent again under
    /// its own ID, as every other step's are: under a new one, the answer
    /// to the first was stale, and with a round trip above
    /// ``CASPaxosConfiguration/maintenanceRetryInterval`` no page was ever
    /// taken and the change timed out. An acceptor the re-scan adds is first told to raise
    /// its removal floor to the highest the prepare quorum listed with:
    /// above every ballot any member accepted for a key it removed, so
    /// that a stale accept still on its way to the new acceptor is refused
    /// and its promises name that floor (see ``CASPaxosMessage/promise(requestID:accepted:value:removalFloor:)``).
    /// Every acceptor is first told to fence off configurations older than
    /// the one the re-scan runs in, which every proposer has adopted (the
    /// step before it): see ``lastSteps(into:afterAddition:)``.
    private mutating func requestListing(
        _ task: inout MaintenanceTask, from acceptor: Endpoint, into effects: inout [CASPaxosEffect]
    ) {
        let outstanding = task.listingRequests.first { $0.value == acceptor }?.key
        let request = outstanding ?? newRequestID()
        task.listingRequests[request] = acceptor
        taskByRequest[request] = task.id
        let floor = quorums.prepareAcceptors.contains(acceptor) ? nil : task.rescanFloor
        effects.append(
            .send(
                .listKeys(
                    requestID: request, after: task.listingCursor[acceptor], raisingFloorTo: floor,
                    minimumVersion: task.rescanVersion ?? configurationVersion), to: acceptor))
    }

    private mutating func receiveKeyList(
        _ requestID: UInt64, _ keys: [[UInt8]], _ isComplete: Bool, _ removalFloor: Ballot, from sender: Endpoint,
        now: Instant, into effects: inout [CASPaxosEffect]
    ) {
        guard let taskID = taskByRequest[requestID], var task = tasks[taskID],
            task.listingRequests[requestID] == sender, task.proposals.isEmpty, task.rewritesLeft.isEmpty
        else {
            counters.staleReplies += 1
            return
        }
        task.listingRequests[requestID] = nil
        taskByRequest[requestID] = nil
        // An acceptor lists its keys in byte order, each page after the
        // last key of the one before, and only its last page may be empty:
        // anything else is hostile (and would make a listing that never
        // ends count as progress).
        var previous = task.listingCursor[sender]
        var isInOrder = isComplete || !keys.isEmpty
        for key in keys where isInOrder {
            isInOrder = previous.map { $0.lexicographicallyPrecedes(key) } ?? true
            previous = key
        }
        let listed = task.keys.union(keys)
        guard isInOrder, listed.count <= configuration.maximumRegisters else {
            counters.unexpectedMessages += 1
            tasks[taskID] = task
            let detail =
                isInOrder
                ? "the acceptors listed more than \(configuration.maximumRegisters) keys"
                : "acceptor \(sender) listed keys out of order, or an empty page before its last"
            return taskFailed(taskID, CASPaxosError(.invalidRequest, detail: detail), now: now, into: &effects)
        }
        let listedJoining = isPrepareListingComplete(task)
        task.keys = listed
        if let last = keys.last { task.listingCursor[sender] = last }
        if isComplete { task.listingDone.insert(sender) }
        if quorums.prepareAcceptors.contains(sender) { task.rescanFloor = max(task.rescanFloor, removalFloor) }
        task.progressed(now: now, timeout: configuration.maintenanceTimeout)
        if isListingComplete(task) {
            task.rewritesLeft = task.keys.sorted { $1.lexicographicallyPrecedes($0) }
            tasks[taskID] = task
            startRewrites(taskID, now: now, into: &effects)
            if isStepDone(taskID) { nextStep(taskID, now: now, into: &effects) }
            return
        }
        if !isComplete { requestListing(&task, from: sender, into: &effects) }
        if !listedJoining, isPrepareListingComplete(task), case .rescan(let joining) = task.steps.first {
            // The prepare quorum's floors are all in: the acceptors added
            // may be listed now.
            for acceptor in joining where !task.listingDone.contains(acceptor) {
                requestListing(&task, from: acceptor, into: &effects)
            }
        }
        tasks[taskID] = task
    }

    /// Whether a prepare quorum has listed all its keys (and reported its
    /// removal floors).
    private func isPrepareListingComplete(_ task: MaintenanceTask) -> Bool {
        let prepare = quorums.prepareAcceptors
        return task.listingDone.count(where: { prepare.contains($0) }) >= quorums.prepareQuorum
    }

    /// Whether a re-scan has every key it must re-write: a prepare quorum
    /// listed all its keys, and so did every acceptor it adds.
    private func isListingComplete(_ task: MaintenanceTask) -> Bool {
        guard case .rescan(let joining) = task.steps.first else { return false }
        return isPrepareListingComplete(task) && joining.allSatisfy { task.listingDone.contains($0) }
    }

    /// Re-writes in flight at once in a re-scan: the keys listed (up to
    /// ``CASPaxosConfiguration/maximumRegisters``) are re-written in this
    /// window, not all at once.
    static let rewriteWindow = 256

    /// Starts the re-scan's next re-writes, up to ``rewriteWindow`` in
    /// flight, in key order.
    private mutating func startRewrites(_ taskID: UInt64, now: Instant, into effects: inout [CASPaxosEffect]) {
        while let task = tasks[taskID], task.restartAt == nil, task.proposals.count < Self.rewriteWindow,
            let key = tasks[taskID]?.rewritesLeft.popLast()
        {
            startProposal(taskID, key: key, needsEveryAcceptor: false, now: now, into: &effects)
        }
    }

    /// Starts a proposal the task waits for: by default the identity
    /// change (a re-write).
    private mutating func startProposal(
        _ taskID: UInt64, key: [UInt8], change: CASPaxosChange? = nil, needsEveryAcceptor: Bool = false, now: Instant,
        into effects: inout [CASPaxosEffect]
    ) {
        // Maintenance must be able to finish, so the pending limit does not
        // apply to it (its proposals are bounded apart: a re-write window
        // per change, one per garbage collection).
        let proposalID = takeProposalID()
        // Recorded first: the proposal may end inside propose (a proposer
        // that can send nothing more fails it at once), and the task must
        // hear of it.
        tasks[taskID]?.proposals[proposalID] = key
        do throws(CASPaxosError) {
            _ = try propose(
                key: key, change: change ?? { $0 }, isIdentity: change == nil, needsEveryAcceptor: needsEveryAcceptor,
                exemptFromPendingLimit: true, id: proposalID, now: now, into: &effects)
        } catch {
            // A key over the key limit, listed by a hostile acceptor: a
            // re-scan keeps it to re-write (and fails again on it; a key is
            // never skipped).
            tasks[taskID]?.proposals[proposalID] = nil
            tasks[taskID]?.rewritesLeft.append(key)
            return taskFailed(taskID, error, now: now, into: &effects)
        }
    }

    /// Called by ``complete`` for every proposal: advances the task waiting
    /// for it.
    mutating func proposalFinished(
        _ proposalID: UInt64, _ result: Result<[UInt8]?, CASPaxosError>, ballot: Ballot, now: Instant,
        into effects: inout [CASPaxosEffect]
    ) {
        guard let taskID = tasks.first(where: { $0.value.proposals[proposalID] != nil })?.key,
            var task = tasks[taskID]
        else { return }
        switch result {
        case .failure(let error) where error.code == .staleConfiguration:
            // This proposer is fenced off: no retry can succeed.
            let what =
                task.isGarbageCollection
                ? "the garbage collection stopped; collect the key from a proposer in the newest configuration"
                : "the membership change stopped; call changeMembership(to:) on a proposer in the newest configuration to go on"
            finishTask(
                taskID, .failure(CASPaxosError(.staleConfiguration, detail: "\(error.detail); \(what)")),
                into: &effects)
        case .failure(let error) where error.code == .notAvailable:
            // This proposer can send nothing more (its age or counter at the
            // limit): another may; or the key failed where an acceptor
            // promised it a ballot none can beat: no proposer does better
            // until a quorum of the other acceptors answers.
            let key = task.proposals[proposalID].map { String(decoding: $0.prefix(64), as: UTF8.self) } ?? ""
            let what =
                age >= ProposerAge.maximumAge || counter >= Ballot.ownCounterLimit
                ? "the task stopped: run it from another proposer"
                : "the task stopped at key '\(key)': an acceptor promised it a ballot at the limit, so only a quorum of the others can take its writes; run the task again once they answer"
            finishTask(taskID, .failure(CASPaxosError(.notAvailable, detail: "\(error.detail); \(what)")), into: &effects)
        case .failure(let error):
            // Still among the step's proposals: a re-scan re-writes its key
            // again when it goes on.
            taskFailed(taskID, error, now: now, into: &effects)
        case .success(let value):
            task.proposals[proposalID] = nil
            tasks[taskID] = task
            switch task.steps.first {
            case .rewriteTombstone:
                // A value written after the delete: nothing to collect.
                guard value == nil else { return finishTask(taskID, .success(()), into: &effects) }
                tasks[taskID]?.tombstone = ballot
            case .takeMembershipRecord(let target):
                // The register holds this change's record, or the record of
                // a change it may finish or abandon; otherwise another
                // change is unfinished and this one has changed nothing.
                guard let value, let held = MembershipChangeRecord(decoding: value), held.allows(target) else {
                    let running = value.flatMap(MembershipChangeRecord.init(decoding:))
                    let detail =
                        running.map {
                            "the membership change from \($0.from) to \($0.to) is unfinished: finish it with changeMembership(to:) and those acceptors, or abandon it with the acceptors it started from, before changing to \(target)"
                        } ?? "the membership-change register holds \(value?.count ?? 0) bytes that are not a record"
                    return finishTask(taskID, .failure(CASPaxosError(.conflict, detail: detail)), into: &effects)
                }
                tasks[taskID]?.membershipRecord = value
                // The steps from the configuration in use now (a change that
                // ran before the register was taken may have moved it); if
                // none leads to the target, release the register and fail.
                do throws(CASPaxosError) {
                    let steps = try membershipSteps(to: target, holding: held)
                    tasks[taskID]?.steps.insert(contentsOf: steps, at: 1)
                } catch {
                    tasks[taskID]?.failure = error
                }
            case .rescan:
                tasks[taskID]?.progressed(now: now, timeout: configuration.maintenanceTimeout)
                startRewrites(taskID, now: now, into: &effects)
            default:
                break
            }
            if isStepDone(taskID) { nextStep(taskID, now: now, into: &effects) }
        }
    }

    /// Whether the task's current step has nothing left to wait for or to
    /// start: no proposal in flight, no re-write to start, and no failure
    /// waiting to restart it.
    private func isStepDone(_ taskID: UInt64) -> Bool {
        guard let task = tasks[taskID] else { return false }
        return task.proposals.isEmpty && task.rewritesLeft.isEmpty && task.restartAt == nil
    }

    private mutating func nextStep(_ taskID: UInt64, now: Instant, into effects: inout [CASPaxosEffect]) {
        guard tasks[taskID] != nil else { return }
        tasks[taskID]?.steps.removeFirst()
        tasks[taskID]?.progressed(now: now, timeout: configuration.maintenanceTimeout)
        startStep(taskID, now: now, into: &effects)
    }

    /// A run of the task failed: after a back-off, a garbage collection
    /// starts over and a membership change retries the step that failed
    /// (a re-scan keeps its listing and the keys not yet re-written, those
    /// in flight included), unless that would pass the task's final
    /// deadline.
    private mutating func taskFailed(
        _ taskID: UInt64, _ error: CASPaxosError, now: Instant, into effects: inout [CASPaxosEffect]
    ) {
        guard var task = tasks[taskID] else { return }
        task.restarts += 1
        let pause = jitteredBackoff(
            initial: configuration.maintenanceRetryInterval, maximum: configuration.maintenanceRetryInterval * 64,
            failures: task.restarts)
        guard now + pause < task.finalDeadline else {
            let stopped =
                task.isGarbageCollection
                ? CASPaxosError(
                    error.code,
                    detail: "\(error.detail); the garbage collection stopped after \(task.restarts) runs (garbageCollectionTimeout): "
                        + "the tombstone stays where it was not removed yet, and the key reads as empty; "
                        + "collect it again once every proposer listed answers "
                        + "(drop one gone for good from the list)")
                : CASPaxosError(
                    error.code,
                    detail: "\(error.detail); the membership change stopped before its step \(task.stepDescription), with this proposer in \(quorums): "
                        + "call changeMembership(to:) again with the same acceptors to finish it")
            return finishTask(taskID, .failure(stopped), into: &effects)
        }
        forgetRequests(of: task)
        counters.maintenanceRestarts += 1
        if let restartSteps = task.restartSteps { task.steps = restartSteps }
        if case .rescan = task.steps.first {
            task.rewritesLeft += task.proposals.values.sorted { $1.lexicographicallyPrecedes($0) }
        } else {
            task.rewritesLeft = []
        }
        task.proposals = [:]
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
                taskFailed(taskID, CASPaxosError(.timeout, detail: Self.stall(of: task)), now: now, into: &effects)
            } else if now >= task.resendAt {
                sendStep(taskID, now: now, into: &effects)
            }
        }
    }

    /// What held `task`'s run up past ``CASPaxosConfiguration/maintenanceTimeout``:
    /// its step, and the nodes that did not answer it, or its proposals.
    private static func stall(of task: MaintenanceTask) -> String {
        let silent = task.targets.filter { !task.answered.contains($0) }
        let what =
            !silent.isEmpty ? "no answer from \(silent.map(\.description).joined(separator: ", "))"
            : !task.proposals.isEmpty ? "\(task.proposals.count) of its proposals unfinished" : "no progress"
        return "maintenance task \(task.id) made no progress for maintenanceTimeout at its step \(task.stepDescription): \(what)"
    }

    var maintenanceDeadline: Instant {
        tasks.values.reduce(Instant.distantFuture) { min($0, $1.restartAt ?? min($1.deadline, $1.resendAt)) }
    }
}
