import EventCore

/// The settings of a CASPaxos node: size limits, timeouts and bounds of the
/// proposer and the acceptor. ``validate()`` checks every field; the
/// proposer, the acceptor and the node call it.
public struct CASPaxosConfiguration: Hashable, Sendable {
    /// The longest key, in bytes (1 ... 65,536). Default 256.
    public var maximumKeySize = 256
    /// The longest value, in bytes (0 ... 16 MiB less ``maximumKeySize``
    /// and 128 bytes: a message must hold both). Default 8,192. A change
    /// producing a longer value fails with ``CASPaxosError/Code/tooLarge``;
    /// the decoder refuses longer values from the network.
    public var maximumValueSize = 8_192
    /// The longest CASPaxos message, frame header included, in bytes; at
    /// least the key and value limits plus 128 bytes of overhead, at most
    /// 16 MiB. Default 16,384 (UDPTransport fragments above the datagram
    /// size).
    public var maximumMessageSize = 16_384
    /// The most messages one frame carries (1 ... 65,536). Default 1,024.
    /// A driver coalesces the messages of a loop turn to one destination
    /// into frames of at most this many messages and
    /// ``maximumBatchSize`` bytes (a ``CASPaxosOutbox``); the decoder
    /// refuses a batch that claims more.
    public var maximumMessagesPerFrame = 1_024
    /// The longest frame that holds several messages, frame header
    /// included, in bytes (64 ... ``maximumMessageSize``). Default 1,400:
    /// UDPTransport's default datagram size, so every batch travels in one
    /// datagram, and a datagram lost loses only the messages it carries
    /// (a batch fragmented by the transport is lost whole when any one of
    /// its fragments is). A message longer than this still goes, alone in
    /// its frame, up to ``maximumMessageSize``. Set it to the transport's
    /// datagram size; larger batches save frames only where datagrams are
    /// that large (loopback, whose MTU is 64 KiB).
    public var maximumBatchSize = 1_400

    /// How long one attempt (a prepare or an accept round) waits for a
    /// quorum before it is abandoned and retried with a higher ballot
    /// (1 ms ... 1 h). Default 100 ms: a few round trips in a data centre.
    public var attemptTimeout: Duration = .milliseconds(100)
    /// How long an attempt waits for an acceptor's answer before it sends
    /// that acceptor its request again, with the same ballot (1 ms ... 1 h).
    /// The next copy waits as long as the phase has run (20, 40, 80 ms:
    /// the waits double), until a quorum answers or ``attemptTimeout`` ends
    /// the attempt, and the first never comes sooner than twice the time
    /// the proposer's phases take to reach their quorum (smoothed as TCP
    /// smooths its round-trip time), so that a slow link or a loaded
    /// acceptor is not sent copies before its answers could come. A datagram lost
    /// on the way there or back then costs this interval instead of a
    /// whole attempt: on a key others write meanwhile, an abandoned accept
    /// whose answers were lost ends indeterminate, since its retry cannot
    /// tell whether it was chosen. Prepares and accepts at one ballot are
    /// safe to repeat: an acceptor answers a copy of a prepare it promised
    /// with the same promise, and a copy of an accept it holds with
    /// ``CASPaxosMessage/accepted(requestID:)`` again. Set it at or above
    /// ``attemptTimeout`` to send each request once. Default 20 ms.
    public var resendInterval: Duration = .milliseconds(20)
    /// How long a proposal may take in all, its retries included, before it
    /// fails with a ``CASPaxosError`` (1 ms ... 1 h). Default 2 s.
    public var proposalTimeout: Duration = .seconds(2)
    /// The first back-off after a failed attempt; each further failure
    /// doubles it, up to ``maximumBackoff``, and every back-off is jittered
    /// to a random 50–100% (1 µs ... 1 h). Default 2 ms.
    public var initialBackoff: Duration = .milliseconds(2)
    /// The longest back-off between attempts (initialBackoff ... 1 h).
    /// Default 100 ms.
    public var maximumBackoff: Duration = .milliseconds(100)

