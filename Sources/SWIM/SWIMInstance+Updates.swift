#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import EventCore

extension SWIMInstance {
    /// Handles one decoded message from `sender` (the datagram's source).
    public mutating func receive(
        _ message: SWIMMessage, from sender: Endpoint, now: Instant, into effects: inout [SWIMEffect]
    ) {
        guard !hasDeparted else { return }
        if case .announce(let cluster, _) = message.body {
            return hearAnnouncement(from: message.sender, at: sender, cluster: cluster, now: now, into: &effects)
        }
        guard message.sender != id else {
            // Our own ID from elsewhere: forged, or a clash of IDs.
            counters.impostorMessages += 1
            return
        }
        for update in message.updates {
            apply(update, now: now, into: &effects)
        }
        if members.slot(of: message.sender) == nil {
            if case .pushPull = message.body {} else { askUnknownSender(at: sender, now: now, into: &effects) }
        }
        switch message.body {
        case .ping(let sequence, let target):
            guard target == id else {
                counters.misdirectedPings += 1
                return
            }
            // A leaver's ack says it left, whatever its count.
            send(.ack(sequence: sequence), to: sender, updates: piggyback(first: leaveUpdate), into: &effects)
            counters.acksSent += 1
        case .ack(let sequence):
            receiveAck(sequence: sequence, from: sender, now: now, into: &effects)
        case .pingRequest(let sequence, let target, let endpoint):
            relayPing(target: target, endpoint: endpoint, requesterSequence: sequence, requester: sender, now: now,
                      into: &effects)
        case .nack(let sequence):
            receiveNack(sequence: sequence)
        case .gossip, .announce:
            break
        case .pushPull(let members, let isReply):
            merge(members, from: message.sender, isReply: isReply, now: now, into: &effects)
            if isReply {
                isJoined = true
                reconnectBackoff = 1
            } else if !isLeaving {
                send(.pushPull(members: pushPullMembers, isReply: true), to: sender, into: &effects)
                counters.pushPullsSent += 1
            }
        }
    }

    /// Applies one update under the incarnation rules; an accepted change
    /// is queued to spread further and reported to listeners.
    ///
    /// With `spreadNewMembers` false, a member learnt here for the first
    /// time is sent on once only (see ``merge(_:from:isReply:now:into:)``).
    mutating func apply(
        _ update: SWIMUpdate, spreadNewMembers: Bool = true, now: Instant, into effects: inout [SWIMEffect]
    ) {
        // A claim about us above maximumClaimedIncarnation, and above our
        // own, is not refuted: the refutation must stay within what every
        // decoder reads. One at or below ours is handled as usual (its
        // refutation adds one).
        if update.subject == id, let claimed = update.incarnation, claimed > Member.maximumClaimedIncarnation,
           claimed > incarnation {
            counters.absurdIncarnations += 1
            return
        }
        switch update {
        case .alive(let member):
            applyAlive(member, spreadIfNew: spreadNewMembers, now: now, into: &effects)
        case .suspect(let subject, let incarnation, let suspecter):
            applySuspect(subject, incarnation: incarnation, by: suspecter, now: now, into: &effects)
        case .dead(let subject, let incarnation, _):
            applyDeparture(subject, incarnation: incarnation, status: .dead, update: update, now: now, into: &effects)
        case .left(let subject, let incarnation):
            applyDeparture(subject, incarnation: incarnation, status: .left, update: update, now: now, into: &effects)
        case .broadcast(let broadcast):
            guard broadcast.origin != id,
                  broadcast.payload.count <= configuration.maximumBroadcastSize
            else { return }
            let key = BroadcastKey(origin: broadcast.origin, sequence: broadcast.sequence)
            guard delivered.insert(key) else { return }
            effects.append(.deliver(broadcast))
            // One longer than this member's packets can carry (from a peer
            // whose packets are larger) is delivered but not relayed: queued,
            // it could never be sent.
            if broadcastQueue.count < configuration.broadcastQueueCapacity,
                broadcast.payload.count <= configuration.effectiveBroadcastLimit
            {
                broadcastQueue.enqueue(broadcast.payload, key: key)
            } else {
                counters.broadcastsDropped += 1
            }
        }
    }

