import Foundation

/// The summary table of `chorus demo`'s gossip scenario (one row per
/// mode), and the formatting every scenario's tables share.
struct DemoReport {
    let results: [DemoProgress]

    var table: String {
        let header = ["mode", "nodes", "messages", "delivered", "p50", "p90", "p99", "max", "copies/delivery", "duplicates", "repairs"]
        var rows = [header]
        for result in results {
            let sorted = result.latencies.sorted()
            rows.append([
                "\(result.mode)", "\(result.nodeCount)", "\(result.broadcasts)",
                String(format: "%.2f%%", result.deliveryRatio * 100),
                Self.percentile(0.5, of: sorted), Self.percentile(0.9, of: sorted), Self.percentile(0.99, of: sorted),
                Self.percentile(1, of: sorted),
                String(format: "%.2f", result.copiesPerDelivery), "\(result.duplicates)", "\(result.repairs)",
            ])
        }
        return Self.render(rows)
    }

    /// The `p` quantile (0 ... 1) of `sorted`, formatted; "-" if empty.
    static func percentile(_ p: Double, of sorted: [Duration]) -> String {
        guard !sorted.isEmpty else { return "-" }
        return format(sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p))])
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

    /// A duration in µs, ms or s.
    static func format(_ duration: Duration) -> String {
        let microseconds = Double(duration.components.seconds) * 1e6 + Double(duration.components.attoseconds) / 1e12
        if microseconds < 1_000 { return String(format: "%.0f µs", microseconds) }
        if microseconds < 1_000_000 { return String(format: "%.1f ms", microseconds / 1_000) }
        return String(format: "%.2f s", microseconds / 1_000_000)
    }
}
