import CASPaxos
import EventCore
import Foundation

/// `chorus demo`'s CASPaxos scenario: three acceptors with file stores and
/// several proposers on loopback UDP in this one process, clients
/// incrementing a few shared counters, one acceptor crashing and coming
/// back in each phase; first without the one-round-trip optimization, then
/// with it. Ends with a table, and passes only if every counter holds
/// exactly the increments that succeeded.
struct CASPaxosDemo {
    static let usage = """
        CASPaxos scenario: 3 acceptors (file stores in a temporary directory,
        fsync before every answer) and --proposers proposers on 127.0.0.1, each
        with --clients clients incrementing --keys shared counters as fast as they
        can. The run has two phases of equal length, the first without the
        one-round-trip optimization and the second with it; in each, acceptor 2
        crashes a third of the way in and restarts from its file at two thirds. A
        client retries an increment that ended indeterminate (the counter records
        each client's last increment, so a retry never counts twice). Ends with
        ops/s, latency percentiles, conflicts and retries, messages and round
        trips per increment, the share of the increments made through the
        busiest proposer (on hot keys one proposer can starve the others),
        and the final counters, which must equal the increments that
        succeeded.

        CASPaxos options (each also read from CHORUS_<NAME>):
          --proposers N                proposers (default 4, 1 ... 32)
          --clients N                  clients per proposer (default 2, 1 ... 64;
                                       proposers × clients at most 1,023)
          --keys N                     counters (default 3, 1 ... 64)
          --caspaxos-duration SECONDS  both phases together (default 10, 4 ... 600)
        """
    static let valuedOptions: Set = ["proposers", "clients", "keys", "caspaxos-duration"]

    let proposers: Int
    let clientsPerProposer: Int
    let keys: Int
    let duration: Int

    init(options: CommandOptions) throws(UsageError) {
        proposers = try options.integer("proposers", in: 1...32, default: 4)
        clientsPerProposer = try options.integer("clients", in: 1...64, default: 2)
        // A counter holds a sequence number per client (DemoCounter), in a
        // value of at most the proposers' default maximumValueSize.
        let valueSize = CASPaxosConfiguration().maximumValueSize
        let largestClientCount = valueSize / 8 - 1
        guard proposers * clientsPerProposer <= largestClientCount else {
            throw UsageError(
                description: "--proposers × --clients must be at most \(largestClientCount): each counter holds a "
                    + "sequence number per client, in a value of at most \(valueSize) bytes")
        }
        keys = try options.integer("keys", in: 1...64, default: 3)
        duration = try options.integer("caspaxos-duration", in: 4...600, default: 10)
    }

