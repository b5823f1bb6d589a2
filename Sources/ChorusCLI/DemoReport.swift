import Foundation

/// The summary table of `chorus demo`: one row per mode.
struct DemoReport {
    let results: [DemoProgress]

    var table: String {
        let header = ["mode", "nodes", "messages", "delivered", "p50", "p90", "p99", "max", "copies/delivery", "duplicates", "repairs"]
        var rows = [header]
        for result in results {
            let sorted = result.latencies.sorted()
            func percentile(_ p: Double) -> String {
                guard !sorted.isEmpty else { return "-" }
                return Self.format(sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p))])
            }
            rows.append([
                "\(result.mode)", "\(result.nodeCount)", "\(result.broadcasts)",
                String(format: "%.2f%%", result.deliveryRatio * 100),
                percentile(0.5), percentile(0.9), percentile(0.99), percentile(1),
                String(format: "%.2f", result.copiesPerDelivery), "\(result.duplicates)", "\(result.repairs)",
            ])
        }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                column == 0 ? cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
                            : String(repeating: " ", count: widths[column] - cell.count) + cell
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    /// A duration in µs, ms or s.
    static func format(_ duration: Duration) -> String {
        let microseconds = Double(duration.components.seconds) * 1e6 + Double(duration.components.attoseconds) / 1e12
        if microseconds < 1_000 { return String(format: "%.0f µs", microseconds) }
        if microseconds < 1_000_000 { return String(format: "%.1f ms", microseconds / 1_000) }
        return String(format: "%.2f s", microseconds / 1_000_000)
    }
}
