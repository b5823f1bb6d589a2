import EventCore
@testable import SWIM
import Testing

/// A member relaying pings for others (indirect probes) nacks each
/// requester when its relayed ping goes unanswered: ``SWIMInstance/nextDeadline``
/// must name the first nack still due, also after an earlier relay was
/// answered, or the nack goes late (after the requester's protocol period,
/// which then counts it missing and raises its own health score). The same
/// holds for confirmation probes (Lifeguard), whose expiry counts as this
/// member's own suspicion.
@Suite("SWIM relay deadlines")
struct RelayDeadlineTests {
    static let start = HostileInputTests.start
    /// The members that ``instanceKnowingSuspects(into:)`` knows besides
    /// member 2, for its suspicions to name.
    static let suspects = [(NodeID(10), try! Endpoint(parsing: "127.0.0.1:7010")),
                           (NodeID(11), try! Endpoint(parsing: "127.0.0.1:7011"))]

    /// An instance that knows member 2 (which told it of the others) and
    /// ``suspects``, all alive.
    static func instanceKnowingSuspects(into effects: inout [SWIMEffect]) throws -> SWIMInstance {
        var instance = try HostileInputTests.instance()
        let newcomers = suspects.map { SWIMUpdate.alive(Member(id: $0.0, endpoint: $0.1, incarnation: 1, status: .alive)) }
        instance.receive(SWIMMessage(sender: NodeID(2), body: .gossip, updates: newcomers),
                         from: HostileInputTests.peer, now: start, into: &effects)
        return instance
    }

