import EventCore

/// What a ``Proposer`` or an ``Acceptor`` asks its driver to do, appended
/// to a caller-owned array by every input.
///
/// Ordering (etcd raft's `Ready`): a ``persist(_:)`` must be durable
/// (written and synced by the ``AcceptorStore``) before any ``send(_:to:)``
/// (or ``sendToEach(_:_:)``) that follows it in the array leaves, because
/// the reply may acknowledge
/// it. A driver may batch the syncs of several inputs, holding their sends
/// until the one sync completes.
public enum CASPaxosEffect: Sendable {
    /// Send `message` to `destination`.
    case send(CASPaxosMessage, to: Endpoint)
    /// Send `message` to each of `destinations` (a phase's requests to
    /// its acceptors: one effect, and one encoding, for all of them).
    case sendToEach(CASPaxosMessage, [Endpoint])
    /// Make this change to the acceptor's state durable before the sends
    /// that follow.
    case persist(AcceptorWrite)
    /// A proposal ended: the new value, or why it failed.
    case proposalCompleted(id: UInt64, result: Result<[UInt8]?, CASPaxosError>)
    /// An administrative operation (garbage collection of a key, a
    /// membership change) ended.
    case maintenanceCompleted(id: UInt64, result: Result<Void, CASPaxosError>)
}
