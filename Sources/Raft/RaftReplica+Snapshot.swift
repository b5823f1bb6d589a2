import EventCore
import WireCodec

// Snapshots (Raft §7): a leader whose log no longer holds the entries a
// follower needs sends its latest snapshot in chunks, with flow control; the
// follower assembles it and replaces its log with it.
extension RaftReplica {
    /// Starts sending the stored snapshot to `peer`, whose next entry was
    /// compacted away. Returns whether a chunk went out.
    mutating func startSnapshot(to peer: NodeID) -> Bool {
        guard var state = progress[peer], let snapshot = log.storage.snapshot else { return false }
        // A follower refuses a snapshot above its limit: this replica's
        // own (the usual case: one configuration for the group), or the
        // one it said when it refused (``SnapshotRefusal``).
        let size = UInt64(snapshot.data.count)
        guard size <= UInt64(configuration.maximumSnapshotSize), !(state.refusal?.withholds(size: size) ?? false) else {
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
            send(.snapshotChunk(snapshotIndex: transfer.index, snapshotTerm: transfer.term,
                                totalSize: UInt64(transfer.payloadCount), offset: UInt64(chunk.offset),
                                data: chunk.data), to: peer)
            sent = true
        }
        state.transfer = transfer
        progress[peer] = state
        return sent
    }

    /// A follower reported how much of the snapshot it holds.
    mutating func handleSnapshotProgress(from peer: NodeID, snapshotIndex: UInt64, receivedBytes: UInt64,
                                         outOfOrder: Bool, now: Instant) {
        guard var state = progress[peer] else { return }
        state.heard(at: now)
        guard var transfer = state.transfer, transfer.index == snapshotIndex else {
            progress[peer] = state
            return
        }
        transfer.acknowledge(receivedBytes: receivedBytes, outOfOrder: outOfOrder)
        state.transfer = transfer
        progress[peer] = state
        sendSnapshotChunks(to: peer)
    }

    /// A follower refused the snapshot it is being sent as larger than its
    /// `maximumSize` (its ``RaftConfiguration/maximumSnapshotSize`` is below
    /// this replica's): the transfer stops, and snapshots above that size
    /// are withheld from it for ``SnapshotRefusal/heartbeats`` heartbeats,
    /// then tried again (the follower may have restarted with a larger
    /// limit meanwhile). A refusal of another snapshot than the one in
    /// flight, or from a follower not being sent one, changes nothing.
    mutating func handleSnapshotRefusal(from peer: NodeID, snapshotIndex: UInt64, maximumSize: UInt64, now: Instant) {
        guard var state = progress[peer] else { return }
        state.heard(at: now)
        guard let transfer = state.transfer, transfer.index == snapshotIndex,
            UInt64(transfer.payloadCount) > maximumSize
        else {
            progress[peer] = state
            return
        }
        counters.snapshotsRefusedByFollowers += 1
        state.becomeProbe()
        state.refusal = SnapshotRefusal(maximumSize: maximumSize)
        progress[peer] = state
    }

    /// At each heartbeat: chunks to a follower that acknowledged nothing
    /// since the last one are presumed lost and sent again, and refusals
    /// age.
    mutating func resendStalledSnapshots() {
        for peer in recipients {
            guard let state = progress[peer] else { continue }
            if state.refusal != nil { progress[peer]?.refusal = state.refusal?.aged() }
            guard state.state == .snapshot else { continue }
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
            // Nothing to install: this log already commits further (a late
            // copy of a chunk of a snapshot installed before leaves a later
            // transfer's chunks alone).
            if let incoming = incomingSnapshot, incoming.index <= log.committed { incomingSnapshot = nil }
            send(.appendResponse(.accepted(matchIndex: log.committed)), to: leader)
            return
        }
        // In UInt64: an Int limit near Int.max plus the overhead fits.
        guard totalSize <= UInt64(configuration.maximumSnapshotSize) + UInt64(SnapshotPayload.maximumOverhead) else {
            counters.snapshotsRefused += 1
            send(.snapshotRefused(snapshotIndex: snapshotIndex, maximumSize: UInt64(configuration.maximumSnapshotSize)),
                 to: leader)
            return
        }
        var incoming = incomingSnapshot ?? IncomingSnapshot(leader: leader, index: 0, term: 0, totalSize: 0)
        if (incoming.leader, incoming.index, incoming.term, incoming.totalSize)
            != (leader, snapshotIndex, snapshotTerm, totalSize)
        {
            guard offset == 0 else {
                send(.snapshotProgress(snapshotIndex: snapshotIndex, receivedBytes: 0, outOfOrder: true), to: leader)
                return
            }
            incoming = IncomingSnapshot(leader: leader, index: snapshotIndex, term: snapshotTerm, totalSize: totalSize)
        }
        let received = UInt64(incoming.data.count)
        // A chunk that overlaps the end of what is held adds the part not
        // held: chunks of another size (a leader restarted with another
        // snapshotChunkSize) need not start where the held prefix ends,
        // and waiting for one that does looped between a gap and a resend.
        // (The decoder keeps a chunk within its snapshot's size.)
        if offset <= received, offset + UInt64(data.count) > received {
            incoming.data.append(contentsOf: data[Int(received - offset)...])
        }
        guard UInt64(incoming.data.count) == totalSize else {
            incomingSnapshot = incoming
            send(.snapshotProgress(snapshotIndex: snapshotIndex, receivedBytes: UInt64(incoming.data.count),
                                   outOfOrder: offset > received), to: leader)
            return
        }
        incomingSnapshot = nil
        let decoded = incoming.data.withUnsafeBytes { bytes in
            Result { () throws(WireError) in try SnapshotPayload.decode(bytes, index: snapshotIndex, term: snapshotTerm) }
        }
        guard case .success(let snapshot) = decoded else {
            // A leader sends only payloads it encoded: a faulty or forged
            // one. Dropped; the transfer stalls and starts again.
            counters.messagesDropped += 1
            return
        }
        if log.matches(index: snapshot.index, term: snapshot.term) {
            log.commit(to: snapshot.index)
        } else {
            log.restore(snapshot)
            memberships.restored(snapshot.membership)
            membershipChanged()
            counters.snapshotsInstalled += 1
        }
        send(.appendResponse(.accepted(matchIndex: snapshot.index)), to: leader)
    }
}

/// The chunks of a leader's snapshot a follower has so far, in order.
struct IncomingSnapshot {
    /// The leader sending it: a snapshot of one index may be encoded
    /// otherwise by another, so their chunks never mix.
    let leader: NodeID
    let index: UInt64
    let term: UInt64
    let totalSize: UInt64
    var data: [UInt8] = []
}

/// A follower's refusal of a snapshot above its size limit, as its leader
/// keeps it: snapshots above ``maximumSize`` are withheld from the
/// follower until ``heartbeats`` heartbeats have passed.
struct SnapshotRefusal: Equatable {
    /// How long a refusal holds: 100 heartbeats (5 s at the default
    /// interval). A follower restarted with a larger limit waits at most
    /// that; one that still refuses costs a window of chunks that often.
    static let heartbeats = 100

    /// The follower's limit, as it said.
    let maximumSize: UInt64
    var heartbeatsLeft = Self.heartbeats

    /// Whether a snapshot of `size` bytes is withheld.
    func withholds(size: UInt64) -> Bool { size > maximumSize }

    /// The refusal one heartbeat later, nil once it expired.
    func aged() -> SnapshotRefusal? {
        heartbeatsLeft > 1 ? SnapshotRefusal(maximumSize: maximumSize, heartbeatsLeft: heartbeatsLeft - 1) : nil
    }
}
