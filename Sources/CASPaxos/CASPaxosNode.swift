import EventCore
import WireCodec

/// Runs a ``Proposer``, an ``Acceptor``, or both, on a `Transport` and a
/// `Scheduler`: decodes incoming frames, feeds the roles, performs their
/// effects and keeps one timer armed for the proposer's
/// ``Proposer/nextDeadline``.
///
/// Batching: every message the roles send in a loop turn waits in a
/// ``CASPaxosOutbox``, and at the end of the turn (`Scheduler.atEndOfTurn`:
/// on an `EventLoop`, after the iteration's I/O, tasks and timers, before
/// the transports flush) the messages to each destination leave together,
/// as few frames as ``CASPaxosConfiguration/maximumBatchSize`` and
/// ``CASPaxosConfiguration/maximumMessagesPerFrame`` allow (one datagram
/// each, with the defaults). A frame in may likewise hold many messages,
/// all handled before the turn ends.
///
/// Durability (etcd raft's `Ready` ordering): the acceptor's writes go to
/// its ``AcceptorStore`` as they come, and the store syncs once at the end
/// of the turn, before any message of the turn leaves, so the requests that
/// arrive together share one sync and no reply goes out before what it
/// acknowledges is durable.
///
/// Both roles on one node (the usual CASPaxos deployment: every server
/// runs a proposer and an acceptor): a message the node addresses to its
/// own transport's `localEndpoint` (name the node by that endpoint in the
/// quorums) never touches the transport. It is kept, unencoded, until the
/// end of the turn, after the sync, and handed over in the next turn
/// (``EventCore/Scheduler/onNextTurn(_:)``: the loop's next iteration,
/// right after its I/O), as if it had come back from the network. The
/// proposer thus counts its own acceptor's answer at no network cost, and
/// each phase needs one fewer remote answer than over the network alone;
/// the messages handed over are counted in
/// ``CASPaxosNodeCounters/messagesDeliveredLocally``. Name the node by the
/// address its peers use: bound to a wildcard address, its
/// `localEndpoint` is not in the quorums, and it sends itself datagrams.
/// If the store fails, the node stops acting as an acceptor (fail-stop):
/// it never answers from state it could not make durable, and the turn's
/// messages are dropped (the proposer's requests among them are retried
/// after their attempt times out).
///
/// Confined to its scheduler's loop, like the transport: create it and call
/// it there only. From other tasks, wrap it in a `LoopBound` and use
/// ``EventCore/LoopBound/propose(key:change:)``.
public final class CASPaxosNode {
    /// The transport the node speaks through.
    public let transport: any Transport
    /// The scheduler its timers run on.
    public let scheduler: any Scheduler
    /// The validated configuration.
    public let configuration: CASPaxosConfiguration

    // Exclusivity: the node is confined to its loop, and no access to its
    // state below is held across a call out of the node that may call back
    // into it (a completion handler is taken out of its table before it is
    // called; a transport queues what it sends, never calling a receive
    // handler from `send`; a LogSink never calls back), so that state skips
    // Swift's dynamic exclusivity checks, which cost a tenth of a write
    // here. The proposer keeps them: it runs the user's change functions
    // while it is being modified, and a change that calls back into the
    // node must trap, not corrupt it.

    /// The proposer role, if the node plays it.
    public private(set) var proposer: Proposer?
    /// The acceptor role, if the node plays it (nil after a store failure).
    @exclusivity(unchecked) public private(set) var acceptor: Acceptor?
    /// Every proposer of the cluster, for garbage collection and membership
    /// changes: each waits for every proposer listed when it starts. This
    /// node is added to the list it gives them if it is a proposer and the
    /// list leaves it out: a change's driver adopts its own steps as every
    /// proposer does, and a collection invalidates its own cache. Setting
    /// the list drops the proposers no longer in it from the tasks running
    /// too, so a proposer that left the cluster does not hold them up for
    /// ever; drop only one that has stopped for good (see
    /// ``Proposer/updateProposers(_:now:into:)`` for why garbage collection
    /// stays linearizable even if it has not, and why a membership change
    /// needs it to have).
    public var proposerEndpoints: [Endpoint] {
        didSet {
            guard !isStopped else { return }
            let proposers = taskProposers
            proposer?.updateProposers(proposers, now: scheduler.now, into: &effects)
            flush()
        }
    }

