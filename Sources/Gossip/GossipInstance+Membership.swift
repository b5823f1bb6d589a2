import EventCore
import WireCodec

// HyParView over datagrams. Where the paper relies on TCP to detect a
// failed neighbour, an active link here carries a heartbeat whenever it is
// otherwise idle for a heartbeat interval, and a neighbour silent for the
// peer timeout is taken for failed.
extension GossipInstance {
    /// The most endpoints taken from a received shuffle sample.
    static let maximumSampleSize = 64

    /// The most endpoints a shuffle's answer holds: as many as fit one
    /// message were every one an IPv6 endpoint (19 bytes, after the frame
    /// header, the tag and the count, one byte for at most
    /// ``maximumSampleSize``), and no more than ``maximumSampleSize``. An
    /// answer is as large as the shuffle's sample, which a forged shuffle
    /// makes as long as its message allows: of IPv4 endpoints (7 bytes),
    /// it drew an answer of as many IPv6 ones, longer than any peer takes.
    /// The answer to a shuffle as nodes send them is never cut:
    /// ``GossipConfiguration/validate()`` makes the largest (its origin and
    /// sample all IPv6 endpoints) fit one message, and the answer is
    /// smaller.
    var maximumShuffleAnswer: Int {
        min(Self.maximumSampleSize, (configuration.maximumMessageSize - FrameHeader.size - 1 - 1) / Endpoint.maximumEncodedSize)
    }

    // MARK: Joining

    /// Whether a join may go out: the node has no neighbour, no request of
    /// its own out, and seeds.
    private var mayJoin: Bool { view.active.isEmpty && ownPendingRequests == 0 && !seeds.isEmpty }

    /// Whether the node joins again through a seed at ``joinDue``: it may
    /// (``mayJoin``), and has no passive peer left to ask (each is asked
    /// first: a join forces a link at the seed and sends walks that force
    /// more, and after a mass failure every node emptied would join through
    /// the same seed).
    var joinsAgain: Bool { view.passive.isEmpty && mayJoin }

    /// Sends a join to the next seed, if the node still has no neighbour
    /// and no request out.
    mutating func retryJoin(now: Instant, into effects: inout [GossipEffect]) {
        guard mayJoin else { return }
        let seed = seeds[nextSeed % seeds.count]
        nextSeed += 1
        pendingRequests[seed] = now + configuration.requestTimeout
        newcomerRequests.remove(seed)
        joinDue = now + configuration.requestTimeout
        send(.join, to: seed, now: now, into: &effects)
    }

    /// A newcomer joins through this node: it becomes a neighbour, and
    /// random walks (FORWARDJOIN) introduce it to the rest of the overlay.
    mutating func receiveJoin(from newcomer: Endpoint, now: Instant, into effects: inout [GossipEffect]) {
        let others = view.active.filter { $0 != newcomer }
        addActive(newcomer, now: now, into: &effects)
        if view.isActive(newcomer) { unconfirmedNeighbors.insert(newcomer) }
        send(.neighborReply(accepted: true), to: newcomer, now: now, into: &effects)
        let walk = UInt8(configuration.activeRandomWalkLength)
        for peer in others {
            send(.forwardJoin(newcomer: newcomer, timeToLive: walk), to: peer, now: now, into: &effects)
        }
    }

    mutating func receiveForwardJoin(
        _ newcomer: Endpoint, timeToLive: UInt8, from sender: Endpoint, now: Instant,
        into effects: inout [GossipEffect]
    ) {
        guard newcomer != endpoint, !view.isActive(newcomer) else { return }
        // No walk is longer than this node would start: one datagram must
        // not start a 255-hop walk.
        let timeToLive = min(timeToLive, UInt8(configuration.activeRandomWalkLength))
        if timeToLive == 0 || view.active.count <= 1 {
            requestNeighbor(newcomer, highPriority: true, forNewcomer: true, now: now, into: &effects)
            return
        }
        if Int(timeToLive) == configuration.passiveRandomWalkLength {
            view.addPassive(newcomer, using: &random)
        }
        guard let next = view.randomActive(excluding: [sender, newcomer], using: &random) else {
            requestNeighbor(newcomer, highPriority: true, forNewcomer: true, now: now, into: &effects)
            return
        }
        send(.forwardJoin(newcomer: newcomer, timeToLive: timeToLive - 1), to: next, now: now, into: &effects)
    }

