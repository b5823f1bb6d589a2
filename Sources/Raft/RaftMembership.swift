import EventCore
import WireCodec

/// The members of a Raft group: the voters, who elect the leader and whose
/// majority commits an entry, and the learners, who are sent the log but
/// do not vote and are not counted (a new member catching up, Raft
/// dissertation §4.2.1, as etcd raft's learners). A group starts with the
/// voters its replicas are created with; each ``RaftMembershipChange``
/// then changes one member through the log (§4.1, single-server changes).
///
/// A member may carry the endpoint it is reached at, so that every replica
/// learns a new member's address from the entry that adds it (``RaftNode``
/// sends to it from then on). Members are kept in ascending order of ID.
public struct RaftMembership: Hashable, Sendable {
    /// One member.
    public struct Member: Hashable, Sendable {
        public var id: NodeID
        /// Where the member is reached, if the change that added it said.
        public var endpoint: Endpoint?

        public init(id: NodeID, endpoint: Endpoint? = nil) {
            self.id = id
            self.endpoint = endpoint
        }
    }

    /// The most members (voters and learners) a group may have: a
    /// membership entry stays far below any command limit (at most 28
    /// bytes a member).
    public static let maximumMembers = 1_024

    /// The voters, in ascending order of ID, without duplicates.
    public private(set) var members: [Member]
    /// The learners, in ascending order of ID, none a voter.
    public private(set) var learners: [Member]

    /// A membership of voters `members` and `learners` (in any order).
    ///
    /// - Throws: `ConfigurationError` for no voter, a duplicate ID (among
    ///   both), or more than ``maximumMembers`` in all.
    public init(_ members: [Member], learners: [Member] = []) throws(ConfigurationError) {
        let sorted = members.sorted { $0.id < $1.id }
        let sortedLearners = learners.sorted { $0.id < $1.id }
        let every = (sorted + sortedLearners).map(\.id)
        guard !sorted.isEmpty, every.count <= Self.maximumMembers, Set(every).count == every.count else {
            throw ConfigurationError(
                field: "members", value: "\(sorted.map(\.id)), learners \(sortedLearners.map(\.id))",
                allowedRange: "1 to \(Self.maximumMembers) distinct IDs, at least one a voter")
        }
        self.members = sorted
        self.learners = sortedLearners
    }

    /// The voters' IDs, ascending.
    public var ids: [NodeID] { members.map(\.id) }

    /// The learners' IDs, ascending.
    public var learnerIDs: [NodeID] { learners.map(\.id) }

    /// The number of voters.
    public var count: Int { members.count }

    /// Whether `id` is a voter.
    public func contains(_ id: NodeID) -> Bool { Self.position(of: id, in: members) != nil }

    /// Whether `id` is a learner.
    public func hasLearner(_ id: NodeID) -> Bool { Self.position(of: id, in: learners) != nil }

    /// Whether `id` is a voter or a learner: a replica the leader sends
    /// the log to.
    public func includes(_ id: NodeID) -> Bool { contains(id) || hasLearner(id) }

    /// Where member `id` (a voter or a learner) is reached, if known.
    public func endpoint(of id: NodeID) -> Endpoint? {
        if let at = Self.position(of: id, in: members) { return members[at].endpoint }
        return Self.position(of: id, in: learners).flatMap { learners[$0].endpoint }
    }

    private static func position(of id: NodeID, in list: [Member]) -> Int? {
        var low = 0
        var high = list.count
        while low < high {
            let middle = (low + high) / 2
            if list[middle].id < id { low = middle + 1 } else { high = middle }
        }
        return low < list.count && list[low].id == id ? low : nil
    }

    private static func insert(_ member: Member, into list: inout [Member]) {
        list.insert(member, at: list.firstIndex { $0.id > member.id } ?? list.count)
    }

