import Synchronization
import Testing
import EventCore

/// A sink that remembers its lines.
private final class RecordingSink: LogSink {
    let minimumLevel: LogLevel
    let lines = Mutex<[String]>([])
    init(minimumLevel: LogLevel) { self.minimumLevel = minimumLevel }
    func log(_ level: LogLevel, _ message: String, source: String) {
        lines.withLock { $0.append("\(level) \(source) \(message)") }
    }
}

@Suite("LogSink")
struct LogSinkTests {
    @Test("lines below the sink's level are never built")
    func levels() {
        let sink = RecordingSink(minimumLevel: .info)
        let built = Mutex(0)
        func message(_ text: String) -> String {
            built.withLock { $0 += 1 }
            return text
        }
        sink.log(.debug, source: "udp", message("hidden"))
        sink.log(.warning, source: "udp", message("shown"))
        #expect(sink.lines.withLock { $0 } == ["warning udp shown"])
        #expect(built.withLock { $0 } == 1)
        #expect(LogLevel.trace < .error)
    }
}
