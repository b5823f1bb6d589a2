/// Faults forced on chosen messages of one run of a ``SimulatedNetwork``
/// (``SimulatedNetwork/force(_:)``), each message chosen by its number: the
/// n-th message sent since the network was created is message n, as in
/// ``TraceEvent``'s message IDs. A run is deterministic, so a schedule
/// names the same messages in every replay of the same scenario, and a
/// failing schedule (its ``description``) reproduces the failure.
public struct FaultSchedule: Hashable, Sendable, CustomStringConvertible {
    /// The forced faults, by message number, in increasing order.
    public private(set) var faults: [(message: UInt64, fault: MessageFault)] = []

    /// No forced fault: every message meets its link's conditions.
    public init() {}

    /// The schedule with `faults` (message numbers need not be sorted; a
    /// later entry for the same message replaces an earlier one).
    public init(_ faults: [(message: UInt64, fault: MessageFault)]) {
        for (message, fault) in faults { self = adding(fault, toMessage: message) }
    }

    /// The last message a fault is forced on, or 0 if none.
    public var lastMessage: UInt64 { faults.last?.message ?? 0 }

    /// This schedule with `fault` forced on message `message` too.
    public func adding(_ fault: MessageFault, toMessage message: UInt64) -> FaultSchedule {
        var copy = self
        copy.faults.removeAll { $0.message == message }
        let position = copy.faults.firstIndex { $0.message > message } ?? copy.faults.endIndex
        copy.faults.insert((message, fault), at: position)
        return copy
    }

    public static func == (lhs: FaultSchedule, rhs: FaultSchedule) -> Bool {
        lhs.faults.elementsEqual(rhs.faults) { $0.message == $1.message && $0.fault == $1.fault }
    }

    public func hash(into hasher: inout Hasher) {
        for (message, fault) in faults {
            hasher.combine(message)
            hasher.combine(fault)
        }
    }

    /// `no forced fault`, or the faults as `message 12: drop, message 40:
    /// delay 0.3 seconds`.
    public var description: String {
        faults.isEmpty ? "no forced fault" : faults.map { "message \($0.message): \($0.fault)" }.joined(separator: ", ")
    }
}
