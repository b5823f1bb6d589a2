/// How often a proposer finds that it wrote last the keys it writes: an
/// exponentially weighted share over its recent writes (each weighs 1/16),
/// starting at all of them. Only clients' writes count, not reads or
/// maintenance's re-writes. A write's prepare quorum tells who wrote the
/// key last (the proposer of the highest accepted ballot; a key never
/// written tells nothing); a write that took the key's cached ballot and
/// succeeded proves it was this proposer.
///
/// The one-round-trip optimization pays only when a proposer writes a key
/// again before others do: its next ballot, promised with each accept,
/// refuses other proposers' prepares, and its cached accept is refused
/// once another proposer wrote the key. Where most of a proposer's writes
/// follow another proposer's (clients spread over proposers writing
/// shared keys), the ``Proposer`` stops piggybacking next ballots until
/// its share is back at three quarters.
struct LastWriterShare {
    /// The share, in 1/65,536ths.
    private var share: Int32 = 1 << 16

    /// Records one write: whether this proposer wrote the key last.
    mutating func record(_ wroteLast: Bool) {
        share += ((wroteLast ? 1 << 16 : 0) - share) >> 4
    }

    /// Whether at least three quarters of the recent writes followed this
    /// proposer's own.
    var isMostlyThisProposer: Bool { share >= 3 << 14 }
}
