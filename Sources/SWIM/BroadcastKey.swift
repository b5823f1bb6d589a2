import EventCore

/// What identifies a user broadcast: its origin and the origin's sequence
/// number. A member delivers each at most once (it remembers the latest
/// ``SWIMConfiguration/broadcastMemory`` in a `RecentlySeen`).
struct BroadcastKey: Hashable {
    var origin: NodeID
    var sequence: UInt64
}
