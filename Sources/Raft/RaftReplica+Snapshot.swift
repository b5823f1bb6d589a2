import EventCore

// Snapshots (Raft §7): a leader whose log no longer holds the entries a
// follower needs sends its latest snapshot in chunks, with flow control; the
// follower assembles it and replaces its log with it.
extension RaftReplica {
    /// Starts sending the stored snapshot to `peer`, whose next entry was
    /// compacted away. Returns whether a chunk went out.
    mutating func startSnapshot(to peer: NodeID) -> Bool {
        guard var state = progress[peer], let snapshot = log.storage.snapshot else { return false }
        // A follower refuses, silently, a snapshot above the limit: sent,
        // its chunks would go again every other heartbeat for ever.
        guard snapshot.data.count <= configuration.maximumSnapshotSize else {
            counters.snapshotsWithheld += 1
            return false
        }
        state.becomeSnapshot(SnapshotTransfer(snapshot: snapshot, chunkSize: configuration.snapshotChunkSize))
        progress[peer] = state
        counters.snapshotsSent += 1
        return sendSnapshotChunks(to: peer)
    }

    /// Sends `peer` the snapshot chunks its window has room for. Returns
    /// whether one went out.
    @discardableResult
    mutating func sendSnapshotChunks(to peer: NodeID) -> Bool {
        guard var state = progress[peer], var transfer = state.transfer else { return false }
        var sent = false
        while let chunk = transfer.takeChunk(window: configuration.maximumSnapshotChunksInFlight) {
            send(.snapshotChunk(snapshotIndex: transfer.snapshot.index, snapshotTerm: transfer.snapshot.term,
                                totalSize: UInt64(transfer.snapshot.data.count), offset: UInt64(chunk.offset),
                                data: Array(chunk.data)), to: peer)
            sent = true
        }
        state.transfer = transfer
        progress[peer] = state
        return sent
    }

    /// A follower reported how much of the snapshot it holds.
    mutating func handleSnapshotProgress(from peer: NodeID, snapshotIndex: UInt64, receivedBytes: UInt64,
                                         outOfOrder: Bool) {
        guard var state = progress[peer] else { return }
        state.recentlyActive = true
        guard var transfer = state.transfer, transfer.snapshot.index == snapshotIndex else {
            progress[peer] = state
            return
        }
        transfer.acknowledge(receivedBytes: receivedBytes, outOfOrder: outOfOrder)
        state.transfer = transfer
        progress[peer] = state
        sendSnapshotChunks(to: peer)
    }

    /// At each heartbeat: chunks to a follower that acknowledged nothing
    /// since the last one are presumed lost and sent again.
    mutating func resendStalledSnapshots() {
        for peer in peers where progress[peer]?.state == .snapshot {
            progress[peer]?.transfer?.heartbeat()
            sendSnapshotChunks(to: peer)
        }
    }

    /// A follower's side of InstallSnapshot: chunks are taken in order
    /// into ``incomingSnapshot``; the complete snapshot replaces the log
    /// (unless the log already holds its last entry) and is acknowledged
    /// as an append accepted at its index, once the driver saved it.
    mutating func handleSnapshotChunk(
        from leader: NodeID, snapshotIndex: UInt64, snapshotTerm: UInt64, totalSize: UInt64, offset: UInt64,
        data: [UInt8]
    ) {
        if snapshotIndex <= log.committed {
            // Nothing to install: this log already commits further.
            incomingSnapshot = nil
            send(.appendResponse(.accepted(matchIndex: log.committed)), to: leader)
            return
        }
        guard totalSize <= UInt64(configuration.maximumSnapshotSize) else {
            counters.snapshotsRefused += 1
            return
        }
        var incoming = incomingSnapshot ?? IncomingSnapshot(index: 0, term: 0, totalSize: 0)
        if (incoming.index, incoming.term, incoming.totalSize) != (snapshotIndex, snapshotTerm, totalSize) {
            guard offset == 0 else {
                send(.snapshotProgress(snapshotIndex: snapshotIndex, receivedBytes: 0, outOfOrder: true), to: leader)
                return
            }
            incoming = IncomingSnapshot(index: snapshotIndex, term: snapshotTerm, totalSize: totalSize)
        }
        let received = UInt64(incoming.data.count)
        if offset == received { incoming.data.append(contentsOf: data) }
        guard UInt64(incoming.data.count) == totalSize else {
            incomingSnapshot = incoming
            send(.snapshotProgress(snapshotIndex: snapshotIndex, receivedBytes: UInt64(incoming.data.count),
                                   outOfOrder: offset > received), to: leader)
            return
        }
        incomingSnapshot = nil
        let snapshot = RaftSnapshot(index: snapshotIndex, term: snapshotTerm, data: incoming.data)
        if log.matches(index: snapshot.index, term: snapshot.term) {
            log.commit(to: snapshot.index)
        } else {
            log.restore(snapshot)
            counters.snapshotsInstalled += 1
        }
        send(.appendResponse(.accepted(matchIndex: snapshot.index)), to: leader)
    }
}

/// The chunks of a leader's snapshot a follower has so far, in order.
struct IncomingSnapshot {
    let index: UInt64
    let term: UInt64
    let totalSize: UInt64
    var data: [UInt8] = []
}
