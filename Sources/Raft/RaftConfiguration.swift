import EventCore

/// The settings of a ``RaftReplica``. Defaults follow the Raft paper's
/// LAN figures (a 150 ms election timeout, randomized up to 300 ms;
/// heartbeats every 50 ms) with PreVote and CheckQuorum on: a leader's
/// crash is followed by a new leader within about 300 ms. Across a WAN,
/// or with long pauses (garbage collection, slow disks), raise the
/// election timeout (etcd's default is 1 s with 100 ms heartbeats). ``validate()`` checks
/// every field; the replica calls it.
public struct RaftConfiguration: Hashable, Sendable {
    /// The election timeout: a follower that hears from no leader for a
    /// random time between this and twice this starts an election (Raft
    /// §5.2); a replica that does not vote (a learner, a joining or removed
    /// replica) forgets, instead, a leader silent for that long; a leader
    /// with CheckQuorum steps down if it has not heard from a majority
    /// within this time. Default 150 ms (10 ms ... 1 h).
    public var electionTimeout: Duration = .milliseconds(150)
    /// How often a leader sends heartbeats (with its commit index) to every
    /// follower. Must be below half of ``electionTimeout`` (1 ms ... ).
    /// Default 50 ms.
    public var heartbeatInterval: Duration = .milliseconds(50)
    /// PreVote (Raft thesis §9.6): before raising its term, a would-be
    /// candidate asks whether a majority would vote for it, so a node
    /// coming back from a partition cannot depose a working leader.
    /// Default on.
    public var preVote = true
    /// CheckQuorum (Raft thesis §6.2): a leader that has not heard from a
    /// majority within an election timeout steps down, and a replica that
    /// has heard from a leader within an election timeout ignores vote
    /// requests. Default on.
    public var checkQuorum = true

    /// The most AppendEntries messages in flight to one follower in the
    /// replicate state (pipelining) before the leader waits for
    /// acknowledgements (1 ... 65,536). Default 256.
    public var maximumInflightMessages = 256
    /// The most entry bytes in flight to one follower before the leader
    /// waits for acknowledgements (at least ``maximumAppendBytes``).
    /// Default 4 MiB.
    public var maximumInflightBytes = 4 << 20
    /// The most command bytes one AppendEntries carries; a message always
    /// carries at least one entry if any is due (1,024 ... 4 MiB). Default
    /// 64 KiB, which travels in a few fragments.
    public var maximumAppendBytes = 64 << 10
    /// The longest command a proposal may carry, in bytes; longer ones are
    /// refused with ``RaftError/commandTooLarge(size:limit:)`` (1 ... 4
    /// MiB). Replicas decode with the protocol's limits
    /// (``RaftMessage/decodingLimits``), not this one, so that members may
    /// differ in it, as long as every member's transport carries the
    /// largest frames of any (``largestFrameLength``). Default 1 MiB.
    public var maximumCommandSize = 1 << 20
    /// The most command bytes a leader keeps appended but uncommitted;
    /// beyond it proposals are refused with
    /// ``RaftError/uncommittedLimitExceeded(uncommittedBytes:limit:)``
    /// (a proposal is always accepted when nothing is uncommitted). At
    /// least ``maximumCommandSize``. Default 16 MiB.
    public var maximumUncommittedBytes = 16 << 20
    /// Whether ``RaftNode/propose(_:completion:)`` and
    /// ``RaftNode/read(completion:)`` on a follower that knows the leader
    /// forward the proposal or read there (the outcome still arrives at
    /// the follower, once it applies the entry or the leader's index)
    /// rather than failing with ``RaftError/notLeader(leaderHint:)``.
    /// Default on, as etcd.
    public var forwardProposals = true
    /// How long a follower waits for the leader's answer to a forwarded
    /// proposal before failing it with ``RaftError/outcomeUnknown`` (the
    /// leader may have appended it), or to a forwarded read before failing
    /// it with ``RaftError/notLeader(leaderHint:)`` (a read changes
    /// nothing); either fails at once when the follower learns of another
    /// leader, or loses its leader. Answered, either waits for its entry or
    /// index to commit here; a node that lost its leader and knows none
    /// again within this time (or two election timeouts, if longer) fails
    /// it then, and its own uncommitted proposals too (see
    /// ``RaftNode/propose(_:completion:)``). Default 1 s.
    public var forwardTimeout: Duration = .seconds(1)
    /// How many entries a node applies between two snapshots of its state
    /// machine (``RaftNode`` takes them, saves them to storage and compacts
    /// the log); 0 never snapshots. Default 10,000.
    public var snapshotInterval = 10_000
    /// How many applied entries stay in the log after a compaction, so a
    /// follower a little behind catches up from the log rather than a
    /// whole snapshot (0 ... ). Default 1,000.
    public var entriesKeptAfterSnapshot = 1_000
    /// The snapshot bytes one InstallSnapshot message carries (1,024 ...
    /// 4 MiB). Default 16 KiB: a dozen Ethernet-sized
    /// datagrams, so a lost fragment costs little to resend.
    public var snapshotChunkSize = 16 << 10
    /// The most snapshot chunks in flight to one follower before the leader
    /// waits for acknowledgements (1 ... 1,024). Default 8.
    public var maximumSnapshotChunksInFlight = 8
    /// The largest snapshot a follower accepts from a leader, in bytes;
    /// a larger one is refused and counted rather than buffered (at least
    /// ``snapshotChunkSize``), and the follower tells the leader, which
    /// stops sending it (``RaftCounters/snapshotsRefusedByFollowers``). A
    /// leader does not send a larger one (``RaftCounters/snapshotsWithheld``),
    /// and ``RaftNode`` logs an error when it saves one, and when a
    /// follower refuses one. Default 1 GiB.
    public var maximumSnapshotSize = 1 << 30

