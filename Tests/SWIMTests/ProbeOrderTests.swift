import EventCore
@testable import SWIM
import Testing

/// The round-robin probe order (SWIM §4.3) stays bounded whatever the
/// network says.
@Suite("SWIM probe order")
struct ProbeOrderTests {
    @Test("a member that keeps dying and coming back does not grow the probe order")
    func flappingMemberBounded() throws {
        var instance = try HostileInputTests.instance()
        var effects: [SWIMEffect] = []
        let flapper = try Endpoint(parsing: "127.0.0.1:7003")
        instance.receive(SWIMMessage(sender: NodeID(2), body: .gossip,
                                     updates: [.alive(Member(id: NodeID(3), endpoint: flapper, incarnation: 1, status: .alive))]),
                         from: HostileInputTests.peer, now: HostileInputTests.start, into: &effects)
        // Start a round (the first probe builds the order).
        instance.tick(now: instance.nextDeadline, into: &effects)
        for incarnation in stride(from: UInt64(2), to: 2_000, by: 2) {
            effects.removeAll()
            let updates: [SWIMUpdate] = [
                .dead(NodeID(3), incarnation: incarnation, by: NodeID(2)),
                .alive(Member(id: NodeID(3), endpoint: flapper, incarnation: incarnation + 1, status: .alive)),
            ]
            instance.receive(SWIMMessage(sender: NodeID(2), body: .gossip, updates: updates),
                             from: HostileInputTests.peer, now: HostileInputTests.start, into: &effects)
        }
        #expect(instance.memberCount(.alive) == 3)
        #expect(instance.probeOrder.count <= 2 * 2 + 16, "probe order of \(instance.probeOrder.count) entries")
    }
}
