import EventCore
import WireCodec

// Push gossip and Plumtree (Leitão, Pereira, Rodrigues, 2007). In Plumtree
// the active view is split into eager peers (the tree: they get payloads)
// and lazy peers (they get batched IHAVEs). A duplicate payload prunes the
// edge it came over; a message announced but not brought by the tree in
// `graftTimeout` is grafted from its announcer, which rejoins the tree.
extension GossipInstance {
    /// Message IDs that fit in one IHAVE, GRAFT or PULL of the configured
    /// size (12 bytes each after the frame header, tag and count).
    var idsPerMessage: Int { max(1, (configuration.maximumMessageSize - FrameHeader.size - 1 - 3) / 12) }

    mutating func receiveData(_ data: GossipData, from sender: Endpoint, now: Instant, into effects: inout [GossipEffect]) {
        guard fitsLimits(data) else { return }
        guard let holders = accept(data, now: now, into: &effects) else {
            counters.duplicates += 1
            // Prune even a peer already lazy here: it pushed eagerly, so it
            // still counts us as eager (its graft crossed our prune, or the
            // prune was lost), and would go on sending duplicates.
            if configuration.mode == .plumtree, view.isActive(sender) {
                lazyPeers.insert(sender)
                counters.prunesSent += 1
                send(.prune, to: sender, now: now, into: &effects)
            }
            return
        }
        if configuration.mode == .plumtree, view.isActive(sender) { lazyPeers.remove(sender) }
        var forwarded = data
        forwarded.hops = min(data.hops + 1, GossipMessage.maximumHops)
        disseminate(forwarded, receivedFrom: sender, skipping: holders, now: now, into: &effects)
    }

    mutating func receiveRepair(_ data: GossipData, from sender: Endpoint, now: Instant, into effects: inout [GossipEffect]) {
        guard fitsLimits(data), let holders = accept(data, now: now, into: &effects) else { return }
        counters.deliveredByRepair += 1
        // Spread it on: the nodes around this one likely missed it too (the
        // far side of a healed partition).
        var forwarded = data
        forwarded.hops = min(data.hops + 1, GossipMessage.maximumHops)
        switch configuration.mode {
        case .push:
            disseminate(forwarded, receivedFrom: sender, now: now, into: &effects)
        case .plumtree:
            // Lazily: pushed as data, it would be a duplicate to every
            // eager neighbour that has it already, and each would prune its
            // edge to this node (one repair could strip the node's tree).
            // A neighbour that lacks it grafts it, which mends the tree too.
            for peer in view.active where peer != sender && !holders.contains(peer) {
                announce(data.id, to: peer, now: now, into: &effects)
            }
        }
    }

    /// Whether `data`'s payload is within ``GossipConfiguration/maximumPayloadSize``
    /// and its age within ``GossipConfiguration/retentionPeriod``; counts
    /// it if not. A message past its retention is kept nowhere any more,
    /// so it is neither delivered nor spread (see ``RetentionBuffer``).
    private mutating func fitsLimits(_ data: GossipData) -> Bool {
        guard data.payload.count <= configuration.maximumPayloadSize else {
            counters.oversizedPayloadsDropped += 1
            return false
        }
        guard data.age <= configuration.retentionPeriod else {
            counters.expiredMessagesDropped += 1
            return false
        }
        return true
    }

    /// Delivers and retains `data` if it is new, and returns the peers
    /// known to have it (they announced it); nil for a duplicate.
    /// A message this node retains is not new, whatever ``SeenWindows``
    /// says: once its origin was forgotten, each copy arriving was
    /// delivered again, re-tracking the origin and forgetting another,
    /// whose messages the node also held, and so on: a storm of
    /// redeliveries that anti-entropy kept up for as long as the messages
    /// were retained (see ``isKnown(_:)``).
    private mutating func accept(_ data: GossipData, now: Instant, into effects: inout [GossipEffect]) -> [Endpoint]? {
        guard data.id.origin != id, !retention.contains(data.id), seen.insert(data.id) == .new else { return nil }
        counters.originsForgotten = seen.forgottenOrigins
        counters.delivered += 1
        let holders = missing.remove(data.id)
        retention.insert(data, now: now)
        effects.append(.deliver(GossipDelivery(id: data.id, payload: data.payload, hops: data.hops, deliveredAt: now)))
        return holders
    }

    /// Whether the message `id` is this node's own, retained here or seen:
    /// not to be asked for (an announcement, a digest) nor delivered.
    func isKnown(_ id: MessageID) -> Bool {
        id.origin == self.id || retention.contains(id) || seen.standing(of: id) != .new
    }