    /// Runs both phases and prints the summary; returns whether every
    /// counter equals its successful increments.
    func run() async -> Bool {
        print("""
            Chorus CASPaxos demo: 3 acceptors (file stores, fsync on) and \(proposers) proposers on 127.0.0.1, \
            \(proposers * clientsPerProposer) clients incrementing \(keys) counters

            """)
        let directory = DemoScratchDirectory.url(for: "caspaxos")
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            return try await run(in: directory.path)
        } catch {
            print("FAILED: \(error)")
            return false
        }
    }

    private func run(in directory: String) async throws -> Bool {
        var loops: [EventLoop] = []
        defer { for loop in loops { loop.shutdown() } }
        for _ in 0..<4 {
            let loop = try EventLoop()
            try loop.start()
            loops.append(loop)
        }
        let proposerLoop = loops[0]
        var acceptors: [LoopBound<CASPaxosDemoAcceptor>] = []
        var endpoints: [Endpoint] = []
        for (index, loop) in loops.dropFirst().enumerated() {
            let (acceptor, endpoint) = try await loop.submit {
                let acceptor = try CASPaxosDemoAcceptor(index: index, directory: directory, loop: loop)
                return (LoopBound(acceptor, on: loop), acceptor.endpoint)
            }
            acceptors.append(acceptor)
            endpoints.append(endpoint)
        }
        let (proposers, clientsPerProposer, keys, acceptorEndpoints) = (
            self.proposers, self.clientsPerProposer, self.keys, endpoints
        )
        let cluster = try await proposerLoop.submit {
            LoopBound(
                CASPaxosDemoCluster(
                    proposers: proposers, clientsPerProposer: clientsPerProposer, keys: keys, acceptors: acceptorEndpoints,
                    loop: proposerLoop),
                on: proposerLoop)
        }
        var phases: [CASPaxosDemoPhase] = []
        var finalValues: [DemoCounter?] = []
        var recoveries: [String] = []
        for oneRoundTrip in [false, true] {
            let victim = acceptors[2]
            let recovery = try await runPhase(cluster, victim: victim, oneRoundTrip: oneRoundTrip)
            recoveries.append("\(oneRoundTrip ? "1RTT on " : "1RTT off"): \(recovery)")
            phases.append(try await proposerLoop.submit { cluster.value.finishPhase() })
            if oneRoundTrip { finalValues = await readCounters(cluster, on: proposerLoop) }
            try await proposerLoop.submit { cluster.value.closeProposers() }
        }
        let (keyNames, increments) = try await proposerLoop.submit {
            (cluster.value.keys.map { String(decoding: $0, as: UTF8.self) }, cluster.value.incrementsByKey)
        }
        for acceptor in acceptors { try await acceptor.loop.submit { acceptor.value.close() } }
        print()
        for line in recoveries { print(line) }
        let report = CASPaxosDemoReport(
            phases: phases, keys: keyNames, finalValues: finalValues.map { $0?.total }, increments: increments)
        print()
        print(report.table)
        let unresolved = phases.reduce(0) { $0 + $1.unresolved }
        let succeeded = phases.reduce(0) { $0 + $1.increments }
        let failed = phases.reduce(0) { $0 + $1.definiteFailures }
        if !report.countersMatch {
            print("\nFAIL: a counter was not read, or differs from its successful increments")
        } else if unresolved > 0 {
            print("\nFAIL: \(unresolved) increments unresolved")
        } else if succeeded == 0 {
            print("\nFAIL: no increment succeeded (\(failed) failed)")
        } else {
            print("\nPASS: every counter equals the increments that succeeded (\(failed) more failed for certain)")
            return true
        }
        return false
    }

    /// One phase: clients run for half the duration, `victim` crashes at a
    /// third of it and restarts at two thirds; then every client finishes
    /// its increment (at most 10 s). Returns the victim's recovery line.
    private func runPhase(
        _ cluster: LoopBound<CASPaxosDemoCluster>, victim: LoopBound<CASPaxosDemoAcceptor>, oneRoundTrip: Bool
    ) async throws -> String {
        let loop = cluster.loop
        try await loop.submit { try cluster.value.startPhase(oneRoundTrip: oneRoundTrip) }
        let share = Duration.milliseconds(duration * 500)
        let start = ContinuousClock.now
        var isDown = false
        var recovery: String?
        var lastPrinted = start
        var lastCount = 0
        while ContinuousClock.now - start < share {
            try await Task.sleep(for: .milliseconds(100))
            let elapsed = ContinuousClock.now - start
            if !isDown, recovery == nil, elapsed >= share / 3 {
                isDown = true
                try await victim.loop.submit { victim.value.crash() }
                print("  acceptor 2 crashes")
            }
            if isDown, elapsed >= share * 2 / 3 {
                isDown = false
                recovery = try await victim.loop.submit { try victim.value.restart() }
                print("  acceptor 2 restarts from its file")
            }
            if ContinuousClock.now - lastPrinted >= .seconds(1) {
                let (count, indeterminate) = try await loop.submit {
                    (cluster.value.phase.increments, cluster.value.phase.indeterminate)
                }
                let interval = ContinuousClock.now - lastPrinted
                lastPrinted = ContinuousClock.now
                print(String(
                    format: "%@ %4.0fs  increments %7d  (%6.0f/s)  indeterminate %4d  acceptor 2 %@",
                    (oneRoundTrip ? "1RTT on " : "1RTT off"), Double(elapsed.components.seconds), count,
                    Double(count - lastCount) / (Double(interval.nanoseconds) / 1e9), indeterminate,
                    isDown ? "down" : "up"))
                lastCount = count
            }
        }
        try await loop.submit { cluster.value.stopIssuing() }
        let drainLimit = ContinuousClock.now + .seconds(10)
        while try await !loop.submit({ cluster.value.isDrained }), ContinuousClock.now < drainLimit {
            try await Task.sleep(for: .milliseconds(20))
        }
        return recovery ?? "acceptor 2 did not restart"
    }

    private func readCounters(_ cluster: LoopBound<CASPaxosDemoCluster>, on loop: EventLoop) async -> [DemoCounter?] {
        await withCheckedContinuation { (continuation: CheckedContinuation<[DemoCounter?], Never>) in
            let accepted = loop.execute { cluster.value.readCounters { continuation.resume(returning: $0) } }
            if !accepted { continuation.resume(returning: []) }
        }
    }
}
