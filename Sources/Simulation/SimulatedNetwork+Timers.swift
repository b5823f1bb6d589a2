import EventCore

/// A pending node timer or scripted network action.
struct TimerSlot {
    /// What to run; nil once the slot is free.
    var body: (() -> Void)?
    /// The index of the node that armed the timer, or -1 for a scripted
    /// network action.
    var owner: Int32
    /// Bumped whenever the slot is freed, so a queued event or a handle for
    /// an earlier use of the slot is recognised as stale.
    var generation: UInt32
}

// Timers of nodes and scripted actions share the event queue: a slot table
// holds their closures, and cancelling frees the slot at once (the queued
// event is skipped when it comes due, by its generation).
extension SimulatedNetwork {
    /// Runs `action` when virtual time reaches `instant` (on the next step
    /// if it already has), after every event already due at that instant:
    /// how a test scripts faults ("partition at 2 s, heal at 5 s").
    /// Actions are not node timers: crashes do not discard them and
    /// ``SimulationStatistics/timersFired`` does not count them.
    public func schedule(at instant: Instant, _ action: @escaping (SimulatedNetwork) -> Void) {
        _ = arm(owner: -1, at: instant) { [unowned self] in action(self) }
    }

    /// Arms a timer of `node`; see ``SimulatedNode/schedule(at:_:)``.
    func scheduleTimer(
        of node: SimulatedNode, at deadline: Instant, _ body: @escaping () -> Void
    ) -> TimerHandle {
        // A crashed node runs nothing: the handle names no slot and never fires.
        guard !node.isCrashed else { return TimerHandle(rawValue: UInt64.max) }
        return arm(owner: Int32(node.index), at: deadline, body)
    }

    /// Cancels a timer of `node`; see ``SimulatedNode/cancel(_:)``.
    func cancelTimer(of node: SimulatedNode, _ handle: TimerHandle) {
        let slot = Int(handle.rawValue & 0xFFFF_FFFF)
        let generation = UInt32(truncatingIfNeeded: handle.rawValue >> 32)
        guard slot < timers.count, timers[slot].generation == generation,
            timers[slot].owner == Int32(node.index), timers[slot].body != nil
        else { return }
        freeTimer(Int32(slot))
    }

    /// Discards every pending timer of the node at `index`.
    func discardTimers(of index: Int32) {
        for slot in timers.indices where timers[slot].owner == index && timers[slot].body != nil {
            freeTimer(Int32(slot))
        }
    }

    /// Runs the timer or action of `slot`, which the caller has checked is
    /// not stale, freeing the slot first.
    func fireTimer(slot: Int32) {
        let timer = timers[Int(slot)]
        guard let body = timer.body else { return }
        freeTimer(slot)
        if timer.owner >= 0 {
            statistics.timersFired += 1
            if recorder.isEnabled {
                record(.timerFired(node: nodes[Int(timer.owner)].localEndpoint))
            }
        }
        body()
    }

    /// Whether a queued timer event is stale: its timer was cancelled or
    /// discarded.
    func isStale(slot: Int32, generation: UInt32) -> Bool {
        timers[Int(slot)].generation != generation
    }

    private func arm(owner: Int32, at deadline: Instant, _ body: @escaping () -> Void) -> TimerHandle {
        let slot: Int32
        if let free = freeTimers.popLast() {
            slot = free
            timers[Int(slot)].body = body
            timers[Int(slot)].owner = owner
        } else {
            slot = Int32(timers.count)
            timers.append(TimerSlot(body: body, owner: owner, generation: 0))
        }
        let generation = timers[Int(slot)].generation
        queue.push(.timer(slot: slot, generation: generation), at: max(deadline, now).nanoseconds)
        return TimerHandle(rawValue: UInt64(generation) << 32 | UInt64(UInt32(slot)))
    }

    private func freeTimer(_ slot: Int32) {
        timers[Int(slot)].body = nil
        timers[Int(slot)].generation &+= 1
        freeTimers.append(slot)
    }
}
