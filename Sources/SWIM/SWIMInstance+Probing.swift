import EventCore

extension SWIMInstance {
    /// Starts the next period's probe when due, sends indirect probes when
    /// the direct one timed out, and suspects the target when the period
    /// ends without an ack.
    mutating func advanceProbe(now: Instant, into effects: inout [SWIMEffect]) {
        if var current = probe {
            if !current.indirectSent && now >= current.directDeadline {
                current.indirectSent = true
                // Alive members only, as memberlist picks them: a suspect
                // (perhaps down) would waste an indirect probe, and its
                // missing nack would count against this member's health.
                let helpers = randomActiveMembers(
                    configuration.indirectProbeCount, excluding: current.target, aliveOnly: true)
                for helper in helpers {
                    send(.pingRequest(sequence: current.sequence, target: current.target, endpoint: current.endpoint),
                         to: helper.endpoint, into: &effects)
                    counters.pingRequestsSent += 1
                }
                current.expectedNacks = helpers.count
                probe = current
            }
            if now >= current.periodEnd {
                probe = nil
                probeFailed(current, now: now, into: &effects)
            }
        }
        if probe == nil && now >= nextProbeAt {
            startProbe(now: now, into: &effects)
        }
    }

    /// Picks the next target in randomized round-robin order and pings it.
    private mutating func startProbe(now: Instant, into effects: inout [SWIMEffect]) {
        let period = stretched(configuration.protocolPeriod)
        nextProbeAt = now + period
        guard let member = nextProbeTarget() else { return }
        let sequence = makeSequence()
        probe = Probe(target: member.id, endpoint: member.endpoint, incarnation: member.incarnation,
                      sequence: sequence, directDeadline: now + stretched(configuration.probeTimeout),
                      periodEnd: now + period)
        ping(member, sequence: sequence, into: &effects)
    }

    /// Sends a ping; a suspect target hears of its suspicion first (the
    /// buddy system), so it can refute at once.
    mutating func ping(_ member: Member, sequence: UInt32, into effects: inout [SWIMEffect]) {
        let buddy: SWIMUpdate? = member.status == .suspect
            ? .suspect(member.id, incarnation: member.incarnation, by: id) : nil
        send(.ping(sequence: sequence, target: member.id), to: member.endpoint, updates: piggyback(first: buddy),
             into: &effects)
        counters.pingsSent += 1
    }

    /// The next active member of the shuffled round-robin list, reshuffled
    /// at the end of each round.
    private mutating func nextProbeTarget() -> Member? {
        guard activeOthers > 0 else { return nil }
        for _ in 0..<2 {
            while probeCursor < probeOrder.count {
                let candidate = probeOrder[probeCursor]
                probeCursor += 1
                if let member = members[candidate], member.status.isActive { return member }
            }
            probeOrder.removeAll(keepingCapacity: true)
            probeOrder.reserveCapacity(activeOthers)
            for member in members.members where member.status.isActive { probeOrder.append(member.id) }
            probeOrder.shuffle(using: &generator)
            probeCursor = 0
        }
        return nil
    }

    /// Puts a newly known member at a random place in the rest of this
    /// round, so it is probed within a round (SWIM §4.3): appended, then
    /// swapped with a random member of the rest of the round (the
    /// inside-out shuffle), which keeps the rest a random order in O(1)
    /// where an insertion would move half the round (O(N) per join, O(N²)
    /// while a large cluster forms).
    ///
    /// A member that keeps going and coming back (or forged updates saying
    /// so) adds an entry each time: past twice the active members (and 16),
    /// the round ends instead, and the next probe starts a new one with
    /// every active member once, so the order stays bounded.
    mutating func addToProbeOrder(_ member: NodeID) {
        guard probeOrder.count < 2 * activeOthers + 16 else {
            probeOrder.removeAll(keepingCapacity: true)
            probeCursor = 0
            return
        }
        let index = Int.random(in: probeCursor...probeOrder.count, using: &generator)
        if probeOrder.count == probeOrder.capacity {
            probeOrder.reserveCapacity(probeOrder.count + max(16, probeOrder.count / 4))
        }
        probeOrder.append(member)
        probeOrder.swapAt(index, probeOrder.count - 1)
    }

