import EventCore
@testable import SWIM
import Testing

/// Lifeguard's suspicions: what shortens one and what does not.
@Suite("SWIM suspicions")
struct SuspicionTests {
    /// Peers whose state lists a suspect we suspect already may only have
    /// heard of it: a state exchange is no independent confirmation.
    @Test("push-pulls listing a member we suspect do not shorten the suspicion")
    func pushPullDoesNotConfirm() throws {
        var instance = try HostileInputTests.instance()
        var effects: [SWIMEffect] = []
        instance.receive(SWIMMessage(sender: NodeID(3), body: .gossip,
                                     updates: [.suspect(NodeID(2), incarnation: 5, by: NodeID(3))]),
                         from: HostileInputTests.peer, now: HostileInputTests.start, into: &effects)
        let deadline = try #require(instance.suspicions[NodeID(2)]?.deadline)
        let suspect = Member(id: NodeID(2), endpoint: HostileInputTests.peer, incarnation: 5, status: .suspect)
        for sender in 4...9 {
            let state = [Member(id: NodeID(UInt64(sender)), endpoint: HostileInputTests.peer, incarnation: 1, status: .alive), suspect]
            instance.receive(SWIMMessage(sender: NodeID(UInt64(sender)), body: .pushPull(members: state, isReply: true)),
                             from: HostileInputTests.peer, now: HostileInputTests.start, into: &effects)
        }
        #expect(instance.suspicions[NodeID(2)]?.deadline == deadline)
    }
}
