import EventCore
import WireCodec

/// One CASPaxos message: the body of a frame with protocol id
/// ``ProtocolID/casPaxos``.
///
/// Layout: a tag byte (``Kind``), then the fields in the order of the
/// case's associated values. Request IDs are 8 bytes little-endian (they
/// start at a random 64-bit value); counters and ages are varints;
/// node IDs are 8 bytes little-endian; keys and values are length-prefixed
/// byte strings (a value is preceded by a presence byte, absent for the
/// empty register); ballots are a varint counter and an 8-byte proposer.
/// Every reply carries the request ID of the message it answers, which is
/// how a proposer matches answers to attempts (a reply whose ID it does not
/// know is stale and ignored).
///
/// A frame body is one message, or a batch: the tag byte 15, a
/// varint count (1 ... ``CASPaxosConfiguration/maximumMessagesPerFrame``),
/// then that many messages back to back, each encoded as alone (a batch
/// never nests). Drivers coalesce the messages of a loop turn to one
/// destination into batches with a ``CASPaxosOutbox`` and read frames with
/// ``decodeFrameBody(_:configuration:into:)``.
public enum CASPaxosMessage: Hashable, Sendable {
    /// Phase 1: promise `ballot` for `key` and tell me what you accepted.
    /// `age` is the proposer's age (garbage collection); `version` the
    /// version and digest of its configuration
    /// (``AcceptorQuorums/configurationVersion``), which a membership
    /// change's fence checks.
    case prepare(requestID: UInt64, key: [UInt8], ballot: Ballot, age: UInt64, version: ConfigurationVersion)
    /// The acceptor promised: its accepted ballot (``Ballot/zero`` for
    /// none) and value. When it accepted nothing for the key, it names its
    /// removal floor too (nil if it never removed a key): every ballot it
    /// accepted for a key it then removed is below that floor, so a
    /// proposer whose earlier accept is below it cannot tell whether that
    /// accept was chosen and collected since.
    case promise(requestID: UInt64, accepted: Ballot, value: [UInt8]?, removalFloor: Ballot?)
    /// A ``promise(requestID:accepted:value:removalFloor:)`` that names
    /// the accepted value's ``RegisterState/parent``: an acceptor answers
    /// so when it knows it (a proposer sent it with
    /// ``acceptWithParent(requestID:key:ballot:age:value:nextBallot:version:parent:)``).
    case promiseWithParent(requestID: UInt64, accepted: Ballot, value: [UInt8]?, removalFloor: Ballot?, parent: Ballot)
    /// A read's phase 1: a ``prepare(requestID:key:ballot:age:version:)``
    /// that an acceptor holding no register for `key` answers without
    /// storing the promise (``unrecordedPromise(requestID:removalFloor:)``),
    /// so that a read of an absent key leaves nothing to store, sync or
    /// collect. An acceptor that holds the key answers it as a prepare.
    case readPrepare(requestID: UInt64, key: [UInt8], ballot: Ballot, age: UInt64, version: ConfigurationVersion)
    /// The answer to a ``readPrepare(requestID:key:ballot:age:version:)``
    /// for a key the acceptor holds no register for, with a ballot it
    /// would promise: it accepted nothing for the key, and stored no
    /// promise, so nothing may follow but the end of the read (no accept,
    /// no cached ballot). `removalFloor` as in a
    /// ``promise(requestID:accepted:value:removalFloor:)``.
    case unrecordedPromise(requestID: UInt64, removalFloor: Ballot?)
    /// Phase 2: accept `value` at `ballot` for `key`; with `nextBallot`
    /// (the one-round-trip optimization), then promise it at once. `age`
    /// and `version` as in a prepare.
    case accept(
        requestID: UInt64, key: [UInt8], ballot: Ballot, age: UInt64, value: [UInt8]?, nextBallot: Ballot?,
        version: ConfigurationVersion)
    /// An ``accept(requestID:key:ballot:age:value:nextBallot:version:)``
    /// that names `parent`, the ballot of the value `value` was computed
    /// from (below `ballot`: an acceptor drops one whose parent is not),
    /// which the acceptor keeps with the value (``RegisterState/parent``)
    /// and names in its promises. Sent where
    /// ``CASPaxosConfiguration/isParentBallotEnabled``. The next ballot
    /// comes last (on the wire it stays where an accept has it): before
    /// the 8-byte fields, its optional's extra byte would take 8, and a
    /// message past 104 bytes makes the effect that sends it
    /// (``CASPaxosEffect/send(_:to:)``) one the compiler copies through a
    /// call to `memmove`.
    case acceptWithParent(
        requestID: UInt64, key: [UInt8], ballot: Ballot, age: UInt64, value: [UInt8]?, version: ConfigurationVersion,
        parent: Ballot, nextBallot: Ballot?)
    /// The acceptor accepted (and promised the next ballot, if one came).
    case accepted(requestID: UInt64)
    /// Refused: the acceptor has seen `highest`, at least the ballot asked.
    /// `neverAccepted` tells whether the acceptor knows it never accepted
    /// the refused ballot: false when it may have (it also refuses a copy
    /// of an accept it took and has replaced since with a later ballot's),
    /// so only a refusal with `neverAccepted` proves an accept unwritten
    /// there (see ``RegisterState``).
    case conflict(requestID: UInt64, highest: Ballot, neverAccepted: Bool)
    /// Refused: garbage collection requires this proposer to be at least
    /// `minimumAge` old (its cache may be stale).
    case staleAge(requestID: UInt64, minimumAge: UInt64)
    /// Refused: a membership change fenced off configurations older than
    /// `minimumVersion`, and other configurations of its version, and the
    /// proposer's is one of them (its quorums need not meet the
    /// cluster's; see ``ConfigurationVersion/passes(_:)``).
    case staleConfiguration(requestID: UInt64, minimumVersion: ConfigurationVersion)
    /// Refused: the acceptor holds
    /// ``CASPaxosConfiguration/maximumRegisters`` registers, none of them
    /// the key's and none holding only a promise (it would have taken the
    /// oldest such one's room), and stored nothing: the promise or
    /// acceptance would have needed a register of its own. (A ballot at or below its removal
    /// floor is answered with a conflict instead, as by an acceptor with
    /// room: it may have accepted that ballot for a key it removed since.
    /// A ``rewriteTombstone(requestID:key:ballot:age:version:)`` of a key
    /// it does not hold needs no register.)
    case registersFull(requestID: UInt64)