    private mutating func probeFailed(_ failed: Probe, now: Instant, into effects: inout [SWIMEffect]) {
        counters.failedProbes += 1
        // Lifeguard: a failed probe, and each missing nack (an intermediary
        // that did not even answer), hint that the fault may be ours.
        adjustHealth(by: 1 + max(0, failed.expectedNacks - failed.nacks))
        guard let target = members[failed.target], target.status.isActive, target.incarnation == failed.incarnation
        else { return }
        counters.suspicionsRaised += 1
        let suspicion = SWIMUpdate.suspect(failed.target, incarnation: failed.incarnation, by: id)
        apply(suspicion, now: now, into: &effects)
        // Lifeguard's buddy system, at once: the suspect hears first, so a
        // live one refutes before anyone's timer runs out.
        send(.gossip, to: target.endpoint, updates: [suspicion], into: &effects)
        counters.gossipSent += 1
    }

    mutating func adjustHealth(by delta: Int) {
        health = min(configuration.maximumHealthScore, max(0, health + delta))
    }

    // MARK: Answers

    /// An ack for the current probe, a relayed probe or a confirmation
    /// probe.
    mutating func receiveAck(sequence: UInt32, from sender: Endpoint, now: Instant, into effects: inout [SWIMEffect]) {
        if let current = probe, current.sequence == sequence {
            probe = nil
            adjustHealth(by: -1)
            return
        }
        if let relay = relays.removeValue(forKey: sequence) {
            Self.dropFinished(from: &relayOrder, relays)
            send(.ack(sequence: relay.requesterSequence), to: relay.requester, into: &effects)
            counters.acksSent += 1
            return
        }
        if confirmations.removeValue(forKey: sequence) != nil { Self.dropFinished(from: &confirmationOrder, confirmations) }
        if reconnectProbes.removeValue(forKey: sequence) != nil {
            // A member we took for dead answers: exchange state with it.
            send(.pushPull(members: pushPullMembers, isReply: false), to: sender, into: &effects)
            counters.pushPullsSent += 1
        }
    }

    mutating func receiveNack(sequence: UInt32) {
        if var current = probe, current.sequence == sequence {
            current.nacks += 1
            probe = current
        }
    }

    /// Pings `target` for `requester`; relays its ack, or nacks in time.
    /// A target this member knows left is still pinged, but the requester
    /// hears of the leave first (see ``tellDeparture(of:to:into:)``).
    mutating func relayPing(
        target: NodeID, endpoint: Endpoint, requesterSequence: UInt32, requester: Endpoint, now: Instant,
        into effects: inout [SWIMEffect]
    ) {
        guard target != id else {
            send(.ack(sequence: requesterSequence), to: requester, into: &effects)
            counters.acksSent += 1
            return
        }
        if let departed = members[target], departed.status == .left {
            tellDeparture(of: departed, to: requester, into: &effects)
        }
        guard relays.count < Self.maximumRelays else {
            counters.relaysRefused += 1
            return
        }
        let sequence = makeSequence()
        // Not stretched by our health score (as memberlist's relay): the
        // requester waits for the nack within its own probe, and a fixed
        // timeout keeps ``relayOrder`` in deadline order, which the expiry
        // and ``nextDeadline`` read from the front (with a stretched one, a
        // relay made after the score fell could be due before the one
        // ahead of it, and its nack would wait for that one).
        relays[sequence] = Relay(requester: requester, requesterSequence: requesterSequence, target: target,
                                 nackDeadline: now + configuration.relayTimeout)
        relayOrder.append(sequence)
        send(.ping(sequence: sequence, target: target), to: endpoint, updates: piggyback(), into: &effects)
        counters.pingsSent += 1
    }