    // MARK: Neighbours

    /// Requests to newcomers named by forward joins awaiting their answers,
    /// at most: twice the active view. A forward join names its newcomer, any
    /// address, and anyone may send one; without a bound a flood of them
    /// grew the pending requests (each scanned on every tick) and made this
    /// node send a request to every address named. This node's own
    /// requests are not counted against it: a steady flood must not stop
    /// its join or the repair of its active view.
    var maximumNewcomerRequests: Int { 2 * view.activeCapacity }

    /// The pending requests this node made on its own account (a join, the
    /// repair of its active view, a probe of a failed peer).
    var ownPendingRequests: Int { pendingRequests.count - newcomerRequests.count }

    /// Asks `peer` to become a neighbour (it answers NEIGHBORREPLY). A
    /// request `forNewcomer` (named by a forward join) is refused, and
    /// counted, while ``maximumNewcomerRequests`` are pending.
    mutating func requestNeighbor(
        _ peer: Endpoint, highPriority: Bool, forNewcomer: Bool = false, now: Instant, into effects: inout [GossipEffect]
    ) {
        guard pendingRequests[peer] == nil else { return }
        if forNewcomer {
            guard newcomerRequests.count < maximumNewcomerRequests else {
                counters.neighborRequestsRefused += 1
                return
            }
            newcomerRequests.insert(peer)
        }
        pendingRequests[peer] = now + configuration.requestTimeout
        send(.neighbor(highPriority: highPriority), to: peer, now: now, into: &effects)
    }

    /// Forgets the request pending to `peer` (from either budget); returns
    /// whether one was.
    @discardableResult
    private mutating func endRequest(to peer: Endpoint) -> Bool {
        newcomerRequests.remove(peer)
        if highPriorityRefill == peer { highPriorityRefill = nil }
        return pendingRequests.removeValue(forKey: peer) != nil
    }

    mutating func receiveNeighbor(highPriority: Bool, from sender: Endpoint, now: Instant, into effects: inout [GossipEffect]) {
        let accepted = view.isActive(sender) || highPriority || !view.isActiveFull
        if accepted {
            if addActive(sender, now: now, into: &effects) { unconfirmedNeighbors.insert(sender) }
        } else {
            view.addPassive(sender, using: &random)
        }
        send(.neighborReply(accepted: accepted), to: sender, now: now, into: &effects)
    }

    mutating func receiveNeighborReply(accepted: Bool, from sender: Endpoint, now: Instant, into effects: inout [GossipEffect]) {
        // Only answers to our own requests count: a stray acceptance must
        // not make a one-sided link.
        let ownRequest = !newcomerRequests.contains(sender)
        guard endRequest(to: sender) else { return }
        forgetFailed(sender)
        if accepted {
            addActive(sender, now: now, into: &effects)
        } else {
            if ownRequest { refusals[sender] = now }
            view.addPassive(sender, using: &random)
        }
    }

    mutating func receiveDisconnect(from sender: Endpoint, now: Instant, into effects: inout [GossipEffect]) {
        guard removeActive(sender) else { return }
        view.addPassive(sender, using: &random)
        fillActiveView(now: now, into: &effects)
    }

    /// A heartbeat from a peer that is not a neighbour: it believes a link
    /// exists that this node dropped, so tell it.
    mutating func receiveHeartbeat(from sender: Endpoint, now: Instant, into effects: inout [GossipEffect]) {
        guard !view.isActive(sender) else { return }
        send(.disconnect, to: sender, now: now, into: &effects)
    }

    /// Makes `peer` a neighbour; a neighbour evicted to make room is told
    /// and kept in the passive view. Returns whether `peer` is a new one.
    @discardableResult
    mutating func addActive(_ peer: Endpoint, now: Instant, into effects: inout [GossipEffect]) -> Bool {
        let (added, evicted) = view.addActive(peer, using: &random)
        guard added else { return false }
        if let evicted {
            forgetNeighbor(evicted)
            send(.disconnect, to: evicted, now: now, into: &effects)
            view.addPassive(evicted, using: &random)
        }
        lastHeard[peer] = now
        lastSent[peer] = now
        lazyPeers.remove(peer)  // a new neighbour starts on the eager side
        forgetFailed(peer)
        refusals[peer] = nil
        return true
    }

