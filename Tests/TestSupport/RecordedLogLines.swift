import EventCore
import Synchronization

/// A log sink that keeps the lines nodes log at one level, for tests to
/// read (lines of other levels are dropped; those below it never built).
public final class RecordedLogLines: LogSink {
    /// The level kept.
    public let level: LogLevel
    private let lines = Mutex<[String]>([])

    public init(level: LogLevel) {
        self.level = level
    }

    public var minimumLevel: LogLevel { level }

    public func log(_ level: LogLevel, _ message: String, source: String) {
        if level == self.level { lines.withLock { $0.append(message) } }
    }

    /// The lines kept so far, in the order logged.
    public var all: [String] { lines.withLock { $0 } }
}