    /// Tells `requester`, which asked this member to probe `departed`
    /// indirectly, that `departed` left. A member probes a leaver once it
    /// has gone only if it missed every copy of the leave (gossip reaches a
    /// member with high probability, not certainty: about one 16-member
    /// leave in a thousand misses one); the leaver no longer answers, and
    /// with the relays' nacks alone the requester suspected it and declared
    /// it dead, to learn of the leave at its next push-pull only. The
    /// `left` comes before the requester's period ends: applied, it ends
    /// the probe, and no one is suspected. The relay still pings the
    /// target: it may have come back under its ID (a restart), which the
    /// requester may know and this member not yet (the requester then
    /// takes the `left` as stale).
    private mutating func tellDeparture(of departed: Member, to requester: Endpoint, into effects: inout [SWIMEffect]) {
        send(.gossip, to: requester, updates: [.left(departed.id, incarnation: departed.incarnation)], into: &effects)
        counters.gossipSent += 1
    }

    /// Relays and confirmation probes in flight at most.
    static var maximumRelays: Int { 256 }

    /// Drops the entries at the front of `order` (``relayOrder`` or
    /// ``confirmationOrder``) no longer in `pending` (answered or expired),
    /// so that its first entry is always the one in flight due first, which
    /// ``nextDeadline`` and the expiry read (an answered one there hid the
    /// deadlines of those behind it until another timer fired). Called
    /// after every removal from `pending`.
    private static func dropFinished<Pending>(from order: inout [UInt32], _ pending: [UInt32: Pending]) {
        // One removal of the run: removing one at a time is quadratic.
        let finished = order.prefix { pending[$0] == nil }.count
        if finished > 0 { order.removeFirst(finished) }
    }

    mutating func expireRelays(now: Instant, into effects: inout [SWIMEffect]) {
        // The front is always in flight (see dropFinished).
        while let sequence = relayOrder.first, let relay = relays[sequence], relay.nackDeadline <= now {
            relays[sequence] = nil
            Self.dropFinished(from: &relayOrder, relays)
            send(.nack(sequence: relay.requesterSequence), to: relay.requester, into: &effects)
            counters.nacksSent += 1
        }
    }

    // MARK: Confirmation probes

    /// Hearing another member's suspicion, probe the suspect ourselves with
    /// probability `confirmationProbes / N`: a live suspect hears of the
    /// suspicion (and refutes) sooner, a dead one gathers the independent
    /// confirmations that shorten its suspicion.
    mutating func maybeConfirm(_ member: Member, now: Instant, into effects: inout [SWIMEffect]) {
        guard !isLeaving, configuration.confirmationProbes > 0, confirmations.count < Self.maximumRelays,
              probe?.target != member.id
        else { return }
        let chance = Double(configuration.confirmationProbes) / Double(max(1, clusterSize - 2))
        guard chance >= 1 || Double.random(in: 0..<1, using: &generator) < chance else { return }
        let sequence = makeSequence()
        let deadline = now + stretched(configuration.protocolPeriod)
        confirmations[sequence] = ConfirmationProbe(
            target: member.id, incarnation: member.incarnation, deadline: deadline)
        // In deadline order, which the expiry and nextDeadline read from the
        // front: stretched by the health score, a probe made after the
        // score fell is due before those made just before it (at most
        // maximumRelays to pass; finished entries are passed too).
        var position = confirmationOrder.endIndex
        while position > confirmationOrder.startIndex {
            let earlier = confirmationOrder[position - 1]
            if let probe = confirmations[earlier], probe.deadline <= deadline { break }
            position -= 1
        }
        confirmationOrder.insert(sequence, at: position)
        ping(member, sequence: sequence, into: &effects)
    }

    mutating func expireConfirmations(now: Instant, into effects: inout [SWIMEffect]) {
        while let sequence = confirmationOrder.first, let confirmation = confirmations[sequence],
              confirmation.deadline <= now {
            confirmations[sequence] = nil
            Self.dropFinished(from: &confirmationOrder, confirmations)
            guard let target = members[confirmation.target], target.status == .suspect,
                  target.incarnation == confirmation.incarnation
            else { continue }
            apply(.suspect(confirmation.target, incarnation: confirmation.incarnation, by: id), now: now,
                  into: &effects)
        }
    }
}