    private mutating func applyAlive(
        _ member: Member, spreadIfNew: Bool, now: Instant, into effects: inout [SWIMEffect]
    ) {
        if member.id == id {
            // A claim about us newer than we are, or as new and not what we
            // are (an earlier run of this ID, restarted elsewhere or with
            // other metadata, or forged): outbid it (a leaver, with its
            // `left`). Left standing, an earlier run's record at our
            // incarnation would hide our endpoint or metadata for good.
            if isLeaving {
                outbidWhileLeaving(member.incarnation)
            } else if member.incarnation > incarnation
                || (member.incarnation == incarnation && (member.endpoint != endpoint || member.metadata != metadata))
            {
                if member.endpoint != endpoint {
                    // Once for an earlier run restarted elsewhere; again
                    // and again for a second live process with our ID.
                    counters.idConflicts += 1
                    conflictingEndpoint = member.endpoint
                }
                refute(above: member.incarnation, telling: nil, now: now, into: &effects)
            }
            return
        }
        guard member.metadata.count <= configuration.maximumMetadataSize else {
            counters.staleUpdates += 1
            return
        }
        // One lookup, and nothing copied, for the common case: news we
        // have already.
        guard let slot = members.slot(of: member.id) else {
            guard members.count < configuration.maximumMembers else {
                counters.membersRefused += 1
                return
            }
            insert(member)
            effects.append(.memberEvent(MemberEvent(.joined, member: member, at: now)))
            spread(member.id, slot: members.count - 1,
                   transmissions: spreadIfNew ? 0 : transmitLimit - reannouncements)
            return
        }
        let known = members[slot: slot]
        guard member.incarnation > known.incarnation else {
            if member.incarnation < known.incarnation { counters.staleUpdates += 1 }
            return
        }
        let returned: MemberEvent.Kind? =
            switch known.status {
            case .dead, .left: .joined
            case .suspect: .alive
            case .alive: nil
            }
        let moved = known.status.isActive && known.endpoint != member.endpoint
        let republished = known.status.isActive && known.metadata != member.metadata
        setStatus(of: slot, to: .alive, now: now)
        members[slot: slot].incarnation = member.incarnation
        members[slot: slot].endpoint = member.endpoint
        members[slot: slot].metadata = member.metadata
        if !known.status.isActive { addToProbeOrder(member.id) }
        let record = members[slot: slot]
        if let returned { effects.append(.memberEvent(MemberEvent(returned, member: record, at: now))) }
        if moved { effects.append(.memberEvent(MemberEvent(.endpointChanged, member: record, at: now))) }
        if republished { effects.append(.memberEvent(MemberEvent(.metadataChanged, member: record, at: now))) }
        spread(member.id, slot: slot)
    }

    private mutating func applySuspect(
        _ subject: NodeID, incarnation suspected: UInt64, by suspecter: NodeID, now: Instant,
        into effects: inout [SWIMEffect]
    ) {
        if subject == id {
            if isLeaving {
                outbidWhileLeaving(suspected)
            } else if suspected >= incarnation {
                refute(above: suspected, telling: suspecter, now: now, into: &effects)
                adjustHealth(by: 1)  // Lifeguard: being suspected hints we are slow
            }
            return
        }
        guard let slot = members.slot(of: subject) else {
            counters.staleUpdates += 1
            return
        }
        let known = members[slot: slot]
        switch known.status {
        case .dead, .left:
            return
        case .suspect where suspected == known.incarnation:
            // A confirmation: shortens the suspicion; pass it on.
            guard suspicions[subject]?.confirm(by: suspecter) == true else { return }
            if let deadline = suspicions[subject]?.deadline { suspicionDeadlines.set(subject, to: deadline) }
            spread(subject, slot: slot, by: suspecter)
            return
        case .suspect, .alive:
            guard suspected >= known.incarnation else {
                counters.staleUpdates += 1
                return
            }
        }
        setStatus(of: slot, to: .suspect, now: now)
        members[slot: slot].incarnation = suspected
        let suspicion = makeSuspicion(by: suspecter, now: now)
        suspicions[subject] = suspicion
        suspicionDeadlines.set(subject, to: suspicion.deadline)
        let suspect = members[slot: slot]
        effects.append(.memberEvent(MemberEvent(.suspect, member: suspect, at: now)))
        spread(subject, slot: slot, by: suspecter)
        if suspecter != id { maybeConfirm(suspect, now: now, into: &effects) }
    }

    private mutating func applyDeparture(
        _ subject: NodeID, incarnation: UInt64, status: MemberStatus, update: SWIMUpdate, now: Instant,
        into effects: inout [SWIMEffect]
    ) {
        let declarer: NodeID? = if case .dead(_, _, let by) = update { by } else { nil }
        if subject == id {
            // Declared dead (or gone) while we are here: refute.
            if isLeaving {
                outbidWhileLeaving(incarnation)
            } else if incarnation >= self.incarnation {
                refute(above: incarnation, telling: declarer, now: now, into: &effects)
            }
            return
        }
        guard let slot = members.slot(of: subject) else {
            // A forgotten member that left for good is not pinged again.
            if status == .left { formerMembers.removeAll { $0.member.id == subject } }
            counters.staleUpdates += 1
            return
        }
        let known = members[slot: slot]
        guard known.status.isActive || (known.status == .dead && status == .left) else { return }
        guard incarnation >= known.incarnation else {
            counters.staleUpdates += 1
            return
        }
        setStatus(of: slot, to: status, now: now)
        members[slot: slot].incarnation = incarnation
        effects.append(.memberEvent(MemberEvent(status == .dead ? .dead : .left, member: members[slot: slot], at: now)))
        spread(subject, slot: slot, by: declarer)
        if probe?.target == subject { probe = nil }
    }

