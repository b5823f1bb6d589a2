import EventCore

/// A node of a ``SimulatedNetwork``: the `Transport` and `Scheduler` a
/// protocol driver uses, reaching the other nodes through the simulated
/// links and keeping time on the network's virtual clock.
///
/// Created by ``SimulatedNetwork/addNode()`` or
/// ``SimulatedNetwork/addNode(at:)``; crashed and restarted by
/// ``SimulatedNetwork/crash(_:)`` and ``SimulatedNetwork/restart(_:)``. Use
/// it only from the thread driving its network.
public final class SimulatedNode: Transport, Scheduler {
    /// The network this node belongs to (not retained: keep the network
    /// alive while the node is used).
    public unowned let network: SimulatedNetwork

    /// This node's position in ``SimulatedNetwork/nodes``.
    public let index: Int

    /// The endpoint other nodes send to to reach this node. It stays the
    /// same across crashes and restarts.
    public let localEndpoint: Endpoint

    /// Whether the node is crashed (between ``SimulatedNetwork/crash(_:)``
    /// and ``SimulatedNetwork/restart(_:)``).
    @exclusivity(unchecked) public internal(set) var isCrashed = false

    /// How many times the node has crashed: a message it sent itself is
    /// delivered only if the node has not crashed since (see
    /// ``SimulatedNetwork/crash(_:)``).
    @exclusivity(unchecked) var crashes: UInt32 = 0

    /// Run by ``SimulatedNetwork/restart(_:)`` right after the node comes
    /// back up, to re-create the driver: install a receive handler, arm
    /// timers. It survives crashes; nothing else of the node does.
    public var onRestart: ((SimulatedNode) -> Void)?

    /// Run by ``SimulatedNetwork/crash(_:)`` at the moment the node
    /// crashes, before anything else runs: a crash forced on one of its
    /// sends comes in the middle of the node's turn, and the code that sent
    /// the message runs to the end of that turn (it can send nothing
    /// more). A test that keeps the node's store outside it fences the
    /// store here, so that the turn's later writes fail as they would
    /// with the process gone. It survives crashes.
    public var onCrash: ((SimulatedNode) -> Void)?

    /// The installed receive handler; nil before one is set and while
    /// crashed. Unchecked exclusivity: see the note in ``SimulatedNetwork``.
    @exclusivity(unchecked) var receiveHandler: TransportReceiveHandler?

    init(network: SimulatedNetwork, index: Int, endpoint: Endpoint) {
        self.network = network
        self.index = index
        self.localEndpoint = endpoint
    }

    // MARK: Transport

    /// The network's ``SimulatedNetwork/maximumMessageSize``, in bytes.
    public var maximumMessageSize: Int { network.maximumMessageSize }

    /// Copies `message` into the network, addressed to `destination`. The
    /// link's conditions decide, from the network's seed, whether the message
    /// is lost or duplicated and when each copy arrives. A message to an
    /// endpoint no node has, or over a blocked link, is dropped and counted
    /// in ``SimulatedNetwork/statistics``, as UDP would drop it silently.
    /// IPv4 and IPv6 endpoints reach each other.
    ///
    /// - Throws: `TransportError` with code `.messageTooLarge` if the message
    ///   is longer than ``maximumMessageSize``, or `.closed` if the node is
    ///   crashed.
    public func send(_ message: UnsafeRawBufferPointer, to destination: Endpoint) throws(TransportError) {
        try network.send(from: self, message, to: destination)
    }

    /// Installs the function that receives every message delivered to this
    /// node, replacing any earlier one. The buffer is valid only during the
    /// call; `now` is the network's virtual time. Ignored while the node is
    /// crashed (install it from ``onRestart``).
    public func setReceiveHandler(_ handler: @escaping TransportReceiveHandler) {
        guard !isCrashed else { return }
        receiveHandler = handler
    }

    /// Removes the receive handler: messages delivered to this node until
    /// another is installed are dropped and counted as
    /// ``SimulationStatistics/droppedNoReceiver``.
    public func removeReceiveHandler() {
        receiveHandler = nil
    }

    // MARK: Scheduler

    /// The network's virtual time.
    public var now: Instant { network.now }

    /// Runs `body` when virtual time reaches `deadline` (on the next step if
    /// it already has); timers due at the same instant fire in the order they
    /// were scheduled. A crash discards the node's pending timers; while
    /// crashed, the returned handle never fires.
    @discardableResult
    public func schedule(at deadline: Instant, _ body: @escaping () -> Void) -> TimerHandle {
        network.scheduleTimer(of: self, at: deadline, body)
    }

    /// Runs `body` after the events already due at this instant (a timer
    /// at `now`, which fires after them); discarded by a crash.
    public func atEndOfTurn(_ body: @escaping () -> Void) {
        schedule(at: now, body)
    }

    /// Runs `body` after the events already due at this instant, as
    /// ``atEndOfTurn(_:)`` does: the simulator has no timer tick to wait
    /// for and no sockets to poll in between; discarded by a crash.
    public func onNextTurn(_ body: @escaping () -> Void) {
        schedule(at: now, body)
    }

    /// Cancels a timer this node scheduled, in O(1); does nothing if it
    /// already fired, was cancelled or discarded, or belongs to another node.
    public func cancel(_ handle: TimerHandle) {
        network.cancelTimer(of: self, handle)
    }
}
