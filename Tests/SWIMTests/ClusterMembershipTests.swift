import EventCore
import SWIM
import Simulation
import Testing
import TestSupport

/// SWIM in the simulator: joins converge, failures are detected by every
/// member, Lifeguard keeps false positives away, partitions heal, and
/// members leave and rejoin (at up to 300 members; the same scenarios at
/// 1,000 are in `LargeClusterMembershipTests`).
@Suite("SWIM membership (simulator)")
struct ClusterMembershipTests {
    @Test("64 members join through one seed and all know all", arguments: [UInt64(1), 2, 3])
    func joinConvergence64(seed: UInt64) throws {
        let cluster = try SWIMCluster(count: 64, seed: seed)
        cluster.network.run(until: cluster.lastJoinAt)
        let converged = cluster.run(until: { cluster.isConverged(expecting: 64) }, limit: .seconds(10))
        let at = try #require(converged, "membership did not converge within 10 s")
        // Target: within 2 s of the last join (1 ms links).
        #expect(at - cluster.lastJoinAt <= .seconds(2))
        #expect(cluster.falsePositives().isEmpty)
    }

    @Test("a crashed member is declared dead by every member", arguments: [UInt64(11), 12, 13, 14])
    func crashDetection64(seed: UInt64) throws {
        let cluster = try SWIMCluster(count: 64, seed: seed)
        _ = try #require(cluster.run(until: { cluster.isConverged(expecting: 64) }, limit: .seconds(10)))
        cluster.network.run(for: .seconds(5))
        let crashedAt = cluster.network.now
        cluster.crash(17)
        let everyone = cluster.run(until: { cluster.everyoneSees(17, as: .dead) }, limit: .seconds(20))
        let at = try #require(everyone, "not every member declared the crashed one dead")
        // Target: known dead by all within 4 s.
        #expect(at - crashedAt <= .seconds(4))
        #expect(cluster.falsePositives(excluding: [17]).isEmpty)
    }

    /// A push-pull lists the sender and every member it keeps: one more
    /// than maximumMembers when its table is full, which its peers must
    /// still decode.
    @Test("at maximumMembers, push-pulls (the sender itself and a full table) decode")
    func fullTablePushPull() throws {
        var configuration = SWIMConfiguration()
        configuration.maximumMembers = 8
        let cluster = try SWIMCluster(count: 9, seed: 5, configuration: configuration)
        _ = try #require(cluster.run(until: { cluster.isConverged(expecting: 9) }, limit: .seconds(10)))
        // Several push-pull rounds (one every 30 s per member by default).
        cluster.network.run(for: .seconds(120))
        let malformed = cluster.liveIndices.map { cluster.members[$0]!.counters.malformedFramesDropped }
        #expect(malformed.allSatisfy { $0 == 0 }, "malformed frames dropped per member: \(malformed)")
        #expect(cluster.isConverged(expecting: 9))
    }

