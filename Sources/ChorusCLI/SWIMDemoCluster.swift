import EventCore
import SWIM
import UDPTransport

/// The members of `chorus demo`'s SWIM scenario on one event loop, and
/// every member event they reported, with its time. Loop-confined.
final class SWIMDemoCluster {
    struct Sighting {
        var observer: Int
        var event: MemberEvent
    }

    private(set) var transports: [UDPSocketTransport] = []
    private(set) var members: [SWIMNode] = []
    private(set) var sightings: [Sighting] = []
    /// Members stopped abruptly or gone (not observers any more), and when.
    private(set) var gone: [Int: Instant] = [:]
    let startedAt: Instant
    private let loop: EventLoop

    init(count: Int, loop: EventLoop) throws {
        self.loop = loop
        startedAt = loop.now
        for index in 0..<count {
            let transport = try UDPSocketTransport.bind(to: .loopbackV4(), on: loop)
            let member = try SWIMNode(transport: transport, scheduler: loop, metadata: Array("member \(index)".utf8))
            member.setEventHandler { [unowned self] event in
                self.sightings.append(Sighting(observer: index, event: event))
            }
            transports.append(transport)
            members.append(member)
        }
        members[0].start()
        for member in members.dropFirst() { member.start(seeds: [transports[0].localEndpoint]) }
    }

    /// Members still running.
    var live: [Int] { members.indices.filter { gone[$0] == nil } }

    /// Whether every running member sees every running member alive.
    var isConverged: Bool {
        let live = self.live
        return live.allSatisfy { members[$0].memberCount(.alive) == live.count }
    }

    /// How many running members (other than `subject`) see `subject` at
    /// `status`.
    func observers(of subject: Int, at status: MemberStatus) -> Int {
        let id = members[subject].id
        return live.filter { $0 != subject && members[$0].member(id)?.status == status }.count
    }

    /// The first sighting of `kind` about `subject` at or after `since`
    /// (the member's crash: an earlier one was about a running member).
    func firstSighting(_ kind: MemberEvent.Kind, about subject: Int, since: Instant) -> Sighting? {
        let id = members[subject].id
        return sightings.first { $0.event.kind == kind && $0.event.member.id == id && $0.event.at >= since }
    }

    /// Dead declarations about members that were running when declared
    /// (members still running, and those stopped or gone since).
    var falsePositives: Int {
        let indices = Dictionary(uniqueKeysWithValues: members.indices.map { (members[$0].id, $0) })
        return sightings.filter { sighting in
            guard sighting.event.kind == .dead, let subject = indices[sighting.event.member.id] else { return false }
            return gone[subject].map { sighting.event.at < $0 } ?? true
        }.count
    }

    /// Packets and bytes sent by the running members so far.
    var traffic: (packets: Int, bytes: Int) {
        live.reduce((0, 0)) { ($0.0 + members[$1].packetsSent, $0.1 + members[$1].bytesSent) }
    }

    /// Stops member `index` abruptly: no goodbye, its socket closes.
    func crash(_ index: Int) {
        gone[index] = loop.now
        members[index].stop()
        transports[index].close()
    }

    /// Member `index` leaves gracefully.
    func leave(_ index: Int) {
        gone[index] = loop.now
        members[index].leave()
    }

    func close() {
        for member in members { member.stop() }
        for transport in transports { transport.close() }
    }
}