    /// The acceptor's store, or a proposer-only node's configuration store
    /// (written only by the proposer's configuration records).
    @exclusivity(unchecked) private var store: (any AcceptorStore)?
    @exclusivity(unchecked) private var effects: [CASPaxosEffect] = []
    @exclusivity(unchecked) private var performing: [CASPaxosEffect] = []
    @exclusivity(unchecked) private var isFlushing = false
    /// Set when the store fails during a flush: the effects still to
    /// perform in it include replies to writes that were never made, so
    /// that flush sends nothing more (a proposer here retries its own).
    @exclusivity(unchecked) private var isDroppingSends = false
    /// Whether the store failed (and ``store`` was dropped).
    @exclusivity(unchecked) private var hasStoreFailed = false
    /// The frames of this turn's messages, sent at its end.
    @exclusivity(unchecked) private var outbox: CASPaxosOutbox
    /// The messages of a frame being handled.
    @exclusivity(unchecked) private var incoming: [CASPaxosMessage] = []
    /// The transport's endpoint: messages to it are kept in
    /// ``localMessages`` instead of being sent.
    private let localEndpoint: Endpoint
    /// Messages to the node itself, in the order they were sent: those of
    /// this turn, then those a sync has covered since (handed over at the
    /// next turn), and those being handed over.
    @exclusivity(unchecked) private var localMessages: [CASPaxosMessage] = []
    @exclusivity(unchecked) private var readyLocalMessages: [CASPaxosMessage] = []
    @exclusivity(unchecked) private var delivering: [CASPaxosMessage] = []
    @exclusivity(unchecked) private var isLocalDeliveryScheduled = false
    @exclusivity(unchecked) private var messagesDeliveredLocally = 0
    @exclusivity(unchecked) private var needsSync = false
    @exclusivity(unchecked) private var isEndOfTurnScheduled = false
    @exclusivity(unchecked) private var sender: FrameSender
    private let timer: DeadlineTimer
    @exclusivity(unchecked) private var proposalHandlers: [UInt64: (Result<[UInt8]?, CASPaxosError>) -> Void] = [:]
    @exclusivity(unchecked) private var taskHandlers: [UInt64: (Result<Void, CASPaxosError>) -> Void] = [:]
    @exclusivity(unchecked) private var isStopped = false
    /// The loop's shutdown handler that stops the node, removed when the
    /// node stops first (a process that starts and stops nodes on one loop
    /// would otherwise keep one handler per node).
    @exclusivity(unchecked) private var shutdownHook: LoopHook?
    private let logger: any LogSink
    @exclusivity(unchecked) private var receiver: FrameReceiver
    @exclusivity(unchecked) private var syncs = 0
    @exclusivity(unchecked) private var messagesSent = 0