    /// Creates the default configuration.
    public init() {}

    /// Checks every field against its documented range.
    ///
    /// - Throws: `ConfigurationError` naming the first invalid field.
    public func validate() throws(ConfigurationError) {
        guard electionTimeout >= .milliseconds(10), electionTimeout <= .seconds(3_600) else {
            throw ConfigurationError(
                field: "electionTimeout", value: "\(electionTimeout)", allowedRange: "10 ms ... 1 h")
        }
        guard heartbeatInterval >= .milliseconds(1), heartbeatInterval * 2 < electionTimeout else {
            throw ConfigurationError(
                field: "heartbeatInterval", value: "\(heartbeatInterval)",
                allowedRange: "1 ms ... below electionTimeout / 2")
        }
        guard (1...65_536).contains(maximumInflightMessages) else {
            throw ConfigurationError(
                field: "maximumInflightMessages", value: "\(maximumInflightMessages)", allowedRange: "1 ... 65536")
        }
        guard (1_024...(4 << 20)).contains(maximumAppendBytes) else {
            throw ConfigurationError(
                field: "maximumAppendBytes", value: "\(maximumAppendBytes)", allowedRange: "1024 ... 4194304")
        }
        guard maximumInflightBytes >= maximumAppendBytes else {
            throw ConfigurationError(
                field: "maximumInflightBytes", value: "\(maximumInflightBytes)",
                allowedRange: "at least maximumAppendBytes (\(maximumAppendBytes))")
        }
        guard (1...(4 << 20)).contains(maximumCommandSize) else {
            throw ConfigurationError(
                field: "maximumCommandSize", value: "\(maximumCommandSize)", allowedRange: "1 ... 4194304")
        }
        guard maximumUncommittedBytes >= maximumCommandSize else {
            throw ConfigurationError(
                field: "maximumUncommittedBytes", value: "\(maximumUncommittedBytes)",
                allowedRange: "at least maximumCommandSize (\(maximumCommandSize))")
        }
        guard forwardTimeout > .zero else {
            throw ConfigurationError(field: "forwardTimeout", value: "\(forwardTimeout)", allowedRange: "above 0")
        }
        guard snapshotInterval >= 0 else {
            throw ConfigurationError(field: "snapshotInterval", value: "\(snapshotInterval)", allowedRange: "0 ... ")
        }
        guard entriesKeptAfterSnapshot >= 0 else {
            throw ConfigurationError(
                field: "entriesKeptAfterSnapshot", value: "\(entriesKeptAfterSnapshot)", allowedRange: "0 ... ")
        }
        guard (1_024...(4 << 20)).contains(snapshotChunkSize) else {
            throw ConfigurationError(
                field: "snapshotChunkSize", value: "\(snapshotChunkSize)", allowedRange: "1024 ... 4194304")
        }
        guard (1...1_024).contains(maximumSnapshotChunksInFlight) else {
            throw ConfigurationError(
                field: "maximumSnapshotChunksInFlight", value: "\(maximumSnapshotChunksInFlight)",
                allowedRange: "1 ... 1024")
        }
        guard maximumSnapshotSize >= snapshotChunkSize else {
            throw ConfigurationError(
                field: "maximumSnapshotSize", value: "\(maximumSnapshotSize)",
                allowedRange: "at least snapshotChunkSize (\(snapshotChunkSize))")
        }
    }

    /// The longest frame a replica with this configuration sends, in bytes,
    /// frame header included: an append of up to ``maximumAppendBytes`` of
    /// commands (or one command of up to ``maximumCommandSize``) in up to
    /// ``RaftMessage/maximumEntriesPerAppend`` entries, or a snapshot chunk
    /// of ``snapshotChunkSize``. ``RaftNode`` refuses a transport that
    /// cannot send it.
    public var largestFrameLength: Int {
        let append = max(maximumAppendBytes, maximumCommandSize)
            + RaftMessage.maximumEntriesPerAppend * RaftMessage.entryOverhead
        return RaftMessage.messageOverhead + max(append, snapshotChunkSize)
    }

    /// The setting that decides ``largestFrameLength``.
    var largestFrameSetting: (field: String, value: Int) {
        if snapshotChunkSize > max(maximumAppendBytes, maximumCommandSize) {
            return ("snapshotChunkSize", snapshotChunkSize)
        }
        return maximumCommandSize > maximumAppendBytes
            ? ("maximumCommandSize", maximumCommandSize) : ("maximumAppendBytes", maximumAppendBytes)
    }
}
