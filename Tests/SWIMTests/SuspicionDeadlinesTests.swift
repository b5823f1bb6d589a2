import EventCore
@testable import SWIM
import Testing

@Suite("SWIM suspicion deadlines")
struct SuspicionDeadlinesTests {
    static let start = HostileInputTests.start

    @Test("the earliest deadline comes first, ties in the order the suspicions were made; moves and removals keep the order")
    func order() {
        var deadlines = SuspicionDeadlines()
        #expect(deadlines.earliest == .distantFuture)
        let at = { (milliseconds: Int) in Self.start + .milliseconds(milliseconds) }
        deadlines.set(NodeID(1), to: at(30))
        deadlines.set(NodeID(2), to: at(10))
        deadlines.set(NodeID(3), to: at(10))
        deadlines.set(NodeID(4), to: at(20))
        #expect(deadlines.earliest == at(10))
        #expect(deadlines.firstDue(at: at(9)) == nil)
        #expect(deadlines.firstDue(at: at(10)) == NodeID(2))
        // A confirmation moves 1 forward; 2 is refuted.
        deadlines.set(NodeID(1), to: at(5))
        deadlines.remove(NodeID(2))
        deadlines.remove(NodeID(9))
        var order: [NodeID] = []
        while let first = deadlines.firstDue(at: at(100)) {
            order.append(first)
            deadlines.remove(first)
        }
        #expect(order == [NodeID(1), NodeID(3), NodeID(4)])
        #expect(deadlines.earliest == .distantFuture)
    }

    /// A forged push-pull marks thousands of members suspect at once (one
    /// deadline), and another at a higher incarnation brings them back:
    /// each refutation used to visit every suspicion left, and each revival
    /// search the departed list (quadratic: 2.2 s at 50,000 members).
    @Test("thousands of suspicions made together and refuted one by one leave no suspicion and no deadline behind")
    func massRefutation() throws {
        var instance = try HostileInputTests.instance()
        var effects: [SWIMEffect] = []
        let count = 20_000
        func push(_ incarnation: UInt64, _ status: MemberStatus, reversed: Bool = false) {
            var list = (0..<count).map { index in
                Member(id: NodeID(UInt64(1_000 + index)), endpoint: Endpoint(address: .ipv4(0x0A00_0000 | UInt32(index)), port: 7946),
                       incarnation: incarnation, status: status)
            }
            if reversed { list.reverse() }
            effects.removeAll(keepingCapacity: true)
            instance.receive(SWIMMessage(sender: NodeID(2), body: .pushPull(members: list, isReply: true)),
                             from: HostileInputTests.peer, now: Self.start, into: &effects)
        }
        push(1, .alive)
        push(1, .suspect)
        #expect(instance.memberCount(.suspect) == count)
        #expect(instance.nextDeadline < .distantFuture)
        push(2, .alive)
        // Itself, member 2 and the pushed ones.
        #expect(instance.memberCount(.suspect) == 0 && instance.memberCount(.alive) == count + 2)
        #expect(instance.suspicions.isEmpty && instance.suspicionDeadlines.earliest == .distantFuture)
        push(3, .left)
        push(4, .alive, reversed: true)
        #expect(instance.memberCount(.alive) == count + 2)
        #expect(instance.departures.isEmpty)
        #expect(instance.departed.count <= 64, "the passed-over entries are compacted")
        // Leaving, coming back and leaving again in one push-pull, at one
        // instant: each departure's entry must still be told from the next
        // (told apart by time, all read as current, none was compacted,
        // and every later revival scanned them all: found by review).
        effects.removeAll(keepingCapacity: true)
        let churn = (0..<count).flatMap { index -> [Member] in
            let id = NodeID(UInt64(1_000 + index))
            let endpoint = Endpoint(address: .ipv4(0x0A00_0000 | UInt32(index)), port: 7946)
            return [Member(id: id, endpoint: endpoint, incarnation: 5, status: .left),
                    Member(id: id, endpoint: endpoint, incarnation: 6, status: .alive),
                    Member(id: id, endpoint: endpoint, incarnation: 6, status: .left)]
        }
        instance.receive(SWIMMessage(sender: NodeID(2), body: .pushPull(members: churn, isReply: true)),
                         from: HostileInputTests.peer, now: Self.start, into: &effects)
        #expect(instance.memberCount(.left) == count)
        #expect(instance.departures.count == count)
        #expect(instance.departed.count <= 2 * count + 64, "the entries of the revivals were compacted")
    }
}
