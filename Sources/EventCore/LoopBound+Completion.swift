import Synchronization

extension LoopBound {
    /// Starts an operation on the value, on its loop, and waits for the
    /// outcome the operation hands its completion (called on the loop).
    /// Callable from any task.
    ///
    /// The wait ends early, with `cancelled`, when the task is cancelled:
    /// the operation itself goes on (it may have started), and its
    /// outcome, when it comes, is dropped. A task cancelled already gets
    /// `cancelled` at once, and nothing is started: a retry loop in it
    /// must stop on `cancelled` rather than spin. With `stopped` if the
    /// loop has stopped and will never run `start`.
    ///
    /// This is what the protocol modules' `async` APIs are built on (a
    /// Raft proposal, a CASPaxos proposal): a Go `context` cancelled
    /// around etcd raft's `Propose` ends the wait the same way, and the
    /// proposal may still take effect.
    public func awaitCompletion<Outcome: Sendable>(
        stopped: @autoclosure @escaping @Sendable () -> Outcome,
        cancelled: @escaping @Sendable () -> Outcome,
        _ start: @escaping @Sendable (Value, @escaping @Sendable (Outcome) -> Void) -> Void
    ) async -> Outcome {
        let wait = CompletionWait<Outcome>()
        // A task cancelled already runs the cancellation handler at once,
        // before the operation: the wait is then resumed as it is armed,
        // and nothing is started.
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                guard wait.arm(continuation, cancelled: cancelled) else { return }
                let accepted = loop.execute {
                    start(self.value) { wait.finish($0) }
                }
                if !accepted { wait.finish(stopped()) }
            }
        } onCancel: {
            wait.cancel(with: cancelled)
        }
    }
}

/// A continuation resumed once, by whichever comes first: the operation's
/// outcome or the task's cancellation (which may come before the
/// continuation exists).
private final class CompletionWait<Outcome: Sendable>: Sendable {
    private enum State {
        case waiting
        /// Cancelled before the continuation was armed.
        case cancelled
        case armed(CheckedContinuation<Outcome, Never>)
        case resumed
    }

    private let state = Mutex(State.waiting)

    /// Arms `continuation`; false (having resumed it with `cancelled()`)
    /// if the task was cancelled first.
    func arm(_ continuation: CheckedContinuation<Outcome, Never>, cancelled: () -> Outcome) -> Bool {
        let wasCancelled = state.withLock { state -> Bool in
            guard case .cancelled = state else {
                state = .armed(continuation)
                return false
            }
            state = .resumed
            return true
        }
        if wasCancelled { continuation.resume(returning: cancelled()) }
        return !wasCancelled
    }

    func finish(_ outcome: Outcome) {
        take()?.resume(returning: outcome)
    }

    func cancel(with cancelled: () -> Outcome) {
        let marked = state.withLock { state -> Bool in
            guard case .waiting = state else { return false }
            state = .cancelled
            return true
        }
        if !marked { take()?.resume(returning: cancelled()) }
    }

    /// The armed continuation, once: later calls (an outcome after a
    /// cancellation, or the reverse) get nil.
    private func take() -> CheckedContinuation<Outcome, Never>? {
        state.withLock { state in
            guard case .armed(let continuation) = state else { return nil }
            state = .resumed
            return continuation
        }
    }
}