    /// Proposals a proposer holds at once, queued ones included
    /// (1 ... 1,048,576). Default 4,096; more fail with
    /// ``CASPaxosError/Code/overloaded``. Garbage collection's and
    /// membership change's own proposals do not count against it (they are
    /// bounded apart: one per collection, 256 re-writes per change).
    public var maximumPendingProposals = 4_096
    /// Whether a proposer piggybacks the next prepare on its accepts and
    /// caches (ballot, value) per key, so that the next proposal on the
    /// key from this proposer costs one round trip (the paper's 1RTT
    /// optimization). It piggybacks only on a key it wrote last, and only
    /// while at least three quarters of its recent writes follow its own:
    /// where proposers write the same keys in turn it would cost round
    /// trips (see ``Proposer``).
    /// Default true.
    public var isOneRoundTripEnabled = true
    /// Whether a proposer's reads prepare with
    /// ``CASPaxosMessage/readPrepare(requestID:key:ballot:age:version:)``,
    /// which an acceptor holding no register for the key promises without
    /// storing: a read of an absent key then stores nothing and syncs
    /// nothing (see ``Proposer/read(key:now:into:)``). Builds before it
    /// drop a whole frame holding one (an unknown tag), with the other
    /// messages the frame carried: upgrade a running cluster with this
    /// off on every node, then turn it on. Default true.
    public var isReadPrepareEnabled = true
    /// Whether a garbage collection re-writes a tombstone with messages of
    /// its own:
    /// ``CASPaxosMessage/collectionPrepare(requestID:key:ballot:age:version:)``,
    /// which a full acceptor holding no register for the key promises by
    /// raising its removal floor, and
    /// ``CASPaxosMessage/rewriteTombstone(requestID:key:ballot:age:version:)``,
    /// which an acceptor holding no register for the key takes by raising
    /// its removal floor, storing nothing: full acceptors that do not hold
    /// the key (never had it, or removed it in an earlier run of the
    /// collection) do not stop it (off, they refuse with
    /// ``CASPaxosMessage/registersFull(requestID:)`` and the collection
    /// starts over until room frees). Builds before it drop a whole frame
    /// holding one, with the other messages in it: upgrade a running
    /// cluster with this off on every node, then turn it on. Default true.
    public var isTombstoneRewriteEnabled = true
    /// Whether accepts name the parent of their value: the ballot of the
    /// value the change was applied to (``RegisterState/parent``), which
    /// acceptors store with it and name in their promises. A proposal
    /// whose accept may have been written, and whose retry finds another
    /// proposer's value above it, then tells whether that value was built
    /// on its own (it writes that value back and succeeds: its change took
    /// effect once) or on an older one (its own can no longer be chosen
    /// once the retry's is, and the change is applied afresh), where
    /// without parents it fails indeterminate (``CASPaxosError/Code/conflict``).
    /// The messages go under tags of their own
    /// (``CASPaxosMessage/accept(requestID:key:ballot:age:value:nextBallot:version:parent:)``
    /// and ``CASPaxosMessage/promise(requestID:accepted:value:removalFloor:parent:)``
    /// with a parent), which builds before them refuse, dropping the whole
    /// frame: upgrade a running cluster with this off on every node, then
    /// turn it on. Default true.
    public var isParentBallotEnabled = true
    /// Keys whose (ballot, value) a proposer caches for the one-round-trip
    /// path (1 ... 1,048,576); the oldest entry is dropped at the limit.
    /// Default 4,096.
    public var maximumCachedKeys = 4_096

    /// Registers an acceptor holds (1 ... 2³⁰). At the limit, a prepare or
    /// accept that would store a new key first takes the room of the
    /// oldest register holding a promise and nothing accepted (one a
    /// prepare left whose accept never came), keeping its promise in the
    /// removal floor (``AcceptorCounters/promiseOnlyRegistersFolded``);
    /// without one, it is refused with
    /// ``CASPaxosMessage/registersFull(requestID:)`` (counted in
    /// ``AcceptorCounters/registersRefused``): hostile traffic cannot grow
    /// an acceptor without bound. A proposal such refusals leave short of a
    /// quorum fails with ``CASPaxosError/Code/registersFull``; deleted keys
    /// free their registers once collected. Default 1,048,576.
    public var maximumRegisters = 1_048_576
    /// Proposers whose minimum age an acceptor records for garbage
    /// collection, and that one garbage collection may list (1 ...
    /// 1,048,576; in effect at most what one message carries,
    /// (``maximumMessageSize`` − 64) / 17: 960 with the default size).
    /// Every incarnation of a proposer has its
    /// own ID, so restarts add records: a
    /// ``CASPaxosMessage/setMinimumAges(requestID:ages:)`` that would pass
    /// the limit first makes room by forgetting proposers it does not list
    /// (lowest IDs first; the removal floor, not their age, refuses what a
    /// stale cache of theirs could send for a removed key), and is dropped
    /// unanswered and counted only if it lists more proposers than the
    /// limit, so hostile traffic cannot grow the map without bound.
    /// Default 512.
    public var maximumTrackedProposers = 512
    /// Keys per answer to a key listing (membership change re-scan,
    /// 1 ... 4,096), fewer where they would not fit
    /// ``maximumMessageSize``. Default 64.
    public var maximumKeysPerListing = 64

