import EventCore

// The message path: a send draws the link's fate and queues copies; a
// delivery checks crash and partition at arrival and calls the handler.
extension SimulatedNetwork {
    /// Sends `message` from node `source` to `destination`; see
    /// ``SimulatedNode/send(_:to:)``.
    func send(
        from source: SimulatedNode, _ message: UnsafeRawBufferPointer, to destination: Endpoint
    ) throws(TransportError) {
        guard !source.isCrashed else {
            throw TransportError(.closed, detail: "node \(source.localEndpoint) is crashed")
        }
        guard message.count <= maximumMessageSize else {
            throw TransportError(
                .messageTooLarge,
                detail: "\(message.count) bytes to \(destination), limit \(maximumMessageSize)")
        }
        statistics.sent += 1
        let messageID = UInt64(statistics.sent)
        let sender = source.localEndpoint
        if recorder.isEnabled {
            record(.send(messageID: messageID, from: sender, to: destination, size: message.count))
        }
        // The sender crashes instead of sending, wherever the message was
        // going: a crash point does not depend on the destination being
        // reachable (a probe to a partitioned or departed peer is one).
        if !forcedFaults.isEmpty, case .crashSender(let restartAfter) = forcedFaults[messageID] {
            countDrop(.crash, messageID: messageID, from: sender, to: destination)
            crash(source)
            schedule(at: now + restartAfter) { $0.restart(source) }
            return
        }
        guard let target = nodeIndexByEndpoint[destination] else {
            guard let members = multicastGroups[destination], !members.isEmpty else {
                return countDrop(.noReceiver, messageID: messageID, from: sender, to: destination)
            }
            // A multicast group: every member gets its own copy, over its own
            // link from the sender (the sender too, if it is a member, as
            // with IP_MULTICAST_LOOP).
            for member in members {
                transmit(message, from: source, to: member, messageID: messageID, destination: destination)
            }
            return
        }
        transmit(message, from: source, to: target, messageID: messageID, destination: destination)
    }

    /// Draws the fate of one copy over the link from `source` to node
    /// `target` (partition, loss, duplication) and queues what survives.
    private func transmit(
        _ message: UnsafeRawBufferPointer, from source: SimulatedNode, to target: Int32, messageID: UInt64,
        destination: Endpoint
    ) {
        let sender = source.localEndpoint
        let origin = Int32(source.index)
        let key = Self.linkKey(origin, target)
        if !blockedLinks.isEmpty, blockedLinks.contains(key) {
            return countDrop(.partition, messageID: messageID, from: sender, to: destination)
        }
        let link = linkOverrides.isEmpty ? defaultLink : linkOverrides[key] ?? defaultLink
        if !forcedFaults.isEmpty, let fault = forcedFaults[messageID] {
            return transmit(
                message, from: source, to: target, messageID: messageID, destination: destination, forcing: fault,
                link: link)
        }
        if link.drawLoss(&random) {
            return countDrop(.loss, messageID: messageID, from: sender, to: destination)
        }
        enqueueCopy(of: message, from: origin, to: target, messageID: messageID, delay: link.drawDelay(&random))
        if link.drawDuplicate(&random) {
            countDuplicate(messageID: messageID, from: sender, to: destination)
            enqueueCopy(of: message, from: origin, to: target, messageID: messageID, delay: link.drawDelay(&random))
        }
    }

    /// One copy's fate as a ``FaultSchedule`` forces it, instead of the
    /// link's draws.
    private func transmit(
        _ message: UnsafeRawBufferPointer, from source: SimulatedNode, to target: Int32, messageID: UInt64,
        destination: Endpoint, forcing fault: MessageFault, link: LinkModel
    ) {
        let (sender, origin) = (source.localEndpoint, Int32(source.index))
        switch fault {
        case .drop:
            countDrop(.loss, messageID: messageID, from: sender, to: destination)
        case .delay(let delay):
            enqueueCopy(of: message, from: origin, to: target, messageID: messageID, delay: Self.nanoseconds(delay))
        case .duplicate(let after):
            enqueueCopy(of: message, from: origin, to: target, messageID: messageID, delay: link.drawDelay(&random))
            countDuplicate(messageID: messageID, from: sender, to: destination)
            enqueueCopy(of: message, from: origin, to: target, messageID: messageID, delay: Self.nanoseconds(after))
        case .crashSender:
            // Taken in send(_:to:) before any copy.
            preconditionFailure("a crash of the sender reached a copy of message \(messageID)")
        }
    }

