/// The last ``capacity`` distinct values recorded, the oldest forgotten
/// first: a set with a first-in, first-out bound. How a driver recognizes
/// what it has handled lately, such as a datagram delivered twice (a
/// SWIM broadcast, a Raft forwarded proposal). The storage grows with use
/// up to the bound.
package struct RecentlySeen<Element: Hashable> {
    /// The most values remembered.
    package let capacity: Int
    private var members: Set<Element> = []
    /// The values in the order they came, as a ring once full.
    private var order: [Element] = []
    private var oldest = 0

    /// Remembers up to `capacity` (at least 1) values.
    package init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Records `element`; returns false if it was already recorded.
    package mutating func insert(_ element: Element) -> Bool {
        guard members.insert(element).inserted else { return false }
        if order.count < capacity {
            order.append(element)
        } else {
            members.remove(order[oldest])
            order[oldest] = element
            oldest = (oldest + 1) % capacity
        }
        return true
    }
}
