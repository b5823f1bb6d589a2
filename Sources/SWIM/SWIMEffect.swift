import EventCore

/// What a ``SWIMInstance`` asks its driver to do, appended to a
/// caller-owned array by every input.
public enum SWIMEffect: Sendable {
    /// Send `message` to `destination` (one SWIM frame).
    case send(SWIMMessage, to: Endpoint)
    /// Tell listeners about a membership change.
    case memberEvent(MemberEvent)
    /// Hand a user broadcast to the application (at most once per ID).
    case deliver(SWIMBroadcast)
    /// A graceful leave has been announced enough times: the driver may
    /// stop the instance.
    case departed
}