    /// Creates a node and installs its receive handler on `transport`.
    ///
    /// - Parameters:
    ///   - id: the proposer's ID, unique per incarnation; by default a
    ///     random one.
    ///   - quorums: the acceptors the proposer uses; nil for an
    ///     acceptor-only node. A node whose acceptor store (or
    ///     configuration store) holds a configuration of a higher version
    ///     (one its proposer adopted during a membership change, before a
    ///     restart) uses that one; otherwise it records the one given in
    ///     that store (synced before this returns) if none is stored or the
    ///     given one is newer (so give the version the cluster is at: a
    ///     higher one given by mistake is kept across restarts too).
    ///   - acceptorStore: where the acceptor keeps its state (its
    ///     ``AcceptorStore/load()`` runs now); nil for a proposer-only node.
    ///   - configurationStore: for a proposer-only node, a store that keeps
    ///     only its proposer's configuration, as a node with both roles keeps
    ///     it in its acceptor store: each one the proposer adopts is synced
    ///     before it is acknowledged, and the node restarts from the newest
    ///     (a ``FileAcceptorStore`` of its own). Nil (the default): the node
    ///     keeps no state, so start it after a membership change with the
    ///     configuration the cluster reached (on an older one, the
    ///     acceptors' fence fails its proposals with
    ///     ``CASPaxosError/Code/staleConfiguration``). Only with `quorums`
    ///     and without `acceptorStore`.
    ///   - proposers: every proposer of the cluster (see
    ///     ``proposerEndpoints``).
    ///   - seed: seeds the proposer's ID and jitter; by default drawn from
    ///     the system (pass one to replay a run). A node restarted in a live
    ///     cluster needs a new `id` (or no `id` and a new seed): a proposer
    ///     ID must be
    ///     unique per run, since a restarted proposer counts its ballots
    ///     from zero again and could reuse one of its previous run's.
    /// - Throws: `ConfigurationError` for an invalid configuration or
    ///   quorums, for a `maximumMessageSize` above the transport's, for a
    ///   node with neither role, or for a
    ///   `configurationStore` on a node that is not proposer-only;
    ///   ``AcceptorStoreError`` is reported as a `ConfigurationError` on
    ///   field `acceptorStore` (or `configurationStore`).
    public init(
        id: NodeID? = nil, transport: any Transport, scheduler: any Scheduler,
        configuration: CASPaxosConfiguration = CASPaxosConfiguration(), quorums: AcceptorQuorums?,
        acceptorStore: (any AcceptorStore)?, configurationStore: (any AcceptorStore)? = nil,
        proposers: [Endpoint] = [], seed: UInt64? = nil, logger: any LogSink = DiscardingLogSink()
    ) throws(ConfigurationError) {
        try configuration.validate()
        // A message the transport refuses would never leave: every attempt
        // of a proposal carrying it would time out.
        try transport.checkCarries(
            frameLength: configuration.maximumMessageSize, setBy: "maximumMessageSize",
            value: configuration.maximumMessageSize)
        guard quorums != nil || acceptorStore != nil else {
            throw ConfigurationError(
                field: "quorums", value: "nil", allowedRange: "quorums, an acceptor store, or both")
        }
        guard configurationStore == nil || (quorums != nil && acceptorStore == nil) else {
            throw ConfigurationError(
                field: "configurationStore", value: "a store",
                allowedRange: "nil unless the node is proposer-only (a node with both roles keeps its configuration in its acceptor store)")
        }
        var system = SystemRandomNumberGenerator()
        var generator = SeededRandomGenerator(seed: seed ?? system.next())
        let nodeID = id ?? NodeID.random(using: &generator)
        // The store that keeps the proposer's configuration, if any.
        let recordStore = acceptorStore ?? configurationStore
        let storeField = acceptorStore != nil ? "acceptorStore" : "configurationStore"
        var snapshot: AcceptorSnapshot?
        if let recordStore {
            do throws(AcceptorStoreError) {
                snapshot = try recordStore.load()
            } catch {
                throw ConfigurationError(field: storeField, value: "\(error)", allowedRange: "a readable store")
            }
            if let file = recordStore as? FileAcceptorStore, file.truncatedBytes > 0 {
                logger.log(
                    .warning, source: "caspaxos",
                    "\(file.path): dropped a torn tail of \(file.truncatedBytes) bytes (a write a crash cut short, never synced)")
            }
        }
        if let quorums {
            // The configuration this node's proposer last adopted, if newer
            // than the one given (a restart after membership changes).
            let stored = snapshot?.proposerConfiguration
            let recovered = stored.flatMap { $0.version > quorums.version ? $0 : nil }
            if let recovered {
                logger.log(.info, source: "caspaxos", "the proposer starts from its stored configuration \(recovered), not \(quorums)")
            } else if let recordStore, stored.map({ quorums.version > $0.version }) ?? true {
                // The one given is newer (or none is stored: a new node, or
                // one whose changes predate the record): kept, so that a
                // restart on an older one cannot undo it.
                let write = AcceptorWrite.proposerConfiguration(quorums)
                do throws(AcceptorStoreError) {
                    try recordStore.apply(write)
                    try recordStore.sync()
                } catch {
                    throw ConfigurationError(field: storeField, value: "\(error)", allowedRange: "a writable store")
                }
                snapshot?.apply(write)
            }
            proposer = try Proposer(
                id: nodeID, quorums: recovered ?? quorums, configuration: configuration, seed: generator.next())
        }
        if acceptorStore != nil, let snapshot {
            acceptor = try Acceptor(recovering: snapshot, configuration: configuration)
        }
        self.transport = transport
        self.scheduler = scheduler
        self.configuration = configuration
        localEndpoint = transport.localEndpoint
        self.store = recordStore
        self.proposerEndpoints = proposers
        self.logger = logger
        sender = FrameSender(transport: transport, capacity: 1_024, logger: logger, source: "caspaxos")
        receiver = FrameReceiver(
            protocolID: .casPaxos, limits: WireLimits(maximumFrameLength: configuration.maximumMessageSize),
            logger: logger, source: "caspaxos")
        outbox = CASPaxosOutbox(configuration: configuration)
        timer = DeadlineTimer(scheduler: scheduler)
        timer.onFire = { [weak self] in self?.tick() }
        transport.setReceiveHandler { [weak self] bytes, sender, now in
            self?.receive(bytes, from: sender, now: now)
        }
        // On an event loop, the loop's shutdown stops the node, so that
        // nothing waits forever on a completion that no timer will bring.
        shutdownHook = (scheduler as? EventLoop)?.addShutdownHandler { [weak self] in self?.stop() }
    }

