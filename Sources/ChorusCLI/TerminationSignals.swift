import Foundation

/// SIGINT (Ctrl-C) and SIGTERM taken by a command instead of ending the
/// process: each delivered to a handler on the main queue, for as long as
/// the command keeps the ``TerminationSignals`` (``cancel()`` gives them
/// back to nobody: they stay ignored).
final class TerminationSignals {
    private let sources: [any DispatchSourceSignal]

    /// Starts taking the signals; `handler` gets each signal's number.
    init(_ handler: @escaping @Sendable (Int32) -> Void) {
        sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .main)
            source.setEventHandler { handler(number) }
            source.resume()
            return source
        }
    }

    /// Stops taking them.
    func cancel() {
        for source in sources { source.cancel() }
    }

    /// Ends the process as `number` would have, had no one taken it (so a
    /// shell sees the command killed by it: a loop of runs stops at
    /// Ctrl-C), or, should that fail, with the shell's code for it.
    static func die(of number: Int32) -> Never {
        // Delivered through a dispatch source, the signal is blocked:
        // unblocked with the default action, it ends the process.
        signal(number, SIG_DFL)
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, number)
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)
        raise(number)
        exit(128 + number)
    }
}
