/// Counters of a ``SimulatedNetwork`` since it was created.
///
/// Every copy of a message ends in exactly one counter, so once the network
/// is idle, with unicast traffic only, `sent + duplicated == delivered +
/// droppedByLoss + droppedByPartition + droppedByCrash + droppedNoReceiver`
/// (a multicast counts once in `sent`, and each member's copy ends in a
/// counter of its own; a forced crash of its sender counts once).
public struct SimulationStatistics: Hashable, Sendable {
    /// Messages accepted by a node's `send` (those that threw are not
    /// counted).
    public internal(set) var sent = 0
    /// Message copies handed to a receive handler.
    public internal(set) var delivered = 0
    /// Extra copies created by duplication (each then delivered or dropped).
    public internal(set) var duplicated = 0
    /// Messages lost to the link's loss probability.
    public internal(set) var droppedByLoss = 0
    /// Message copies dropped because their link was blocked when they were
    /// sent or when they arrived.
    public internal(set) var droppedByPartition = 0
    /// Message copies that arrived at a crashed node, and messages whose
    /// sender a forced fault crashed instead of sending them.
    public internal(set) var droppedByCrash = 0
    /// Messages sent to an endpoint no node has, and copies that arrived at
    /// a node with no receive handler installed.
    public internal(set) var droppedNoReceiver = 0
    /// Node timers that fired (scripted network actions are not counted).
    public internal(set) var timersFired = 0
}
