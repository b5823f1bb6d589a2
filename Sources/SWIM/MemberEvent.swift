import EventCore

/// A change in the membership as one instance sees it, for listeners.
public struct MemberEvent: Hashable, Sendable, CustomStringConvertible {
    /// What happened.
    public enum Kind: Hashable, Sendable, CustomStringConvertible {
        /// A member was seen for the first time, or came back after it was
        /// declared dead or left (with a higher incarnation).
        case joined
        /// A member is suspected of having failed.
        case suspect
        /// A suspected member is alive again: it refuted the suspicion, or
        /// restarted with its ID.
        case alive
        /// A member was declared dead.
        case dead
        /// A member left gracefully.
        case left
        /// A member alive or suspected has other metadata now: it published
        /// new metadata, or restarted with other metadata (reported after
        /// `alive` or `endpointChanged` when those apply; one back from
        /// dead or left is reported `joined` only).
        case metadataChanged
        /// A member alive or suspected is reached at another endpoint now
        /// (it restarted elsewhere with its ID). One that comes back from
        /// dead or left is reported `joined`, with its endpoint; one
        /// suspected is reported `alive` first.
        case endpointChanged

        /// The kind's name.
        public var description: String {
            switch self {
            case .joined: "joined"
            case .suspect: "suspect"
            case .alive: "alive"
            case .dead: "dead"
            case .left: "left"
            case .metadataChanged: "metadata"
            case .endpointChanged: "moved"
            }
        }
    }

    /// What happened.
    public var kind: Kind
    /// The member's record after the change.
    public var member: Member
    /// When the instance learnt of it.
    public var at: Instant

    /// Creates an event.
    public init(_ kind: Kind, member: Member, at: Instant) {
        self.kind = kind
        self.member = member
        self.at = at
    }

    /// `kind member`.
    public var description: String { "\(kind) \(member)" }
}
