import EventCore

extension SWIMInstance {
    /// Every member this one knows, itself first, for a push-pull: as many
    /// as fit a message body of ``SWIMConfiguration/maximumStateSize``
    /// bytes (counted exactly, so that the frame stays within the limits
    /// of the encoder and of every receiver).
    var pushPullMembers: [Member] {
        var list = [localMember]
        list.reserveCapacity(members.count + 1)
        // Kind, sender, reply flag, member count (at most 5 bytes: fewer
        // than 2³⁵ members) and the empty update list.
        var size = 1 + 8 + 1 + 5 + 1 + localMember.pushPullEncodedSize
        for member in members.members {
            size += member.pushPullEncodedSize
            if size > configuration.maximumStateSize { break }
            list.append(member)
        }
        return list
    }

    /// Merges a remote member list. A member the remote side believes dead
    /// is only suspected here (as memberlist does): it may be alive on our
    /// side of a partition, and gets the chance to refute.
    ///
    /// Members new to us from a reply are sent on fewer times in a large
    /// cluster (``reannouncements``): the replier's side knows them
    /// already, and every joiner re-announcing the whole cluster at full
    /// strength would cost O(N²) updates while a large cluster forms; a
    /// few times is enough to reach the members that missed one while the
    /// cluster was small. New incarnations, and members new to the side
    /// that was asked (a joiner), get the full count.
    mutating func merge(
        _ members: [Member], from sender: NodeID, isReply: Bool, now: Instant, into effects: inout [SWIMEffect]
    ) {
        for remote in members {
            switch remote.status {
            case .alive:
                apply(.alive(remote), spreadNewMembers: !isReply || remote.id == sender, now: now, into: &effects)
            case .suspect, .dead:
                if self.members.slot(of: remote.id) == nil && remote.id != id {
                    guard remote.status == .suspect else { continue }
                    var alive = remote
                    alive.status = .alive
                    apply(.alive(alive), spreadNewMembers: !isReply, now: now, into: &effects)
                }
                // A suspicion we hold already is not confirmed by a state
                // exchange: the sender may only have heard of it, and
                // counting every peer whose state lists it as an
                // independent suspecter would cut Lifeguard's timeout short.
                if let known = self.members[remote.id], known.status == .suspect,
                    known.incarnation == remote.incarnation
                {
                    continue
                }
                apply(.suspect(remote.id, incarnation: remote.incarnation, by: sender), now: now, into: &effects)
            case .left:
                apply(.left(remote.id, incarnation: remote.incarnation), now: now, into: &effects)
            }
        }
    }

    /// Sends queued updates to ``SWIMConfiguration/gossipFanout`` random
    /// members (nothing if none is queued), and a leaver's `left` first
    /// until it has gone out its full count (kept out of the queue, where
    /// fresher news would delay it, and a full queue could drop it).
    mutating func gossip(now: Instant, into effects: inout [SWIMEffect]) {
        nextGossipAt = now + configuration.gossipInterval
        guard owedLeaveUpdate != nil || !membershipQueue.isEmpty || !broadcastQueue.isEmpty else { return }
        for target in randomActiveMembers(configuration.gossipFanout) {
            let updates = piggyback(first: owedLeaveUpdate)
            guard !updates.isEmpty else { break }
            send(.gossip, to: target.endpoint, updates: updates, into: &effects)
            counters.gossipSent += 1
        }
    }

    /// Anti-entropy: exchanges full state with one random member.
    mutating func pushPullWithRandomMember(now: Instant, into effects: inout [SWIMEffect]) {
        guard !isLeaving, let target = randomActiveMembers(1).first else { return }
        send(.pushPull(members: pushPullMembers, isReply: false), to: target.endpoint, into: &effects)
        counters.pushPullsSent += 1
    }

    /// Sends a push-pull to every seed (a join, or a rejoin when alone).
    mutating func contactSeeds(now: Instant, into effects: inout [SWIMEffect]) {
        let members = pushPullMembers
        for seed in seeds {
            send(.pushPull(members: members, isReply: false), to: seed, into: &effects)
            counters.pushPullsSent += 1
        }
        nextReconnectAt = now + configuration.joinTimeout
    }

