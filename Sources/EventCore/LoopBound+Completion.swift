import Synchronization

extension LoopBound {
    /// Starts an operation on the value, on its loop, and waits for the
    /// outcome the operation hands its completion (called on the loop).
    /// Callable from any task.
    ///
    /// The wait ends early when the task is cancelled: with
    /// `cancelled(true)` once the loop ran (or is running) `start`, and the
    /// operation itself goes on, its outcome, when it comes, dropped. A
    /// task cancelled before the loop ran `start` (cancelled already when
    /// it called, say) gets `cancelled(false)` at once, and nothing is
    /// started: a retry loop in it must stop on either rather than spin.
    /// With `stopped` if the loop has stopped and will never run `start`.
    ///
    /// This is what Raft's `async` proposals are built on: a Go `context`
    /// cancelled around etcd raft's `Propose` ends the wait the same way,
    /// and the proposal may still take effect once `start` ran (before,
    /// `cancelled(false)`: nothing was proposed). An operation that can be
    /// taken back uses
    /// ``awaitCompletion(stopped:cancelled:withdraw:_:)`` instead.
    public func awaitCompletion<Outcome: Sendable>(
        stopped: @autoclosure @escaping @Sendable () -> Outcome,
        cancelled: @escaping @Sendable (_ started: Bool) -> Outcome,
        _ start: @escaping @Sendable (Value, @escaping @Sendable (Outcome) -> Void) -> Void
    ) async -> Outcome {
        // Nothing to withdraw: a cancellation after the start ends the
        // wait at once, on the cancelling thread, not through the loop.
        await waitForCompletion(
            stopped: stopped(), cancelled: cancelled, withdraw: nil as (@Sendable (Value, Void) -> Void)?, start)
    }

    /// ``awaitCompletion(stopped:cancelled:_:)`` for an operation that can
    /// sometimes be taken back once started: a task cancelled after the
    /// loop ran `start` has the loop call `withdraw` with the handle
    /// `start` returned. If `withdraw` ends the operation (its completion
    /// called before `withdraw` returns), the wait ends with the outcome
    /// the completion gives; otherwise with `cancelled(true)`, and the
    /// operation goes on. `cancelled(false)`, as in the plain form: the
    /// task was cancelled before the loop ran `start`, and nothing was
    /// started.
    ///
    /// This is what CASPaxos's `async` proposals are built on: a proposal
    /// that has sent no accept is withdrawn, definitely unwritten.
    public func awaitCompletion<Outcome: Sendable, Handle: Sendable>(
        stopped: @autoclosure @escaping @Sendable () -> Outcome,
        cancelled: @escaping @Sendable (_ started: Bool) -> Outcome,
        withdraw: @escaping @Sendable (Value, Handle) -> Void,
        _ start: @escaping @Sendable (Value, @escaping @Sendable (Outcome) -> Void) -> Handle
    ) async -> Outcome {
        await waitForCompletion(stopped: stopped(), cancelled: cancelled, withdraw: withdraw, start)
    }

    /// Both forms; with no `withdraw`, a cancellation ends the wait without
    /// a trip through the loop.
    private func waitForCompletion<Outcome: Sendable, Handle: Sendable>(
        stopped: @autoclosure @escaping @Sendable () -> Outcome,
        cancelled: @escaping @Sendable (_ started: Bool) -> Outcome,
        withdraw: (@Sendable (Value, Handle) -> Void)?,
        _ start: @escaping @Sendable (Value, @escaping @Sendable (Outcome) -> Void) -> Handle
    ) async -> Outcome {
        let wait = CompletionWait<Outcome, Handle>()
        // A task cancelled already runs the cancellation handler at once,
        // before the operation: the wait is then resumed as it is armed,
        // and nothing is started.
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                guard wait.arm(continuation, cancelled: cancelled) else { return }
                let accepted = loop.execute {
                    guard wait.beginStart() else { return }
                    let handle = start(self.value) { wait.finish($0) }
                    guard wait.started(handle) else { return }
                    // Cancelled while `start` ran.
                    withdraw?(self.value, handle)
                    wait.finish(cancelled(true))
                }
                if !accepted { wait.finish(stopped()) }
            }
        } onCancel: {
            guard let handle = wait.cancel(with: cancelled) else { return }
            guard let withdraw else { return wait.finish(cancelled(true)) }
            let accepted = loop.execute {
                withdraw(self.value, handle)
                wait.finish(cancelled(true))
            }
            if !accepted { wait.finish(cancelled(true)) }
        }
    }
}

