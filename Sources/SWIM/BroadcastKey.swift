import EventCore

/// What identifies a user broadcast: its origin and the origin's sequence
/// number. A member delivers each at most once while it remembers it: the
/// latest ``SWIMConfiguration/broadcastMemory`` keys, in a `RecentlySeen`.
/// A copy that arrives after its key was forgotten (more broadcasts than
/// that in between, under a load the queues cannot drain) is delivered
/// again, and sent on afresh.
struct BroadcastKey: Hashable {
    var origin: NodeID
    var sequence: UInt64
}
