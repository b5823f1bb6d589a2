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

    /// Whether every counter holds exactly its successful increments.
    var countersMatch: Bool {
        zip(finalValues, increments).allSatisfy { value, count in value == UInt64(count) }
    }

    var table: String {
        var rows = [[
            "phase", "increments", "ops/s", "p50", "p99", "max", "failed attempts", "retries", "indeterminate",
            "msgs/op", "round trips/op",
        ]]
        for phase in phases {
            let sorted = phase.latencies.sorted()
            func percentile(_ p: Double) -> String {
                guard !sorted.isEmpty else { return "-" }
                return DemoReport.format(sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p))])
            }
            rows.append([
                phase.name, "\(phase.increments)", String(format: "%.0f", phase.rate), percentile(0.5),
                percentile(0.99), percentile(1), "\(phase.failedAttempts)", "\(phase.retries)",
                "\(phase.indeterminate)", String(format: "%.2f", phase.messagesPerIncrement),
                String(format: "%.2f", phase.roundTripsPerIncrement),
            ])
        }
        var counters = [["counter", "final value", "successful increments", ""]]
        for (index, key) in keys.enumerated() {
            let value = finalValues[index].map { "\($0)" } ?? "unread"
            counters.append([key, value, "\(increments[index])", finalValues[index] == UInt64(increments[index]) ? "ok" : "MISMATCH"])
        }
        return Self.render(rows) + "\n\n" + Self.render(counters)
    }

    /// Columns padded to their widest cell: the first left-aligned, the
    /// rest right-aligned.
    static func render(_ rows: [[String]]) -> String {
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                column == 0 ? cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
                            : String(repeating: " ", count: widths[column] - cell.count) + cell
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
