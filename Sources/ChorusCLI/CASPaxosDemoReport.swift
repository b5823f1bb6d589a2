import Foundation

/// The summary tables of `chorus demo`'s CASPaxos scenario: one row per
/// phase, then one per counter.
struct CASPaxosDemoReport {
    let phases: [CASPaxosDemoPhase]
    let keys: [String]
    /// Per key: the total the register holds (nil if the final read failed).
    let finalValues: [UInt64?]
    /// Per key: increments that succeeded.
    let increments: [Int]

    /// Whether every counter was read and holds exactly its successful
    /// increments.
    var countersMatch: Bool {
        finalValues.count == increments.count
            && zip(finalValues, increments).allSatisfy { value, count in value == UInt64(count) }
    }

    var table: String {
        var rows = [[
            "phase", "increments", "ops/s", "p50", "p99", "max", "failed", "failed attempts", "retries",
            "indeterminate", "datagrams/op", "round trips/op", "busiest proposer",
        ]]
        for phase in phases {
            let sorted = phase.latencies.sorted()
            rows.append([
                phase.name, "\(phase.increments)", String(format: "%.0f", phase.rate),
                DemoReport.percentile(0.5, of: sorted), DemoReport.percentile(0.99, of: sorted),
                DemoReport.percentile(1, of: sorted), "\(phase.definiteFailures)", "\(phase.failedAttempts)",
                "\(phase.retries)", "\(phase.indeterminate)", String(format: "%.2f", phase.datagramsPerIncrement),
                String(format: "%.2f", phase.roundTripsPerIncrement),
                String(format: "%.0f%%", phase.busiestProposerShare * 100),
            ])
        }
        var counters = [["counter", "final value", "successful increments", ""]]
        for (index, key) in keys.enumerated() {
            let final = index < finalValues.count ? finalValues[index] : nil
            counters.append([
                key, final.map { "\($0)" } ?? "unread", "\(increments[index])",
                final == UInt64(increments[index]) ? "ok" : "MISMATCH",
            ])
        }
        return DemoReport.render(rows) + "\n\n" + DemoReport.render(counters)
    }
}
