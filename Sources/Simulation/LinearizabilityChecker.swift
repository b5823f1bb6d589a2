import EventCore

/// Checks that a concurrent history of operations on keyed objects is
/// linearizable: that each key's completed operations can be put in one
/// sequential order that respects real time (an operation that completed
/// before another was invoked comes first) and in which every operation
/// returns what its client observed, according to a ``SequentialModel``.
/// Events at one instant are ordered by their sequence numbers (see
/// ``HistoryOperation``); unnumbered ones there count as concurrent.
///
/// The search is Wing and Gong's, with Lowe's memoization: operations are
/// linearized one at a time in real-time order of their invocations,
/// backtracking when an operation's completion is reached before it could
/// be placed, and never exploring a (set of linearized operations, model
/// state) pair twice. Keys are checked independently (linearizability is
/// compositional), in the order they first appear in the history.
///
/// ``OperationOutcome/failed`` operations are left out;
/// ``OperationOutcome/unknown`` ones may take effect at any time after
/// their invocation or never, with any output. The search is bounded:
/// over ``maximumStates`` explored states for one key, the verdict is
/// ``LinearizabilityVerdict/undecided(key:statesExplored:)``.
public struct LinearizabilityChecker<Model: SequentialModel> {
    /// The sequential specification of one key's object.
    public var model: Model
    /// The most (linearized set, state) pairs explored for one key before
    /// giving up as undecided.
    public var maximumStates: Int

    /// Creates a checker for `model`, exploring at most `maximumStates`
    /// states per key.
    public init(model: Model, maximumStates: Int = 1_000_000) {
        self.model = model
        self.maximumStates = maximumStates
    }

    /// Checks `history`; see the type's description.
    public func check<Key: Hashable>(
        _ history: [HistoryOperation<Key, Model.Input, Model.Output>]
    ) -> LinearizabilityVerdict<Key> {
        var keyIndex: [Key: Int] = [:]
        var partitions: [[Int]] = []
        for (index, operation) in history.enumerated() {
            if case .failed = operation.outcome { continue }
            if let existing = keyIndex[operation.key] {
                partitions[existing].append(index)
            } else {
                keyIndex[operation.key] = partitions.count
                partitions.append([index])
            }
        }
        for partition in partitions {
            let verdict = checkKey(history, partition)
            if verdict != .linearizable { return verdict }
        }
        return .linearizable
    }

    /// A memoized search state: the set of linearized operations and the
    /// model's state after them.
    private struct Configuration: Hashable {
        var linearized: [UInt64]
        var state: Model.State
    }

    /// Checks one key's operations (`members`: indices into `history`).
    private func checkKey<Key: Hashable>(
        _ history: [HistoryOperation<Key, Model.Input, Model.Output>], _ members: [Int]
    ) -> LinearizabilityVerdict<Key> {
        var list = EventList(history, members)
        var state = model.initialState
        var linearized = [UInt64](repeating: 0, count: members.count / 64 + 1)
        var explored: Set<Configuration> = []
        // The calls linearized so far, with the state before each.
        var stack: [(call: Int, state: Model.State)] = []
        var longest: [Int] = []
        var blocking = members[0]
        var entry = list.first
        while !list.isEmpty {
            if list.isCall[entry] {
                let local = list.operation[entry]
                let operation = history[members[local]]
                let (next, output) = model.apply(operation.input, to: state)
                let matches: Bool
                switch operation.outcome {
                case .ok(let observed): matches = observed == output
                case .failed, .unknown: matches = true
                }
                if matches {
                    linearized[local >> 6] |= 1 << UInt64(local & 63)
                    if explored.insert(Configuration(linearized: linearized, state: next)).inserted {
                        if explored.count > maximumStates {
                            return .undecided(key: operation.key, statesExplored: explored.count)
                        }
                        stack.append((entry, state))
                        state = next
                        list.lift(entry)
                        entry = list.first
                        continue
                    }
                    linearized[local >> 6] &= ~(1 << UInt64(local & 63))
                }
                entry = list.next[entry]
            } else {
                // A completion reached before its operation was placed.
                if stack.count >= longest.count {
                    longest = stack.map { members[list.operation[$0.call]] }
                    blocking = members[list.operation[entry]]
                }
                guard let (call, previous) = stack.popLast() else {
                    return .violation(Self.witness(history, longest, blocking))
                }
                state = previous
                let local = list.operation[call]
                linearized[local >> 6] &= ~(1 << UInt64(local & 63))
                list.unlift(call)
                entry = list.next[call]
            }
        }
        return .linearizable
    }

