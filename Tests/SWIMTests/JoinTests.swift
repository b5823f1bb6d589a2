import EventCore
import SWIM
import Simulation
import Testing
import TestSupport

/// `start(seeds:)` as a user meets it: joined once a seed answers; a seed
/// that never does (a mistyped address, nothing running there) is tried
/// again with backoff, and warned about.
@Suite("SWIM: joining through seeds")
struct JoinTests {
    @Test("a member whose seed answers is joined; one whose seed is silent is not, and warns 5, 10, 20 s ... after its start until a seed answers")
    func joinFeedback() throws {
        let network = SimulatedNetwork(seed: 21)
        let seedHost = network.addNode()
        let seed = try SWIMNode(id: NodeID(1), transport: seedHost, scheduler: seedHost, seed: 1)
        seed.start()
        #expect(seed.isJoined, "a member with no seed starts the cluster")

        let joinerHost = network.addNode()
        let warnings = RecordedLogLines(level: .warning)
        let joiner = try SWIMNode(id: NodeID(2), transport: joinerHost, scheduler: joinerHost, seed: 2, logger: warnings)
        joiner.start(seeds: [seedHost.localEndpoint])
        network.run(for: .seconds(1))
        #expect(joiner.isJoined)

        // A member whose seed is not up yet.
        let lateHost = network.addNode()
        let loneHost = network.addNode()
        let lone = try SWIMNode(id: NodeID(3), transport: loneHost, scheduler: loneHost, seed: 3, logger: warnings)
        let started = network.now
        lone.start(seeds: [lateHost.localEndpoint])
        network.run(for: .milliseconds(4_900))
        #expect(!lone.isJoined && warnings.all.isEmpty)
        network.run(for: .milliseconds(200))
        #expect(warnings.all.count == 1)
        #expect(warnings.all.first?.contains("no seed has answered in 5.0 seconds (\(lateHost.localEndpoint))") == true,
                "\(warnings.all)")
        network.run(until: started + .seconds(15) + .milliseconds(100))
        #expect(warnings.all.count == 2, "at 5 s and 10 s: \(warnings.all)")
        #expect(warnings.all.last?.contains("in 10.0 seconds") == true, "\(warnings.all)")

        // The seed comes up: the member joins at its next try (its
        // backoff has reached 16 s; the warning at 20 s comes first), and
        // warns no more (none at 40 s).
        let late = try SWIMNode(id: NodeID(4), transport: lateHost, scheduler: lateHost, seed: 4)
        late.start()
        network.run(for: .seconds(30))
        #expect(lone.isJoined)
        #expect(lone.memberCount(.alive) == 2)
        #expect(warnings.all.count == 3 && warnings.all.last?.contains("in 20.0 seconds") == true, "\(warnings.all)")
        #expect(joiner.isJoined && seed.memberCount(.alive) == 2)
    }

    @Test("the warnings' interval stops doubling at an hour: 12 in 3 hours, never two at one instant")
    func joinWarningCap() throws {
        let network = SimulatedNetwork(seed: 5)
        let silent = network.addNode()
        let host = network.addNode()
        let warnings = RecordedLogLines(level: .warning)
        let lone = try SWIMNode(id: NodeID(3), transport: host, scheduler: host, seed: 3, logger: warnings)
        lone.start(seeds: [silent.localEndpoint])
        var last = 0
        var times: [Duration] = []
        let started = network.now
        while network.now < started + .seconds(3 * 3_600) && times.count < 20 {
            network.run(for: .seconds(1))
            if warnings.all.count > last {
                times += Array(repeating: network.now - started, count: warnings.all.count - last)
                last = warnings.all.count
            }
        }
        let expected: [Int] = [5, 10, 20, 40, 80, 160, 320, 640, 1_280, 2_560, 5_120, 8_720]
        #expect(times.map { Int($0.components.seconds) } == expected, "\(times)")
    }
}
