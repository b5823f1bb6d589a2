#if canImport(Glibc)
import Glibc
#endif

/// How important a log line is, from the most verbose to the most severe.
public enum LogLevel: Int, Comparable, Hashable, Sendable, CustomStringConvertible {
    /// Per-message detail.
    case trace
    /// Dropped frames, retries, state changes worth a look when debugging.
    case debug
    /// Lifecycle: bound, joined, leader elected.
    case info
    /// Something unusual the node handled (a peer declared dead).
    case notice
    /// Something likely wrong (a sustained error from the socket).
    case warning
    /// The node cannot do what was asked.
    case error

    /// Whether `lhs` is less severe than `rhs`.
    public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The level's name in lower case (`debug`).
    public var description: String {
        switch self {
        case .trace: "trace"
        case .debug: "debug"
        case .info: "info"
        case .notice: "notice"
        case .warning: "warning"
        case .error: "error"
        }
    }
}

/// Where Chorus writes its log lines. Injected per instance (a transport, a
/// node), never set globally. A sink is called in the middle of the
/// caller's work: it records the line and returns, and never calls back
/// into the node or transport that logs (drivers rely on that, as they
/// rely on a transport's `send` never calling a receive handler).
/// Bridging to swift-log takes a few lines:
///
/// ```swift
/// struct SwiftLogSink: LogSink {
///     let logger: Logging.Logger
///     var minimumLevel: LogLevel { .debug }
///     func log(_ level: LogLevel, _ message: String, source: String) {
///         logger.log(level: level == .trace ? .trace : level == .debug ? .debug : .info,
///                    "\(message)", source: source)
///     }
/// }
/// ```
public protocol LogSink: Sendable {
    /// Lines below this level are never built (see ``log(_:_:source:)``'s
    /// autoclosure overload), so a quiet sink costs one comparison.
    var minimumLevel: LogLevel { get }

    /// Writes one line. `source` names the component (`"udp"`, `"swim"`).
    func log(_ level: LogLevel, _ message: String, source: String)
}

extension LogSink {
    /// Builds and writes the line only if `level` is at or above
    /// ``minimumLevel``.
    @inlinable
    public func log(_ level: LogLevel, source: String, _ message: @autoclosure () -> String) {
        if level >= minimumLevel { log(level, message(), source: source) }
    }
}

/// A sink that drops everything: the default.
public struct DiscardingLogSink: LogSink {
    /// Creates the sink.
    public init() {}
    /// ``LogLevel/error``; nothing is written at any level.
    public var minimumLevel: LogLevel { .error }
    /// Does nothing.
    public func log(_ level: LogLevel, _ message: String, source: String) {}
}

/// A sink that writes `level [source] message` lines to standard error.
public struct StandardErrorLogSink: LogSink {
    /// The least severe level written.
    public let minimumLevel: LogLevel

    /// Creates a sink that writes lines at `minimumLevel` and above.
    public init(minimumLevel: LogLevel = .info) {
        self.minimumLevel = minimumLevel
    }

    /// Writes `level [source] message` and a newline to standard error, if `level` is at least ``minimumLevel``.
    public func log(_ level: LogLevel, _ message: String, source: String) {
        guard level >= minimumLevel else { return }
        var line = "\(level) [\(source)] \(message)\n"
        line.withUTF8 { bytes in _ = Glibc.write(2, bytes.baseAddress, bytes.count) }
    }
}