    @Test("an answered relay does not hide the nack deadline of the relay behind it")
    func answeredRelay() throws {
        // A member that knows member 2, which answers every probe; ticked
        // until its news has spread and only the probe period remains.
        var instance = try HostileInputTests.instance()
        var effects: [SWIMEffect] = []
        var quiet = Self.start
        while quiet < Self.start + .seconds(10) {
            quiet = instance.nextDeadline
            effects.removeAll()
            instance.tick(now: quiet, into: &effects)
            for case .send(let message, HostileInputTests.peer) in effects {
                guard case .ping(let sequence, _) = message.body else { continue }
                instance.receive(SWIMMessage(sender: NodeID(2), body: .ack(sequence: sequence)),
                                 from: HostileInputTests.peer, now: quiet, into: &effects)
            }
        }
        let requester = HostileInputTests.peer
        let targets = [try Endpoint(parsing: "127.0.0.1:7010"), try Endpoint(parsing: "127.0.0.1:7011")]
        // Two relays, 10 ms apart; the first one's target answers.
        var relayed: [UInt32] = []
        for (index, target) in targets.enumerated() {
            effects.removeAll()
            let now = quiet + .milliseconds(1 + 10 * index)
            instance.receive(
                SWIMMessage(sender: NodeID(2), body: .pingRequest(sequence: UInt32(index), target: NodeID(UInt64(10 + index)), endpoint: target)),
                from: requester, now: now, into: &effects)
            let ping = try #require(effects.lazy.compactMap { effect -> UInt32? in
                if case .send(let message, target) = effect, case .ping(let sequence, _) = message.body { sequence } else { nil }
            }.first)
            relayed.append(ping)
        }
        let secondSent = quiet + .milliseconds(11)
        // With no answer, the second relay's nack is due one relay timeout
        // (200 ms, unstretched) after its ping.
        let secondNackDue = secondSent + SWIMConfiguration().relayTimeout
        effects.removeAll()
        instance.receive(SWIMMessage(sender: NodeID(10), body: .ack(sequence: relayed[0])), from: targets[0],
                         now: secondSent, into: &effects)
        #expect(instance.nextDeadline <= secondNackDue)
        // Ticking at each deadline the instance names, the requester gets
        // the second nack right when it is due, not at some later timer.
        var now = instance.nextDeadline
        var nackedAt: Instant?
        while now <= secondNackDue + .seconds(1) && nackedAt == nil {
            effects.removeAll()
            instance.tick(now: now, into: &effects)
            let nacked = effects.contains { effect in
                if case .send(let message, requester) = effect, case .nack(1) = message.body { true } else { false }
            }
            if nacked { nackedAt = now }
            now = instance.nextDeadline
        }
        #expect(nackedAt == secondNackDue)
    }

    /// memberlist picks alive members only: a suspect, perhaps down,
    /// wastes an indirect probe, and its missing nack counts against this
    /// member's health.
    @Test("indirect probes go to alive members only, never to suspects")
    func helpersAreAlive() throws {
        var effects: [SWIMEffect] = []
        var instance = try Self.instanceKnowingSuspects(into: &effects)
        effects.removeAll()
        instance.receive(
            SWIMMessage(sender: NodeID(2), body: .gossip,
                        updates: Self.suspects.map { .suspect($0.0, incarnation: 1, by: NodeID(2)) }),
            from: HostileInputTests.peer, now: Self.start, into: &effects)
        let suspectEndpoints = Set(Self.suspects.map(\.1))
        var now = Self.start
        var timedOut = 0
        // Nothing answers: probes of member 2 and of the suspects time out,
        // until the suspicions expire.
        while Self.suspects.allSatisfy({ instance.member($0.0)?.status == .suspect }) {
            now = instance.nextDeadline
            effects.removeAll()
            instance.tick(now: now, into: &effects)
            for case .send(let message, let destination) in effects {
                guard case .pingRequest = message.body else { continue }
                #expect(!suspectEndpoints.contains(destination), "a ping-req went to a suspect")
            }
            timedOut = instance.counters.failedProbes
        }
        #expect(timedOut > 0, "no probe timed out while they were suspect")
    }

    @Test("an answered confirmation probe leaves the one behind it at the front, due and expired on time")
    func answeredConfirmation() throws {
        var effects: [SWIMEffect] = []
        var instance = try Self.instanceKnowingSuspects(into: &effects)
        let suspects = Self.suspects
        // Ticked until the news has spread, every probe answered.
        let owners = [HostileInputTests.peer: NodeID(2), suspects[0].1: suspects[0].0, suspects[1].1: suspects[1].0]
        var quiet = Self.start
        while quiet < Self.start + .seconds(10) {
            quiet = instance.nextDeadline
            effects.removeAll()
            instance.tick(now: quiet, into: &effects)
            for case .send(let message, let destination) in effects {
                guard case .ping(let sequence, _) = message.body, let owner = owners[destination] else { continue }
                instance.receive(SWIMMessage(sender: owner, body: .ack(sequence: sequence)), from: destination,
                                 now: quiet, into: &effects)
            }
        }
        // Member 2 suspects 10, then 11, 10 ms apart: with 4 members,
        // each suspicion is confirmed by a probe of our own.
        var probes: [UInt32] = []
        for (index, (suspect, endpoint)) in suspects.enumerated() {
            effects.removeAll()
            instance.receive(
                SWIMMessage(sender: NodeID(2), body: .gossip, updates: [.suspect(suspect, incarnation: 1, by: NodeID(2))]),
                from: HostileInputTests.peer, now: quiet + .milliseconds(1 + 10 * index), into: &effects)
            probes.append(try #require(effects.lazy.compactMap { effect -> UInt32? in
                if case .send(let message, endpoint) = effect, case .ping(let sequence, _) = message.body { sequence } else { nil }
            }.first))
        }
        let secondDue = try #require(instance.confirmations[probes[1]]).deadline
        // 10 answers; 11 does not.
        instance.receive(SWIMMessage(sender: suspects[0].0, body: .ack(sequence: probes[0])), from: suspects[0].1,
                         now: quiet + .milliseconds(12), into: &effects)
        #expect(instance.confirmationOrder.first == probes[1])
        // Ticking at each deadline the instance names, 11's confirmation
        // expires when due: its silence counts as our own suspicion.
        var now = instance.nextDeadline
        var expiredAt: Instant?
        while now <= secondDue + .seconds(2) && expiredAt == nil {
            effects.removeAll()
            instance.tick(now: now, into: &effects)
            if instance.confirmations[probes[1]] == nil { expiredAt = now }
            now = instance.nextDeadline
        }
        #expect(expiredAt == secondDue)
    }

    /// A relay's nack deadline is not stretched by the relay's health
    /// score: relays made before and after the score falls stay in deadline
    /// order, and each nack is due one relay timeout after its ping.
    @Test("a relay's nack is due one relay timeout after its ping, whatever the relay's health")
    func relayDeadlineUnstretched() throws {
        var instance = try HostileInputTests.instance()
        var effects: [SWIMEffect] = []
        for incarnation in UInt64(0)..<3 {
            instance.receive(SWIMMessage(sender: NodeID(2), body: .gossip,
                                         updates: [.suspect(HostileInputTests.selfID, incarnation: incarnation, by: NodeID(2))]),
                             from: HostileInputTests.peer, now: Self.start, into: &effects)
        }
        #expect(instance.healthScore > 0)
        let now = Self.start + .milliseconds(1)
        instance.receive(
            SWIMMessage(sender: NodeID(2), body: .pingRequest(sequence: 5, target: NodeID(10),
                                                               endpoint: try Endpoint(parsing: "127.0.0.1:7010"))),
            from: HostileInputTests.peer, now: now, into: &effects)
        let relay = try #require(instance.relays.values.first)
        #expect(relay.nackDeadline == now + SWIMConfiguration().relayTimeout)
        #expect(SWIMConfiguration().relayTimeout == .milliseconds(200))
    }

    /// Confirmation probes are stretched by this member's health score: one
    /// made after the score fell is due before the one made just before
    /// it, and must expire then, not wait behind it.
    @Test("a confirmation probe made after the health score fell expires at its own deadline")
    func confirmationAfterHealthFell() throws {
        var effects: [SWIMEffect] = []
        var instance = try Self.instanceKnowingSuspects(into: &effects)
        let suspects = Self.suspects
        instance.health = 4
        var due: [Instant] = []
        for (index, (suspect, _)) in suspects.enumerated() {
            if index == 1 { instance.health = 0 }
            let now = Self.start + .milliseconds(1 + 10 * index)
            instance.receive(
                SWIMMessage(sender: NodeID(2), body: .gossip, updates: [.suspect(suspect, incarnation: 1, by: NodeID(2))]),
                from: HostileInputTests.peer, now: now, into: &effects)
            let probe = try #require(instance.confirmationOrder.lazy.compactMap { instance.confirmations[$0] }
                .first { $0.target == suspect })
            due.append(probe.deadline)
        }
        #expect(due[1] < due[0])
        #expect(instance.nextDeadline <= due[1])
        // Ticked at each deadline the instance names, 11's probe expires
        // when due.
        var now = instance.nextDeadline
        while now < due[1] {
            instance.tick(now: now, into: &effects)
            now = instance.nextDeadline
        }
        instance.tick(now: due[1], into: &effects)
        #expect(!instance.confirmations.values.contains { $0.target == suspects[1].0 })
    }

    /// memberlist's timing: a 1 s period, a 500 ms probe timeout. The
    /// requester's ping-req leaves 500 ms into its period; a relay that
    /// waited a whole probe timeout would nack at the period's end, after
    /// it, and the requester would count the nack missing, against its own
    /// health, each time a member dies.
    @Test("on memberlist's timing, a relay's nack reaches the requester within its period")
    func nackWithinPeriod() throws {
        var configuration = SWIMConfiguration()
        configuration.protocolPeriod = .seconds(1)
        configuration.probeTimeout = .milliseconds(500)
        configuration.indirectProbeCount = 1
        let endpoints = [HostileInputTests.here, HostileInputTests.peer, try Endpoint(parsing: "127.0.0.1:7002")]
        // A (1) and B (2) run; C (3) is down and answers nothing.
        var instances = try (0..<2).map { index in
            try SWIMInstance(id: NodeID(UInt64(index + 1)), endpoint: endpoints[index], configuration: configuration,
                             seed: UInt64(index + 1), now: Self.start)
        }
        var effects: [SWIMEffect] = []
        for index in instances.indices {
            instances[index].join(seeds: [], now: Self.start, into: &effects)
            let others = (0..<3).filter { $0 != index }.map {
                SWIMUpdate.alive(Member(id: NodeID(UInt64($0 + 1)), endpoint: endpoints[$0], incarnation: 1, status: .alive))
            }
            instances[index].receive(SWIMMessage(sender: NodeID(9), body: .gossip, updates: others),
                                     from: try Endpoint(parsing: "127.0.0.1:7009"), now: Self.start, into: &effects)
        }
        // Every datagram between A and B takes 1 ms.
        var inFlight: [(at: Instant, to: Int, message: SWIMMessage, from: Endpoint)] = []
        var now = Self.start
        func collect(from index: Int) {
            for case .send(let message, let destination) in effects {
                guard let target = endpoints[0..<2].firstIndex(of: destination) else { continue }
                inFlight.append((now + .milliseconds(1), target, message, endpoints[index]))
            }
            effects.removeAll()
        }
        while instances[0].counters.failedProbes == 0 && now < Self.start + .seconds(60) {
            now = min(instances.map(\.nextDeadline).min()!, inFlight.map(\.at).min() ?? .distantFuture)
            for index in instances.indices {
                instances[index].tick(now: now, into: &effects)
                collect(from: index)
            }
            while let next = inFlight.firstIndex(where: { $0.at <= now }) {
                let datagram = inFlight.remove(at: next)
                instances[datagram.to].receive(datagram.message, from: datagram.from, now: now, into: &effects)
                collect(from: datagram.to)
            }
        }
        #expect(instances[0].counters.failedProbes == 1)
        #expect(instances[1].counters.nacksSent >= 1)
        // The failed probe counts once; its ping-req's nack came in time.
        #expect(instances[0].healthScore == 1)
    }
}
