/// Called on the owning loop for every message a ``Transport`` receives.
///
/// `message` is valid only for the duration of the call (it points into a
/// receive buffer the transport reuses): copy what must outlive it. `now` is
/// the instant the batch the message came in was read.
public typealias TransportReceiveHandler = (
    _ message: UnsafeRawBufferPointer, _ sender: Endpoint, _ now: Instant
) -> Void

/// A best-effort message transport: what protocol drivers speak to.
///
/// Implemented by `UDPTransport` (real sockets on an ``EventLoop``) and by
/// `Simulation` (a deterministic in-process network), so the same driver runs
/// on both. Semantics are those of UDP: a message may be lost, duplicated or
/// reordered, but is never corrupted or truncated silently (a transport drops
/// what it cannot deliver whole, and counts it).
///
/// A transport is confined to the loop that owns it: call it only from that
/// loop's thread (or the simulator's), never concurrently.
public protocol Transport: AnyObject {
    /// The endpoint peers reach this transport at (with the port the kernel
    /// chose, if it was bound to port 0).
    var localEndpoint: Endpoint { get }

    /// The largest message, in bytes, that ``send(_:to:)`` accepts. Messages
    /// above the datagram size are fragmented by the transport.
    var maximumMessageSize: Int { get }

    /// Queues `message` for `destination`. Delivery is best-effort; a send
    /// that fails in the network (no listener, full buffer) is counted, not
    /// thrown. It never calls a receive handler (not even for a message to
    /// the transport itself): drivers send in the middle of their work.
    ///
    /// - Throws: ``TransportError`` when the message cannot be sent at all:
    ///   it is larger than ``maximumMessageSize``, the destination's address
    ///   family cannot be reached from this transport, or the transport is
    ///   closed.
    func send(_ message: UnsafeRawBufferPointer, to destination: Endpoint) throws(TransportError)

    /// Installs the function that receives every incoming message, replacing
    /// any earlier one.
    func setReceiveHandler(_ handler: @escaping TransportReceiveHandler)

    /// Removes the receive handler: until another is installed, incoming
    /// messages are dropped and counted as received with no handler, not
    /// as delivered. A driver's `stop()` calls it, so a stopped node
    /// neither keeps its closures alive through the transport nor has its
    /// traffic counted as handled.
    func removeReceiveHandler()
}

extension Transport {
    /// Queues the bytes of `message` for `destination`; see ``send(_:to:)``.
    public func send(_ message: [UInt8], to destination: Endpoint) throws(TransportError) {
        let result: Result<Void, TransportError> = message.withUnsafeBytes { raw in
            do throws(TransportError) {
                try send(raw, to: destination)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
    }

    /// Throws a `ConfigurationError` naming `field` (set to `value`) unless
    /// frames of `frameLength` bytes, the longest that setting makes a
    /// driver send, fit ``maximumMessageSize``: a frame the transport
    /// refuses would never leave. Drivers call it as they are created.
    public func checkCarries(frameLength: Int, setBy field: String, value: Int) throws(ConfigurationError) {
        guard frameLength <= maximumMessageSize else {
            throw ConfigurationError(
                field: field, value: "\(value)",
                allowedRange: "values whose largest frame (\(frameLength) bytes) fits the transport's "
                    + "maximumMessageSize (\(maximumMessageSize) bytes): lower it, or raise the transport's")
        }
    }
}

/// Why a ``Transport`` refused a message.
public struct TransportError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: Hashable, Sendable {
        /// The message is larger than the transport's maximum message size.
        case messageTooLarge
        /// The destination's address family (IPv4 or IPv6) does not match
        /// the transport's socket.
        case addressFamilyMismatch
        /// The transport was closed.
        case closed
    }

    /// What went wrong.
    public var code: Code
    /// Details for people: sizes, limits, the destination.
    public var detail: String

    /// Creates an error.
    public init(_ code: Code, detail: String) {
        self.code = code
        self.detail = detail
    }

    /// The code and the detail, on one line.
    public var description: String { "\(code): \(detail)" }
}

/// An opaque reference to a scheduled timer, for cancelling it. The value is
/// meaningful only to the ``Scheduler`` that returned it.
public struct TimerHandle: Hashable, Sendable {
    /// The scheduler-specific value.
    public let rawValue: UInt64

    /// Wraps a scheduler-specific value.
    public init(rawValue: UInt64) {
        self.rawValue = rawValue
    }
}

/// Where a driver reads the time and arms its timers: an ``EventLoop`` on a
/// real machine, a simulated node in `Simulation`.
///
/// Confined like ``Transport``: call it only from its own loop.
public protocol Scheduler: AnyObject {
    /// The current instant on this scheduler's clock.
    var now: Instant { get }

    /// Runs `body` on this scheduler once `deadline` has passed. A deadline
    /// already passed still waits for the scheduler's next timer tick (on an
    /// ``EventLoop``, up to its timer resolution, 1 ms by default): for
    /// "as soon as the loop comes round", use ``onNextTurn(_:)``.
    @discardableResult
    func schedule(at deadline: Instant, _ body: @escaping () -> Void) -> TimerHandle

    /// Cancels a timer; does nothing if it already fired or was cancelled.
    func cancel(_ handle: TimerHandle)

    /// Runs `body` once the work in hand is done: on an ``EventLoop``,
    /// after this iteration's I/O events, tasks and timers and before the
    /// transports flush their sends; in the simulator, after the events
    /// already due at this instant. A driver defers its step here so that
    /// everything that arrived together is handled as one batch (Raft:
    /// one ready, one fsync, for a burst of datagrams or proposals).
    func atEndOfTurn(_ body: @escaping () -> Void)

    /// Runs `body` on the next turn: on an ``EventLoop``, in its next
    /// iteration, right after that iteration's I/O events (the loop does
    /// not sleep in between); in the simulator, after the events already
    /// due at this instant. Unlike ``atEndOfTurn(_:)``, the loop polls its
    /// sockets first, so work that re-defers itself cannot starve them;
    /// unlike a timer at ``now``, it does not wait for a timer tick.
    func onNextTurn(_ body: @escaping () -> Void)
}
