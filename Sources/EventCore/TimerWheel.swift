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
/// Storage is a slab of entries linked by index, reused through a free
/// list: after warm-up, schedule and cancel allocate nothing. A timer's
/// deadline, links, generation and payload sit in one entry, so schedule and
/// cancel touch few cache lines however many timers are pending.
/// A value type, confined to one thread (the ``EventLoop`` that owns it).
/// Its operations are `@inlinable`, so a caller in another module gets code
/// specialized for its `Payload` rather than generic calls.
public struct TimerWheel<Payload> {
    /// One timer in the slab, or a free entry (`payload` nil).
    @usableFromInline
    struct Entry {
        @usableFromInline var deadlineTick: UInt64
        @usableFromInline var next: Int32
        @usableFromInline var previous: Int32
        @usableFromInline var generation: UInt32
        @usableFromInline var payload: Payload?

        @inlinable
        init(deadlineTick: UInt64, payload: Payload) {
            self.deadlineTick = deadlineTick
            next = -1
            previous = -1
            generation = 0
            self.payload = payload
        }
    }

    /// The first and last entry of a slot's list (slab indices, or -1).
    @usableFromInline
    struct Slot {
        @usableFromInline var head: Int32 = -1
        @usableFromInline var tail: Int32 = -1

        @inlinable
        init() {}
    }

    /// The width of one tick.
    public let resolution: Duration
    @usableFromInline let resolutionNanos: UInt64
    @usableFromInline let slotMask: Int

    // Per-slot lists, kept in schedule order, and an occupancy bitmap.
    @usableFromInline var slots: [Slot]
    @usableFromInline var occupied: [UInt64]

    // The slab and its free entries.
    @usableFromInline var entries: [Entry] = []
    @usableFromInline var freeList: [Int32] = []

