import EventCore
import Testing
import UDPTransport

@Suite("UDPSocketTransport: binding and closing")
struct BindTests {
    @Test("binding to port 0 reports the port the kernel chose", arguments: [
        Endpoint.loopbackV4(), Endpoint.loopbackV6(),
    ])
    func bindReportsPort(requested: Endpoint) async throws {
        try await withLoops(1) { loops in
            let peer = try await Peer.bind(requested, on: loops[0])
            #expect(peer.endpoint.port != 0)
            #expect(peer.endpoint.address == requested.address)
            #expect(socketInode(boundTo: peer.endpoint) != nil)
        }
    }

    @Test("binding to a port in use throws a system error")
    func bindToPortInUse() async throws {
        try await withLoops(1) { loops in
            let first = try await Peer.bind(on: loops[0])
            let loop = loops[0]
            let endpoint = first.endpoint
            let error = try await loop.submit { bindError(endpoint, on: loop) }
            guard case .system(let systemError) = error else {
                Issue.record("expected a system error, got \(String(describing: error))")
                return
            }
            #expect(systemError.call.hasPrefix("bind"))
        }
    }

    @Test("sending after close throws .closed; close is idempotent")
    func sendAfterClose() async throws {
        try await withLoops(1) { loops in
            let peer = try await Peer.bind(on: loops[0])
            let destination = peer.endpoint
            let inode = try #require(socketInode(boundTo: peer.endpoint))
            let outcome = try await peer.transport.run { transport -> (TransportError.Code?, Bool) in
                transport.close()
                transport.close()
                return (sendError(transport, [1, 2, 3], to: destination), transport.isClosed)
            }
            #expect(outcome.0 == .closed)
            #expect(outcome.1)
            #expect(!udpSocketExists(inode: inode))
        }
    }

    @Test("sending to the other address family throws .addressFamilyMismatch")
    func familyMismatch() async throws {
        try await withLoops(1) { loops in
            let v4 = try await Peer.bind(.loopbackV4(), on: loops[0])
            let v6 = try await Peer.bind(.loopbackV6(), on: loops[0])
            let toV6 = v6.endpoint
            let toV4 = v4.endpoint
            let fromV4 = try await v4.transport.run { sendError($0, [1], to: toV6) }
            let fromV6 = try await v6.transport.run { sendError($0, [1], to: toV4) }
            #expect(fromV4 == .addressFamilyMismatch)
            #expect(fromV6 == .addressFamilyMismatch)
        }
    }

    @Test("a message over the limit throws .messageTooLarge; one at the limit is accepted")
    func messageTooLarge() async throws {
        var configuration = UDPSocketTransport.Configuration()
        configuration.maximumMessageSize = 10_000
        try await withLoops(1) { loops in
            let peer = try await Peer.bind(on: loops[0], configuration: configuration)
            let destination = peer.endpoint
            let codes = try await peer.transport.run { transport in
                [10_001, 10_000].map { sendError(transport, [UInt8](repeating: 7, count: $0), to: destination) }
            }
            #expect(codes == [.messageTooLarge, nil])
            #expect(try await peer.transport.run { $0.maximumMessageSize } == 10_000)
        }
    }

    @Test("loop shutdown closes the socket's descriptor")
    func shutdownClosesDescriptor() async throws {
        let loop = try EventLoop()
        try loop.start()
        let peer = try await Peer.bind(on: loop)
        let inode = try #require(socketInode(boundTo: peer.endpoint))
        #expect(descriptorCount(forSocketInode: inode) == 1)
        loop.shutdown()
        #expect(descriptorCount(forSocketInode: inode) == 0)
        #expect(!udpSocketExists(inode: inode))
    }

    @Test("releasing an open transport closes its descriptor")
    func releaseClosesDescriptor() async throws {
        try await withLoops(1) { loops in
            let loop = loops[0]
            // The transport is released as the closure returns, on its loop.
            let inode = try await loop.submit { () -> String? in
                let transport = try UDPSocketTransport.bind(to: .loopbackV4(), on: loop)
                return socketInode(boundTo: transport.localEndpoint)
            }
            let released = try #require(inode)
            #expect(descriptorCount(forSocketInode: released) == 0)
            #expect(!udpSocketExists(inode: released))
        }
    }

    @Test("releasing an open transport on another thread closes it on its loop, which keeps working")
    func releaseOffLoop() async throws {
        try await withLoops(1) { loops in
            let loop = loops[0]
            var bound: LoopBound<UDPSocketTransport>?
            let endpoint: Endpoint
            (bound, endpoint) = try await loop.submit {
                let transport = try UDPSocketTransport.bind(to: .loopbackV4(), on: loop)
                return (LoopBound(transport, on: loop), transport.localEndpoint)
            }
            let inode = try #require(socketInode(boundTo: endpoint))
            #expect(bound != nil)
            bound = nil  // the last reference: the transport is released here, off its loop
            try await waitUntil("the released transport's descriptor to close") {
                descriptorCount(forSocketInode: inode) == 0
            }
            // New sockets (one may reuse the descriptor number) register and receive.
            let sender = try await Peer.bind(on: loop)
            let receiver = try await Peer.bind(on: loop)
            try await sender.send([1, 2, 3], to: receiver.endpoint)
            try await waitUntil("delivery after the release") { receiver.inbox.count == 1 }
        }
    }

    @Test("an invalid configuration is refused before a socket is opened")
    func invalidConfiguration() async throws {
        var invalid = UDPSocketTransport.Configuration()
        invalid.batchSize = 0
        let configuration = invalid
        try await withLoops(1) { loops in
            let loop = loops[0]
            let error = try await loop.submit { bindError(.loopbackV4(), on: loop, configuration: configuration) }
            guard case .invalidConfiguration(let configurationError) = error else {
                Issue.record("expected invalidConfiguration, got \(String(describing: error))")
                return
            }
            #expect(configurationError.field == "batchSize")
        }
    }
}

/// The code `send` throws, or nil if it succeeds.
private func sendError(
    _ transport: UDPSocketTransport, _ bytes: [UInt8], to destination: Endpoint
) -> TransportError.Code? {
    do throws(TransportError) {
        try transport.send(bytes, to: destination)
        return nil
    } catch {
        return error.code
    }
}

/// The error `bind` throws, or nil if it succeeds (the transport is then
/// released, which closes it).
private func bindError(
    _ endpoint: Endpoint, on loop: EventLoop, configuration: UDPSocketTransport.Configuration = .init()
) -> UDPSocketTransport.BindError? {
    do throws(UDPSocketTransport.BindError) {
        _ = try UDPSocketTransport.bind(to: endpoint, on: loop, configuration: configuration)
        return nil
    } catch {
        return error
    }
}
