import EventCore
import WireCodec

/// The voting members of a Raft group: who elects the leader and whose
/// majority commits an entry. A group starts with the members its replicas
/// are created with; each ``RaftMembershipChange`` then adds or removes one
/// member through the log (Raft dissertation §4.1, single-server changes).
///
/// A member may carry the endpoint it is reached at, so that every replica
/// learns a new member's address from the entry that adds it (``RaftNode``
/// sends to it from then on). Members are kept in ascending order of ID.
public struct RaftMembership: Hashable, Sendable {
    /// One voting member.
    public struct Member: Hashable, Sendable {
        public var id: NodeID
        /// Where the member is reached, if the change that added it said.
        public var endpoint: Endpoint?

        public init(id: NodeID, endpoint: Endpoint? = nil) {
            self.id = id
            self.endpoint = endpoint
        }
    }

    /// The most members a group may have: a membership entry stays far
    /// below any command limit (at most 28 bytes a member).
    public static let maximumMembers = 1_024

    /// The members, in ascending order of ID, without duplicates.
    public private(set) var members: [Member]

    /// A membership of `members` (in any order).
    ///
    /// - Throws: `ConfigurationError` for no member, a duplicate ID, or
    ///   more than ``maximumMembers``.
    public init(_ members: [Member]) throws(ConfigurationError) {
        let sorted = members.sorted { $0.id < $1.id }
        guard !sorted.isEmpty, sorted.count <= Self.maximumMembers,
            zip(sorted, sorted.dropFirst()).allSatisfy({ $0.id != $1.id })
        else {
            throw ConfigurationError(
                field: "members", value: "\(sorted.map(\.id))",
                allowedRange: "1 to \(Self.maximumMembers) distinct IDs")
        }
        self.members = sorted
    }

    /// The members' IDs, ascending.
    public var ids: [NodeID] { members.map(\.id) }

    /// The number of members.
    public var count: Int { members.count }

    /// Whether `id` is a member.
    public func contains(_ id: NodeID) -> Bool { position(of: id) != nil }

    /// Where member `id` is reached, if known.
    public func endpoint(of id: NodeID) -> Endpoint? { position(of: id).flatMap { members[$0].endpoint } }

    private func position(of id: NodeID) -> Int? {
        var low = 0
        var high = members.count
        while low < high {
            let middle = (low + high) / 2
            if members[middle].id < id { low = middle + 1 } else { high = middle }
        }
        return low < members.count && members[low].id == id ? low : nil
    }

    /// The membership after `change`, or nil if the change does not apply
    /// to this one: adding a member, removing a non-member, or removing
    /// the last member.
    func applying(_ change: RaftMembershipChange) -> RaftMembership? {
        var changed = self
        switch change {
        case .add(let id, let endpoint):
            guard !contains(id), members.count < Self.maximumMembers else { return nil }
            let at = members.firstIndex { $0.id > id } ?? members.count
            changed.members.insert(Member(id: id, endpoint: endpoint), at: at)
        case .remove(let id):
            guard let at = position(of: id), members.count > 1 else { return nil }
            changed.members.remove(at: at)
        }
        return changed
    }
}

/// A change of a group's membership by one member: what
/// ``RaftReplica/proposeMembershipChange(_:)`` and
/// ``RaftNode/changeMembership(_:completion:)`` take.
public enum RaftMembershipChange: Hashable, Sendable {
    /// Adds member `id`, reached at `endpoint` (which ``RaftNode`` needs;
    /// a bare ``RaftReplica`` may leave it out).
    case add(NodeID, endpoint: Endpoint?)
    /// Removes member `id` (the leader itself included: it leads until the
    /// change commits, then steps down).
    case remove(NodeID)
}

extension RaftMembership: WireCodable {
    /// Writes the count (a varint), then each member: its ID (8 bytes), a
    /// byte saying whether an endpoint follows (0 or 1), the endpoint.
    public func encode(to writer: inout WireWriter) {
        writer.writeVarint(UInt64(members.count))
        for member in members {
            member.id.encode(to: &writer)
            if let endpoint = member.endpoint {
                writer.writeUInt8(1)
                endpoint.encode(to: &writer)
            } else {
                writer.writeUInt8(0)
            }
        }
    }

    /// Reads what ``encode(to:)`` writes.
    ///
    /// - Throws: `WireError` `.truncated`, `.invalidValue` (no member, more
    ///   than ``maximumMembers``, IDs not strictly ascending, a presence
    ///   byte other than 0 or 1, an unknown address family), and the
    ///   varint errors.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        let count = try reader.readVarint()
        guard count >= 1, count <= UInt64(Self.maximumMembers) else {
            throw WireError(.invalidValue, offset: start, detail: "a membership of \(count) members (1 to \(Self.maximumMembers))")
        }
        var members: [Member] = []
        members.reserveCapacity(Int(count))
        for _ in 0..<count {
            let at = reader.offset
            let id = try NodeID(from: &reader)
            if let last = members.last, last.id >= id {
                throw WireError(.invalidValue, offset: at, detail: "membership IDs not strictly ascending")
            }
            let presence = reader.offset
            switch try reader.readUInt8() {
            case 0: members.append(Member(id: id))
            case 1: members.append(Member(id: id, endpoint: try Endpoint(from: &reader)))
            case let byte:
                throw WireError(.invalidValue, offset: presence, detail: "endpoint presence byte \(byte) is neither 0 nor 1")
            }
        }
        self.members = members
    }
}

extension RaftMembership {
    /// The membership a ``RaftEntry/Kind/membership`` entry holds, or nil
    /// if its command does not decode as one.
    init?(entry: RaftEntry) {
        guard let membership = entry.command.withUnsafeBytes({ try? RaftMembership(decoding: $0) }) else { return nil }
        self = membership
    }

    /// Why membership entry `entry` cannot be what a leader wrote, or nil.
    static func problem(in entry: RaftEntry) -> String? {
        RaftMembership(entry: entry) == nil ? "membership entry \(entry.index) does not decode" : nil
    }

    /// The entry at (`term`, `index`) holding this membership.
    func entry(term: UInt64, index: UInt64) -> RaftEntry {
        var writer = WireWriter(capacity: 16 + members.count * 28)
        encode(to: &writer)
        return RaftEntry(term: term, index: index, kind: .membership, command: writer.takeBytes())
    }
}
