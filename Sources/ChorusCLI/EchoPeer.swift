import EventCore
import UDPTransport
import WireCodec

/// The far side of the self-check: answers pings, acknowledges bulk
/// payloads and counts blast datagrams. Loop-confined.
final class EchoPeer {
    let transport: UDPSocketTransport
    private var writer = WireWriter(capacity: 256)
    /// Blast frames received.
    private(set) var blastsReceived = 0
    /// Frames that failed to decode (counted, then dropped).
    private(set) var badFrames = 0

    init(transport: UDPSocketTransport) {
        self.transport = transport
        transport.setReceiveHandler { [unowned self] message, sender, _ in
            self.receive(message, from: sender)
        }
    }

    private func receive(_ message: UnsafeRawBufferPointer, from sender: Endpoint) {
        do {
            switch try SelfCheckMessage(frame: message) {
            case .ping(let sequence, let sentAt):
                try SelfCheckMessage.encodeEcho(pong: true, sequence: sequence, sentAt: sentAt, into: &writer)
            case .bulk(let checksum, let length):
                try SelfCheckMessage.encodeBulkAck(checksum: checksum, length: length, into: &writer)
            case .blast:
                blastsReceived += 1
                return
            case .pong, .bulkAck:
                return
            }
            try writer.withUnsafeBytes { bytes throws(TransportError) in try transport.send(bytes, to: sender) }
        } catch {
            badFrames += 1
        }
    }
}
