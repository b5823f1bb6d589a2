import EventCore
import Foundation
import SWIM

/// `chorus demo`'s SWIM scenario: a cluster on loopback joins, one member
/// is stopped abruptly, one leaves gracefully; the membership timeline is
/// printed as it happens and a table sums it up.
struct SWIMDemo {
    let memberCount: Int

    /// One line of the summary table.
    private struct Figure {
        var name: String
        var value: String
    }

    /// Runs the scenario; returns whether the cluster converged, detected
    /// the failure everywhere, saw the leave everywhere, and raised no false
    /// positive.
    func run() async throws -> Bool {
        print("SWIM: \(memberCount) members on 127.0.0.1 (default configuration: 750 ms protocol period)\n")
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let count = memberCount
        let cluster = try await loop.submit { LoopBound(try SWIMDemoCluster(count: count, loop: loop), on: loop) }
        let start = try await loop.submit { cluster.value.startedAt }
        func stamp(_ instant: Instant) -> String { String(format: "%7.3f s", Double((instant - start).nanoseconds) / 1e9) }
        func say(_ instant: Instant, _ text: String) { print("  \(stamp(instant))  \(text)") }
        var figures: [Figure] = []
        var passed = true

        // 1. Join.
        say(start, "\(count) members start; member 0 is the seed, the others join through it")
        let joined = try await Self.wait(on: loop, limit: .seconds(10)) { cluster.value.isConverged }
        if let joined {
            say(joined, "every member knows every other member (\(count) alive everywhere)")
            figures.append(Figure(name: "join convergence", value: Self.format(joined - start)))
        } else {
            say(loop.now, "FAILED: the membership did not converge within 10 s")
            return false
        }

        // 2. Steady state.
        try await Task.sleep(for: .seconds(2))
        let before = try await loop.submit { (loop.now, cluster.value.traffic) }
        try await Task.sleep(for: .seconds(5))
        let after = try await loop.submit { (loop.now, cluster.value.traffic) }
        let seconds = Double((after.0 - before.0).nanoseconds) / 1e9
        let perMember = Double(count) * seconds
        say(after.0, String(format: "steady state: %.2f packets/s and %.0f bytes/s per member",
                            Double(after.1.packets - before.1.packets) / perMember,
                            Double(after.1.bytes - before.1.bytes) / perMember))
        figures.append(Figure(name: "packets/s per member", value: String(format: "%.2f", Double(after.1.packets - before.1.packets) / perMember)))
        figures.append(Figure(name: "bytes/s per member", value: String(format: "%.0f", Double(after.1.bytes - before.1.bytes) / perMember)))

        // 3. A member stops abruptly.
        let victim = count / 2
        let crashedAt = try await loop.submit { () -> Instant in
            cluster.value.crash(victim)
            return loop.now
        }
        say(crashedAt, "member \(victim) is stopped abruptly (no goodbye)")
        var reportedSuspect = false
        var reportedFirstDead = false
        let allDead = try await Self.wait(on: loop, limit: .seconds(20)) {
            cluster.value.observers(of: victim, at: .dead) == cluster.value.live.count
        } progress: {
            if !reportedSuspect, let first = try await loop.submit({ cluster.value.firstSighting(.suspect, about: victim, since: crashedAt) }) {
                reportedSuspect = true
                say(first.event.at, "member \(first.observer) suspects member \(victim)")
            }
            if !reportedFirstDead, let first = try await loop.submit({ cluster.value.firstSighting(.dead, about: victim, since: crashedAt) }) {
                reportedFirstDead = true
                say(first.event.at, "member \(first.observer) declares member \(victim) dead")
                figures.append(Figure(name: "failure detected (first member)", value: Self.format(first.event.at - crashedAt)))
            }
        }
        if let allDead {
            say(allDead, "every running member knows member \(victim) is dead")
            figures.append(Figure(name: "failure detected (all members)", value: Self.format(allDead - crashedAt)))
        } else {
            say(loop.now, "FAILED: not every member declared member \(victim) dead within 20 s")
            passed = false
        }

        // 4. A member leaves gracefully.
        let leaver = count - 1
        let leftAt = try await loop.submit { () -> Instant in
            cluster.value.leave(leaver)
            return loop.now
        }
        say(leftAt, "member \(leaver) leaves gracefully")
        let allLeft = try await Self.wait(on: loop, limit: .seconds(5)) {
            cluster.value.observers(of: leaver, at: .left) == cluster.value.live.count
        }
        if let allLeft {
            say(allLeft, "every running member saw member \(leaver) leave (not a failure)")
            figures.append(Figure(name: "leave seen by all", value: Self.format(allLeft - leftAt)))
        } else {
            say(loop.now, "FAILED: not every member saw member \(leaver) leave within 5 s")
            passed = false
        }
        let falsePositives = try await loop.submit { cluster.value.falsePositives }
        figures.insert(Figure(name: "false positives", value: "\(falsePositives)"), at: 1)
        if falsePositives > 0 { passed = false }
        try await loop.submit { cluster.value.close() }

        print()
        let width = figures.map(\.name.count).max() ?? 0
        for figure in figures {
            print("  " + figure.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + figure.value)
        }
        return passed
    }

    /// Polls `condition` on the loop every 20 ms (running `progress` too)
    /// until it holds or `limit` passes; returns the loop time it held at.
    static func wait(
        on loop: EventLoop, limit: Duration, _ condition: @escaping @Sendable () -> Bool,
        progress: () async throws -> Void = {}
    ) async throws -> Instant? {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            let (held, now) = try await loop.submit { (condition(), loop.now) }
            try await progress()
            if held { return now }
            try await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    static func format(_ duration: Duration) -> String { DemoReport.format(duration) }
}
