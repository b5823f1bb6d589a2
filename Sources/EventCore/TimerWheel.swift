/// A hashed timing wheel: timers with O(1) schedule and cancel, kept cheap
/// with hundreds of thousands pending (every Raft group and SWIM probe keeps
/// several).
///
/// Time is cut into ticks of ``resolution``; a timer sits in the slot of its
/// deadline's tick modulo the wheel size and fires when the wheel passes that
/// tick. Deadlines are rounded *up* to a tick, so a timer never fires early
/// and fires at most one resolution late. Deadlines more than one revolution
/// ahead stay in their slot and are skipped until their tick comes round.
/// An occupancy bitmap finds the next non-empty slot in 64-slot steps, so the
/// next expiry is cheap to report to `epoll_wait`.
///
/// Storage is a slab of parallel arrays linked by index, reused through a
/// free list: after warm-up, schedule and cancel allocate nothing.
/// A value type, confined to one thread (the ``EventLoop`` that owns it).
public struct TimerWheel<Payload> {
    /// The width of one tick.
    public let resolution: Duration
    private let resolutionNanos: UInt64
    private let slotMask: Int

    // Per-slot lists (first and last index into the slab, or -1), kept in
    // schedule order, and an occupancy bitmap.
    private var heads: [Int32]
    private var tails: [Int32]
    private var occupied: [UInt64]

    // The slab: one entry per timer, parallel arrays linked by index.
    private var deadlineTicks: [UInt64] = []
    private var next: [Int32] = []
    private var previous: [Int32] = []
    private var generations: [UInt32] = []
    private var payloads: [Payload?] = []
    private var freeList: [Int32] = []

    /// The last tick whose timers have all been expired.
    private var currentTick: UInt64
    /// The number of pending timers.
    public private(set) var count = 0

    /// Creates a wheel starting at `start`.
    ///
    /// - Parameters:
    ///   - start: the current instant; deadlines before it fire on the next
    ///     ``expire(upTo:into:)``.
    ///   - resolution: the tick width (default 1 ms). Must be positive; a
    ///     non-positive value is taken as 1 ns.
    ///   - slotCount: slots in the wheel, rounded up to a power of two
    ///     (default 4,096: one revolution is 4.096 s at 1 ms).
    public init(start: Instant, resolution: Duration = .milliseconds(1), slotCount: Int = 4096) {
        self.resolution = resolution
        resolutionNanos = UInt64(max(1, resolution.nanoseconds))
        var slots = 64
        while slots < slotCount && slots < 1 << 24 { slots <<= 1 }
        slotMask = slots - 1
        heads = Array(repeating: -1, count: slots)
        tails = Array(repeating: -1, count: slots)
        occupied = Array(repeating: 0, count: slots / 64)
        currentTick = start.nanoseconds / resolutionNanos
    }

    /// Whether no timer is pending.
    public var isEmpty: Bool { count == 0 }

    /// Schedules `payload` to expire at `deadline` and returns a handle for
    /// cancelling it.
    public mutating func schedule(_ payload: Payload, at deadline: Instant) -> TimerHandle {
        // Round up; a deadline at or before the current tick expires next turn.
        // (Saturating: at 1 ns ticks, distantFuture is tick UInt64.max.)
        var tick = deadline.nanoseconds / resolutionNanos
        if deadline.nanoseconds % resolutionNanos != 0 { tick += 1 }
        tick = max(tick, Self.saturatingAdd(currentTick, 1))

        let index: Int
        if let reused = freeList.popLast() {
            index = Int(reused)
            deadlineTicks[index] = tick
            payloads[index] = payload
        } else {
            index = deadlineTicks.count
            deadlineTicks.append(tick)
            next.append(-1)
            previous.append(-1)
            generations.append(0)
            payloads.append(payload)
        }
        link(index, slot: Int(truncatingIfNeeded: tick) & slotMask)
        count += 1
        return handle(of: index)
    }

    /// Cancels a timer, returning its payload, or nil if the handle is stale
    /// (the timer already expired or was cancelled).
    @discardableResult
    public mutating func cancel(_ handle: TimerHandle) -> Payload? {
        let index = Int(handle.rawValue & 0xFFFF_FFFF)
        guard index < generations.count,
            generations[index] == UInt32(truncatingIfNeeded: handle.rawValue >> 32),
            let payload = payloads[index]
        else { return nil }
        unlink(index, slot: Int(truncatingIfNeeded: deadlineTicks[index]) & slotMask)
        release(index)
        return payload
    }

    /// The earliest instant at which some timer may be due, or nil if none is
    /// pending. It may be a tick at which only a later-round timer sits; the
    /// caller then wakes, expires nothing, and asks again.
    public func nextExpiry() -> Instant? {
        guard count > 0 else { return nil }
        let slots = slotMask + 1
        let start = Int(truncatingIfNeeded: currentTick &+ 1) & slotMask
        // Scan the bitmap from `start` round the wheel.
        var offset = 0
        while offset < slots {
            let slot = (start + offset) & slotMask
            let word = occupied[slot >> 6] >> UInt64(slot & 63)
            if word != 0 {
                let skip = word.trailingZeroBitCount
                let found = offset + skip
                if found < slots {
                    return instant(ofTick: Self.saturatingAdd(currentTick, 1 + UInt64(found)))
                }
                break
            }
            offset += 64 - (slot & 63)
        }
        // Only reachable if the bitmap and count disagree: report the next tick.
        return instant(ofTick: Self.saturatingAdd(currentTick, 1))
    }

