/// The one timer a protocol driver keeps for its instance's next deadline:
/// ``arm(at:)`` after every input re-schedules it only when the deadline
/// changed, so a busy driver does not churn its scheduler. Confined to the
/// scheduler's loop, as the driver is.
public final class DeadlineTimer {
    private let scheduler: any Scheduler
    private var handle: TimerHandle?
    private var armedDeadline: Instant?
    /// What runs when the timer fires (on the scheduler's loop). It should
    /// hold its driver weakly: the driver holds this timer.
    public var onFire: () -> Void = {}

    /// Creates a disarmed timer on `scheduler`; set ``onFire`` before
    /// arming it.
    public init(scheduler: any Scheduler) {
        self.scheduler = scheduler
    }

    /// Arms the timer for `deadline`, replacing the armed one unless it is
    /// for the same instant; `.distantFuture` ("never") disarms it.
    public func arm(at deadline: Instant) {
        guard deadline != armedDeadline else { return }
        if let handle { scheduler.cancel(handle) }
        handle = nil
        armedDeadline = deadline
        guard deadline != .distantFuture else { return }
        handle = scheduler.schedule(at: deadline) { [weak self] in
            guard let self else { return }
            self.handle = nil
            self.armedDeadline = nil
            self.onFire()
        }
    }

    /// Disarms the timer.
    public func cancel() {
        if let handle { scheduler.cancel(handle) }
        handle = nil
        armedDeadline = nil
    }
}