    /// Garbage collection's phase 2 for a tombstone (its re-write, which
    /// every acceptor must take): an ``accept(requestID:key:ballot:age:value:nextBallot:version:)``
    /// of no value and no next ballot, which an acceptor holding no
    /// register for `key` takes without storing one, at any ballot: it
    /// raises its removal floor to `ballot` if below, as if it had accepted
    /// the tombstone and removed it at once, and answers
    /// ``accepted(requestID:)`` (the key absent, its floor at or above the
    /// ballot, is the state that leaves). An acceptor holding the key takes
    /// it as that accept, except a full one whose register for the key
    /// holds only a promise at or below `ballot` (the collection's own,
    /// stored by a fold; see ``collectionPrepare(requestID:key:ballot:age:version:)``):
    /// it removes the register, its floor raised to `ballot`, as if it had
    /// lacked the key, so the collection leaves the room it took free. So a
    /// full acceptor that does not hold the key no longer refuses the
    /// collection.
    case rewriteTombstone(requestID: UInt64, key: [UInt8], ballot: Ballot, age: UInt64, version: ConfigurationVersion)
    /// Garbage collection's phase 1 for its re-write: a
    /// ``prepare(requestID:key:ballot:age:version:)`` that an acceptor
    /// holding ``CASPaxosConfiguration/maximumRegisters`` registers, none
    /// of them the key's, promises at any ballot, raising its removal floor
    /// to `ballot` if below (durable, as a stored promise is), where a
    /// prepare would need a register and none can be made: no register
    /// holds only a promise to fold, or the oldest one's fold would leave
    /// `ballot` at or below the least ballot above the raised floor (the
    /// floor at least that register's promise's predecessor), which an
    /// absent key is taken to have promised (a prepare is refused with
    /// ``registersFull(requestID:)`` in the first case; in the second it
    /// stores no register, and is refused below that least ballot). The
    /// key is absent, so nothing accepted for it is above the floor; the
    /// floor refuses every plain prepare and accept at or below it, for
    /// every key the acceptor lacks (the collection's own write-back of a
    /// value included), and the collection's
    /// ``rewriteTombstone(requestID:key:ballot:age:version:)`` is taken. Otherwise (a fold makes room for the promise, or the
    /// acceptor has room or holds the key) answered as a prepare, whose
    /// stored promise takes a write-back of a value as well. So acceptors
    /// that are full and do not hold the key no longer stop its collection.
    case collectionPrepare(requestID: UInt64, key: [UInt8], ballot: Ballot, age: UInt64, version: ConfigurationVersion)

