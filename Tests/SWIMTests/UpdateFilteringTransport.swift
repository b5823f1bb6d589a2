import EventCore
import SWIM
import WireCodec

/// A transport that hands its member every message it receives with the
/// updates `drops` matches taken out (a message left with none, and no
/// body of its own, is kept: only the news goes missing). A test makes a
/// member miss every copy of some news, however many members send it,
/// while all else reaches it.
final class UpdateFilteringTransport: Transport {
    let inner: any Transport
    /// Whether a received update is taken out; nil keeps every one.
    var drops: ((SWIMUpdate) -> Bool)?
    /// Updates taken out so far.
    private(set) var dropped = 0

    init(_ inner: any Transport) {
        self.inner = inner
    }

    var localEndpoint: Endpoint { inner.localEndpoint }
    var maximumMessageSize: Int { inner.maximumMessageSize }

    func send(_ message: UnsafeRawBufferPointer, to destination: Endpoint) throws(TransportError) {
        try inner.send(message, to: destination)
    }

    func setReceiveHandler(_ handler: @escaping TransportReceiveHandler) {
        inner.setReceiveHandler { [unowned self] bytes, sender, now in
            guard let drops, let filtered = filtered(bytes, drops) else { return handler(bytes, sender, now) }
            filtered.withUnsafeBytes { handler($0, sender, now) }
        }
    }

    func removeReceiveHandler() {
        inner.removeReceiveHandler()
    }

    /// The frame re-encoded without the updates `drops` matches, or nil to
    /// pass it on as it is (nothing taken out, or not a SWIM message).
    private func filtered(_ bytes: UnsafeRawBufferPointer, _ drops: (SWIMUpdate) -> Bool) -> [UInt8]? {
        let limits = SWIMMessage.decodingLimits
        guard let body = try? Frame.decodeBody(bytes, of: .swim, limits: limits),
              var message = try? SWIMMessage(decoding: body, limits: limits)
        else { return nil }
        let count = message.updates.count
        message.updates.removeAll(where: drops)
        guard message.updates.count < count else { return nil }
        dropped += count - message.updates.count
        var writer = WireWriter()
        message.encodeFrame(into: &writer)
        return writer.takeBytes()
    }
}
