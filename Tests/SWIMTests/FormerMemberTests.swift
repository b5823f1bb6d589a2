import EventCore
@testable import SWIM
import Testing

/// Dead members forgotten after deadMemberRetention are still pinged at
/// reconnection (a partition longer than the retention heals), but not
/// for ever: not past a day, not once they left, and not once their
/// endpoint belongs to a member known again.
@Suite("SWIM forgotten members")
struct FormerMemberTests {
    static let forgotten = NodeID(3)
    static let forgottenEndpoint = try! Endpoint(parsing: "127.0.0.1:7003")

    /// An instance that knows member 2 (which answers every ping) and
    /// forgot member 3, declared dead: with the time it forgot it.
    static func instanceThatForgot() throws -> (SWIMInstance, Instant) {
        var configuration = SWIMConfiguration()
        configuration.deadMemberRetention = .seconds(2)
        var effects: [SWIMEffect] = []
        var instance = try HostileInputTests.alone(configuration, into: &effects)
        let start = HostileInputTests.start
        instance.receive(
            SWIMMessage(sender: NodeID(2), body: .gossip, updates: [
                .alive(Member(id: NodeID(2), endpoint: HostileInputTests.peer, incarnation: 1, status: .alive)),
                .alive(Member(id: forgotten, endpoint: forgottenEndpoint, incarnation: 1, status: .alive)),
                .dead(forgotten, incarnation: 1, by: NodeID(2)),
            ]),
            from: HostileInputTests.peer, now: start, into: &effects)
        let now = run(&instance, from: start, until: start + .seconds(5))
        #expect(instance.member(forgotten) == nil && instance.formerMembers.map(\.member.id) == [forgotten])
        return (instance, now)
    }

    /// Ticks `instance` at its deadlines from `start` until `end`, member 2
    /// (and member 4, at member 3's old endpoint, once known) answering its
    /// pings; counts in `pings` the pings naming member 3, and returns the
    /// last deadline.
    @discardableResult
    static func run(_ instance: inout SWIMInstance, from start: Instant, until end: Instant, pings: inout Int) -> Instant {
        var now = start
        var effects: [SWIMEffect] = []
        while instance.nextDeadline <= end {
            now = max(now, instance.nextDeadline)
            effects.removeAll()
            instance.tick(now: now, into: &effects)
            for case .send(let message, let destination) in effects {
                guard case .ping(let sequence, let target) = message.body else { continue }
                if target == forgotten { pings += 1 }
                guard target == NodeID(2) || target == NodeID(4) else { continue }
                instance.receive(SWIMMessage(sender: target, body: .ack(sequence: sequence)),
                                 from: destination, now: now, into: &effects)
            }
        }
        return now
    }

    @discardableResult
    static func run(_ instance: inout SWIMInstance, from start: Instant, until end: Instant) -> Instant {
        var pings = 0
        return run(&instance, from: start, until: end, pings: &pings)
    }

    @Test("a forgotten member is pinged at reconnection")
    func forgottenIsPinged() throws {
        var (instance, now) = try Self.instanceThatForgot()
        var pings = 0
        Self.run(&instance, from: now, until: now + .seconds(60), pings: &pings)
        #expect(pings > 0)
    }

    @Test("a forgotten member that leaves is not pinged again")
    func leftIsDropped() throws {
        var (instance, now) = try Self.instanceThatForgot()
        var effects: [SWIMEffect] = []
        instance.receive(SWIMMessage(sender: NodeID(2), body: .gossip, updates: [.left(Self.forgotten, incarnation: 2)]),
                         from: HostileInputTests.peer, now: now, into: &effects)
        #expect(instance.formerMembers.isEmpty)
    }

    @Test("a forgotten member whose endpoint a known member took, or forgotten a day ago, is not pinged again")
    func takenOrExpiredIsDropped() throws {
        var (instance, now) = try Self.instanceThatForgot()
        var effects: [SWIMEffect] = []
        // A process restarted at its endpoint with a new ID.
        instance.receive(
            SWIMMessage(sender: NodeID(2), body: .gossip, updates: [
                .alive(Member(id: NodeID(4), endpoint: Self.forgottenEndpoint, incarnation: 1, status: .alive)),
            ]),
            from: HostileInputTests.peer, now: now, into: &effects)
        var pings = 0
        now = Self.run(&instance, from: now, until: now + .seconds(60), pings: &pings)
        #expect(instance.formerMembers.isEmpty && pings == 0)

        var (expiring, then) = try Self.instanceThatForgot()
        then = Self.run(&expiring, from: then + SWIMInstance.formerMemberRetention, until: then + SWIMInstance.formerMemberRetention + .seconds(60))
        #expect(expiring.formerMembers.isEmpty)
    }
}
