import EventCore
import Foundation
import Gossip

/// `chorus demo`'s gossip scenario: a gossip cluster on loopback UDP in
/// this one process, first with push gossip, then with Plumtree; broadcasts
/// a stream of messages, shows progress, and ends with a table comparing
/// the modes.
struct GossipDemo {
    let nodeCount: Int
    let duration: Int
    let rate: Int

    init(options: CommandOptions) throws(UsageError) {
        nodeCount = try options.integer("nodes", in: 2...256, default: 16)
        duration = try options.integer("duration", in: 6...600, default: 24)
        rate = try options.integer("rate", in: 1...10_000, default: 50)
    }

    /// Runs both modes and prints the summary; returns whether every
    /// message reached every node.
    func run() async -> Bool {
        print("Chorus gossip demo: \(nodeCount) nodes on 127.0.0.1, \(rate) broadcasts/s, push then Plumtree\n")
        var results: [DemoProgress] = []
        for mode in [DisseminationMode.push, .plumtree] {
            do {
                results.append(try await runMode(mode))
            } catch {
                print("FAILED: \(mode): \(error)")
                return false
            }
        }
        print()
        print(DemoReport(results: results).table)
        let passed = results.allSatisfy { $0.isComplete && $0.redeliveries == 0 }
        print(passed ? "\nPASS: every node delivered every message exactly once, in both modes"
                     : "\nFAIL: some messages did not reach every node")
        return passed
    }

    /// One mode: settle 1 s, broadcast for most of the mode's share of the
    /// time, then let anti-entropy finish (at most 3 s, more for large
    /// clusters).
    private func runMode(_ mode: DisseminationMode) async throws -> DemoProgress {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let nodeCount = nodeCount
        let cluster = try await loop.submit {
            LoopBound(try DemoCluster(nodeCount: nodeCount, mode: mode, loop: loop), on: loop)
        }
        // Each mode gets half the time: 1 s to settle, then broadcasting,
        // then up to `drain` for the last messages (anti-entropy takes
        // longer in larger clusters: its digests cover more origins).
        let drain = max(3, nodeCount / 32 + 2)
        let sending = Duration.seconds(max(1, duration / 2 - 1 - drain))
        try await Task.sleep(for: .seconds(1))

        let interval = Duration.nanoseconds(1_000_000_000 / Int64(rate))
        let stopAt = loop.now + sending
        loop.execute { Self.pump(cluster, on: loop, every: interval, from: loop.now, until: stopAt) }
        let start = ContinuousClock.now
        let drainLimit = start + sending + .seconds(drain)
        var lastPrinted = start
        while true {
            try await Task.sleep(for: .milliseconds(100))
            let progress = try await loop.submit { cluster.value.progress }
            let now = ContinuousClock.now
            let sendingDone = now >= start + sending
            if now - lastPrinted >= .seconds(1) {
                lastPrinted = now
                let seconds = Double((now - start).components.seconds)
                print(String(format: "%@ %4.0fs  broadcast %5d  delivered %7d of %7d (%5.1f%%)",
                             "\(mode)".padding(toLength: 8, withPad: " ", startingAt: 0), seconds,
                             progress.broadcasts, progress.deliveries, progress.expected, progress.deliveryRatio * 100))
            }
            if sendingDone && (progress.isComplete || now >= drainLimit) { break }
        }
        let result = try await loop.submit { cluster.value.progress }
        try await loop.submit { cluster.value.close() }
        return result
    }

    /// Broadcasts one message every `interval` from `due` until `stopAt`,
    /// on the loop. A timer fires up to a tick late, so each firing sends
    /// every broadcast due by then and the next is scheduled from the
    /// schedule, not from the firing: the rate holds (rates past one per
    /// tick send several a tick).
    private static func pump(
        _ cluster: LoopBound<DemoCluster>, on loop: EventLoop, every interval: Duration, from due: Instant,
        until stopAt: Instant
    ) {
        var due = due
        let now = loop.now
        while due <= now, due < stopAt {
            cluster.value.broadcastFromRandomNode(now: now)
            due = due + interval
        }
        guard due < stopAt else { return }
        loop.schedule(at: due) { pump(cluster, on: loop, every: interval, from: due, until: stopAt) }
    }
}