    private static func witness<Key: Hashable>(
        _ history: [HistoryOperation<Key, Model.Input, Model.Output>], _ longest: [Int], _ blocking: Int
    ) -> LinearizabilityViolation<Key> {
        func describe(_ index: Int) -> String {
            let operation = history[index]
            return "#\(index) client \(operation.client) \(operation.input) -> \(operation.outcome) [\(operation.invoked), \(operation.completed)]"
        }
        let prefix = longest.isEmpty ? "nothing" : longest.map(describe).joined(separator: "; ")
        return LinearizabilityViolation(
            key: history[blocking].key, longestLinearization: longest, blockingOperation: blocking,
            explanation: "longest linearization: \(prefix); then \(describe(blocking)) cannot be placed")
    }
}

/// The invocations and completions of one key's operations as a doubly
/// linked list in time order, from which linearized operations are lifted
/// out and put back (dancing links).
private struct EventList {
    /// Node 0 is the head sentinel, the last node the tail sentinel.
    var next: [Int]
    var previous: [Int]
    /// Per node: the operation's index among the key's operations, whether
    /// it is the invocation, and (for an invocation) its completion's node.
    var operation: [Int]
    var isCall: [Bool]
    var match: [Int]
    let tail: Int

    init<Key, Input, Output>(_ history: [HistoryOperation<Key, Input, Output>], _ members: [Int]) {
        var events: [ListEvent] = []
        events.reserveCapacity(members.count * 2)
        for (local, index) in members.enumerated() {
            let operation = history[index]
            events.append(
                ListEvent(
                    time: operation.invoked.nanoseconds, sequence: operation.invocationSequence, isCall: true,
                    operation: local))
            if case .ok = operation.outcome {
                events.append(
                    ListEvent(
                        time: operation.completed.nanoseconds, sequence: operation.completionSequence,
                        isCall: false, operation: local))
            } else {
                events.append(ListEvent(time: .max, sequence: .max, isCall: false, operation: local))
            }
        }
        // At one instant, events come in the order of their sequence
        // numbers; among unnumbered ones (or equal numbers, only in a
        // history made by hand), invocations come before completions:
        // operations that meet there are concurrent.
        events.sort { a, b in
            if a.time != b.time { return a.time < b.time }
            if a.sequence != b.sequence { return a.sequence < b.sequence }
            if a.isCall != b.isCall { return a.isCall }
            return a.operation < b.operation
        }
        let count = events.count
        tail = count + 1
        next = Array(1...(count + 1)) + [count + 1]
        previous = [0] + Array(0...count)
        operation = [-1] + events.map(\.operation) + [-1]
        isCall = [false] + events.map(\.isCall) + [false]
        match = [Int](repeating: 0, count: count + 2)
        var callNode = [Int](repeating: 0, count: members.count)
        for (offset, event) in events.enumerated() {
            if event.isCall {
                callNode[event.operation] = offset + 1
            } else {
                match[callNode[event.operation]] = offset + 1
            }
        }
    }

    var first: Int { next[0] }
    var isEmpty: Bool { next[0] == tail }

    /// Removes an invocation and its completion.
    mutating func lift(_ call: Int) {
        remove(call)
        remove(match[call])
    }

    /// Puts back what ``lift(_:)`` removed (in reverse order of lifting).
    mutating func unlift(_ call: Int) {
        restore(match[call])
        restore(call)
    }

    private mutating func remove(_ node: Int) {
        next[previous[node]] = next[node]
        previous[next[node]] = previous[node]
    }

    private mutating func restore(_ node: Int) {
        next[previous[node]] = node
        previous[next[node]] = node
    }
}

/// An invocation or a completion, before the list links them.
private struct ListEvent {
    var time: UInt64
    var sequence: UInt64
    var isCall: Bool
    var operation: Int
}

extension LinearizabilityChecker: Sendable where Model: Sendable {}
