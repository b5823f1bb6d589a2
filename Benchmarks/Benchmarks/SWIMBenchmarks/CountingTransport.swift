import EventCore
import Simulation
import WireCodec

/// A simulated node's transport that also counts the push-pull datagrams
/// it sends (and their bytes), so the steady state's cost can be split
/// into probing and gossip on one side and anti-entropy on the other.
/// Everything else is the node's own transport.
final class CountingTransport: Transport {
    let node: SimulatedNode
    private(set) var pushPullPackets = 0
    private(set) var pushPullBytes = 0

    /// The kind byte of a SWIM body follows the frame header
    /// (`SWIMMessage.Kind.pushPull` is 5).
    private static let kindOffset = FrameHeader.size
    private static let pushPullKind: UInt8 = 5

    init(_ node: SimulatedNode) {
        self.node = node
    }

    var localEndpoint: Endpoint { node.localEndpoint }
    var maximumMessageSize: Int { node.maximumMessageSize }

    func send(_ message: UnsafeRawBufferPointer, to destination: Endpoint) throws(TransportError) {
        try node.send(message, to: destination)
        if message.count > Self.kindOffset && message[Self.kindOffset] == Self.pushPullKind {
            pushPullPackets += 1
            pushPullBytes += message.count
        }
    }

    func setReceiveHandler(_ handler: @escaping TransportReceiveHandler) {
        node.setReceiveHandler(handler)
    }

    func removeReceiveHandler() {
        node.removeReceiveHandler()
    }
}