    /// How often the steps of garbage collection and membership change
    /// resend to the nodes that have not answered (1 ms ... 1 h).
    /// Default 50 ms.
    public var maintenanceRetryInterval: Duration = .milliseconds(50)
    /// Garbage collections a proposer runs at once (1 ... 65,536).
    /// Default 64. More are refused with ``CASPaxosError/Code/overloaded``
    /// rather than queued: a collection retries until it completes, so a
    /// queue behind collections waiting for an unreachable proposer would
    /// grow without bound, while a refused one leaves only its tombstone,
    /// which reads as an empty register, for a later
    /// ``CASPaxosNode/collectGarbage(key:completion:)``.
    public var maximumGarbageCollections = 64
    /// How long a run of a garbage collection, or a membership change, may
    /// go without progress (a step finished; in a change's re-scan, a page
    /// of keys listed or a key re-written) before it fails (1 ms ... 24 h):
    /// a collection then starts over, a membership change stops (see
    /// ``Proposer/changeMembership(to:proposers:now:into:)`` for how to
    /// finish it). Default 30 s. Keep it well above twice
    /// ``proposalTimeout``: a re-write waits for the proposals queued
    /// before it on its key, a client's proposal on a hot key may retry
    /// until its deadline, and the re-write then has a ``proposalTimeout``
    /// of its own (a membership change with 1 s against 2 s timed out so
    /// under six clients writing two keys).
    public var maintenanceTimeout: Duration = .seconds(30)
    /// How long a garbage collection keeps trying, run after run, before
    /// it fails (at the first failed run after which the next would start
    /// past it) with that run's error (``CASPaxosError/Code/timeout``
    /// when a listed proposer or an acceptor did not answer, named in the
    /// detail) (1 ms ... 24 h). The key reads as empty, its tombstone kept
    /// where it was not removed yet;
    /// collect it again with ``CASPaxosNode/collectGarbage(key:completion:)``
    /// once every listed proposer answers, or once one gone for good is
    /// dropped from ``CASPaxosNode/proposerEndpoints``. The paper's
    /// collection retries until it completes; a caller waiting for it (a
    /// server stopping cleanly) must not wait for ever on a proposer that
    /// is down. Default 10 minutes.
    public var garbageCollectionTimeout: Duration = .seconds(600)

    /// Creates the default configuration.
    public init() {}

    /// Checks every field against its documented range.
    ///
    /// - Throws: `ConfigurationError` naming the first invalid field.
    public func validate() throws(ConfigurationError) {
        try check("maximumKeySize", maximumKeySize, 1...65_536)
        // A value must fit a message with its key: 16 MiB at most in all
        // (checked as a range of its own, which a larger value would invert).
        try check("maximumValueSize", maximumValueSize, 0...((16 << 20) - maximumKeySize - 128))
        try check(
            "maximumMessageSize", maximumMessageSize,
            (maximumKeySize + maximumValueSize + 128)...(16 << 20))
        try check("maximumMessagesPerFrame", maximumMessagesPerFrame, 1...65_536)
        try check("maximumBatchSize", maximumBatchSize, 64...maximumMessageSize)
        let hour = Duration.seconds(3_600)
        try check("attemptTimeout", attemptTimeout, .milliseconds(1)...hour)
        try check("resendInterval", resendInterval, .milliseconds(1)...hour)
        try check("proposalTimeout", proposalTimeout, .milliseconds(1)...hour)
        try check("initialBackoff", initialBackoff, .microseconds(1)...hour)
        try check("maximumBackoff", maximumBackoff, initialBackoff...hour)
        try check("maximumPendingProposals", maximumPendingProposals, 1...1_048_576)
        try check("maximumCachedKeys", maximumCachedKeys, 1...1_048_576)
        try check("maximumRegisters", maximumRegisters, 1...(1 << 30))
        try check("maximumTrackedProposers", maximumTrackedProposers, 1...1_048_576)
        try check("maximumKeysPerListing", maximumKeysPerListing, 1...4_096)
        try check("maximumGarbageCollections", maximumGarbageCollections, 1...65_536)
        try check("maintenanceRetryInterval", maintenanceRetryInterval, .milliseconds(1)...hour)
        try check("maintenanceTimeout", maintenanceTimeout, .milliseconds(1)...Duration.seconds(86_400))
        try check(
            "garbageCollectionTimeout", garbageCollectionTimeout, .milliseconds(1)...Duration.seconds(86_400))
    }

    /// ``maximumTrackedProposers``, capped at the (proposer, age) pairs one
    /// message surely carries: 17 bytes each at most (an 8-byte ID, an age
    /// of up to 9 varint bytes), 64 for the frame and message headers.
    var trackedProposerLimit: Int {
        min(maximumTrackedProposers, max(1, (maximumMessageSize - 64) / 17))
    }

    private func check<Value: Comparable>(
        _ field: String, _ value: Value, _ range: ClosedRange<Value>
    ) throws(ConfigurationError) {
        guard range.contains(value) else {
            throw ConfigurationError(
                field: field, value: "\(value)", allowedRange: "\(range.lowerBound) ... \(range.upperBound)")
        }
    }
}
