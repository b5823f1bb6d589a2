import EventCore
import Foundation

/// `chorus demo`'s reconfigure scenario: SWIM's view drives a Raft group's
/// membership through a `RaftMembershipPolicy`. Three machines on loopback
/// UDP start the group; two more start joining replicas and the leader
/// adds each as a learner, then promotes it; the leader's machine crashes
/// and the next leader removes it once SWIM has seen it dead for the
/// policy's grace; a follower's machine leaves SWIM and is removed at once.
/// A client writes throughout. Passes if the group ends with exactly the
/// running machines as voters, and every acknowledged write is in every
/// running replica's map.
struct ReconfigureDemo {
    static let usage = """
        Reconfigure scenario: \(ReconfigureDemoCluster.machineCount) machines on 127.0.0.1, one event loop, each a
        ChorusNode (SWIM and a replica of a Raft key-value map on one UDP socket)
        whose Raft group runs with a membership policy (a failed member removed
        after 2 s dead, a learner promoted after 1 s caught up, at least 3
        voters). Machines 1-3 start the group; machines 4 and 5 join SWIM, start
        joining replicas and are added and promoted by the leader; the leader's
        machine crashes and is removed; a follower's machine leaves SWIM and is
        removed. A client writes one key at a time throughout. Prints the
        timeline, then per machine its SWIM view, its Raft role and the voters
        it knows.
        """

    /// Runs the scenario and prints the summary; returns whether it passed.
    func run() async -> Bool {
        do {
            return try await runScenario()
        } catch {
            print("FAILED: reconfigure: \(error)")
            return false
        }
    }

    private func runScenario() async throws -> Bool {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let cluster = try await loop.submit { LoopBound(try ReconfigureDemoCluster(loop: loop), on: loop) }
        let start = try await loop.submit { cluster.value.startedAt }
        print("""
            SWIM drives Raft's membership: \(ReconfigureDemoCluster.machineCount) machines on 127.0.0.1, each SWIM and \
            a Raft replica on one UDP socket

            """)
        let timeline = DemoTimeline(start: start)
        /// Polls every 20 ms, for at most `limit`, until `condition` holds,
        /// noting membership changes and printing the new timeline events;
        /// returns whether it held.
        func follow(for limit: Duration, until condition: @escaping @Sendable () -> Bool = { false }) async throws -> Bool {
            try await timeline.follow(for: limit, every: .milliseconds(20)) { from in
                try await loop.submit {
                    cluster.value.noteMembership()
                    return (Array(cluster.value.timeline[from...]), condition())
                }
            }
        }
        func fail(_ reason: String) async throws -> Bool {
            timeline.say(try await loop.submit { loop.now }, "FAILED: \(reason)")
            try await loop.submit { cluster.value.close() }
            return false
        }
        let first = ReconfigureDemoCluster.firstMachines

        guard try await follow(for: .seconds(10), until: { (0..<first).allSatisfy { cluster.value.sees($0, alive: first) } })
        else { return try await fail("SWIM did not find the first machines within 10 s") }
        try await loop.submit {
            cluster.value.record("machines 1-\(first): every SWIM member sees all \(first) alive")
            try cluster.value.startGroup()
        }
        guard try await follow(for: .seconds(10), until: { cluster.value.leader != nil }) else {
            return try await fail("no Raft leader within 10 s")
        }
        try await loop.submit {
            cluster.value.recordLeader()
            cluster.value.startWriting()
        }
        _ = try await follow(for: .seconds(1))

        // Two machines join SWIM, then start joining replicas.
        let all = ReconfigureDemoCluster.machineCount
        try await loop.submit {
            cluster.value.record("machines \(first + 1) and \(first + 2) start, joining SWIM through machine 1")
            for index in first..<all { cluster.value.startMember(index) }
        }
        guard try await follow(for: .seconds(10), until: { (first..<all).allSatisfy { cluster.value.sees($0, alive: all) } })
        else { return try await fail("SWIM did not find the new machines within 10 s") }
        try await loop.submit { for index in first..<all { try cluster.value.join(index) } }
        guard try await follow(for: .seconds(20), until: { cluster.value.votersAre(Array(0..<all)) }) else {
            return try await fail("the new machines were not voters within 20 s")
        }

        // The leader's machine crashes.
        let crashed = try await loop.submit {
            guard let leader = cluster.value.leader else { return false }
            cluster.value.crash(leader)
            return true
        }
        guard crashed else { return try await fail("no leader to crash") }
        if try await follow(for: .seconds(10), until: { cluster.value.leader != nil }) {
            try await loop.submit { cluster.value.recordLeader() }
        }
        guard try await follow(for: .seconds(20), until: { cluster.value.votersAre(cluster.value.running) }) else {
            return try await fail("the crashed machine was not removed within 20 s")
        }

        // A follower's machine leaves SWIM.
        let follower = try await loop.submit {
            let leaving = cluster.value.running.first { $0 != cluster.value.leader }
            if let leaving { cluster.value.leave(leaving) }
            return leaving
        }
        guard let leaving = follower else { return try await fail("no follower to leave") }
        guard try await follow(for: .seconds(10), until: {
            cluster.value.votersAre(cluster.value.running.filter { $0 != leaving })
        }) else {
            return try await fail("the machine that left was not removed within 10 s")
        }
        try await loop.submit {
            cluster.value.retire(leaving)
            cluster.value.record("machine \(leaving + 1) stops")
        }
        _ = try await follow(for: .seconds(1))
        try await loop.submit { cluster.value.stopWriting() }
        guard try await follow(for: .seconds(10), until: { !cluster.value.isWriteInFlight && cluster.value.isCaughtUp })
        else { return try await fail("the replicas did not catch up within 10 s") }
        let report = try await loop.submit { cluster.value.report() }
        try await loop.submit { cluster.value.close() }

        print()
        print(report.table)
        print(report.problems.isEmpty
            ? "\nPASS: the group took in the machines that joined, removed the crashed and the departed ones, and "
                + "every running replica holds every acknowledged write"
            : "\nFAIL: " + report.problems.joined(separator: "; "))
        return report.problems.isEmpty
    }
}
