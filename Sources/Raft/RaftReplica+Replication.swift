import EventCore

// Log replication (Raft §5.3) with flow control, and commitment (§5.4.2).
extension RaftReplica {
    /// Appends an entry of this leader's term and schedules its replication.
    mutating func appendAsLeader(_ entry: RaftEntry) {
        log.append(entry)
        if entry.kind == .membership, memberships.appended(CollectionOfOne(entry), from: entry.index) {
            membershipChanged()
        }
        uncommittedBytes += entry.payloadSize
        appendPending = true
        // The leader's own log is the longest, so the quorum's index is
        // that of the quorum - 1 best followers: an append moves it only
        // when the leader alone is a quorum.
        if quorum == 1 { _ = advanceCommit() }
    }

    /// Moves the commit index to the highest index a majority holds, if
    /// that entry is of the current term (§5.4.2). Returns whether it moved.
    /// (The uncommitted bytes are released as the committed entries are
    /// handed out for applying, in ``ready()``, from the entries in hand.)
    mutating func advanceCommit() -> Bool {
        let candidate = quorumValue(own: log.lastIndex) { $0.match }
        guard candidate > log.committed, log.term(at: candidate) == term else { return false }
        log.commit(to: candidate)
        return true
    }

    /// The highest value a quorum has reached, this leader (at `own`)
    /// included: the quorum-th largest of `value` over the followers'
    /// progress (0 for a follower without one), found on the stack. The
    /// highest index a quorum holds is `quorumValue(own: log.lastIndex) {
    /// $0.match }`.
    @inline(__always)
    func quorumValue(own: UInt64, _ value: (borrowing FollowerProgress) -> UInt64) -> UInt64 {
        // A leader removed from the group (its change not yet committed)
        // counts only the members.
        let counted = peers.count + (isMember ? 1 : 0)
        return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: max(1, counted)) { buffer in
            var values = buffer
            var position = 0
            if isMember {
                values[0] = own
                position = 1
            }
            for peer in peers {
                values[position] = progress.slot(of: peer).map { value(progress[slot: $0]) } ?? 0
                position += 1
            }
            values.sort(by: >)
            return values[quorum - 1]
        }
    }

    /// Releases the command bytes of `entries`, just committed, from the
    /// uncommitted limit (entries of earlier terms were never counted: the
    /// count stops at 0).
    mutating func releaseUncommitted(_ entries: [RaftEntry]) {
        guard role == .leader, uncommittedBytes > 0 else { return }
        var released = 0
        for entry in entries { released += entry.payloadSize }
        uncommittedBytes = max(0, uncommittedBytes - released)
    }

    mutating func broadcastAppend(sendIfEmpty: Bool) {
        for peer in recipients { sendAppend(to: peer, sendIfEmpty: sendIfEmpty) }
    }

    /// Sends `peer` appends until its window is full or it has everything.
    mutating func sendAllAppends(to peer: NodeID) {
        while sendAppend(to: peer, sendIfEmpty: false) {}
    }

    /// Sends `peer` the entries from its next index (as many as fit
    /// ``RaftConfiguration/maximumAppendBytes`` and
    /// ``RaftMessage/maximumEntriesPerAppend``) unless its progress is
    /// paused; with nothing to send, an empty append (a probe, or the
    /// commit index) only if `sendIfEmpty`. Returns whether it sent.
    @discardableResult
    mutating func sendAppend(to peer: NodeID, sendIfEmpty: Bool) -> Bool {
        // The progress is read and changed in its slot, in place: a copy
        // would share the inflight window's buffer, and changing the window
        // would then copy it whole.
        guard let slot = progress.slot(of: peer), !progress[slot: slot].isPaused else { return false }
        let next = progress[slot: slot].next
        let previous = next - 1
        // Without the previous entry's term (compacted away) the follower
        // needs the snapshot.
        guard let previousTerm = log.term(at: previous) else { return startSnapshot(to: peer) }
        let entries = next <= log.lastIndex
            ? log.entries(from: next, through: log.lastIndex, maximumBytes: configuration.maximumAppendBytes,
                          maximumCount: RaftMessage.maximumEntriesPerAppend)
            : []
        guard !entries.isEmpty || sendIfEmpty || progress[slot: slot].state == .probe else { return false }
        send(.append(previousIndex: previous, previousTerm: previousTerm, entries: entries,
                     leaderCommit: log.committed), to: peer)
        switch progress[slot: slot].state {
        case .probe, .snapshot:
            progress[slot: slot].probeSent = true
        case .replicate:
            if let last = entries.last {
                progress[slot: slot].next = last.index + 1
                let bytes = entries.reduce(0) { $0 + $1.payloadSize }
                progress[slot: slot].inflight.add(lastIndex: last.index, bytes: bytes)
            }
        }
        return true
    }

    /// When a leader sends its next heartbeats: the first multiple of
    /// ``RaftConfiguration/heartbeatInterval`` (counted from the clock's
    /// origin) after `now`. Every group in a process with the same interval
    /// then sends its heartbeats at the same instants, in the same loop
    /// turn, where a ``RaftGroupMultiplexer`` puts those to one peer in one
    /// datagram. A new leader's first heartbeats may so come sooner than an
    /// interval after its first append; never later.
    func nextHeartbeat(after now: Instant) -> Instant {
        let interval = UInt64(configuration.heartbeatInterval.nanoseconds)
        let (next, overflow) = (now.nanoseconds / interval + 1).multipliedReportingOverflow(by: interval)
        return overflow ? .distantFuture : Instant(nanoseconds: next)
    }

    mutating func broadcastHeartbeat() {
        sendHeartbeats()
        resendStalledSnapshots()
    }

    /// A heartbeat to every peer, with the latest read round.
    mutating func sendHeartbeats() {
        for peer in recipients {
            let match = progress[peer]?.match ?? 0
            send(.heartbeat(commitIndex: min(match, log.committed), readRound: readRound), to: peer)
        }
    }

    mutating func handleAppendResponse(from peer: NodeID, result: RaftMessage.AppendResult, now: Instant) {
        // In place, as in `sendAppend`.
        guard let slot = progress.slot(of: peer) else { return }
        progress[slot: slot].heard(at: now)
        switch result {
        case .accepted(let matchIndex):
            guard matchIndex <= log.lastIndex else {
                // A follower cannot hold more than this leader sent it.
                counters.messagesDropped += 1
                return
            }
            let moved = progress[slot: slot].acknowledge(through: matchIndex)
            if let snapshotIndex = progress[slot: slot].transfer?.index {
                // In the snapshot state only the installed snapshot's
                // acknowledgement (or a later one) ends the transfer.
                if progress[slot: slot].match >= snapshotIndex { progress[slot: slot].becomeReplicate() }
            } else if progress[slot: slot].state == .probe && matchIndex == progress[slot: slot].match {
                progress[slot: slot].becomeReplicate()
            } else if moved {
                progress[slot: slot].inflight.free(through: matchIndex)
            }
            if moved && advanceCommit() {
                broadcastAppend(sendIfEmpty: true)
                releaseConfirmedReads()
            }
            sendAllAppends(to: peer)
            if transfer?.target == peer { orderTransfereeIfCaughtUp() }
        case .rejected(let rejectedIndex, let conflictTerm, let conflictIndex):
            guard rejectedIndex <= log.lastIndex else {
                // No append of this leader's was past its log: forged, or
                // from an earlier leadership of this node. Taken, it would
                // move `next` past the log, which reads as compacted: no
                // append would go to the follower for the rest of the term.
                counters.messagesDropped += 1
                return
            }
            var hinted = conflictIndex
            if conflictTerm > 0, let found = log.lastIndex(ofTerm: conflictTerm, atOrBelow: rejectedIndex) {
                hinted = found + 1
            }
            let moved = progress[slot: slot].reject(at: rejectedIndex, hintedNext: hinted)
            if moved { sendAppend(to: peer, sendIfEmpty: true) }
        }
    }

    mutating func handleHeartbeatResponse(from peer: NodeID, readRound round: UInt64, now: Instant) {
        guard let slot = progress.slot(of: peer) else { return }  // in place, as in `sendAppend`
        guard round <= readRound else {
            // This leader never sent that round: forged.
            counters.messagesDropped += 1
            return
        }
        progress[slot: slot].heard(at: now)
        if round > progress[slot: slot].readRound {
            progress[slot: slot].readRound = round
            releaseConfirmedReads()
        }
        progress[slot: slot].probeSent = false
        if progress[slot: slot].state == .replicate && progress[slot: slot].inflight.isFull {
            progress[slot: slot].inflight.freeOldest()
        }
        if progress[slot: slot].match < log.lastIndex { sendAppend(to: peer, sendIfEmpty: true) }
    }

    /// A follower's side of AppendEntries: the consistency check, then the
    /// new entries replace any conflicting suffix (§5.3).
    mutating func handleAppend(
        from leader: NodeID, previousIndex: UInt64, previousTerm: UInt64, entries: [RaftEntry], leaderCommit: UInt64
    ) {
        if previousIndex < log.committed {
            send(.appendResponse(.accepted(matchIndex: log.committed)), to: leader)
            return
        }
        guard log.matches(index: previousIndex, term: previousTerm) else {
            counters.appendsRejected += 1
            let hint: (term: UInt64, index: UInt64) = previousIndex > log.lastIndex
                ? (0, log.lastIndex + 1)
                : (log.term(at: previousIndex) ?? 0, log.firstIndex(ofTermAt: previousIndex))
            send(.appendResponse(.rejected(rejectedIndex: previousIndex, conflictTerm: hint.term,
                                           conflictIndex: hint.index)), to: leader)
            return
        }
        // Every entry is above the commit index here (previousIndex is at
        // least the commit index): committed entries are never rewritten.
        if let conflict = log.firstConflict(in: entries) {
            let appended = entries[conflict...]
            log.append(conflict == 0 ? entries : Array(appended))
            if memberships.appended(appended, from: entries[conflict].index) { membershipChanged() }
        }
        let lastNew = previousIndex + UInt64(entries.count)
        log.commit(to: min(leaderCommit, lastNew))
        send(.appendResponse(.accepted(matchIndex: lastNew)), to: leader)
    }
}