/// A continuation resumed once, by whichever comes first: the operation's
/// outcome or the task's cancellation (which may come before the
/// continuation exists, before the operation starts, while it starts, or
/// after). It keeps the handle of a started operation, so that a
/// cancellation can have the loop withdraw it.
private final class CompletionWait<Outcome: Sendable, Handle: Sendable>: Sendable {
    private enum State {
        case waiting
        /// Cancelled before the continuation was armed.
        case cancelled
        /// Armed; the operation not started yet.
        case armed(CheckedContinuation<Outcome, Never>)
        /// The loop is running `start`; `cancelRequested` if the task was
        /// cancelled meanwhile.
        case starting(CheckedContinuation<Outcome, Never>, cancelRequested: Bool)
        case running(CheckedContinuation<Outcome, Never>, Handle)
        /// Cancelled after the start: the loop is withdrawing the operation.
        case withdrawing(CheckedContinuation<Outcome, Never>)
        case resumed
    }

    /// What a cancellation does, decided under the lock and done after it.
    private enum CancelStep {
        case none
        case resume(CheckedContinuation<Outcome, Never>)
        case withdraw(Handle)
    }

    private let state = Mutex(State.waiting)

    /// Arms `continuation`; false (having resumed it with
    /// `cancelled(false)`) if the task was cancelled first.
    func arm(_ continuation: CheckedContinuation<Outcome, Never>, cancelled: (Bool) -> Outcome) -> Bool {
        let wasCancelled = state.withLock { state -> Bool in
            guard case .cancelled = state else {
                state = .armed(continuation)
                return false
            }
            state = .resumed
            return true
        }
        if wasCancelled { continuation.resume(returning: cancelled(false)) }
        return !wasCancelled
    }

    /// On the loop, before `start`: whether to run it (false once the wait
    /// has ended: cancelled before the start).
    func beginStart() -> Bool {
        state.withLock { state in
            guard case .armed(let continuation) = state else { return false }
            state = .starting(continuation, cancelRequested: false)
            return true
        }
    }

    /// On the loop, after `start`: keeps `handle`; true if the task was
    /// cancelled while `start` ran, so the operation must be withdrawn now.
    func started(_ handle: Handle) -> Bool {
        state.withLock { state in
            guard case .starting(let continuation, let cancelRequested) = state else { return false }
            state = cancelRequested ? .withdrawing(continuation) : .running(continuation, handle)
            return cancelRequested
        }
    }

    func finish(_ outcome: Outcome) {
        take()?.resume(returning: outcome)
    }

    /// The task was cancelled. Returns the handle of the operation to
    /// withdraw, if it is running; ends the wait at once with
    /// `cancelled(false)` if the operation has not started.
    func cancel(with cancelled: (Bool) -> Outcome) -> Handle? {
        let step = state.withLock { state -> CancelStep in
            switch state {
            case .waiting:
                state = .cancelled
                return .none
            case .armed(let continuation):
                state = .resumed
                return .resume(continuation)
            case .starting(let continuation, _):
                state = .starting(continuation, cancelRequested: true)
                return .none
            case .running(let continuation, let handle):
                state = .withdrawing(continuation)
                return .withdraw(handle)
            case .cancelled, .withdrawing, .resumed:
                return .none
            }
        }
        switch step {
        case .none: return nil
        case .resume(let continuation):
            continuation.resume(returning: cancelled(false))
            return nil
        case .withdraw(let handle): return handle
        }
    }

    /// The armed continuation, once: later calls (an outcome after a
    /// cancellation, or the reverse) get nil.
    private func take() -> CheckedContinuation<Outcome, Never>? {
        state.withLock { state in
            switch state {
            case .armed(let continuation), .starting(let continuation, _), .running(let continuation, _),
                .withdrawing(let continuation):
                state = .resumed
                return continuation
            case .waiting, .cancelled, .resumed:
                return nil
            }
        }
    }
}
