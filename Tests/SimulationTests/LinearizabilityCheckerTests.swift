import EventCore
import Simulation
import Testing

/// Hand-written histories of registers, linearizable and not.
@Suite("Linearizability checker")
struct LinearizabilityCheckerTests {
    typealias Operation = HistoryOperation<String, RegisterOperation<Int>, Int?>

    static let checker = LinearizabilityChecker(model: RegisterModel<Int>())

    /// An operation on key "x" (or `key`) from `start` to `end` milliseconds.
    static func op(
        _ client: Int, _ input: RegisterOperation<Int>, _ start: Int64, _ end: Int64,
        _ outcome: OperationOutcome<Int?>, key: String = "x"
    ) -> Operation {
        HistoryOperation(
            client: client, key: key, input: input, invoked: .at(.milliseconds(start)),
            completed: .at(.milliseconds(end)), outcome: outcome)
    }

    @Test("an empty history and a sequential one are linearizable")
    func sequential() {
        #expect(Self.checker.check([Operation]()) == .linearizable)
        let history = [
            Self.op(0, .write(1), 0, 1, .ok(1)),
            Self.op(0, .read, 2, 3, .ok(1)),
            Self.op(1, .compareAndSet(expected: 1, new: 2), 4, 5, .ok(2)),
            Self.op(1, .compareAndSet(expected: 1, new: 3), 6, 7, .ok(2)),
            Self.op(0, .write(nil), 8, 9, .ok(nil)),
            Self.op(0, .read, 10, 11, .ok(nil)),
        ]
        #expect(Self.checker.check(history) == .linearizable)
    }

    @Test("concurrent operations may take effect in either order")
    func concurrentOrder() {
        // The read overlaps both writes and sees the first; the second write
        // is then placed before the first.
        let history = [
            Self.op(0, .write(1), 0, 10, .ok(1)),
            Self.op(1, .write(2), 0, 10, .ok(2)),
            Self.op(2, .read, 11, 12, .ok(1)),
        ]
        #expect(Self.checker.check(history) == .linearizable)
    }

    @Test("a stale read after a completed write is a violation")
    func staleRead() {
        let history = [
            Self.op(0, .write(1), 0, 1, .ok(1)),
            Self.op(0, .write(2), 2, 3, .ok(2)),
            Self.op(1, .read, 4, 5, .ok(1)),
        ]
        guard case .violation(let violation) = Self.checker.check(history) else {
            Issue.record("the stale read was not found")
            return
        }
        #expect(violation.key == "x")
        #expect(violation.blockingOperation == 2)
        #expect(violation.longestLinearization == [0, 1])
    }

    @Test("a lost update (two increments by compare-and-set both succeed from the same value) is a violation")
    func lostUpdate() {
        let history = [
            Self.op(0, .write(0), 0, 1, .ok(0)),
            Self.op(1, .compareAndSet(expected: 0, new: 1), 2, 6, .ok(1)),
            Self.op(2, .compareAndSet(expected: 0, new: 1), 3, 7, .ok(1)),
            Self.op(0, .read, 8, 9, .ok(1)),
        ]
        // Both CAS calls report 1, which is fine for compare-and-set (the
        // second fails and returns the current 1), so make the second observe
        // the old value instead: that cannot happen after the first.
        #expect(Self.checker.check(history) == .linearizable)
        var lost = history
        lost[2] = Self.op(2, .compareAndSet(expected: 0, new: 5), 3, 7, .ok(5))
        #expect(!Self.checker.check(lost).isLinearizable)
    }

    @Test("an unknown write may take effect late")
    func unknownTakesEffect() {
        let history = [
            Self.op(0, .write(1), 0, 1, .ok(1)),
            Self.op(1, .write(2), 2, 3, .unknown),
            Self.op(0, .read, 20, 21, .ok(1)),
            Self.op(0, .read, 30, 31, .ok(2)),
        ]
        #expect(Self.checker.check(history) == .linearizable)
    }

    @Test("an unknown write may never take effect, but cannot take effect before it was invoked")
    func unknownNeverOrNotEarly() {
        let never = [
            Self.op(0, .write(1), 0, 1, .ok(1)),
            Self.op(1, .write(2), 2, 3, .unknown),
            Self.op(0, .read, 20, 21, .ok(1)),
        ]
        #expect(Self.checker.check(never) == .linearizable)
        let early = [
            Self.op(0, .read, 0, 1, .ok(2)),
            Self.op(1, .write(2), 2, 3, .unknown),
        ]
        #expect(!Self.checker.check(early).isLinearizable)
    }

    @Test("a failed write is ignored, so a read of its value is a violation")
    func failedIgnored() {
        let history = [
            Self.op(0, .write(1), 0, 1, .failed),
            Self.op(1, .read, 2, 3, .ok(1)),
        ]
        #expect(!Self.checker.check(history).isLinearizable)
        #expect(Self.checker.check([history[0], Self.op(1, .read, 2, 3, .ok(nil))]) == .linearizable)
    }

