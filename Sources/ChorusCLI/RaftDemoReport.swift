import EventCore
import Foundation

/// The summary of `chorus demo`'s Raft scenario: throughput and commit
/// latency before the leader stopped and after the failover, election and
/// failover times, failed proposals, and each node's final state.
struct RaftDemoReport: Sendable {
    /// Writing before the leader stopped, or from the new leader's first
    /// acknowledgement on.
    struct Phase: Sendable {
        var name: String
        /// Put to acknowledgement (retries included), for every put
        /// acknowledged in the phase.
        var latencies: [Duration]
        /// How long the phase wrote.
        var seconds: Double

        /// Acknowledged puts per second.
        var rate: Double { seconds > 0 ? Double(latencies.count) / seconds : 0 }
    }

    /// One node's map, checked: a running (or restarted) node's must equal
    /// the others' and hold every acknowledged put; a stopped node's puts
    /// must all be in the running nodes' map (it applied only committed
    /// entries).
    struct NodeCheck: Sendable {
        /// Whether a node runs, was stopped, was stopped and started again
        /// from its directory, joined the group, or was removed from it
        /// (and stopped).
        enum State: String, Sendable {
            case running, stopped, restarted, joined, removed
        }

        var name: String
        var state: State
        var appliedIndex: UInt64
        var keys: Int
        /// fsyncs its storage made (a restarted node's: since its restart).
        var syncs: Int
        /// "ok", or what is wrong.
        var verdict: String

        var passed: Bool { verdict == "ok" }
    }

    /// The last acknowledged put of each client, read back by ReadIndex on
    /// every running node once the restarted one caught up.
    struct ReadBack: Sendable {
        var asked = 0
        /// Reads that saw the put.
        var matched = 0
        /// Reads that did not: a linearizability violation.
        var stale = 0
        /// Reads that failed (no leader confirmed them).
        var failed = 0
        var startedAt: Instant?
        var endedAt: Instant?
    }

    /// The membership phase: a new node joins as a learner, is promoted
    /// once caught up, and the restarted node is removed.
    struct Replacement: Sendable {
        var startedAt: Instant?
        /// The learner's addition committed.
        var learnerAt: Instant?
        /// The learner applied the leader's log.
        var caughtUpAt: Instant?
        var promotedAt: Instant?
        /// The replaced node's removal committed.
        var endedAt: Instant?
        /// A change refused for a reason a retry does not mend.
        var failure: String?
        /// The leader's voters at the end, and the running nodes.
        var members: [UInt64] = []
        var expected: [UInt64] = []
    }

    /// From the start to the first leader's no-op committed.
    var electionTime: Duration?
    /// From the leader's stop to the next leader's no-op committed.
    var reelectionTime: Duration?
    /// From the leader's stop to the first put the next leader acknowledged.
    var failoverTime: Duration?
    /// From the stopped node's restart to its applying the whole log.
    var catchUpTime: Duration?
    var leadersElected: Int
    var phases: [Phase]
    /// Failed proposals (each retried), by ``RaftError`` case.
    var failures: [String: Int]
    /// Puts still unacknowledged at the end.
    var unresolved: Int
    var acknowledged: Int
    var nodes: [NodeCheck]
    var readBack: ReadBack
    var replacement: Replacement

    /// Why the run failed; empty if it passed.
    var problems: [String] {
        var problems: [String] = []
        if electionTime == nil { problems.append("no leader was elected") }
        if failoverTime == nil { problems.append("no put was acknowledged after the leader stopped") }
        if unresolved > 0 { problems.append("\(unresolved) puts were never acknowledged") }
        if catchUpTime == nil { problems.append("the restarted node did not catch up") }
        for node in nodes where !node.passed { problems.append("\(node.name): \(node.verdict)") }
        if readBack.asked == 0 { problems.append("nothing was read back") }
        if readBack.stale > 0 { problems.append("\(readBack.stale) reads missed an acknowledged put") }
        if readBack.failed > 0 { problems.append("\(readBack.failed) reads failed") }
        if let failure = replacement.failure { problems.append("membership change refused: \(failure)") }
        if replacement.endedAt == nil { problems.append("the member was not replaced") }
        if replacement.members != replacement.expected {
            problems.append("the members are \(replacement.members), not the running nodes \(replacement.expected)")
        }
        if readBack.asked > readBack.matched + readBack.stale + readBack.failed {
            problems.append("\(readBack.asked - readBack.matched - readBack.stale - readBack.failed) reads never ended")
        }
        return problems
    }

    var table: String {
        var rows = [["", "commits", "commits/s", "p50", "p90", "p99", "max"]]
        for phase in phases {
            let sorted = phase.latencies.sorted()
            rows.append(
                [phase.name, "\(sorted.count)", String(format: "%.0f", phase.rate)]
                    + [0.5, 0.9, 0.99, 1].map { DemoReport.percentile($0, of: sorted) })
        }
        let failed = failures.sorted { ($1.value, $0.key) < ($0.value, $1.key) }
            .map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        let figures = [
            ["election (start to the first leader's no-op committed)", electionTime.map(DemoReport.format) ?? "-"],
            ["new leader (stop to its no-op committed)", reelectionTime.map(DemoReport.format) ?? "-"],
            ["failover (stop to the new leader's first acknowledged put)", failoverTime.map(DemoReport.format) ?? "-"],
            ["catch-up (restart from its files to the whole log applied)", catchUpTime.map(DemoReport.format) ?? "-"],
            ["leaders elected", "\(leadersElected)"],
            ["puts acknowledged", "\(acknowledged)"],
            ["proposals failed (each retried)", failed.isEmpty ? "none" : failed],
            [
                "read back by ReadIndex (every client's last put, on every running node)",
                "\(readBack.matched) of \(readBack.asked) saw it"
                    + (readBack.startedAt.flatMap { start in readBack.endedAt.map { " in " + DemoReport.format($0 - start) } } ?? ""),
            ],
            [
                "membership (a new node as a learner, promoted; the restarted one removed)",
                Self.span(replacement.startedAt, replacement.learnerAt, "added")
                    + ", " + Self.span(replacement.learnerAt, replacement.caughtUpAt, "caught up")
                    + ", " + Self.span(replacement.caughtUpAt, replacement.promotedAt, "promoted")
                    + ", " + Self.span(replacement.promotedAt, replacement.endedAt, "removed"),
            ],
        ]
        var checks = [["node", "state", "applied index", "keys", "fsyncs", "entries/fsync", "check"]]
        for node in nodes {
            checks.append([
                node.name, node.state.rawValue, "\(node.appliedIndex)", "\(node.keys)",
                "\(node.syncs)",
                node.syncs > 0 && (node.state == .running || node.state == .stopped)
                    ? String(format: "%.1f", Double(node.appliedIndex) / Double(node.syncs)) : "-",
                node.verdict,
            ])
        }
        return [rows, figures, checks].map(DemoReport.render).joined(separator: "\n\n")
    }

    /// `what` and the time from `from` to `to`, or "not" before `what`.
    private static func span(_ from: Instant?, _ to: Instant?, _ what: String) -> String {
        guard let from, let to else { return "not \(what)" }
        return "\(what) " + DemoReport.format(to - from)
    }
}