    /// Removes `peer` from the active view; false if it was not there.
    mutating func removeActive(_ peer: Endpoint) -> Bool {
        guard view.removeActive(peer) else { return false }
        forgetNeighbor(peer)
        return true
    }

    private mutating func forgetNeighbor(_ peer: Endpoint) {
        lastHeard[peer] = nil
        lastSent[peer] = nil
        unconfirmedNeighbors.remove(peer)
        lazyPeers.remove(peer)
        lazyQueue[peer] = nil
        missing.removeAnnouncer(peer)
    }

    /// Asks passive peers to become neighbours while the active view (with
    /// the requests out) has room.
    ///
    /// As in HyParView, a request is high priority (taken even by a peer
    /// whose view is full, which evicts a neighbour for it) only while the
    /// active view is empty, and then one at a time
    /// (``highPriorityRefill``); the other free slots are asked at low
    /// priority. A peer that refused a request of this node's (its view was
    /// full) is not asked at low priority again for a
    /// ``GossipConfiguration/reconnectInterval`` (``refusals``): the refill
    /// runs at every tick, which lazy pushes make as often as every 10 ms.
    mutating func fillActiveView(now: Instant, into effects: inout [GossipEffect]) {
        while view.active.count + ownPendingRequests < view.activeCapacity {
            let highPriority = view.active.isEmpty && highPriorityRefill == nil
            // A peer with a full view refuses a low-priority request only:
            // a high-priority one is taken.
            let candidates = view.passive.filter { peer in
                pendingRequests[peer] == nil && (highPriority || !refusedRecently(peer, now: now))
            }
            guard let candidate = candidates.randomElement(using: &random) else { return }
            if highPriority { highPriorityRefill = candidate }
            requestNeighbor(candidate, highPriority: highPriority, now: now, into: &effects)
        }
    }

    /// Whether `peer` refused a request of this node's within the last
    /// reconnect interval.
    private func refusedRecently(_ peer: Endpoint, now: Instant) -> Bool {
        guard let refused = refusals[peer] else { return false }
        return now - refused < configuration.reconnectInterval
    }

    /// Forgets the refusals older than a reconnect interval, and those of
    /// peers no longer in the passive view: at most the passive view's
    /// capacity remain.
    mutating func forgetOldRefusals(now: Instant) {
        guard !refusals.isEmpty else { return }
        refusals = refusals.filter { refusedRecently($0.key, now: now) && view.isPassive($0.key) }
    }

    // MARK: Failure detection

    /// Takes neighbours silent for the peer timeout for failed, and sends
    /// heartbeats on links idle for a heartbeat interval.
    mutating func checkNeighbors(now: Instant, into effects: inout [GossipEffect]) {
        for peer in view.active {
            if let heard = lastHeard[peer], now - heard >= configuration.peerTimeout {
                counters.neighborFailures += 1
                // One that never spoke after asking (a forged NEIGHBOR or
                // JOIN, perhaps) is a failed peer, not a former neighbour:
                // forged ones must not crowd the real former neighbours,
                // which heal partitions, out of the ring.
                let spoke = !unconfirmedNeighbors.contains(peer)
                _ = removeActive(peer)
                rememberFailed(peer, wasNeighbor: spoke)
            } else if let sent = lastSent[peer], now - sent >= configuration.heartbeatInterval {
                send(.heartbeat, to: peer, now: now, into: &effects)
            }
        }
    }

    /// Requests unanswered by their deadline: the peer is taken for failed.
    mutating func expireRequests(now: Instant, into effects: inout [GossipEffect]) {
        // Sorted, so runs replay from their seed whatever the dictionary's
        // order in this process.
        let expired = pendingRequests.filter { $0.value <= now }.keys.sorted(by: Endpoint.precedes)
        for peer in expired {
            let wasNewcomer = newcomerRequests.contains(peer)
            endRequest(to: peer)
            view.removePassive(peer)
            // A newcomer named by a forward join was never a neighbour:
            // remembered, a stream of forward joins naming dead addresses
            // would push out of the ring the failed peers that heal a
            // partition.
            if !wasNewcomer { rememberFailed(peer, wasNeighbor: false) }
        }
    }