    @Test("keys are independent: a violation names its key")
    func perKey() {
        let history = [
            Self.op(0, .write(1), 0, 1, .ok(1), key: "a"),
            Self.op(1, .write(7), 0, 1, .ok(7), key: "b"),
            Self.op(0, .read, 2, 3, .ok(1), key: "a"),
            Self.op(1, .read, 2, 3, .ok(1), key: "b"),
        ]
        guard case .violation(let violation) = Self.checker.check(history) else {
            Issue.record("the read of b was not found")
            return
        }
        #expect(violation.key == "b")
        #expect(violation.blockingOperation == 3)
    }

    @Test("operations meeting at one instant are concurrent")
    func sameInstant() {
        let history = [
            Self.op(0, .write(1), 0, 5, .ok(1)),
            Self.op(1, .read, 5, 6, .ok(nil)),
        ]
        #expect(Self.checker.check(history) == .linearizable)
    }

    /// The recorder numbers events as they happen: a read invoked at the
    /// instant a write returned, but after it, must see the write; one
    /// invoked at that instant before the write returned may not.
    @Test("recorded events at one instant keep the order they happened in")
    func recordedOrderWithinInstant() {
        let late = HistoryRecorder<String, RegisterOperation<Int>, Int?>()
        let write = late.invoke(client: 0, key: "x", input: .write(1), at: .at(.milliseconds(0)))
        late.complete(write, with: .ok(1), at: .at(.milliseconds(5)))
        let read = late.invoke(client: 1, key: "x", input: .read, at: .at(.milliseconds(5)))
        late.complete(read, with: .ok(nil), at: .at(.milliseconds(6)))
        #expect(!Self.checker.check(late.operations).isLinearizable, "the read began after the write returned")

        let early = HistoryRecorder<String, RegisterOperation<Int>, Int?>()
        let overlapped = early.invoke(client: 0, key: "x", input: .write(1), at: .at(.milliseconds(0)))
        let concurrent = early.invoke(client: 1, key: "x", input: .read, at: .at(.milliseconds(5)))
        early.complete(overlapped, with: .ok(1), at: .at(.milliseconds(5)))
        early.complete(concurrent, with: .ok(nil), at: .at(.milliseconds(6)))
        #expect(Self.checker.check(early.operations) == .linearizable)
    }

    @Test("a search over the budget is undecided")
    func budget() {
        let small = LinearizabilityChecker(model: RegisterModel<Int>(), maximumStates: 3)
        let history = (0..<8).map { Self.op($0, .write($0), 0, 100, .ok($0)) }
            + [Self.op(9, .read, 200, 201, .ok(-1))]
        #expect(small.check(history) == .undecided(key: "x", statesExplored: 4))
        #expect(!Self.checker.check(history).isLinearizable)
    }

    @Test("the recorder marks operations never completed as unknown")
    func recorder() {
        let recorder = HistoryRecorder<String, RegisterOperation<Int>, Int?>()
        let write = recorder.invoke(client: 0, key: "x", input: .write(3), at: .at(.milliseconds(1)))
        let read = recorder.invoke(client: 1, key: "x", input: .read, at: .at(.milliseconds(2)))
        recorder.complete(read, with: .ok(3), at: .at(.milliseconds(4)))
        #expect(recorder.operations[write].outcome == .unknown)
        #expect(recorder.operations[read].outcome == .ok(3))
        #expect(Self.checker.check(recorder.operations) == .linearizable)
    }

    /// Overwritten, the first completion's value and its end time would
    /// vanish from the history, and with them a violation.
    @Test("a second completion of an operation keeps the first and is listed")
    func repeatedCompletion() {
        let recorder = HistoryRecorder<String, RegisterOperation<Int>, Int?>()
        let read = recorder.invoke(client: 0, key: "x", input: .read, at: .at(.milliseconds(1)))
        recorder.complete(read, with: .ok(7), at: .at(.milliseconds(2)))
        recorder.complete(read, with: .unknown, at: .at(.milliseconds(9)))
        #expect(recorder.operations[read].outcome == .ok(7))
        #expect(recorder.operations[read].completed == .at(.milliseconds(2)))
        #expect(recorder.repeatedCompletions == [read])
        #expect(!Self.checker.check(recorder.operations).isLinearizable, "7 was never written")
    }
}

/// The key-value model under the checker: a stale get after an
/// acknowledged put is caught; concurrent puts may land in either order.
@Suite("KeyValueModel")
struct KeyValueModelTests {
    typealias Operation = HistoryOperation<String, KeyValueOperation<Int>, Int?>

    static func operation(
        _ client: Int, _ input: KeyValueOperation<Int>, _ from: Int64, _ to: Int64, _ output: Int?
    ) -> Operation {
        Operation(client: client, key: "k", input: input, invoked: .zero + .milliseconds(from),
                  completed: .zero + .milliseconds(to), outcome: .ok(output))
    }

    @Test("a get that misses an acknowledged put is a violation; overlapping puts are fine")
    func staleAndConcurrent() {
        let checker = LinearizabilityChecker(model: KeyValueModel<Int>())
        let stale = [Self.operation(0, .put(1), 0, 10, nil), Self.operation(1, .get, 20, 30, nil)]
        #expect(checker.check(stale) != .linearizable)
        let concurrent = [
            Self.operation(0, .put(1), 0, 10, nil), Self.operation(1, .put(2), 5, 15, 1),
            Self.operation(2, .delete, 20, 30, 2), Self.operation(0, .get, 31, 40, nil),
        ]
        #expect(checker.check(concurrent) == .linearizable)
    }
}