    /// Reconnection, with backoff: a member that has not joined yet or
    /// knows no live member retries its seeds; every member pings a random
    /// dead one (Smudge's retry of dead nodes), or when its sample finds
    /// none, a random one of those it forgot (``formerMembers``, for
    /// ``formerMemberRetention``), and exchanges state with it if it
    /// answers, which merges the two sides of a healed partition, however
    /// long the partition lasted (each side forgets the other's members
    /// after ``SWIMConfiguration/deadMemberRetention``; Serf reconnects to
    /// failed members for a day in the same way).
    mutating func reconnect(now: Instant, into effects: inout [SWIMEffect]) {
        guard !isLeaving else {
            nextReconnectAt = .distantFuture
            return
        }
        let interval = configuration.reconnectInterval * reconnectBackoff
        var tried = false
        if (!isJoined || activeOthers == 0) && !seeds.isEmpty {
            contactSeeds(now: now, into: &effects)
            tried = true
        }
        if let dead = randomDeadMember() ?? randomFormerMember(now: now) {
            if reconnectProbes.count >= 16 { reconnectProbes.removeAll() }
            let sequence = makeSequence()
            reconnectProbes[sequence] = dead.id
            send(.ping(sequence: sequence, target: dead.id), to: dead.endpoint, into: &effects)
            counters.pingsSent += 1
            tried = true
        }
        nextReconnectAt = now + (tried ? interval : configuration.reconnectInterval)
        if tried { reconnectBackoff = min(8, reconnectBackoff * 2) }
        if activeOthers > 0 && isJoined && randomDeadMember() == nil && formerMembers.isEmpty { reconnectBackoff = 1 }
    }

    /// Remembers `member`, dead and forgotten at `now`, for reconnection
    /// (replacing an older entry of its ID; past ``formerMemberCapacity``
    /// the oldest goes).
    mutating func rememberFormer(_ member: Member, now: Instant) {
        formerMembers.removeAll { $0.member.id == member.id }
        formerMembers.append((member, now))
        if formerMembers.count > Self.formerMemberCapacity { formerMembers.removeFirst() }
    }

    /// A random forgotten dead member, after dropping those forgotten for
    /// longer than ``formerMemberRetention``, those known again, and those
    /// whose endpoint a known member (a process restarted there with a new
    /// ID) or this member now has.
    private mutating func randomFormerMember(now: Instant) -> Member? {
        guard !formerMembers.isEmpty else { return nil }
        let taken = Set(members.members.map(\.endpoint)).union([endpoint])
        formerMembers.removeAll { former in
            now - former.forgottenAt >= Self.formerMemberRetention || members.slot(of: former.member.id) != nil
                || taken.contains(former.member.endpoint)
        }
        guard !formerMembers.isEmpty else { return nil }
        return formerMembers[Int.random(in: 0..<formerMembers.count, using: &generator)].member
    }

    /// A member we do not know wrote to us: we missed its announcement
    /// (gossip is probabilistic), so exchange state with it rather than wait
    /// for the periodic push-pull. At most one such exchange per protocol
    /// period; nothing in a converged cluster.
    mutating func askUnknownSender(at sender: Endpoint, now: Instant, into effects: inout [SWIMEffect]) {
        guard !isLeaving, now >= nextUnknownSenderExchangeAt else { return }
        nextUnknownSenderExchangeAt = now + configuration.protocolPeriod
        send(.pushPull(members: pushPullMembers, isReply: false), to: sender, into: &effects)
        counters.pushPullsSent += 1
    }

    // MARK: Multicast discovery

    /// Announces this member to the multicast group, if discovery is on.
    mutating func announce(now: Instant, into effects: inout [SWIMEffect]) {
        guard let group = configuration.multicastGroup else { return }
        nextAnnounceAt = now + configuration.multicastAnnounceInterval
        guard !isLeaving else { return }
        send(.announce(cluster: configuration.clusterName, endpoint: endpoint), to: group, into: &effects)
        counters.announcementsSent += 1
    }

    /// Another member of our cluster looking for it: answer with our state
    /// if we are alone, else with probability 3 / N, so about three members
    /// answer whatever the cluster size. Our own announcement (multicast
    /// loopback), other clusters' and known members' are ignored, and
    /// every announcement while discovery is off. The answer goes to the
    /// datagram's source (`source`, the socket the announcer sends from),
    /// not to the endpoint the announcement names: one naming another
    /// address would aim our state at it.
    mutating func hearAnnouncement(
        from sender: NodeID, at source: Endpoint, cluster: String, now: Instant, into effects: inout [SWIMEffect]
    ) {
        guard sender != id, !isLeaving else { return }
        guard configuration.multicastGroup != nil, cluster == configuration.clusterName,
              members[sender]?.status.isActive != true
        else {
            counters.announcementsIgnored += 1
            return
        }
        let chance = 3 / Double(clusterSize)
        guard activeOthers == 0 || chance >= 1 || Double.random(in: 0..<1, using: &generator) < chance else {
            return
        }
        send(.pushPull(members: pushPullMembers, isReply: false), to: source, into: &effects)
        counters.pushPullsSent += 1
    }

    /// A random member declared dead (not departed), if any.
    private mutating func randomDeadMember() -> Member? {
        let all = members.members
        guard all.count > activeOthers else { return nil }
        for _ in 0..<8 {
            let candidate = all[Int.random(in: 0..<all.count, using: &generator)]
            if candidate.status == .dead { return candidate }
        }
        return nil
    }
}