    /// Garbage collection, to a proposer: forget the cached ballot of
    /// `key`, fast-forward past `ballot` and grow one age older.
    case invalidate(requestID: UInt64, key: [UInt8], ballot: Ballot)
    /// The proposer did: it is now `age` old.
    case invalidated(requestID: UInt64, proposer: NodeID, age: UInt64)
    /// Garbage collection, to an acceptor: refuse messages from these
    /// proposers while they are younger than these ages.
    case setMinimumAges(requestID: UInt64, ages: [ProposerAge])
    /// Garbage collection, to an acceptor: remove `key` if it still holds
    /// the tombstone accepted at `ballot`.
    case removeTombstone(requestID: UInt64, key: [UInt8], ballot: Ballot)
    /// Done (the answer to ``setMinimumAges(requestID:ages:)``,
    /// ``removeTombstone(requestID:key:ballot:)``,
    /// ``reconfigure(requestID:quorums:)`` and
    /// ``setMinimumVersion(requestID:version:)``).
    case acknowledged(requestID: UInt64)

    /// Membership change, to a proposer: adopt `quorums` if its version is
    /// higher than the one in use.
    case reconfigure(requestID: UInt64, quorums: AcceptorQuorums)
    /// The answer to a ``reconfigure(requestID:quorums:)`` a proposer does
    /// not take: it is in `current`, of a higher version than the one sent,
    /// or another configuration of the same version. An acknowledgement
    /// would let the change go on as if it were where the change put it.
    /// The change stops; its proposer adopts nothing from the answer.
    case configurationRefused(requestID: UInt64, current: AcceptorQuorums)
    /// Membership change, to an acceptor: list your keys in byte order,
    /// starting after `after` (from the first, if nil); with
    /// `raisingFloorTo` (to an acceptor being added), first raise your
    /// removal floor to it; and first raise your minimum configuration
    /// version to `minimumVersion` (the configuration the re-scan runs in,
    /// which every proposer adopted: the fence, before the listing).
    case listKeys(requestID: UInt64, after: [UInt8]?, raisingFloorTo: Ballot?, minimumVersion: ConfigurationVersion)
    /// Up to ``CASPaxosConfiguration/maximumKeysPerListing`` keys, whether
    /// they are the last, and the acceptor's removal floor.
    case keyList(requestID: UInt64, keys: [[UInt8]], isComplete: Bool, removalFloor: Ballot)
    /// Membership change, to an acceptor, once every proposer adopted the
    /// change's final configuration (of `version`): refuse prepares and
    /// accepts of configurations older than it, or of its version and
    /// another digest, from now on (the fence).
    case setMinimumVersion(requestID: UInt64, version: ConfigurationVersion)

