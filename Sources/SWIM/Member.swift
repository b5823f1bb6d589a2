import EventCore
import WireCodec

/// One member of the cluster as a SWIM instance knows it.
public struct Member: Hashable, Sendable, CustomStringConvertible {
    // The stored properties are ordered by alignment, so a record takes 48
    // bytes rather than 56: every member of a large cluster holds one per
    // other member (see MemberTable).

    /// The member's identity (unique per process run).
    public var id: NodeID
    /// The largest incarnation a message may carry (2⁶²): far beyond any a
    /// member reaches by refuting, changing its metadata and rejoining, and
    /// low enough that raising one above it (`max(ours, claimed) + 1`)
    /// cannot overflow. The decoder refuses more (`.invalidValue`), so a
    /// datagram claiming `UInt64.max` is dropped and counted, not a trap.
    public static let maximumIncarnation: UInt64 = 1 << 62

    /// The largest incarnation a claim about a member may name for the
    /// member to refute it (2⁶¹): a member ignores (and counts, in
    /// ``SWIMCounters/absurdIncarnations``) a claim about itself above it
    /// and above its own incarnation. (A claim at or below its own, as a
    /// peer's real suspicion after a refutation, is refuted as usual.)
    /// So its own incarnation (raised by refutations, metadata changes and
    /// a leave, one at a time) stays far below ``maximumIncarnation``, and
    /// every peer, which applies updates up to that, takes its refutation.
    /// A forged claim above it still wins over the member, as any forged
    /// update may without authentication (see CONTRIBUTING.md), but it
    /// cannot push the member into numbers no peer would read.
    public static let maximumClaimedIncarnation: UInt64 = 1 << 61

    /// The member's incarnation number: only the member itself raises it,
    /// to refute a suspicion, to change its metadata or to rejoin.
    public var incarnation: UInt64
    /// Application-defined bytes the member publishes about itself (at most
    /// ``SWIMConfiguration/maximumMetadataSize``).
    public var metadata: [UInt8]
    /// Where it is reached (its advertised endpoint).
    public var endpoint: Endpoint
    /// What it is believed to be.
    public var status: MemberStatus

    /// Creates a member record.
    public init(id: NodeID, endpoint: Endpoint, incarnation: UInt64, status: MemberStatus, metadata: [UInt8] = []) {
        self.id = id
        self.endpoint = endpoint
        self.incarnation = incarnation
        self.status = status
        self.metadata = metadata
    }

    /// The bytes of the fields every encoding of a member carries: ID,
    /// endpoint, incarnation, and metadata with its length. A push-pull
    /// adds a status byte (``pushPullEncodedSize``), an alive update a tag
    /// byte (``SWIMUpdate/encodedSize``).
    var fieldsEncodedSize: Int {
        8 + endpoint.encodedSize + WireWriter.varintSize(incarnation)
            + WireWriter.varintSize(UInt64(metadata.count)) + metadata.count
    }

    /// The bytes this member takes in a push-pull's member list: its
    /// fields and its status.
    var pushPullEncodedSize: Int { fieldsEncodedSize + 1 }

    /// `id@endpoint status#incarnation`.
    public var description: String { "\(id)@\(endpoint) \(status)#\(incarnation)" }
}