    /// The start of `tick`, saturating at ``Instant/distantFuture``.
    private func instant(ofTick tick: UInt64) -> Instant {
        let (nanoseconds, overflow) = tick.multipliedReportingOverflow(by: resolutionNanos)
        return overflow ? .distantFuture : Instant(nanoseconds: nanoseconds)
    }

    private static func saturatingAdd(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }

    /// Removes every timer due at or before `now` and appends their payloads
    /// to `expired`: earliest tick first, and in schedule order within a tick.
    public mutating func expire(upTo now: Instant, into expired: inout [Payload]) {
        expire(upTo: now) { _, payload in expired.append(payload) }
    }

    /// Removes every timer due at or before `now` and appends each one's
    /// handle and payload to `expired`: earliest tick first, and in schedule
    /// order within a tick.
    ///
    /// The handles are stale once this returns (``cancel(_:)`` ignores
    /// them): a caller that runs the payloads one by one, and lets each run
    /// cancel timers, keeps the handles cancelled meanwhile and skips their
    /// payloads, as ``EventLoop`` does.
    public mutating func expire(
        upTo now: Instant, into expired: inout [(handle: TimerHandle, payload: Payload)]
    ) {
        expire(upTo: now) { handle, payload in expired.append((handle, payload)) }
    }

    /// Removes every timer due at or before `now`, passing each one's handle
    /// and payload to `take`: earliest tick first, and in schedule order
    /// within a tick.
    private mutating func expire(upTo now: Instant, _ take: (TimerHandle, Payload) -> Void) {
        let nowTick = now.nanoseconds / resolutionNanos
        guard nowTick > currentTick else { return }
        if count == 0 {
            currentTick = nowTick
            return
        }
        let revolution = UInt64(slotMask + 1)
        if nowTick - currentTick <= revolution {
            // The common case: each passed tick's slot holds its due timers in order.
            var tick = currentTick + 1
            // `tick <= nowTick` before the increment, so it cannot overflow.
            while tick <= nowTick && count > 0 {
                drain(slot: Int(truncatingIfNeeded: tick) & slotMask, dueBy: nowTick) { _, handle, payload in
                    take(handle, payload)
                }
                if tick == nowTick { break }
                tick += 1
            }
        } else {
            // The clock jumped more than a revolution: every slot may hold due
            // timers of several rounds, so gather them all and order by deadline.
            var due: [(tick: UInt64, handle: TimerHandle, payload: Payload)] = []
            for slot in 0...slotMask where heads[slot] >= 0 {
                drain(slot: slot, dueBy: nowTick) { tick, handle, payload in due.append((tick, handle, payload)) }
            }
            // Stable sort: keeps schedule order within a tick.
            let ordered = due.enumerated().sorted {
                ($0.element.tick, $0.offset) < ($1.element.tick, $1.offset)
            }
            for entry in ordered { take(entry.element.handle, entry.element.payload) }
        }
        currentTick = nowTick
    }

    /// Unlinks and releases each timer in `slot` due by `nowTick`, in list
    /// order, passing its deadline tick, handle and payload to `take`.
    private mutating func drain(
        slot: Int, dueBy nowTick: UInt64, _ take: (UInt64, TimerHandle, Payload) -> Void
    ) {
        var index = heads[slot]
        while index >= 0 {
            let i = Int(index)
            let following = next[i]
            if deadlineTicks[i] <= nowTick {
                if let payload = payloads[i] { take(deadlineTicks[i], handle(of: i), payload) }
                unlink(i, slot: slot)
                release(i)
            }
            index = following
        }
    }

    /// The handle of the timer in slab entry `index`, in its current generation.
    private func handle(of index: Int) -> TimerHandle {
        TimerHandle(rawValue: UInt64(generations[index]) << 32 | UInt64(index))
    }

    private mutating func link(_ index: Int, slot: Int) {
        let tail = tails[slot]
        previous[index] = tail
        next[index] = -1
        if tail >= 0 { next[Int(tail)] = Int32(index) } else { heads[slot] = Int32(index) }
        tails[slot] = Int32(index)
        occupied[slot >> 6] |= 1 << UInt64(slot & 63)
    }

    private mutating func unlink(_ index: Int, slot: Int) {
        let before = previous[index]
        let after = next[index]
        if before >= 0 { next[Int(before)] = after } else { heads[slot] = after }
        if after >= 0 { previous[Int(after)] = before } else { tails[slot] = before }
        if heads[slot] < 0 { occupied[slot >> 6] &= ~(1 << UInt64(slot & 63)) }
    }

    private mutating func release(_ index: Int) {
        payloads[index] = nil
        generations[index] &+= 1
        freeList.append(Int32(index))
        count -= 1
    }
}
