/// A value confined to one ``EventLoop`` that can still be passed between
/// threads and tasks: only the loop's own thread may touch ``value``. The
/// value is released (its `deinit` runs) on whichever thread drops the last
/// copy.
///
/// Use it to keep a loop-confined object (a transport, a driver) alive in
/// code that runs elsewhere, and hand it back to the loop:
///
/// ```swift
/// let bound = try await loop.submit { LoopBound(try UDPSocketTransport.bind(to: endpoint, on: loop), on: loop) }
/// loop.execute { bound.value.close() }
/// ```
public struct LoopBound<Value>: @unchecked Sendable {
    // Safe to share: `storage` is read or written only through `value`,
    // which traps unless called on `loop`'s thread, so every access is
    // serialized by that one thread. The one exception is the value's
    // release: the thread that drops the last copy of a `LoopBound` runs the
    // value's `deinit`, after every other access has ended (a reference
    // count reaching zero orders it after them); a value whose `deinit`
    // touches loop state must hand that work to its loop, as
    // `UDPSocketTransport` does.
    private let storage: Box
    /// The loop the value belongs to.
    public let loop: EventLoop

    private final class Box {
        var value: Value
        init(_ value: Value) { self.value = value }
    }

    /// Wraps `value`, which belongs to `loop`. Loop-only.
    public init(_ value: Value, on loop: EventLoop) {
        if !loop.isInLoop { EventLoop.calledOffLoop("LoopBound.init(_:on:)") }
        self.loop = loop
        storage = Box(value)
    }

    /// The value. Loop-only: traps on any other thread.
    public var value: Value {
        get {
            if !loop.isInLoop { EventLoop.calledOffLoop("LoopBound.value (read)") }
            return storage.value
        }
        nonmutating set {
            if !loop.isInLoop { EventLoop.calledOffLoop("LoopBound.value (write)") }
            storage.value = newValue
        }
    }
}