    /// The last tick whose timers have all been expired.
    @usableFromInline var currentTick: UInt64
    /// The number of pending timers.
    @inlinable public var count: Int { pendingCount }
    @usableFromInline var pendingCount = 0

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
        var slotTotal = 64
        while slotTotal < slotCount && slotTotal < 1 << 24 { slotTotal <<= 1 }
        slotMask = slotTotal - 1
        slots = Array(repeating: Slot(), count: slotTotal)
        occupied = Array(repeating: 0, count: slotTotal / 64)
        currentTick = start.nanoseconds / resolutionNanos
    }

    /// Whether no timer is pending.
    @inlinable public var isEmpty: Bool { pendingCount == 0 }

    /// Schedules `payload` to expire at `deadline` and returns a handle for
    /// cancelling it.
    @inlinable
    public mutating func schedule(_ payload: Payload, at deadline: Instant) -> TimerHandle {
        // Round up; a deadline at or before the current tick expires next turn.
        // (Saturating: at 1 ns ticks, distantFuture is tick UInt64.max.)
        var tick = deadline.nanoseconds / resolutionNanos
        if deadline.nanoseconds % resolutionNanos != 0 { tick += 1 }
        tick = max(tick, Self.saturatingAdd(currentTick, 1))

        let index: Int
        if let reused = freeList.popLast() {
            index = Int(reused)
            entries[index].deadlineTick = tick
            entries[index].payload = payload
        } else {
            index = entries.count
            entries.append(Entry(deadlineTick: tick, payload: payload))
        }
        link(index, slot: Int(truncatingIfNeeded: tick) & slotMask)
        pendingCount += 1
        return handle(of: index)
    }

    /// Cancels a timer, returning its payload, or nil if the handle is stale
    /// (the timer already expired or was cancelled).
    @inlinable
    @discardableResult
    public mutating func cancel(_ handle: TimerHandle) -> Payload? {
        let index = Int(handle.rawValue & 0xFFFF_FFFF)
        guard index < entries.count,
            entries[index].generation == UInt32(truncatingIfNeeded: handle.rawValue >> 32),
            let payload = entries[index].payload
        else { return nil }
        unlink(index, slot: Int(truncatingIfNeeded: entries[index].deadlineTick) & slotMask)
        release(index)
        return payload
    }

    /// The earliest instant at which some timer may be due, or nil if none is
    /// pending. It may be a tick at which only a later-round timer sits; the
    /// caller then wakes, expires nothing, and asks again.
    public func nextExpiry() -> Instant? {
        guard pendingCount > 0 else { return nil }
        let slotTotal = slotMask + 1
        let start = Int(truncatingIfNeeded: currentTick &+ 1) & slotMask
        // Scan the bitmap from `start` round the wheel.
        var offset = 0
        while offset < slotTotal {
            let slot = (start + offset) & slotMask
            let word = occupied[slot >> 6] >> UInt64(slot & 63)
            if word != 0 {
                let skip = word.trailingZeroBitCount
                let found = offset + skip
                if found < slotTotal {
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

    @inlinable
    static func saturatingAdd(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }

    /// Removes every timer due at or before `now` and appends their payloads
    /// to `expired`: earliest tick first, and in schedule order within a tick.
    @inlinable
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
    @inlinable
    public mutating func expire(
        upTo now: Instant, into expired: inout [(handle: TimerHandle, payload: Payload)]
    ) {
        expire(upTo: now) { handle, payload in expired.append((handle, payload)) }
    }

    /// Removes every timer due at or before `now`, passing each one's handle
    /// and payload to `take`: earliest tick first, and in schedule order
    /// within a tick.
    @inlinable
    mutating func expire(upTo now: Instant, _ take: (TimerHandle, Payload) -> Void) {
        let nowTick = now.nanoseconds / resolutionNanos
        guard nowTick > currentTick else { return }
        if pendingCount == 0 {
            currentTick = nowTick
            return
        }
        let revolution = UInt64(slotMask + 1)
        if nowTick - currentTick <= revolution {
            // The common case: each passed tick's slot holds its due timers in order.
            var tick = currentTick + 1
            // `tick <= nowTick` before the increment, so it cannot overflow.
            while tick <= nowTick && pendingCount > 0 {
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
            for slot in 0...slotMask where slots[slot].head >= 0 {
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
    @inlinable
    mutating func drain(
        slot: Int, dueBy nowTick: UInt64, _ take: (UInt64, TimerHandle, Payload) -> Void
    ) {
        var index = slots[slot].head
        while index >= 0 {
            let i = Int(index)
            let entry = entries[i]
            if entry.deadlineTick <= nowTick {
                if let payload = entry.payload { take(entry.deadlineTick, handle(of: i), payload) }
                unlink(i, slot: slot)
                release(i)
            }
            index = entry.next
        }
    }

    /// The handle of the timer in slab entry `index`, in its current generation.
    @inlinable
    func handle(of index: Int) -> TimerHandle {
        TimerHandle(rawValue: UInt64(entries[index].generation) << 32 | UInt64(index))
    }

    @inlinable
    mutating func link(_ index: Int, slot: Int) {
        let tail = slots[slot].tail
        entries[index].previous = tail
        entries[index].next = -1
        if tail >= 0 { entries[Int(tail)].next = Int32(index) } else { slots[slot].head = Int32(index) }
        slots[slot].tail = Int32(index)
        occupied[slot >> 6] |= 1 << UInt64(slot & 63)
    }

    @inlinable
    mutating func unlink(_ index: Int, slot: Int) {
        let before = entries[index].previous
        let after = entries[index].next
        if before >= 0 { entries[Int(before)].next = after } else { slots[slot].head = after }
        if after >= 0 { entries[Int(after)].previous = before } else { slots[slot].tail = before }
        if slots[slot].head < 0 { occupied[slot >> 6] &= ~(1 << UInt64(slot & 63)) }
    }

    @inlinable
    mutating func release(_ index: Int) {
        entries[index].payload = nil
        entries[index].generation &+= 1
        freeList.append(Int32(index))
        pendingCount -= 1
    }
}