    /// Whether the node has stopped (``stop()`` was called, or its loop
    /// shut down); it then sends and stores nothing more.
    public var stopped: Bool { isStopped }

    /// What the node has done so far.
    public var counters: CASPaxosNodeCounters {
        CASPaxosNodeCounters(
            proposer: proposer?.counters ?? ProposerCounters(), acceptor: acceptor?.counters ?? AcceptorCounters(),
            malformedFramesDropped: receiver.malformedFramesDropped, sendFailures: sender.failures, syncs: syncs,
            storeFailures: hasStoreFailed ? 1 : 0, messagesSent: messagesSent, framesSent: sender.framesSent,
            messagesDeliveredLocally: messagesDeliveredLocally)
    }

    /// Changes `key`'s value with `change` and calls `completion` on the
    /// loop with the new value or the error. Returns the proposal's ID, for
    /// ``withdraw(_:)``; nil if it failed at once (`completion` has been
    /// called).
    ///
    /// Errors: see ``CASPaxosError``; `.notAvailable` if the node is not a
    /// proposer or was stopped.
    @discardableResult
    public func propose(
        key: [UInt8], change: @escaping CASPaxosChange,
        completion: @escaping (Result<[UInt8]?, CASPaxosError>) -> Void
    ) -> UInt64? {
        start(completion) { proposer, effects throws(CASPaxosError) in
            try proposer.propose(key: key, change: change, now: scheduler.now, into: &effects)
        }
    }

    /// Reads `key` (a proposal with the identity change; see
    /// ``Proposer/read(key:now:into:)``) and calls `completion` on the loop
    /// with the value or the error. Returns the proposal's ID, as
    /// ``propose(key:change:completion:)`` does.
    @discardableResult
    public func read(key: [UInt8], completion: @escaping (Result<[UInt8]?, CASPaxosError>) -> Void) -> UInt64? {
        start(completion) { proposer, effects throws(CASPaxosError) in
            try proposer.read(key: key, now: scheduler.now, into: &effects)
        }
    }

    /// Starts a proposal with `propose` and keeps its completion; nil if
    /// it failed at once, or the node is not a running proposer.
    private func start(
        _ completion: @escaping (Result<[UInt8]?, CASPaxosError>) -> Void,
        _ propose: (inout Proposer, inout [CASPaxosEffect]) throws(CASPaxosError) -> UInt64
    ) -> UInt64? {
        let id: UInt64
        do throws(CASPaxosError) {
            guard !isStopped, proposer != nil else {
                completion(.failure(Self.notRunning))
                return nil
            }
            // Force-unwrapped in place: the proposer is mutated where it
            // is stored, not copied.
            id = try propose(&proposer!, &effects)
        } catch {
            completion(.failure(error))
            return nil
        }
        proposalHandlers[id] = completion
        flush()
        return id
    }