    /// Sends `data` on: to `fanout` random peers (push), or eagerly to the
    /// tree and lazily to the other neighbours (Plumtree), except to
    /// `holders`, the peers that announced it. A grafted announcer is back
    /// on the tree here, but has the message: pushed to it when the
    /// message came another way first, it counted a duplicate and pruned
    /// the edge, undoing the graft.
    mutating func disseminate(
        _ data: GossipData, receivedFrom sender: Endpoint?, skipping holders: [Endpoint] = [], now: Instant,
        into effects: inout [GossipEffect]
    ) {
        let excluded = sender.map { [$0] } ?? []
        switch configuration.mode {
        case .push:
            let targets = PartialView.sample(
                view.active + view.passive, count: configuration.fanout, excluding: excluded, using: &random)
            for peer in targets { send(.data(data), to: peer, now: now, into: &effects) }
        case .plumtree:
            for peer in view.active where peer != sender && !holders.contains(peer) {
                if lazyPeers.contains(peer) {
                    announce(data.id, to: peer, now: now, into: &effects)
                } else {
                    send(.data(data), to: peer, now: now, into: &effects)
                }
            }
        }
    }

    /// Queues an IHAVE for `peer`, sent at the next lazy flush (or now, if
    /// a message's worth is queued).
    private mutating func announce(_ id: MessageID, to peer: Endpoint, now: Instant, into effects: inout [GossipEffect]) {
        lazyQueue[peer, default: []].append(id)
        if let queued = lazyQueue[peer], queued.count >= idsPerMessage {
            lazyQueue[peer] = nil
            send(.ihave(queued), to: peer, now: now, into: &effects)
        }
        if lazyFlushDue == nil { lazyFlushDue = now + configuration.lazyPushInterval }
    }

    mutating func flushLazyQueue(now: Instant, into effects: inout [GossipEffect]) {
        lazyFlushDue = nil
        // In active-view order, so runs replay from their seed (a
        // dictionary's order changes from process to process). Only active
        // neighbours have queues.
        for peer in view.active {
            guard let ids = lazyQueue.removeValue(forKey: peer), !ids.isEmpty else { continue }
            send(.ihave(ids), to: peer, now: now, into: &effects)
        }
    }

    /// Records the messages `sender` announces that this node lacks, to be
    /// grafted if the tree has not brought them after a random wait
    /// (``graftWait()``), one per IHAVE (its messages are grafted
    /// together). When the tree breaks, every node
    /// cut off from the origin hears the IHAVEs at about the same time;
    /// with one fixed timeout they all grafted at once, each edge added
    /// made a cycle, and the duplicates that followed pruned edges again,
    /// cutting nodes off anew: in some overlays the tree never settled
    /// (about a third of the deliveries by graft). With the waits spread,
    /// the first graft mends the tree, and the others mostly find the
    /// message brought before their turn.
    mutating func receiveIHave(_ ids: [MessageID], from sender: Endpoint, now: Instant) {
        let deadline = now + graftWait()
        for id in ids.prefix(idsPerMessage) where !isKnown(id) {
            if !missing.announce(id, by: sender, deadline: deadline) {
                counters.announcementsDropped += 1
            }
        }
    }

    /// A random wait before grafting: between half the graft timeout and
    /// all of it, and longer than the lazy push interval, as the timeout is
    /// (``GossipConfiguration/validate()``).
    private mutating func graftWait() -> Duration {
        let longest = configuration.graftTimeout
        let shortest = min(longest, max(longest / 2, configuration.lazyPushInterval + .milliseconds(1)))
        return shortest + .nanoseconds(Int64.random(in: 0...(longest - shortest).nanoseconds, using: &random))
    }

    /// Grafts the messages the tree did not bring in time: asks an
    /// announcer for each, and puts the announcer back on the tree.
    mutating func graftExpired(now: Instant, into effects: inout [GossipEffect]) {
        let expired = missing.takeExpired(now: now, retry: configuration.graftTimeout)
        guard !expired.isEmpty else { return }
        var byAnnouncer: [Endpoint: [MessageID]] = [:]
        var order: [Endpoint] = []
        for (id, announcer) in expired {
            if byAnnouncer[announcer] == nil { order.append(announcer) }
            byAnnouncer[announcer, default: []].append(id)
        }
        for announcer in order {
            if view.isActive(announcer) { lazyPeers.remove(announcer) }
            let ids = byAnnouncer[announcer] ?? []
            // No more per GRAFT than the announcer answers (it serves a
            // GRAFT as a pull, up to maximumPullCount).
            let perGraft = min(idsPerMessage, configuration.maximumPullCount)
            var start = 0
            while start < ids.count {
                let end = min(start + perGraft, ids.count)
                counters.graftsSent += 1
                send(.graft(Array(ids[start..<end])), to: announcer, now: now, into: &effects)
                start = end
            }
        }
    }

    mutating func receiveGraft(_ ids: [MessageID], from sender: Endpoint, now: Instant, into effects: inout [GossipEffect]) {
        if view.isActive(sender) { lazyPeers.remove(sender) }
        serveRetained(ids, as: GossipMessage.data, to: sender, now: now, into: &effects)
    }
}
