import EventCore

// Driving: events come out of the queue in (time, insertion) order and move
// the clock to their time.
extension SimulatedNetwork {
    /// Whether nothing is left to happen: no message in flight, no pending
    /// timer or scripted action.
    public var isIdle: Bool {
        discardStaleEvents()
        return queue.isEmpty
    }

    /// Runs the next event — a delivery, a timer or a scripted action —
    /// moving ``now`` to its time. Returns false, doing nothing, if there is
    /// none.
    @discardableResult
    public func step() -> Bool {
        while let entry = queue.popFirst() {
            if process(entry) { return true }
        }
        return false
    }

    /// Runs every event due at or before `deadline`, including those they
    /// schedule in that window, then moves ``now`` to `deadline` (if it is
    /// later than now).
    public func run(until deadline: Instant) {
        while let next = queue.first, next.time <= deadline.nanoseconds, let entry = queue.popFirst() {
            process(entry)
        }
        if deadline > now { now = deadline }
    }

    /// Runs the events of the next `duration` of virtual time; see
    /// ``run(until:)``.
    public func run(for duration: Duration) {
        run(until: now + duration)
    }

    /// Runs events until none is left or `maxEvents` have run, whichever is
    /// first. Returns whether the network went idle (a protocol that keeps a
    /// periodic timer never does).
    @discardableResult
    public func runUntilIdle(maxEvents: Int = 10_000_000) -> Bool {
        var processed = 0
        while processed < maxEvents {
            guard step() else { return true }
            processed += 1
        }
        return isIdle
    }

    /// Runs one popped event; returns false if it was a stale timer.
    @discardableResult
    private func process(_ entry: QueuedEvent) -> Bool {
        switch entry.event {
        case .delivery(let source, let destination, let payload, let messageID):
            advanceClock(to: entry.time)
            deliver(source: source, destination: destination, payload: payload, messageID: messageID)
            return true
        case .timer(let slot, let generation):
            guard !isStale(slot: slot, generation: generation) else { return false }
            advanceClock(to: entry.time)
            fireTimer(slot: slot)
            return true
        }
    }

    private func advanceClock(to time: UInt64) {
        if time > now.nanoseconds { now = Instant(nanoseconds: time) }
    }

    /// Pops cancelled or discarded timers off the front of the queue.
    private func discardStaleEvents() {
        while let next = queue.first, case .timer(let slot, let generation) = next.event,
            isStale(slot: slot, generation: generation)
        {
            _ = queue.popFirst()
        }
    }
}
