/// Why a SWIM operation was refused.
public struct SWIMError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: Hashable, Sendable {
        /// A broadcast payload is longer than
        /// ``SWIMConfiguration/effectiveBroadcastLimit``.
        case broadcastTooLarge
        /// Metadata is longer than ``SWIMConfiguration/maximumMetadataSize``.
        case metadataTooLarge
        /// ``SWIMConfiguration/broadcastQueueCapacity`` broadcasts are
        /// already waiting to be sent.
        case broadcastQueueFull
        /// The member has left (or is leaving) or its node was stopped.
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
