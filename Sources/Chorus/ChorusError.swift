/// Why a ``ChorusNode`` refused to start a protocol.
public struct ChorusError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: Hashable, Sendable {
        /// SWIM does not yet see the cluster's first members, all alive and
        /// no others (``ChorusNode/initialMembers(count:)``): wait for it
        /// to converge.
        case membersNotSettled
        /// The members given for a protocol that runs on this node do not
        /// include it.
        case notAMember
        /// The protocol (CASPaxos, or this Raft group) already runs on the
        /// node.
        case alreadyRunning
        /// A replica joining a Raft group (``ChorusNode/startGroup(_:on:joining:storage:stateMachine:configuration:seed:policy:)``
        /// with `joining`) was given members that include this node: they
        /// must be the group's members now, which it is not yet.
        case alreadyAMember
    }

    /// What went wrong.
    public var code: Code
    /// Details for people: the members seen, the group.
    public var detail: String

    /// Creates an error.
    public init(_ code: Code, detail: String) {
        self.code = code
        self.detail = detail
    }

    /// The code and the detail, on one line.
    public var description: String { "\(code): \(detail)" }
}