    /// The tag byte of each case, and of a batch of messages.
    enum Kind: UInt8 {
        case promise = 2
        case accepted = 4, conflict, staleAge, invalidate, invalidated, setMinimumAges, removeTombstone, acknowledged
        case reconfigure
        case keyList = 14
        /// Not a message: a frame body holding several (see the type's
        /// documentation).
        case batch
        /// Added after the batch tag.
        case configurationRefused = 16
        /// The messages that carry a configuration version, with its digest
        /// (``ConfigurationVersion``), under tags of their own: their
        /// layouts without the version were 1, 3 and 13, and with the
        /// version alone 17 ... 21, which this build refuses as unknown, as
        /// the builds before it refuse these. Inside a batch, where
        /// messages follow each other with no length of their own, a layout
        /// read as another could shift every message after it; an unknown
        /// tag refuses the whole frame instead.
        case prepare = 22, accept, listKeys, setMinimumVersion, staleConfiguration
        /// Added after them; a build before it refuses a frame holding one
        /// as of an unknown tag.
        case registersFull
        /// Added after it, the same way (a proposer's reads need acceptors
        /// of this build or later).
        case readPrepare, unrecordedPromise
        /// Added after them, the same way (a proposer's collections need
        /// acceptors of this build or later).
        case rewriteTombstone
        /// Added with it, the same way.
        case collectionPrepare
        /// A promise and an accept that name the value's parent
        /// (``RegisterState/parent``): the layouts of 2 and 23, then the
        /// parent's ballot. Added after them, the same way (a proposer
        /// that sends parents needs acceptors of this build or later; an
        /// acceptor names one only if such a proposer sent it).
        case promiseWithParent, acceptWithParent
    }

    /// The request ID the message carries.
    public var requestID: UInt64 {
        switch self {
        case .prepare(let id, _, _, _, _), .readPrepare(let id, _, _, _, _), .promise(let id, _, _, _),
            .promiseWithParent(let id, _, _, _, _), .unrecordedPromise(let id, _), .accept(let id, _, _, _, _, _, _),
            .acceptWithParent(let id, _, _, _, _, _, _, _), .rewriteTombstone(let id, _, _, _, _),
            .collectionPrepare(let id, _, _, _, _),
            .accepted(let id), .conflict(let id, _, _), .staleAge(let id, _), .staleConfiguration(let id, _),
            .invalidate(let id, _, _), .invalidated(let id, _, _), .setMinimumAges(let id, _),
            .removeTombstone(let id, _, _), .acknowledged(let id), .reconfigure(let id, _),
            .configurationRefused(let id, _), .listKeys(let id, _, _, _), .keyList(let id, _, _, _),
            .setMinimumVersion(let id, _), .registersFull(let id):
            return id
        }
    }
}

/// A proposer and an age, in ``CASPaxosMessage/setMinimumAges(requestID:ages:)``.
public struct ProposerAge: Hashable, Sendable {
    /// The largest age a message may carry (2⁶²), as
    /// ``Ballot/maximumCounter`` is for counters: a proposer grows one
    /// older per garbage-collection invalidation, so no real age comes
    /// near it, and the decoder refuses more. A proposer that takes an age
    /// from the network (a ``CASPaxosMessage/staleAge(requestID:minimumAge:)``)
    /// stops at this one: it stays there when invalidated and sends no
    /// prepare or accept any more (its proposals fail
    /// ``CASPaxosError/Code/notAvailable``, or ``CASPaxosError/Code/conflict``
    /// if an earlier attempt sent accepts).
    public static let maximumAge: UInt64 = 1 << 62

    /// The proposer.
    public var proposer: NodeID
    /// Its age.
    public var age: UInt64

    /// Creates a pair.
    public init(proposer: NodeID, age: UInt64) {
        self.proposer = proposer
        self.age = age
    }
}
