import EventCore
import Foundation

/// `chorus demo`'s one-socket scenario: three machines on loopback UDP,
/// each a `ChorusNode` on one socket shared by SWIM, CASPaxos and Raft;
/// SWIM finds the machines, CASPaxos and Raft run on the members it found;
/// the Raft leader's machine stops, SWIM declares it dead (each node
/// reports it unavailable), and both consensus protocols go on writing on
/// the other two.
/// Passes if every running machine sees the stopped one dead, every key
/// holds its writer's last acknowledged value, the running replicas agree,
/// and no multiplexer dropped a datagram.
struct SharedSocketDemo {
    static let usage = """
        One-socket scenario: \(SharedSocketDemoCluster.machineCount) machines on 127.0.0.1, one event loop, each one UDP
        socket shared by a SWIM member, a CASPaxos node (acceptor and proposer,
        in-memory store) and a Raft replica of a key-value map (in-memory log):
        a ChorusNode. SWIM finds the machines; CASPaxos's acceptors and Raft's
        peers are the members it found. Each machine writes
        its own key through both, one write at a time, retrying each until it is
        acknowledged. After 2 s the Raft leader's machine stops abruptly; writing
        goes on for 3 s more (and until SWIM declared the machine dead
        everywhere, and each node reports it unavailable), then the keys are
        read back. Prints the timeline,
        then per machine what its socket received for each protocol, and per key
        the last acknowledged values and what CASPaxos and Raft hold.
        """

    /// Runs the scenario and prints the summary; returns whether it passed.
    func run() async -> Bool {
        do {
            return try await runScenario()
        } catch {
            print("FAILED: one socket: \(error)")
            return false
        }
    }

    private func runScenario() async throws -> Bool {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let cluster = try await loop.submit { LoopBound(try SharedSocketDemoCluster(loop: loop), on: loop) }
        let start = try await loop.submit { cluster.value.startedAt }
        print("""
            Chorus on one socket: \(SharedSocketDemoCluster.machineCount) machines on 127.0.0.1, each running SWIM, \
            CASPaxos and Raft on one UDP socket

            """)
        let timeline = DemoTimeline(start: start)
        func say(_ instant: Instant, _ text: String) { timeline.say(instant, text) }
        /// Polls every 20 ms, for at most `limit`, until `condition` holds,
        /// printing the new timeline events; returns whether it held.
        func follow(for limit: Duration, until condition: @escaping @Sendable () -> Bool = { false }) async throws -> Bool {
            try await timeline.follow(for: limit, every: .milliseconds(20)) { from in
                try await loop.submit { (Array(cluster.value.timeline[from...]), condition()) }
            }
        }
        func fail(_ reason: String) async throws -> Bool {
            say(try await loop.submit { loop.now }, "FAILED: \(reason)")
            try await loop.submit { cluster.value.close() }
            return false
        }

        guard try await follow(for: .seconds(10), until: { cluster.value.hasConverged }) else {
            return try await fail("SWIM did not find every machine within 10 s")
        }
        try await loop.submit {
            cluster.value.record("every machine's SWIM member sees all \(SharedSocketDemoCluster.machineCount) alive")
            try cluster.value.startConsensus()
        }
        guard try await follow(for: .seconds(10), until: { cluster.value.raftLeader != nil }) else {
            return try await fail("no Raft leader within 10 s")
        }
        try await loop.submit {
            cluster.value.record("Raft: machine \(cluster.value.raftLeader! + 1) leads")
            cluster.value.startWriting()
        }
        _ = try await follow(for: .seconds(2))
        try await loop.submit { cluster.value.stop(cluster.value.raftLeader ?? 0) }
        _ = try await follow(for: .seconds(10), until: { cluster.value.raftLeader != nil })
        try await loop.submit {
            if let leader = cluster.value.raftLeader { cluster.value.record("Raft: machine \(leader + 1) leads") }
        }
        _ = try await follow(for: .seconds(3))
        _ = try await follow(for: .seconds(10), until: { cluster.value.stopSeenDead })
        try await loop.submit {
            cluster.value.recordUnavailable()
            cluster.value.stopWriting()
        }
        guard try await follow(for: .seconds(10), until: { cluster.value.isSettled }) else {
            return try await fail("writes still unacknowledged 10 s after writing stopped")
        }
        try await loop.submit { cluster.value.readBackRegisters() }
        _ = try await follow(for: .seconds(5), until: {
            cluster.value.readBack.count == SharedSocketDemoCluster.machineCount && cluster.value.mapsAgree
        })
        let report = try await loop.submit { cluster.value.report() }
        try await loop.submit { cluster.value.close() }

        print()
        print(report.table)
        print(report.problems.isEmpty
            ? "\nPASS: one socket per machine carried SWIM, CASPaxos and Raft; SWIM saw the stop, both consensus "
                + "protocols went on without the machine, and every key holds its last acknowledged write"
            : "\nFAIL: " + report.problems.joined(separator: "; "))
        return report.problems.isEmpty
    }
}