    /// A forced fault's duration in nanoseconds (negative counts as 0).
    private static func nanoseconds(_ duration: Duration) -> UInt64 {
        UInt64(clamping: max(0, duration.nanoseconds))
    }

    private func countDuplicate(messageID: UInt64, from sender: Endpoint, to destination: Endpoint) {
        statistics.duplicated += 1
        if recorder.isEnabled {
            record(.duplicate(messageID: messageID, from: sender, to: destination))
        }
    }

    /// Delivers or drops one copy of a message, then frees its payload slot.
    func deliver(source: Int32, destination: Int32, payload: Int32, messageID: UInt64) {
        handOver(source: source, destination: destination, payload: payload, messageID: messageID)
        // After `handOver` returned, its copy of the bytes is released, so
        // emptying the slot reuses its buffer instead of copying it.
        releasePayload(payload)
    }

    /// Hands a copy to its destination's receive handler, or drops it if the
    /// destination is crashed, the node sent it itself and crashed since,
    /// the link is blocked, or no handler is installed.
    private func handOver(source: Int32, destination: Int32, payload: Int32, messageID: UInt64) {
        let target = nodes[Int(destination)]
        let sender = nodes[Int(source)].localEndpoint
        if target.isCrashed || (source == destination && payloadSenderCrashes[Int(payload)] != target.crashes) {
            return countDrop(.crash, messageID: messageID, from: sender, to: target.localEndpoint)
        }
        if !blockedLinks.isEmpty, blockedLinks.contains(Self.linkKey(source, destination)) {
            return countDrop(.partition, messageID: messageID, from: sender, to: target.localEndpoint)
        }
        guard let handler = target.receiveHandler else {
            return countDrop(.noReceiver, messageID: messageID, from: sender, to: target.localEndpoint)
        }
        statistics.delivered += 1
        // A local copy (one retain), so the handler may send, and so grow
        // `payloads`, while reading these bytes.
        let bytes = payloads[Int(payload)]
        if recorder.isEnabled {
            record(.deliver(messageID: messageID, from: sender, to: target.localEndpoint, size: bytes.count))
        }
        bytes.withUnsafeBytes { handler($0, sender, now) }
    }

    /// Copies `message` into a payload slot and queues its delivery
    /// `delay` nanoseconds from now.
    private func enqueueCopy(
        of message: UnsafeRawBufferPointer, from source: Int32, to destination: Int32,
        messageID: UInt64, delay: UInt64
    ) {
        let slot: Int32
        if let free = freePayloads.popLast() {
            slot = free
            payloads[Int(slot)].append(contentsOf: message)
            payloadSenderCrashes[Int(slot)] = nodes[Int(source)].crashes
        } else {
            slot = Int32(payloads.count)
            payloads.append(Array(message))
            payloadSenderCrashes.append(nodes[Int(source)].crashes)
        }
        let (due, overflow) = now.nanoseconds.addingReportingOverflow(delay)
        queue.push(
            .delivery(source: source, destination: destination, payload: slot, messageID: messageID),
            at: overflow ? UInt64.max : due)
    }

    /// Counts (and traces) a message copy dropped for `reason`.
    private func countDrop(
        _ reason: TraceEvent.DropReason, messageID: UInt64, from sender: Endpoint, to destination: Endpoint
    ) {
        switch reason {
        case .loss: statistics.droppedByLoss += 1
        case .partition: statistics.droppedByPartition += 1
        case .crash: statistics.droppedByCrash += 1
        case .noReceiver: statistics.droppedNoReceiver += 1
        }
        if recorder.isEnabled {
            record(.drop(messageID: messageID, from: sender, to: destination, reason: reason))
        }
    }

    /// Returns a payload slot to the free list, emptied but keeping its
    /// capacity unless that is large (over 64 KiB).
    private func releasePayload(_ slot: Int32) {
        if payloads[Int(slot)].capacity > 1 << 16 {
            payloads[Int(slot)] = []
        } else {
            payloads[Int(slot)].removeAll(keepingCapacity: true)
        }
        freePayloads.append(slot)
    }
}