    /// Withdraws proposal `proposalID` (see
    /// ``Proposer/withdraw(_:now:into:)``) if no accept it sent may have
    /// been taken: its completion is called with
    /// ``CASPaxosError/Code/withdrawn``, definite, before this returns
    /// (called from within another proposal's completion, once that
    /// completion returns). Returns whether it was; false for a proposal
    /// that sent an accept (it runs on), that has ended, an unknown ID,
    /// or a stopped node. An ID names a proposal of this node only, and of
    /// this incarnation: a node made anew (a restart, with a new ``id``)
    /// numbers its proposals from elsewhere, so an ID kept from before
    /// names none of its proposals (see
    /// ``Proposer/propose(key:change:now:into:)``).
    ///
    /// The `async` API withdraws a proposal this way when its task is
    /// cancelled.
    @discardableResult
    public func withdraw(_ proposalID: UInt64) -> Bool {
        guard !isStopped, proposer?.withdraw(proposalID, now: scheduler.now, into: &effects) == true else {
            return false
        }
        flush()
        return true
    }

    /// Deletes `key` (writes the empty value, a tombstone) and, once that
    /// succeeded or ended indeterminate (the tombstone may have landed),
    /// collects its garbage in the background (see
    /// ``Proposer/collectGarbage(key:proposers:now:into:)``; a collection
    /// that finds a value written since collects nothing and succeeds);
    /// `completion` reports the delete, `collected` the collection, which
    /// is not called when the delete failed definitely (it changed
    /// nothing).
    public func delete(
        key: [UInt8], completion: @escaping (Result<[UInt8]?, CASPaxosError>) -> Void,
        collected: @escaping (Result<Void, CASPaxosError>) -> Void = { _ in }
    ) {
        propose(key: key, change: { _ in nil }) { [weak self] result in
            completion(result)
            if case .failure(let error) = result, !error.isIndeterminate { return }
            self?.collectGarbage(key: key, completion: collected)
        }
    }

    /// ``proposerEndpoints``, with this node's endpoint if it is a
    /// proposer and the list leaves it out.
    private var taskProposers: [Endpoint] {
        guard proposer != nil, !proposerEndpoints.contains(localEndpoint) else { return proposerEndpoints }
        return proposerEndpoints + [localEndpoint]
    }

    /// Runs garbage collection of `key` now; see
    /// ``Proposer/collectGarbage(key:proposers:now:into:)``.
    ///
    /// Errors: `.overloaded` at once if
    /// ``CASPaxosConfiguration/maximumGarbageCollections`` collections are
    /// running (the tombstone stays; call again later); `.notAvailable` if
    /// the node is not a proposer or was stopped; the last run's error if
    /// it has not completed within ``CASPaxosConfiguration/garbageCollectionTimeout``
    /// (`.timeout` when a listed proposer or an acceptor did not answer,
    /// named in the detail; the key reads as empty, its tombstone kept
    /// where it was not removed yet).
    public func collectGarbage(key: [UInt8], completion: @escaping (Result<Void, CASPaxosError>) -> Void) {
        // Read before the proposer's exclusive access.
        let proposers = taskProposers
        do throws(CASPaxosError) {
            guard !isStopped,
                let id = try proposer?.collectGarbage(
                    key: key, proposers: proposers, now: scheduler.now, into: &effects)
            else { return completion(.failure(Self.notRunning)) }
            taskHandlers[id] = completion
        } catch {
            return completion(.failure(error))
        }
        flush()
    }

    /// Changes the acceptors to `acceptors` (one added or removed), or
    /// finishes a change to them that failed (call it again with the same
    /// acceptors). One change runs at a time in the cluster: while another
    /// is unfinished, this one fails with `.conflict`; see
    /// ``Proposer/changeMembership(to:proposers:now:into:)``.
    public func changeMembership(
        to acceptors: [Endpoint], completion: @escaping (Result<Void, CASPaxosError>) -> Void
    ) {
        let proposers = taskProposers
        do throws(CASPaxosError) {
            guard !isStopped,
                let id = try proposer?.changeMembership(
                    to: acceptors, proposers: proposers, now: scheduler.now, into: &effects)
            else { return completion(.failure(Self.notRunning)) }
            taskHandlers[id] = completion
        } catch {
            return completion(.failure(error))
        }
        flush()
    }

