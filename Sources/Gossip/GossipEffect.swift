import EventCore

/// What a ``GossipInstance`` asks its driver to do, appended to a
/// caller-owned array by every input.
public enum GossipEffect: Sendable {
    /// Send `message` to `destination` (one gossip frame).
    case send(GossipMessage, to: Endpoint)
    /// Hand a broadcast to the application (exactly once per ID).
    case deliver(GossipDelivery)
}

/// Why ``GossipInstance/broadcast(_:now:into:)`` refused a payload.
public struct GossipError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: Hashable, Sendable {
        /// The payload is longer than
        /// ``GossipConfiguration/maximumPayloadSize``.
        case payloadTooLarge
        /// The node was stopped.
        case stopped
    }

    /// What went wrong.
    public var code: Code
    /// Details for people: sizes and limits.
    public var detail: String

    /// Creates an error.
    public init(_ code: Code, detail: String) {
        self.code = code
        self.detail = detail
    }

    /// The code and the detail, on one line.
    public var description: String { "\(code): \(detail)" }
}
