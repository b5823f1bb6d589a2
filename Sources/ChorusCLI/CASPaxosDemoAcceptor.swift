import CASPaxos
import EventCore
import UDPTransport

/// One acceptor of `chorus demo`'s CASPaxos scenario, on an event loop of
/// its own (its fdatasyncs then overlap with the other acceptors', as they
/// would in separate processes), with a ``FileAcceptorStore`` that outlives
/// its crashes. Loop-confined.
final class CASPaxosDemoAcceptor {
    let index: Int
    let loop: EventLoop
    /// The acceptor's address, kept across restarts.
    let endpoint: Endpoint
    private let path: String
    private var node: CASPaxosNode?
    /// The node's socket and store: closed at a crash, which releases the
    /// port and the store's lock as the end of a process would.
    private var socket: UDPSocketTransport?
    private var store: FileAcceptorStore?

    init(index: Int, directory: String, loop: EventLoop) throws {
        self.index = index
        self.loop = loop
        path = "\(directory)/acceptor-\(index).log"
        let (node, socket, store) = try Self.start(at: .loopbackV4(), path: path, opening: .new, loop: loop)
        endpoint = socket.localEndpoint
        self.node = node
        self.socket = socket
        self.store = store
    }

    /// Starts the acceptor on its log at `path`: a new one the first time,
    /// the one it left after a crash.
    private static func start(
        at endpoint: Endpoint, path: String, opening: FileAcceptorStore.Opening, loop: EventLoop
    ) throws -> (CASPaxosNode, UDPSocketTransport, FileAcceptorStore) {
        let transport = try UDPSocketTransport.bind(to: endpoint, on: loop)
        do {
            let store = try FileAcceptorStore(path: path, opening: opening)
            let node = try CASPaxosNode(transport: transport, scheduler: loop, quorums: nil, acceptorStore: store)
            return (node, transport, store)
        } catch {
            transport.close()
            throw error
        }
    }

    /// Crashes the acceptor: the node stops and the socket closes; writes
    /// it had not synced are lost, as in a crash.
    func crash() {
        guard let node else { return }
        node.stop()
        socket?.close()
        store?.close()
        self.node = nil
        socket = nil
        store = nil
    }

    /// Restarts the acceptor on its old port from its file; returns what it
    /// recovered, for the log.
    func restart() throws -> String {
        crash()
        let (node, socket, store) = try Self.start(at: endpoint, path: path, opening: .existing, loop: loop)
        self.node = node
        self.socket = socket
        self.store = store
        return "acceptor \(index) recovered \(node.acceptor?.registerCount ?? 0) registers from \(path)"
    }

    func close() { crash() }
}