    /// Stops the node: pending proposals fail with `.notAvailable`, or
    /// with `.conflict` (indeterminate: its change may have been written)
    /// one that had sent accepts; tasks (garbage collections, membership
    /// changes) fail with `.conflict`, since a task sends its first step as
    /// it starts (a change may have taken the register, fenced acceptors
    /// or moved proposers: finish it with ``changeMembership(to:completion:)``
    /// on a running proposer; a collection: run it again); no more timers
    /// or sends. The transport stays open.
    /// A node on an `EventLoop` stops when the loop shuts down.
    public func stop() {
        guard !isStopped else { return }
        isStopped = true
        if let shutdownHook, let loop = scheduler as? EventLoop { loop.removeHandler(shutdownHook) }
        shutdownHook = nil
        timer.cancel()
        transport.removeReceiveHandler()
        let stopped = CASPaxosError(.notAvailable, detail: "the node was stopped")
        let stoppedAfterAccepts = CASPaxosError(
            .conflict, detail: "the node was stopped after the proposal sent accepts: its change may have been written")
        let (proposals, tasks) = (proposalHandlers, taskHandlers)
        proposalHandlers = [:]
        taskHandlers = [:]
        // Outcomes already reached but not yet handed over (a completion
        // that stops the node runs before the rest of its turn's effects):
        // their own results, not "stopped" (a proposal that completed is
        // no longer the proposer's, so it would read as never written).
        var reached: [UInt64: Result<[UInt8]?, CASPaxosError>] = [:]
        var tasksReached: [UInt64: Result<Void, CASPaxosError>] = [:]
        for effect in performing + effects {
            switch effect {
            case .proposalCompleted(let id, let result): reached[id] = result
            case .maintenanceCompleted(let id, let result): tasksReached[id] = result
            case .send, .sendToEach, .persist: break
            }
        }
        for id in proposals.keys.sorted() {
            proposals[id]?(reached[id] ?? .failure(proposer?.mayHaveWritten(id) == true ? stoppedAfterAccepts : stopped))
        }
        let stoppedTask = CASPaxosError(
            .conflict, detail: "the node was stopped while the task ran: the steps it sent may have taken effect")
        for id in tasks.keys.sorted() { tasks[id]?(tasksReached[id] ?? .failure(stoppedTask)) }
    }

    private static let notRunning = CASPaxosError(.notAvailable, detail: "this node is not a running proposer")

    // MARK: Driving

    /// Decodes a frame (one message or a batch, checked whole before any
    /// is handled) and hands each message to its role.
    private func receive(_ bytes: UnsafeRawBufferPointer, from sender: Endpoint, now: Instant) {
        guard !isStopped else { return }
        // `incoming` is empty here: emptied after every frame, and left
        // empty by a frame that does not decode.
        let configuration = configuration
        let decoded: Void? = receiver.decode(bytes, from: sender) { body, _ throws(WireError) in
            try CASPaxosMessage.decodeFrameBody(body, configuration: configuration, into: &incoming)
        }
        guard decoded != nil else { return }
        // Moved out: iterating the array, or reading it by index, would
        // copy every message.
        incoming.handOverEach { route($0, from: sender, now: now) }
        incoming.removeAll(keepingCapacity: true)
        flush()
    }

    /// Hands `message` to the role it is for; false if the node does not
    /// play that role (any more).
    @discardableResult
    private func route(_ message: CASPaxosMessage, from sender: Endpoint, now: Instant) -> Bool {
        switch message {
        case .prepare, .readPrepare, .collectionPrepare, .accept, .acceptWithParent, .rewriteTombstone, .setMinimumAges,
            .removeTombstone, .listKeys, .setMinimumVersion:
            acceptor?.receive(message, from: sender, into: &effects) != nil
        case .promise, .promiseWithParent, .unrecordedPromise, .accepted, .conflict, .staleAge, .staleConfiguration,
            .registersFull, .invalidate, .invalidated, .acknowledged, .reconfigure, .configurationRefused, .keyList:
            proposer?.receive(message, from: sender, now: now, into: &effects) != nil
        }
    }

    /// Hands over the messages the node sent itself last turn (kept until
    /// that turn's sync), as if they had come back from the network.
    private func deliverLocalMessages() {
        isLocalDeliveryScheduled = false
        guard !isStopped else { return }
        swap(&readyLocalMessages, &delivering)
        let now = scheduler.now
        delivering.handOverEach { message in
            if route(message, from: localEndpoint, now: now) { messagesDeliveredLocally += 1 }
        }
        delivering.removeAll(keepingCapacity: true)
        flush()
    }

    private func tick() {
        guard !isStopped else { return }
        proposer?.tick(now: scheduler.now, into: &effects)
        flush()
    }

