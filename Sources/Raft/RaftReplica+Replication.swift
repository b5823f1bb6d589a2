import EventCore

// Log replication (Raft §5.3) with flow control, and commitment (§5.4.2).
extension RaftReplica {
    /// Appends an entry of this leader's term and schedules its replication.
    mutating func appendAsLeader(_ entry: RaftEntry) {
        log.append([entry])
        uncommittedBytes += entry.payloadSize
        appendPending = true
        _ = advanceCommit()
    }

    /// Moves the commit index to the highest index a majority holds, if
    /// that entry is of the current term (§5.4.2). Returns whether it moved.
    mutating func advanceCommit() -> Bool {
        var matches = [log.lastIndex]
        for peer in peers { matches.append(progress[peer]?.match ?? 0) }
        matches.sort(by: >)
        let candidate = matches[quorum - 1]
        guard candidate > log.committed, log.term(at: candidate) == term else { return false }
        let previous = log.committed
        log.commit(to: candidate)
        let released = log.entries(from: previous + 1, through: candidate, maximumBytes: .max)
            .reduce(0) { $0 + $1.payloadSize }
        uncommittedBytes = max(0, uncommittedBytes - released)
        return true
    }

    mutating func broadcastAppend(sendIfEmpty: Bool) {
        for peer in peers { sendAppend(to: peer, sendIfEmpty: sendIfEmpty) }
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
        guard var state = progress[peer], !state.isPaused else { return false }
        let previous = state.next - 1
        // Without the previous entry's term (compacted away) the follower
        // needs the snapshot.
        guard let previousTerm = log.term(at: previous) else { return startSnapshot(to: peer) }
        let entries = state.next <= log.lastIndex
            ? log.entries(from: state.next, through: log.lastIndex, maximumBytes: configuration.maximumAppendBytes,
                          maximumCount: RaftMessage.maximumEntriesPerAppend)
            : []
        guard !entries.isEmpty || sendIfEmpty || state.state == .probe else { return false }
        send(.append(previousIndex: previous, previousTerm: previousTerm, entries: entries,
                     leaderCommit: log.committed), to: peer)
        switch state.state {
        case .probe, .snapshot:
            state.probeSent = true
        case .replicate:
            if let last = entries.last {
                state.next = last.index + 1
                state.inflight.add(lastIndex: last.index, bytes: entries.reduce(0) { $0 + $1.payloadSize })
            }
        }
        progress[peer] = state
        return true
    }

    mutating func broadcastHeartbeat() {
        for peer in peers {
            let match = progress[peer]?.match ?? 0
            send(.heartbeat(commitIndex: min(match, log.committed)), to: peer)
        }
        resendStalledSnapshots()
    }

    mutating func handleAppendResponse(from peer: NodeID, result: RaftMessage.AppendResult) {
        guard var state = progress[peer] else { return }
        state.recentlyActive = true
        switch result {
        case .accepted(let matchIndex):
            guard matchIndex <= log.lastIndex else {
                // A follower cannot hold more than this leader sent it.
                progress[peer] = state
                counters.messagesDropped += 1
                return
            }
            let moved = state.acknowledge(through: matchIndex)
            if let transfer = state.transfer {
                // In the snapshot state only the installed snapshot's
                // acknowledgement (or a later one) ends the transfer.
                if state.match >= transfer.snapshot.index { state.becomeReplicate() }
            } else if state.state == .probe && matchIndex == state.match {
                state.becomeReplicate()
            } else if moved {
                state.inflight.free(through: matchIndex)
            }
            progress[peer] = state
            if moved && advanceCommit() { broadcastAppend(sendIfEmpty: true) }
            sendAllAppends(to: peer)
        case .rejected(let rejectedIndex, let conflictTerm, let conflictIndex):
            var hinted = conflictIndex
            if conflictTerm > 0, let found = log.lastIndex(ofTerm: conflictTerm, atOrBelow: rejectedIndex) {
                hinted = found + 1
            }
            let moved = state.reject(at: rejectedIndex, hintedNext: hinted)
            progress[peer] = state
            if moved { sendAppend(to: peer, sendIfEmpty: true) }
        }
    }

    mutating func handleHeartbeatResponse(from peer: NodeID) {
        guard var state = progress[peer] else { return }
        state.recentlyActive = true
        state.probeSent = false
        if state.state == .replicate && state.inflight.isFull { state.inflight.freeOldest() }
        progress[peer] = state
        if state.match < log.lastIndex { sendAppend(to: peer, sendIfEmpty: true) }
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
            log.append(Array(entries[conflict...]))
        }
        let lastNew = previousIndex + UInt64(entries.count)
        log.commit(to: min(leaderCommit, lastNew))
        send(.appendResponse(.accepted(matchIndex: lastNew)), to: leader)
    }
}
