import CChorusSystem

/// The readiness a file descriptor registered with an ``EventLoop`` reports,
/// or asks to be told about.
public struct IOEvents: OptionSet, Hashable, Sendable {
    /// The epoll event bits (`EPOLLIN`, `EPOLLOUT`, ...).
    public let rawValue: UInt32

    /// Creates events from epoll event bits.
    public init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    /// Data can be read without blocking.
    public static let readable = IOEvents(rawValue: CChorus_EPOLLIN)
    /// Data can be written without blocking.
    public static let writable = IOEvents(rawValue: CChorus_EPOLLOUT)
    /// An error is pending on the descriptor (reported, never requested).
    public static let error = IOEvents(rawValue: CChorus_EPOLLERR)
    /// The peer hung up (reported, never requested).
    public static let hangUp = IOEvents(rawValue: CChorus_EPOLLHUP)
}
