/// The request IDs one peer used last, at most ``capacity`` of them, the
/// oldest forgotten first: how a ``RaftNode`` recognizes a forwarded
/// proposal it has already handled. UDP may deliver a datagram twice, and
/// proposing the same command again would apply it twice.
struct RecentRequestIDs {
    /// IDs remembered per peer: far more than a peer has in flight
    /// (duplicates arrive close behind the original).
    static let capacity = 1_024

    private var members: Set<UInt64> = []
    /// The IDs in the order they came, as a ring once full.
    private var order: [UInt64] = []
    private var oldest = 0

    /// Records `id`; returns false if it was already recorded.
    mutating func insert(_ id: UInt64) -> Bool {
        guard members.insert(id).inserted else { return false }
        if order.count < Self.capacity {
            order.append(id)
        } else {
            members.remove(order[oldest])
            order[oldest] = id
            oldest = (oldest + 1) % Self.capacity
        }
        return true
    }
}