    @Test("a join storm that overflows the membership queues still converges (anti-entropy repairs what was dropped)")
    func boundedQueuesConverge() throws {
        var configuration = SWIMConfiguration()
        configuration.membershipQueueCapacity = 64
        let cluster = try SWIMCluster(count: 300, seed: 23, configuration: configuration)
        cluster.network.run(until: cluster.lastJoinAt)
        _ = try #require(cluster.run(until: { cluster.isConverged(expecting: 300) }, step: .milliseconds(100),
                                     limit: .seconds(120)), "300 members did not converge within 120 s")
        #expect(cluster.total { $0.counters.membershipUpdatesDropped } > 0)
        #expect(cluster.falsePositives().isEmpty)
    }

    @Test("no false positive in 10 minutes with 2% loss and one slow member (Lifeguard)")
    func noFalsePositivesUnderLossAndSlowMember() throws {
        try Self.expectNoFalsePositivesUnderLossAndSlowMember(count: 64)
    }

    /// `count` members, 2% loss on every link and member 5 slow: everything
    /// it sends or receives takes 150–400 ms (an overloaded process), beyond
    /// the 250 ms probe timeout. After 10 simulated minutes no live member
    /// was declared dead (no false positive), all know all (alive or
    /// suspected), and the slow member noticed its own trouble (Lifeguard).
    static func expectNoFalsePositivesUnderLossAndSlowMember(count: Int) throws {
        let lossy = LinkConditions(delay: .uniform(minimum: .microseconds(500), maximum: .milliseconds(2)),
                                   lossProbability: 0.02)
        let cluster = try SWIMCluster(
            count: count, seed: 99, link: lossy, joinSpread: count > 100 ? .seconds(5) : .seconds(1))
        let slow = LinkConditions(delay: .uniform(minimum: .milliseconds(150), maximum: .milliseconds(400)),
                                  lossProbability: 0.02)
        for other in cluster.nodes where other !== cluster.nodes[5] {
            try cluster.network.setConditions(slow, from: cluster.nodes[5], to: other)
            try cluster.network.setConditions(slow, from: other, to: cluster.nodes[5])
        }
        cluster.network.run(for: .seconds(600))
        let falsePositives = cluster.falsePositives()
        #expect(falsePositives.isEmpty, "\(falsePositives.count) false positives, first: \(falsePositives.first.map { "\($0.event)" } ?? "")")
        // Every member knows every other, alive or suspected: the slow
        // member, whose answers come after the probe timeout, is suspected
        // by some at any instant, and refutes.
        #expect(cluster.knowsAll(expecting: count))
        let slowMember = try #require(cluster.members[5])
        #expect(slowMember.counters.refutations > 0 || slowMember.counters.healthScore > 0)
    }

    @Test("a healed partition reunites the membership")
    func partitionHeals() throws {
        let cluster = try SWIMCluster(count: 64, seed: 5)
        _ = try #require(cluster.run(until: { cluster.isConverged(expecting: 64) }, limit: .seconds(10)))
        let sideA = Array(cluster.nodes[..<32])
        let sideB = Array(cluster.nodes[32...])
        cluster.network.partition(sideA, sideB)
        // Each side declares the other dead.
        let split = cluster.run(until: {
            cluster.status(of: 40, seenBy: 0) == .dead && cluster.status(of: 0, seenBy: 40) == .dead
        }, limit: .seconds(30))
        #expect(split != nil)
        cluster.network.heal()
        let reunited = cluster.run(until: { cluster.isConverged(expecting: 64) }, step: .milliseconds(100),
                                   limit: .seconds(60))
        #expect(reunited != nil, "the two sides did not merge again")
    }

    /// Each side forgot the other's members after deadMemberRetention; no
    /// member sent to the other side again (reconnection pinged only
    /// members held dead), and the cluster stayed two for good.
    @Test("a partition that outlasts deadMemberRetention heals: forgotten dead members are still pinged")
    func longPartitionHeals() throws {
        var configuration = SWIMConfiguration()
        configuration.deadMemberRetention = .seconds(5)
        let cluster = try SWIMCluster(count: 16, seed: 6, configuration: configuration)
        _ = try #require(cluster.run(until: { cluster.isConverged(expecting: 16) }, limit: .seconds(10)))
        cluster.network.partition(Array(cluster.nodes[..<8]), Array(cluster.nodes[8...]))
        let forgotten = cluster.run(until: {
            cluster.members[0]?.member(cluster.id(12)) == nil && cluster.members[12]?.member(cluster.id(0)) == nil
        }, limit: .seconds(60))
        #expect(forgotten != nil, "the sides did not forget each other")
        cluster.network.run(for: .seconds(10))
        cluster.network.heal()
        let reunited = cluster.run(until: { cluster.isConverged(expecting: 16) }, step: .milliseconds(100),
                                   limit: .seconds(60))
        #expect(reunited != nil, "the two sides did not merge again")
    }

    @Test("a member that crashes and restarts with its ID rejoins with a higher incarnation")
    func rejoinAfterCrash() throws {
        let cluster = try SWIMCluster(count: 16, seed: 8)
        _ = try #require(cluster.run(until: { cluster.isConverged(expecting: 16) }, limit: .seconds(10)))
        cluster.crash(9)
        _ = try #require(cluster.run(until: { cluster.everyoneSees(9, as: .dead) }, limit: .seconds(20)))
        let deadIncarnation = try #require(cluster.members[0]?.member(cluster.id(9))?.incarnation)
        let restartedAt = cluster.network.now
        cluster.restart(9)
        _ = try #require(cluster.run(until: { cluster.isConverged(expecting: 16) }, limit: .seconds(10)))
        let incarnation = try #require(cluster.members[0]?.member(cluster.id(9))?.incarnation)
        #expect(incarnation > deadIncarnation)
        #expect(cluster.members[9]!.localMember.incarnation == incarnation)
        #expect(cluster.observations(.joined, about: 9, since: restartedAt).count >= 15)
    }

    @Test("a member restarted at once with its ID and other metadata, before anyone suspects it, outbids its earlier run's record: every member ends with the new metadata")
    func quickRestartWithOtherMetadata() throws {
        let cluster = try SWIMCluster(count: 16, seed: 9)
        _ = try #require(cluster.run(until: { cluster.isConverged(expecting: 16) }, limit: .seconds(10)))
        cluster.crash(9)
        let restartedAt = cluster.network.now
        cluster.restart(9, metadata: Array("restarted".utf8))
        let everyone = cluster.run(until: {
            cluster.othersSee(9) { $0.metadata == Array("restarted".utf8) }
        }, limit: .seconds(10))
        #expect(everyone != nil, "the earlier run's record stood")
        #expect(cluster.members[9]!.localMember.incarnation >= 1, "it refuted its earlier run")
        #expect(cluster.observations(.metadataChanged, about: 9, since: restartedAt).count == 15)
        #expect(cluster.observations(.dead, about: 9).isEmpty)
    }

    @Test("a member restarted at once with its ID at another endpoint is reported moved by every member, and reached there")
    func quickRestartElsewhere() throws {
        let cluster = try SWIMCluster(count: 16, seed: 10)
        _ = try #require(cluster.run(until: { cluster.isConverged(expecting: 16) }, limit: .seconds(10)))
        cluster.crash(9)
        let restartedAt = cluster.network.now
        cluster.restartElsewhere(9)
        let endpoint = cluster.nodes[9].localEndpoint
        let everyone = cluster.run(until: { cluster.othersSee(9) { $0.endpoint == endpoint } }, limit: .seconds(10))
        #expect(everyone != nil)
        let moved = cluster.observations(.endpointChanged, about: 9, since: restartedAt)
        #expect(moved.count == 15)
        #expect(moved.allSatisfy { $0.event.member.endpoint == endpoint })
        #expect(cluster.observations(.joined, about: 9, since: restartedAt).isEmpty)
        cluster.network.run(for: .seconds(5))
        #expect(cluster.isConverged(expecting: 16), "probed at its new endpoint, it stays alive")
    }

    @Test("a member restarted with other metadata while the others suspect its earlier run: each reports alive, then metadataChanged")
    func suspectedRestartWithOtherMetadata() throws {
        let cluster = try SWIMCluster(count: 8, seed: 12)
        _ = try #require(cluster.run(until: { cluster.isConverged(expecting: 8) }, limit: .seconds(10)))
        cluster.crash(5)
        _ = try #require(cluster.run(until: { cluster.everyoneSees(5, as: .suspect) }, step: .milliseconds(1), limit: .seconds(10)))
        let restartedAt = cluster.network.now
        cluster.restart(5, metadata: Array("restarted".utf8))
        _ = try #require(cluster.run(until: {
            cluster.othersSee(5) { $0.metadata == Array("restarted".utf8) }
        }, limit: .seconds(10)))
        #expect(cluster.observations(.alive, about: 5, since: restartedAt).count == 7)
        #expect(cluster.observations(.metadataChanged, about: 5, since: restartedAt).count == 7)
    }

    @Test("a member restarted with a smaller maximumMetadataSize than its earlier run's metadata still outbids that run's record")
    func restartWithSmallerMetadataLimit() throws {
        let cluster = try SWIMCluster(count: 6, seed: 14)
        _ = try #require(cluster.run(until: { cluster.isConverged(expecting: 6) }, limit: .seconds(10)))
        let old = [UInt8](repeating: 7, count: 100)
        try cluster.members[4]!.setMetadata(old)
        _ = try #require(cluster.run(until: {
            cluster.liveIndices.allSatisfy { cluster.members[$0]?.member(cluster.id(4))?.metadata == old }
        }, limit: .seconds(10)))
        cluster.crash(4)
        cluster.network.restart(cluster.nodes[4])
        var configuration = SWIMConfiguration()
        configuration.maximumMetadataSize = 64
        let restarted = try SWIMNode(
            id: cluster.id(4), transport: cluster.nodes[4], scheduler: cluster.nodes[4], metadata: Array("new".utf8),
            configuration: configuration, seed: 99)
        restarted.start(seeds: [cluster.nodes[0].localEndpoint])
        _ = try #require(cluster.run(until: {
            (0..<4).allSatisfy { cluster.members[$0]?.member(cluster.id(4))?.metadata == Array("new".utf8) }
        }, limit: .seconds(20)))
        #expect(restarted.localMember.incarnation > 1)
    }

    @Test("two live processes with one ID refute each other; each counts the conflict and warns, naming the other's endpoint, at most once a minute")
    func duplicateID() throws {
        let cluster = try SWIMCluster(count: 5, seed: 31)
        _ = try #require(cluster.run(until: { cluster.isConverged(expecting: 5) }, limit: .seconds(10)))
        let twinHost = cluster.network.addNode()
        let warnings = RecordedLogLines(level: .warning)
        let twin = try SWIMNode(id: cluster.id(2), transport: twinHost, scheduler: twinHost, seed: 77, logger: warnings)
        twin.start(seeds: [cluster.nodes[0].localEndpoint])
        cluster.network.run(for: .seconds(180))
        let original = try #require(cluster.members[2])
        #expect(original.counters.idConflicts >= 2 && twin.counters.idConflicts >= 2,
                "\(original.counters.idConflicts), \(twin.counters.idConflicts)")
        #expect((1...3).contains(warnings.all.count), "\(warnings.all)")
        #expect(warnings.all.allSatisfy { $0.contains("claimed alive at \(cluster.nodes[2].localEndpoint)") }, "\(warnings.all)")
    }

    @Test("a graceful leave is seen as left by everyone, never as a failure")
    func gracefulLeave() throws {
        let cluster = try SWIMCluster(count: 64, seed: 4)
        _ = try #require(cluster.run(until: { cluster.isConverged(expecting: 64) }, limit: .seconds(10)))
        let leftAt = cluster.network.now
        var departed = false
        cluster.members[30]!.leave { departed = true }
        let everyone = cluster.run(until: {
            cluster.nodes.indices.filter { $0 != 30 }.allSatisfy { cluster.status(of: 30, seenBy: $0) == .left }
        }, step: .milliseconds(5), limit: .seconds(5))
        let at = try #require(everyone)
        #expect(at - leftAt <= .seconds(1))
        cluster.network.run(for: .seconds(10))
        #expect(departed)
        #expect(cluster.observations(.dead, about: 30).isEmpty)
        #expect(cluster.observations(.suspect, about: 30).isEmpty)
    }

    @Test("metadata changes and 256-byte broadcasts reach every member once")
    func metadataAndBroadcasts() throws {
        let cluster = try SWIMCluster(count: 64, seed: 6)
        _ = try #require(cluster.run(until: { cluster.isConverged(expecting: 64) }, limit: .seconds(10)))
        try cluster.members[3]!.setMetadata(Array("role=db".utf8))
        for number in 0..<20 {
            let payload = [UInt8](repeating: UInt8(number), count: 256)
            try cluster.members[number * 3]!.broadcast(payload)
        }
        cluster.network.run(for: .seconds(3))
        for index in cluster.nodes.indices where index != 3 {
            #expect(cluster.members[index]!.member(cluster.id(3))?.metadata == Array("role=db".utf8))
        }
        #expect(cluster.observations(.metadataChanged, about: 3).count == 63)
        for index in cluster.nodes.indices {
            let received = cluster.broadcastsDelivered[index]
            let own = (0..<20).filter { $0 * 3 == index }.count
            #expect(received.count == 20 - own, "member \(index) got \(received.count) broadcasts")
            #expect(Set(received.map { [$0.origin.rawValue, $0.sequence] }).count == received.count)
        }
    }

    @Test("the same seed replays the same run")
    func determinism() throws {
        func run() throws -> [String] {
            let cluster = try SWIMCluster(count: 32, seed: 42, link: LinkConditions(lossProbability: 0.05))
            cluster.network.run(for: .seconds(5))
            cluster.crash(7)
            cluster.network.run(for: .seconds(10))
            return cluster.observations.map { "\($0.observer) \($0.event.at) \($0.event)" }
        }
        #expect(try run() == run())
    }
}

@Suite("SWIM cost (simulator)")
struct SteadyStateCostTests {
    @Test("steady state: at most 3 packets and 300 bytes per member per second at 64 members")
    func steadyStateBandwidth() throws {
        let cluster = try SWIMCluster(count: 64, seed: 31)
        _ = try #require(cluster.run(until: { cluster.isConverged(expecting: 64) }, limit: .seconds(10)))
        cluster.network.run(for: .seconds(10))  // let the join updates die out
        let packets = cluster.total { $0.packetsSent }
        let bytes = cluster.total { $0.bytesSent }
        cluster.network.run(for: .seconds(60))
        let packetRate = Double(cluster.total { $0.packetsSent } - packets) / 64 / 60
        let byteRate = Double(cluster.total { $0.bytesSent } - bytes) / 64 / 60
        #expect(packetRate <= 3)
        #expect(byteRate <= 300)
    }
}