    /// Raises our incarnation above `claimed` and spreads that we are alive;
    /// the member that suspected us (`accuser`), whose suspicion timer runs
    /// first, hears it at once rather than by gossip.
    mutating func refute(above claimed: UInt64, telling accuser: NodeID?, now: Instant,
                         into effects: inout [SWIMEffect]) {
        // apply() refutes no claim above maximumClaimedIncarnation, so this
        // stays far below what every decoder takes.
        incarnation = max(incarnation, claimed) + 1
        counters.refutations += 1
        spread(id)
        if let accuser, let member = members[accuser], member.status.isActive {
            send(.gossip, to: member.endpoint, updates: [.alive(localMember)], into: &effects)
            counters.gossipSent += 1
        }
    }

    /// A claim about this leaving member at `claimed`: one above its
    /// incarnation would make members holding it ignore its `left` (at or
    /// below it, `left` wins), so `left` goes out its full count again, one
    /// higher. (The leave's cutoff still bounds the sends this restarts.)
    private mutating func outbidWhileLeaving(_ claimed: UInt64) {
        guard claimed > incarnation else { return }
        incarnation = claimed + 1
        leaveSends = 0
    }

    /// A suspicion with Lifeguard's timeouts for the current cluster size.
    private func makeSuspicion(by suspecter: NodeID, now: Instant) -> Suspicion {
        let scale = max(1, log10(Double(clusterSize)))
        let minimum = configuration.protocolPeriod * (configuration.suspicionMultiplier * scale)
        return Suspicion(by: suspecter, at: now, minimum: minimum,
                         maximum: minimum * configuration.maximumSuspicionMultiplier,
                         neededConfirmations: configuration.suspicionConfirmations)
    }

    /// Declares dead the suspects whose suspicion timed out, earliest
    /// deadline first.
    mutating func expireSuspicions(now: Instant, into effects: inout [SWIMEffect]) {
        while let subject = suspicionDeadlines.firstDue(at: now) {
            guard let member = members[subject], member.status == .suspect else {
                // Not reached: a suspicion ends with its member's suspect
                // status. Dropped, so the loop always moves on.
                suspicions[subject] = nil
                suspicionDeadlines.remove(subject)
                continue
            }
            counters.deathsDeclared += 1
            // Ends the suspicion (setStatus), so the next due one comes up.
            applyDeparture(subject, incarnation: member.incarnation, status: .dead,
                           update: .dead(subject, incarnation: member.incarnation, by: id), now: now, into: &effects)
        }
    }

    // MARK: The member table

    private mutating func insert(_ member: Member) {
        var member = member
        member.status = .alive
        members.append(member)
        activeOthers += 1
        statusCounts[Int(MemberStatus.alive.rawValue)] += 1
        addToProbeOrder(member.id)
    }

    /// Moves the member in `slot` to `status`, keeping the counts, the
    /// suspicions and the departed list.
    mutating func setStatus(of slot: Int, to status: MemberStatus, now: Instant) {
        let subject = members[slot: slot].id
        let old = members[slot: slot].status
        guard old != status else { return }
        statusCounts[Int(old.rawValue)] -= 1
        statusCounts[Int(status.rawValue)] += 1
        if old.isActive && !status.isActive { activeOthers -= 1 }
        if !old.isActive && status.isActive { activeOthers += 1 }
        if old == .suspect {
            suspicions[subject] = nil
            suspicionDeadlines.remove(subject)
        }
        members[slot: slot].status = status
        if old.isActive && !status.isActive {
            departureCount &+= 1
            departed.append((subject, now, departureCount))
            departures[subject] = departureCount
        } else if !old.isActive && status.isActive {
            // Its entry in `departed` stays, passed over from now on.
            departures[subject] = nil
            if departed.count - departures.count > departures.count + 64 {
                departed.removeAll { departures[$0.id] != $0.departure }
            }
        }
        // Dead to left: retention still counts from the death.
    }

    /// Forgets dead and departed members after the retention period.
    mutating func forgetExpiredMembers(now: Instant) {
        // The expired run is removed at once: one at a time, forgetting tens
        // of thousands of members (forged deaths) was quadratic.
        let expired = departed.prefix { now - $0.since >= configuration.deadMemberRetention }
        guard !expired.isEmpty else { return }
        departed.removeFirst(expired.count)
        for oldest in expired where departures[oldest.id] == oldest.departure {
            let candidate = oldest.id
            departures[candidate] = nil
            guard let member = members[candidate], !member.status.isActive else { continue }
            if member.status == .dead { rememberFormer(member, now: now) }
            statusCounts[Int(member.status.rawValue)] -= 1
            members.remove(candidate)
            membershipQueue.remove(candidate)
        }
    }
}
