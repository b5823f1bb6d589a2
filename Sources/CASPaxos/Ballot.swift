import EventCore
import WireCodec

/// A CASPaxos ballot number: a proposer's counter with the proposer's ID as
/// the tiebreaker, so ballots of different proposers never collide.
/// Ordered by counter, then by proposer.
///
/// ``zero`` (counter 0) means "no ballot": acceptors never promise or
/// accept it. Counters above ``maximumCounter`` are absurd: the decoder
/// refuses them, so fast-forwarding past a ballot from the network can
/// never overflow.
public struct Ballot: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The proposer's counter; 0 only in ``zero``.
    public var counter: UInt64
    /// The proposer that made the ballot.
    public var proposer: NodeID

    /// The largest counter a ballot may carry (2⁶²): at a million
    /// proposals a second, 146,000 years of counting.
    public static let maximumCounter: UInt64 = 1 << 62

    /// The highest counter a proposer's counter follows from the network
    /// (2⁶⁰): an honest cluster never comes near it (36,000 years at a
    /// million ballots a second), so a ballot above it was forged or
    /// corrupted. A proposer refused for such a ballot beats it for that
    /// key alone, with a ballot above ``ownCounterLimit``, so that one
    /// absurd ballot cannot exhaust the counter every key's ballots come
    /// from (``Proposer``), and a forged ballot just below this limit
    /// leaves the proposer 2⁶⁰ ballots of its own.
    public static let followedCounterLimit: UInt64 = 1 << 60
    /// The highest counter a proposer draws its own ballots up to (2⁶¹);
    /// the ballots that beat one above ``followedCounterLimit`` are drawn
    /// above it, so that the two never give one ballot twice. An acceptor
    /// keeps its removal floor at or below it (``Acceptor``): a proposer's
    /// own ballots, even after it followed a forge to the followed limit,
    /// are never too high for the floor.
    public static let ownCounterLimit: UInt64 = 1 << 61

    /// "No ballot": below every real one.
    public static let zero = Ballot(counter: 0, proposer: NodeID(0))

    /// Creates a ballot.
    public init(counter: UInt64, proposer: NodeID) {
        self.counter = counter
        self.proposer = proposer
    }

    /// Orders by counter, then by proposer ID.
    public static func < (lhs: Ballot, rhs: Ballot) -> Bool {
        (lhs.counter, lhs.proposer.rawValue) < (rhs.counter, rhs.proposer.rawValue)
    }

    /// The least ballot above this one (the next proposer ID at the same
    /// counter).
    var successor: Ballot {
        proposer.rawValue < UInt64.max
            ? Ballot(counter: counter, proposer: NodeID(proposer.rawValue + 1))
            : Ballot(counter: counter + 1, proposer: NodeID(0))
    }

    /// The greatest ballot below this one: the previous proposer ID at the
    /// same counter, or, below proposer ID 0, the last proposer ID at the
    /// counter before; ``zero`` below the least real ballot (counter 1,
    /// proposer ID 0), and for ``zero``.
    var predecessor: Ballot {
        if proposer.rawValue > 0 { return Ballot(counter: counter, proposer: NodeID(proposer.rawValue - 1)) }
        return counter > 1 ? Ballot(counter: counter - 1, proposer: NodeID(UInt64.max)) : .zero
    }

    /// `counter.proposer`, as in `17.00000000000000a3`.
    public var description: String { "\(counter).\(proposer)" }
}

extension Ballot: WireCodable {
    /// Writes the counter (a varint) and the proposer (8 bytes).
    public func encode(to writer: inout WireWriter) {
        writer.writeVarint(counter)
        writer.write(proposer)
    }

    /// Reads what ``encode(to:)`` writes.
    ///
    /// - Throws: `WireError` `.truncated` if the bytes end early,
    ///   `.invalidValue` for a counter above ``maximumCounter``.
    public init(from reader: inout WireReader) throws(WireError) {
        counter = try reader.readVarint(atMost: Self.maximumCounter, what: "ballot counter")
        proposer = try reader.read(NodeID.self)
    }
}
