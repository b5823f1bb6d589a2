// Linearizable reads without a log entry: ReadIndex (Raft dissertation
// §6.4, etcd raft's ReadOnlySafe).
extension RaftReplica {
    /// Asks to serve a read, named `id` by the driver, without appending
    /// to the log. The leader takes its commit index once it has
    /// committed an entry of its own term (so that the index covers every
    /// write acknowledged before the read), and once a majority has
    /// answered a round of heartbeats started after this call (so that it
    /// was still the leader when the read came); the read then appears in
    /// a ready's ``RaftReady/readStates`` with that index, and the driver
    /// serves it once the state machine has applied it. Reads made
    /// between two readies share one round.
    ///
    /// A leader that steps down first drops its unconfirmed reads (its
    /// driver fails them: it sees the replica no longer lead).
    ///
    /// - Throws: ``RaftError/notLeader(leaderHint:)`` unless this replica
    ///   leads (and has not been removed from the group).
    public mutating func readIndex(_ id: UInt64) throws(RaftError) {
        guard role == .leader, !isRemovedLeader else { throw .notLeader(leaderHint: refusalHint) }
        pendingReads.append(PendingRead(id: id, round: readRound + 1))
        readRoundWanted = true
    }

    /// Starts the round the reads since the last one wait for: a
    /// heartbeat to every peer carrying it (a group of one confirms it at
    /// once).
    mutating func startReadRound() {
        readRoundWanted = false
        guard role == .leader else { return }
        readRound += 1
        sendHeartbeats()
        releaseConfirmedReads()
    }

    /// Hands the reads whose round a majority (this leader included) has
    /// answered to the next ready, at the commit index, once an entry of
    /// this term is committed.
    mutating func releaseConfirmedReads() {
        guard role == .leader, let first = pendingReads.first, log.term(at: log.committed) == term else { return }
        // This leader answers its own round at once.
        let confirmed = quorumValue(own: readRound) { $0.readRound }
        guard first.round <= confirmed else { return }
        let released = pendingReads.prefix { $0.round <= confirmed }.count
        for read in pendingReads.prefix(released) {
            readStates.append(RaftReadState(id: read.id, index: log.committed))
        }
        pendingReads.removeFirst(released)
    }
}

/// A read a leader holds until a majority answers its round.
struct PendingRead {
    var id: UInt64
    var round: UInt64
}

/// A read a leader confirmed: serve it once the state machine has applied
/// ``index``.
public struct RaftReadState: Hashable, Sendable {
    /// The driver's name for the read (``RaftReplica/readIndex(_:)``).
    public var id: UInt64
    /// The commit index when the read was confirmed.
    public var index: UInt64
}
