import EventCore
import Testing

/// The bounded set that recognizes what was handled lately (a SWIM
/// broadcast, a Raft forwarded proposal delivered twice).
@Suite("RecentlySeen")
struct RecentlySeenTests {
    @Test("values are remembered up to the capacity, the oldest forgotten first")
    func boundedFirstInFirstOut() {
        var recent = RecentlySeen<UInt64>(capacity: 1_024)
        let capacity = UInt64(recent.capacity)
        let fresh = (1...capacity).allSatisfy { recent.insert($0) }
        #expect(fresh)
        let repeated = recent.insert(1)
        #expect(!repeated)
        let next = recent.insert(capacity + 1)
        #expect(next)
        let forgotten = recent.insert(1)
        #expect(forgotten, "the oldest was forgotten")
        let kept = recent.insert(3)
        #expect(!kept)
    }
}
