import EventCore
import Simulation

/// One message as a test node saw it.
struct ReceivedMessage: Equatable {
    var bytes: [UInt8]
    var sender: Endpoint
    var time: Instant
}

/// Collects what a node receives. The node's handler keeps the inbox alive.
final class Inbox {
    private(set) var messages: [ReceivedMessage] = []

    /// An inbox attached to no node yet.
    init() {}

    /// An inbox receiving what `node` receives.
    init(_ node: SimulatedNode) {
        attach(to: node)
    }

    /// (Re)installs the handler, e.g. from a restart hook.
    func attach(to node: SimulatedNode) {
        node.setReceiveHandler { message, sender, now in
            self.messages.append(ReceivedMessage(bytes: Array(message), sender: sender, time: now))
        }
    }

    /// The first byte of every message, in arrival order: tests number their
    /// messages with it.
    var firstBytes: [UInt8] { messages.map { $0.bytes.first ?? 0 } }
}

extension Instant {
    /// `duration` after time zero.
    static func at(_ duration: Duration) -> Instant { .zero + duration }
}

extension SimulatedNode {
    /// Sends a one-byte message holding `number`.
    func send(number: UInt8, to destination: SimulatedNode) throws(TransportError) {
        try send([number], to: destination.localEndpoint)
    }
}
