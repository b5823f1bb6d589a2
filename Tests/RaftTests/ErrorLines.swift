import EventCore
import Synchronization

/// A log sink that keeps the error lines nodes log, for tests to read.
final class ErrorLines: LogSink {
    let lines = Mutex<[String]>([])
    var minimumLevel: LogLevel { .error }
    func log(_ level: LogLevel, _ message: String, source: String) { lines.withLock { $0.append(message) } }
    var all: [String] { lines.withLock { $0 } }
}
