import EventCore
import Foundation
import Raft

/// `chorus demo`'s Raft scenario: a group of nodes on loopback UDP in this
/// one process elects a leader and replicates a stream of key-value puts
/// from concurrent clients; halfway through, the leader is stopped
/// abruptly, the others elect a new one and writing goes on; once it ends,
/// the stopped node restarts from its directory and catches up. The
/// timeline and a progress line a second print as it happens, and a table
/// sums it up. Passes only if every node ends with the same map, holding
/// every acknowledged put.
struct RaftDemo {
    static let usage = """
        Raft scenario: --raft-nodes nodes on 127.0.0.1, one event loop, each with a
        FileRaftStorage (fsync on) in a temporary directory, the default
        configuration (election timeout 150 ms randomized to 300 ms, heartbeats
        every 50 ms, proposals forwarded to the leader). Once a leader is elected
        (its no-op entry committed), \(clientCount) clients write puts of keys of their own,
        one put in flight each, to the nodes in turn, retrying a refused put at
        the leader the node hinted at (or at the next node). Halfway through the write stream the leader is stopped
        abruptly and its socket closed; the others elect a new one. Once writing
        ends, the stopped node restarts from its directory (its FileRaftStorage
        opened as existing) on its old port and catches up; every client's last
        put is read back by ReadIndex on every node. Then a new node joins (empty
        log, joining): the leader adds it as a learner, promotes it once it has
        applied the log, and removes the restarted node, which stops. Prints the
        timeline and a progress line a second, then commits/s and commit latency
        percentiles (put to acknowledgement, retries included) before the stop
        and after the failover, the election time (start to the first leader's
        no-op committed), the failover time (stop to the first put the new leader
        acknowledged), the catch-up time (restart to the whole log applied), the
        proposals that failed by RaftError case (each was retried), and every
        node's applied index, map and fsyncs. Passes if every running node holds
        the same map with every acknowledged put in it (the removed one holds
        nothing the others lack), every read saw its put, and the members are
        the running nodes.

        Raft options (each also read from CHORUS_<NAME>):
          --raft-nodes N             nodes (default 3, 3 ... 9)
          --raft-duration SECONDS    the write stream; the leader stops halfway
                                     (default 10, 4 ... 600)
        """
    static let valuedOptions: Set = ["raft-nodes", "raft-duration"]
    /// Clients writing at once, one put in flight each.
    static let clientCount = 48

    let nodeCount: Int
    let duration: Int

    init(options: CommandOptions) throws(UsageError) {
        nodeCount = try options.integer("raft-nodes", in: 3...9, default: 3)
        duration = try options.integer("raft-duration", in: 4...600, default: 10)
    }

    /// Runs the scenario and prints the summary; returns whether the
    /// running nodes' maps agree and hold every acknowledged put.
    func run() async -> Bool {
        do {
            return try await runScenario()
        } catch {
            print("FAILED: raft: \(error)")
            return false
        }
    }

    private func runScenario() async throws -> Bool {
        let directory = DemoScratchDirectory.url(for: "raft").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let (nodeCount, clientCount) = (self.nodeCount, Self.clientCount)
        let cluster = try await loop.submit {
            LoopBound(try RaftDemoCluster(nodeCount: nodeCount, clientCount: clientCount, directory: directory,
                                          loop: loop), on: loop)
        }
        let start = try await loop.submit { cluster.value.startedAt }
        let configuration = RaftConfiguration()
        print("""
            Chorus Raft demo: \(nodeCount) nodes on 127.0.0.1 (FileRaftStorage with fsync in \(directory), \
            election timeout \(DemoReport.format(configuration.electionTimeout)), \
            heartbeats every \(DemoReport.format(configuration.heartbeatInterval))), \(clientCount) clients writing puts

            """)
        let timeline = DemoTimeline(start: start)
        func say(_ instant: Instant, _ text: String) { timeline.say(instant, text) }
        var lastProgress: (at: Instant, commits: Int)?
        /// Polls the cluster every 50 ms, for at most `limit`, until
        /// `condition` holds: prints the new timeline events and, while the
        /// clients write, a progress line a second. Returns whether
        /// `condition` held.
        func follow(for limit: Duration, until condition: @escaping @Sendable () -> Bool = { false }) async throws -> Bool {
            var state = (commits: 0, leader: "", now: Instant.zero)
            return try await timeline.follow(for: limit, every: .milliseconds(50)) { from in
                let (events, commits, leader, now, held) = try await loop.submit {
                    let value = cluster.value
                    return (Array(value.timeline[from...]), value.commits, value.leaderDescription, loop.now, condition())
                }
                state = (commits, leader, now)
                return (events, held)
            } afterPoll: {
                guard let last = lastProgress, state.now - last.at >= .seconds(1) else { return }
                let rate = Double(state.commits - last.commits) / (Double((state.now - last.at).nanoseconds) / 1e9)
                say(state.now, String(format: "commits %7d  (%6.0f/s)  ", state.commits, rate) + state.leader)
                lastProgress = (state.now, state.commits)
            }
        }

        guard try await follow(for: .seconds(10), until: { cluster.value.electedAt != nil }) else {
            say(try await loop.submit { loop.now }, "FAILED: no leader within 10 s")
            try await loop.submit { cluster.value.close() }
            return false
        }
        lastProgress = (try await loop.submit { cluster.value.startWriting() }, 0)
        let half = Duration.milliseconds(duration * 500)
        _ = try await follow(for: half)
        _ = try await follow(for: .seconds(5), until: { cluster.value.leader != nil })
        try await loop.submit { cluster.value.stopLeader() }
        _ = try await follow(for: .seconds(duration) - half)
        try await loop.submit { cluster.value.stopWriting() }
        lastProgress = nil
        _ = try await follow(for: .seconds(10), until: { cluster.value.isSettled })
        try await loop.submit { try cluster.value.restartStopped() }
        _ = try await follow(for: .seconds(10), until: { cluster.value.caughtUpAt != nil })
        try await loop.submit { cluster.value.startReadBack() }
        _ = try await follow(for: .seconds(10), until: { cluster.value.isReadBackDone })
        try await loop.submit { try cluster.value.startReplacement() }
        _ = try await follow(for: .seconds(10), until: { cluster.value.isReplacementDone })
        let report = try await loop.submit { cluster.value.report() }
        try await loop.submit { cluster.value.close() }

        print()
        print(report.table)
        let problems = report.problems
        print(problems.isEmpty
            ? "\nPASS: a new leader took over; the stopped node restarted from its files and caught up; "
                + "every node holds the same map, with every acknowledged put, and reads it back by ReadIndex; "
                + "a new node joined as a learner, was promoted, and replaced the restarted one"
            : "\nFAIL: " + problems.joined(separator: "; "))
        return problems.isEmpty
    }
}