    private func flush() {
        guard !isFlushing else { return }
        isFlushing = true
        while !effects.isEmpty {
            swap(&effects, &performing)
            for index in performing.indices where !isStopped {
                // Moved out, as the decoded messages are (`handOverEach`): a
                // copy of a send costs one of its message. The slot keeps an
                // effect holding no references, the outcome of no task (IDs
                // are never 0), since a completion that stops the node reads
                // `performing` for the outcomes not yet handed over.
                var effect = CASPaxosEffect.maintenanceCompleted(id: 0, result: .success(()))
                swap(&effect, &performing[index])
                perform(effect)
            }
            performing.removeAll(keepingCapacity: true)
        }
        isFlushing = false
        isDroppingSends = false
        if (needsSync || !outbox.isEmpty || !localMessages.isEmpty) && !isEndOfTurnScheduled && !isStopped {
            isEndOfTurnScheduled = true
            scheduler.atEndOfTurn { [weak self] in self?.endTurn() }
        }
        armTimer()
    }

    private func perform(_ effect: consuming CASPaxosEffect) {
        switch consume effect {
        case .send(let message, let destination):
            guard !isDroppingSends else { return }
            if destination == localEndpoint {
                localMessages.append(message)
            } else {
                outbox.append(message, to: destination)
            }
        case .sendToEach(let message, let destinations):
            guard !isDroppingSends else { return }
            if destinations.contains(localEndpoint) {
                localMessages.append(message)
                outbox.append(message, toEach: destinations, skipping: localEndpoint)
            } else {
                outbox.append(message, toEach: destinations)
            }
        case .persist(let write):
            guard let store else {
                // After a store failure only the proposer persists (a
                // configuration it adopted): unrecorded, the acknowledgement
                // that follows must not go out.
                if hasStoreFailed { isDroppingSends = isFlushing }
                return
            }
            do throws(AcceptorStoreError) {
                try store.apply(write)
                needsSync = true
            } catch {
                storeFailed(error)
            }
        case .proposalCompleted(let id, let result):
            let handler = proposalHandlers.removeValue(forKey: id)
            handler?(result)
        case .maintenanceCompleted(let id, let result):
            let handler = taskHandlers.removeValue(forKey: id)
            handler?(result)
        }
    }

    /// The end of a loop turn: syncs the store if the turn wrote to it,
    /// then sends the turn's messages, coalesced per destination, and
    /// schedules the hand-over of those to the node itself for the next
    /// turn (not this one: a node that is its own quorum would otherwise
    /// never let the loop go on).
    private func endTurn() {
        isEndOfTurnScheduled = false
        guard !isStopped else { return }
        if needsSync, let store {
            do throws(AcceptorStoreError) {
                try store.sync()
                syncs += 1
            } catch {
                return storeFailed(error)
            }
            needsSync = false
        }
        messagesSent += outbox.messageCount
        outbox.flush { destination, encodeFrame in sender.send(to: destination, encodeFrame) }
        // Only what this sync covered: a message the node sends itself
        // after it waits for the next end of turn.
        readyLocalMessages.append(contentsOf: localMessages)
        localMessages.removeAll(keepingCapacity: true)
        if !readyLocalMessages.isEmpty && !isLocalDeliveryScheduled {
            isLocalDeliveryScheduled = true
            scheduler.onNextTurn { [weak self] in self?.deliverLocalMessages() }
        }
    }

    /// Fail-stop: the acceptor role (if any) ends, the store is no longer used, and
    /// the messages waiting for it are dropped, with every send still to
    /// come in this flush. The proposer role goes on, but no longer
    /// acknowledges a configuration it adopts (it cannot record it), so a
    /// membership change cannot finish without it.
    private func storeFailed(_ error: AcceptorStoreError) {
        logger.log(
            .error, source: "caspaxos",
            acceptor != nil
                ? "acceptor store failed, the acceptor stops: \(error)"
                : "configuration store failed, the proposer no longer acknowledges configurations: \(error)")
        acceptor = nil
        store = nil
        hasStoreFailed = true
        needsSync = false
        isDroppingSends = isFlushing
        outbox.removeAll()
        localMessages.removeAll()
    }

    private func armTimer() {
        guard !isStopped, let proposer else { return }
        timer.arm(at: proposer.nextDeadline)
    }
}