    /// Adds `peer` to the ring of failed peers; a full ring drops its oldest
    /// entry that was not a neighbour (those heal partitions), else its
    /// oldest.
    private mutating func rememberFailed(_ peer: Endpoint, wasNeighbor: Bool) {
        guard configuration.failedPeersCapacity > 0, !failedPeers.contains(peer) else { return }
        if failedPeers.count >= configuration.failedPeersCapacity {
            let dropped = failedPeers.firstIndex { !failedNeighbors.contains($0) } ?? failedPeers.startIndex
            forgetFailed(failedPeers[dropped])
        }
        failedPeers.append(peer)
        if wasNeighbor { failedNeighbors.insert(peer) }
    }

    /// Removes `peer` from the ring of failed peers, if there.
    private mutating func forgetFailed(_ peer: Endpoint) {
        failedPeers.removeAll { $0 == peer }
        failedNeighbors.remove(peer)
    }

    /// Asks one peer taken for failed to become a neighbour again. A former
    /// neighbour is asked at high priority (it makes room, evicting a
    /// random neighbour, and so does this node when it answers): the two
    /// sides of a healed partition filled their active views while apart,
    /// and a low-priority request would be refused on both, leaving no link
    /// across for the tree (only anti-entropy, seconds late). Other failed
    /// peers (requests of this node's that timed out, perhaps to peers that
    /// never were neighbours) are asked at low priority. One peer a node
    /// every ``GossipConfiguration/reconnectInterval``; a peer that answers
    /// leaves the failed ones.
    mutating func probeFailedPeer(now: Instant, into effects: inout [GossipEffect]) {
        let candidates = failedPeers.filter { pendingRequests[$0] == nil && !view.isActive($0) }
        guard let peer = candidates.randomElement(using: &random) else { return }
        requestNeighbor(peer, highPriority: failedNeighbors.contains(peer), now: now, into: &effects)
    }

    // MARK: Shuffles

    /// Sends a sample of this node's views on a random walk; the walk's end
    /// answers with a sample of its passive view.
    mutating func startShuffle(now: Instant, into effects: inout [GossipEffect]) {
        guard let target = view.randomActive(using: &random) else { return }
        let sample = PartialView.sample(view.active, count: configuration.shuffleActiveCount, excluding: [target], using: &random)
            + PartialView.sample(view.passive, count: configuration.shufflePassiveCount, using: &random)
        lastShuffleSample = sample
        send(
            .shuffle(origin: endpoint, timeToLive: UInt8(configuration.activeRandomWalkLength), sample: [endpoint] + sample),
            to: target, now: now, into: &effects)
    }

    mutating func receiveShuffle(
        origin: Endpoint, timeToLive: UInt8, sample: [Endpoint], from sender: Endpoint, now: Instant,
        into effects: inout [GossipEffect]
    ) {
        guard origin != endpoint else { return }
        // As for forward joins: no walk longer than this node starts.
        let timeToLive = min(timeToLive, UInt8(configuration.activeRandomWalkLength))
        if timeToLive > 1, view.active.count > 1,
            let next = view.randomActive(excluding: [sender, origin], using: &random)
        {
            send(.shuffle(origin: origin, timeToLive: timeToLive - 1, sample: sample), to: next, now: now, into: &effects)
            return
        }
        let answer = PartialView.sample(
            view.passive, count: min(sample.count, maximumShuffleAnswer), excluding: [origin], using: &random)
        send(.shuffleReply(sample: answer), to: origin, now: now, into: &effects)
        integrate(sample)
    }

    /// Adds the endpoints of a received sample to the passive view.
    mutating func integrate(_ sample: [Endpoint]) {
        for peer in sample.prefix(Self.maximumSampleSize) {
            view.addPassive(peer, preferringToEvict: lastShuffleSample, using: &random)
        }
    }
}
