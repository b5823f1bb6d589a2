/// Systematic fault injection: runs a scenario once for every
/// ``FaultSchedule`` of at most ``depth`` forced faults (each one of
/// ``faults``) on the messages the scenario marks as eligible, and collects
/// the schedules under which it fails.
///
/// Random faults (``LinkConditions``) sample schedules; the explorer
/// enumerates all of them up to the depth, in the spirit of delay-bounded
/// scheduling: most protocol bugs need only one or two messages lost,
/// late or repeated at the wrong moment, and a depth of one or two finds
/// them without luck. The cost is a run per schedule: about `faults.count ·
/// m` runs at depth 1 for `m` eligible messages, and the square of that,
/// halved, at depth 2.
///
/// Exploration is depth first from the schedule with no forced fault. A
/// schedule's children force one more fault on a later message (after its
/// last forced one) that is eligible in the schedule's own run: the runs
/// of parent and child agree up to that message, since a run is
/// deterministic, so the message exists in the child's run too.
public struct FaultScheduleExplorer {
    /// What one run of the scenario reports.
    public struct Run: Sendable {
        /// The messages (by number) on which faults may be forced: usually
        /// those sent during the part of the scenario under test.
        public var eligibleMessages: ClosedRange<UInt64>?
        /// Why the run failed, or nil if it passed.
        public var failure: String?

        /// A run's report: the messages it allows faults on (nil: none)
        /// and its failure (nil: it passed).
        public init(eligibleMessages: ClosedRange<UInt64>?, failure: String?) {
            self.eligibleMessages = eligibleMessages
            self.failure = failure
        }
    }

    /// What an exploration found.
    public struct Report: Sendable {
        /// Runs of the scenario.
        public var runs = 0
        /// Failing schedules with their runs' failures, in the order found
        /// (at most ``FaultScheduleExplorer/maximumFailures``).
        public var failures: [(schedule: FaultSchedule, failure: String)] = []
        /// Whether ``FaultScheduleExplorer/maximumRuns`` stopped the
        /// exploration before every schedule was run.
        public var isTruncated = false
    }

    /// The faults to force, each tried on every eligible message.
    public var faults: [MessageFault]
    /// The most faults in one schedule.
    public var depth: Int
    /// Runs after which exploration stops (``Report/isTruncated``).
    public var maximumRuns: Int
    /// Failures after which exploration stops.
    public var maximumFailures: Int

    /// An explorer of every schedule of up to `depth` of `faults`, that
    /// stops after `maximumRuns` runs or `maximumFailures` failures.
    public init(faults: [MessageFault], depth: Int = 1, maximumRuns: Int = 100_000, maximumFailures: Int = 10) {
        self.faults = faults
        self.depth = depth
        self.maximumRuns = maximumRuns
        self.maximumFailures = maximumFailures
    }

    /// Runs `scenario` for every schedule up to ``depth``. The scenario
    /// builds a fresh network (the same seed each time), calls
    /// ``SimulatedNetwork/force(_:)`` with the schedule it is given before
    /// any message is sent, runs, and checks.
    public func explore(_ scenario: (FaultSchedule) throws -> Run) rethrows -> Report {
        var report = Report()
        var pending: [FaultSchedule] = [FaultSchedule()]
        while let schedule = pending.popLast() {
            guard report.runs < maximumRuns else {
                report.isTruncated = true
                break
            }
            let run = try scenario(schedule)
            report.runs += 1
            if let failure = run.failure {
                report.failures.append((schedule, failure))
                if report.failures.count >= maximumFailures { break }
                continue
            }
            guard schedule.faults.count < depth, let eligible = run.eligibleMessages,
                eligible.upperBound > schedule.lastMessage
            else { continue }
            let first = max(eligible.lowerBound, schedule.lastMessage + 1)
            // Pushed last-first, so that the earliest messages run first.
            for message in (first...eligible.upperBound).reversed() {
                for fault in faults.reversed() { pending.append(schedule.adding(fault, toMessage: message)) }
            }
        }
        return report
    }
}
