/// What a ``RaftReplica`` asks its driver to do, as one batch (etcd raft's
/// `Ready`). The driver must, in this order:
///
/// 1. with a ``snapshot``: restore the state machine from it (first, so
///    that a snapshot the state machine refuses leaves the storage as it
///    was), make the term and vote of ``hardState`` durable (a
///    ``RaftStorage/persist(_:hardState:)`` of no entries, if they
///    changed), then save the snapshot (``RaftStorage/saveSnapshot(_:)``):
///    saved before the term, a crash between the two leaves a log holding
///    the snapshot's term under an older current term;
/// 2. make ``entries`` and ``hardState`` durable
///    (``RaftStorage/persist(_:hardState:)``);
/// 3. send ``messages`` (only now: a vote or an acknowledgement promises
///    what was just persisted);
/// 4. apply ``committedEntries`` in order, each exactly once;
/// 5. call ``RaftReplica/advance(_:)`` with this ready.
///
/// A read in ``readStates`` may be served once the state machine has
/// applied its index (now, or after later readies).
public struct RaftReady: Sendable {
    /// A snapshot received from the leader that replaces the whole log
    /// and the state machine's state, if one was completed.
    public var snapshot: RaftSnapshot?
    /// The hard state to persist, if it changed since the last ready.
    public var hardState: RaftHardState?
    /// Entries to append to storage (replacing stored entries from the
    /// first one's index on).
    public var entries: [RaftEntry]
    /// Messages to send once the above is durable.
    public var messages: [RaftMessage]
    /// Committed entries to apply, in log order (``RaftEntry/Kind/leaderNoop``
    /// entries included: they carry no command and are skipped).
    public var committedEntries: [RaftEntry]
    /// Reads (``RaftReplica/readIndex(_:)``) this leader confirmed, in the
    /// order they were made.
    public var readStates: [RaftReadState]
}
