import EventCore
@testable import SWIM
import Testing

/// When a leaving member departs. It must not stop before its `left`
/// update has gone out its full count: a member whose loop runs late (a
/// starved process) sends fewer gossip rounds per second, and stopping on
/// the clock alone left members that never heard of the leave, which then
/// suspected the member that was gone (seen once in the loopback test of
/// `UDPMembershipTests`, under the load of the whole suite). Until it
/// departs, its acks tell a prober that it left.
@Suite("SWIM graceful leave")
struct GracefulLeaveTests {
    static let start = HostileInputTests.start
    static let others = (2...16).map { number in
        Member(id: NodeID(UInt64(number)), endpoint: try! Endpoint(parsing: "127.0.0.1:\(7_000 + number)"),
               incarnation: 1, status: .alive)
    }

    /// An instance that knows ``others`` (16 members with itself).
    static func member(_ configuration: SWIMConfiguration = SWIMConfiguration()) throws -> SWIMInstance {
        var effects: [SWIMEffect] = []
        var instance = try HostileInputTests.alone(configuration, into: &effects)
        instance.receive(SWIMMessage(sender: NodeID(2), body: .gossip, updates: others.map { .alive($0) }),
                         from: others[0].endpoint, now: start, into: &effects)
        #expect(instance.clusterSize == 16)
        return instance
    }

    /// Messages among `effects` that tell their receiver this member left.
    static func departuresSent(_ effects: [SWIMEffect], by instance: SWIMInstance) -> Int {
        effects.count { effect in
            guard case .send(let message, _) = effect else { return false }
            return message.updates.contains(.left(instance.localMember.id, incarnation: instance.localMember.incarnation))
        }
    }

    @Test("a leaver whose loop runs late departs only once its update has gone out its full count")
    func starvedLeaver() throws {
        var instance = try Self.member()
        var effects: [SWIMEffect] = []
        instance.leave(now: Self.start, into: &effects)
        var sent = Self.departuresSent(effects, by: instance)
        #expect(sent > 0 && sent < instance.transmitLimit)
        // The next tick comes three seconds late, past two protocol periods.
        effects.removeAll()
        var now = Self.start + .seconds(3)
        instance.tick(now: now, into: &effects)
        #expect(!effects.contains { if case .departed = $0 { true } else { false } })
        sent += Self.departuresSent(effects, by: instance)
        var departed = false
        while !departed && now < Self.start + .seconds(10) {
            #expect(instance.nextDeadline > now, "a leaver's deadline is never behind it")
            now = instance.nextDeadline
            effects.removeAll()
            instance.tick(now: now, into: &effects)
            sent += Self.departuresSent(effects, by: instance)
            departed = effects.contains { if case .departed = $0 { true } else { false } }
        }
        #expect(departed)
        #expect(sent >= instance.transmitLimit)
    }

    @Test("a leaver answers probes with its departure for two protocol periods, then departs")
    func lingeringLeaver() throws {
        var instance = try Self.member()
        var effects: [SWIMEffect] = []
        instance.leave(now: Self.start, into: &effects)
        // Ticked on time: its update has gone out its full count well
        // within the linger (a gossip round every 100 ms).
        var now = Self.start
        while instance.nextDeadline <= Self.start + .seconds(1) {
            now = instance.nextDeadline
            instance.tick(now: now, into: &effects)
        }
        #expect(instance.queuedUpdateCount == 0)
        #expect(!effects.contains { if case .departed = $0 { true } else { false } })
        // A member that has not heard of the leave probes it.
        effects.removeAll()
        let prober = Self.others[4]
        instance.receive(SWIMMessage(sender: prober.id, body: .ping(sequence: 7, target: instance.localMember.id)),
                         from: prober.endpoint, now: Self.start + .seconds(1), into: &effects)
        let acks = effects.compactMap { effect -> SWIMMessage? in
            guard case .send(let message, prober.endpoint) = effect, case .ack(7) = message.body else { return nil }
            return message
        }
        #expect(acks.count == 1)
        #expect(acks.first?.updates.first == .left(instance.localMember.id, incarnation: instance.localMember.incarnation))
        // Departs at the end of the linger.
        effects.removeAll()
        #expect(instance.nextDeadline == Self.start + instance.configuration.protocolPeriod * 2)
        instance.tick(now: instance.nextDeadline, into: &effects)
        #expect(effects.contains { if case .departed = $0 { true } else { false } })
    }

    @Test("a leaver that cannot send its update departs after eight protocol periods")
    func leaveCutoff() throws {
        var configuration = SWIMConfiguration()
        configuration.gossipFanout = 0  // gossip sends nothing
        var instance = try Self.member(configuration)
        var effects: [SWIMEffect] = []
        instance.leave(now: Self.start, into: &effects)
        let cutoff = Self.start + configuration.protocolPeriod * 8
        var now = Self.start
        while !effects.contains(where: { if case .departed = $0 { true } else { false } }) && now < cutoff + .seconds(1) {
            #expect(instance.nextDeadline > now)
            now = instance.nextDeadline
            instance.tick(now: now, into: &effects)
        }
        #expect(now == cutoff)
    }
}
