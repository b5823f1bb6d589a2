import EventCore
import WireCodec

// Anti-entropy (push-pull, as in Demers et al. 1987 and Scuttlebutt): a
// node sends a random peer a digest of the message IDs it retains; the peer
// pulls what it has not seen and answers with its own digest, from which
// the first node pulls in turn. Pulled messages come back as REPAIRs and
// spread on from there (pushed on in push mode, announced in IHAVEs in
// Plumtree mode), so a node that lost messages, or a side of a healed
// partition, converges within a few rounds while the messages are retained.
extension GossipInstance {
    /// Digest runs that fit in one message of the configured size (at most
    /// 17 bytes each after the frame header, tag, flag and count).
    var runsPerDigest: Int { max(1, (configuration.maximumMessageSize - FrameHeader.size - 2 - 3) / 17) }

    /// The most IDs a received digest makes this node examine, so a digest
    /// claiming huge runs costs bounded work.
    var maximumExaminedPerDigest: Int { 4 * configuration.retentionCapacity + 1_024 }

    mutating func startAntiEntropy(now: Instant, into effects: inout [GossipEffect]) {
        let peers = view.active + view.passive
        guard let peer = peers.randomElement(using: &random) else { return }
        send(.digest(digest(now: now), isReply: false), to: peer, now: now, into: &effects)
    }

    /// A digest of the retained messages; in Plumtree mode, except those
    /// retained here for less than a graft timeout and a lazy push
    /// interval (``settling``).
    private mutating func digest(now: Instant) -> [DigestRun] {
        retention.digest(limit: runsPerDigest, settling: settling, now: now)
    }

    /// How long a message is kept out of this node's digests after it
    /// retained it. In Plumtree mode: a graft timeout and a lazy push
    /// interval, the longest the message may still be on its way to the
    /// peer (down the tree, or announced and grafted). One pulled in the
    /// meantime raced the tree's copy, and the copy that lost, a
    /// duplicate, pruned an edge of a settled tree (traced in overlays of
    /// `PlumtreeStabilityTests`). At most half the retention period, so a
    /// short period still leaves time to list it. In push mode, none: a
    /// race costs one copy, and anti-entropy is how the nodes push missed
    /// get a message.
    var settling: Duration {
        guard configuration.mode == .plumtree else { return .zero }
        return min(configuration.graftTimeout + configuration.lazyPushInterval, configuration.retentionPeriod / 2)
    }

    mutating func receiveDigest(
        _ runs: [DigestRun], isReply: Bool, from sender: Endpoint, now: Instant, into effects: inout [GossipEffect]
    ) {
        // A node with no neighbour left (its views and seeds dead at once)
        // takes a peer that still gossips with it as a candidate: it asks
        // it to link at the next tick. Otherwise it answered such digests
        // for ever and got messages by anti-entropy alone.
        if view.active.isEmpty { view.addPassive(sender, using: &random) }
        let limit = min(configuration.maximumPullCount, idsPerMessage)
        var wanted: [MessageID] = []
        var examined = 0
        scan: for run in runs {
            for id in run.ids {
                examined += 1
                if examined > maximumExaminedPerDigest || wanted.count >= limit { break scan }
                if !isKnown(id) { wanted.append(id) }
            }
        }
        if !wanted.isEmpty { send(.pull(wanted), to: sender, now: now, into: &effects) }
        if !isReply {
            send(.digest(digest(now: now), isReply: true), to: sender, now: now, into: &effects)
        }
    }

    mutating func receivePull(_ ids: [MessageID], from sender: Endpoint, now: Instant, into effects: inout [GossipEffect]) {
        serveRetained(ids, as: GossipMessage.repair, to: sender, now: now, into: &effects)
    }

    /// Sends `sender` the retained messages `ids` names, as `message` makes
    /// them (a GRAFT's answer, or a pull's): up to
    /// ``GossipConfiguration/maximumPullCount`` of them, each once (a
    /// request naming one ID 64 times drew 64 copies).
    mutating func serveRetained(
        _ ids: [MessageID], as message: (GossipData) -> GossipMessage, to sender: Endpoint, now: Instant,
        into effects: inout [GossipEffect]
    ) {
        var served = Set<MessageID>()
        for id in ids.prefix(configuration.maximumPullCount) where served.insert(id).inserted {
            if let data = retention.message(id, now: now) { send(message(data), to: sender, now: now, into: &effects) }
        }
    }
}