    /// The membership after `change`, or nil if the change does not apply
    /// to this one: adding a member (voter or learner), promoting one that
    /// is not a learner, removing one that is neither, removing the last
    /// voter, or growing past ``maximumMembers``.
    func applying(_ change: RaftMembershipChange) -> RaftMembership? {
        var changed = self
        switch change {
        case .add(let id, let endpoint), .addLearner(let id, let endpoint):
            guard !includes(id), members.count + learners.count < Self.maximumMembers else {
                return nil
            }
            if case .add = change {
                Self.insert(Member(id: id, endpoint: endpoint), into: &changed.members)
            } else {
                Self.insert(Member(id: id, endpoint: endpoint), into: &changed.learners)
            }
        case .promote(let id):
            guard let at = Self.position(of: id, in: learners) else { return nil }
            Self.insert(changed.learners.remove(at: at), into: &changed.members)
        case .remove(let id):
            if let at = Self.position(of: id, in: members) {
                guard members.count > 1 else { return nil }
                changed.members.remove(at: at)
            } else if let at = Self.position(of: id, in: learners) {
                changed.learners.remove(at: at)
            } else {
                return nil
            }
        }
        return changed
    }
}

/// A change of a group's membership by one member: what
/// ``RaftReplica/proposeMembershipChange(_:)`` and
/// ``RaftNode/changeMembership(_:completion:)`` take.
public enum RaftMembershipChange: Hashable, Sendable {
    /// Adds voter `id`, reached at `endpoint` (which ``RaftNode`` needs;
    /// a bare ``RaftReplica`` may leave it out). It counts in majorities
    /// at once, caught up or not: add a member far behind as a learner
    /// first.
    case add(NodeID, endpoint: Endpoint?)
    /// Adds learner `id`: sent the log, never counted; promote it once it
    /// has caught up (``RaftNode/replicationProgress(of:)`` on the leader).
    case addLearner(NodeID, endpoint: Endpoint?)
    /// Makes learner `id` a voter.
    case promote(NodeID)
    /// Removes voter or learner `id` (the leader itself included: it leads
    /// until the change commits, then steps down).
    case remove(NodeID)
}

extension RaftMembershipChange: CustomStringConvertible {
    /// The change in words: `add learner 0000000000000004 at 10.0.0.4:7946`.
    public var description: String {
        switch self {
        case .add(let id, let endpoint): "add \(id)" + (endpoint.map { " at \($0)" } ?? "")
        case .addLearner(let id, let endpoint): "add learner \(id)" + (endpoint.map { " at \($0)" } ?? "")
        case .promote(let id): "promote \(id)"
        case .remove(let id): "remove \(id)"
        }
    }
}

extension RaftMembership: WireCodable {
    /// Writes the voters, then the learners, each as a count (a varint)
    /// and each member: its ID (8 bytes), a byte saying whether an
    /// endpoint follows (0 or 1), the endpoint.
    public func encode(to writer: inout WireWriter) {
        for list in [members, learners] {
            writer.writeVarint(UInt64(list.count))
            for member in list {
                member.id.encode(to: &writer)
                if let endpoint = member.endpoint {
                    writer.writeUInt8(1)
                    endpoint.encode(to: &writer)
                } else {
                    writer.writeUInt8(0)
                }
            }
        }
    }

    /// Reads what ``encode(to:)`` writes.
    ///
    /// - Throws: `WireError` `.truncated`, `.invalidValue` (no voter, more
    ///   than ``maximumMembers`` in all, IDs not strictly ascending in a
    ///   list, a learner that is a voter, a presence byte other than 0 or
    ///   1, an unknown address family), and the varint errors.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        let voters = try Self.readMembers(&reader, atMost: Self.maximumMembers)
        guard !voters.isEmpty else {
            throw WireError(.invalidValue, offset: start, detail: "a membership without a voter")
        }
        let learnersStart = reader.offset
        let learners = try Self.readMembers(&reader, atMost: Self.maximumMembers - voters.count)
        for learner in learners where Self.position(of: learner.id, in: voters) != nil {
            throw WireError(.invalidValue, offset: learnersStart, detail: "\(learner.id) is both a voter and a learner")
        }
        members = voters
        self.learners = learners
    }

    private static func readMembers(_ reader: inout WireReader, atMost limit: Int) throws(WireError) -> [Member] {
        let start = reader.offset
        let count = try reader.readVarint()
        guard count <= UInt64(limit) else {
            throw WireError(.invalidValue, offset: start, detail: "\(count) members in a list, above \(limit)")
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
        return members
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
        var writer = WireWriter(capacity: 16 + (members.count + learners.count) * 28)
        encode(to: &writer)
        return RaftEntry(term: term, index: index, kind: .membership, command: writer.takeBytes())
    }
}
