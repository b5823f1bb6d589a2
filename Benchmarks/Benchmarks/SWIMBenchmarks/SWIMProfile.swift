import SWIM

/// The SWIM settings a run uses.
enum SWIMProfile: String, CaseIterable {
    /// Chorus's defaults (`SWIMConfiguration()`).
    case chorus
    /// memberlist's LAN profile (`memberlist.DefaultLANConfig`), EMULATED
    /// WITH CHORUS SWIM by configuration: the same timings and multipliers,
    /// run by Chorus's own SWIM code. It is not hashicorp/memberlist (a Go
    /// library, which cannot run in the simulator; `Scripts/bench
    /// --go-peers SWIM` runs the real one on 127.0.0.1 beside it); it shows
    /// what memberlist's tuning gives on the same implementation, network
    /// and seeds.
    case memberlist

    var configuration: SWIMConfiguration {
        var configuration = SWIMConfiguration()
        switch self {
        case .chorus:
            break
        case .memberlist:
            configuration.protocolPeriod = .seconds(1)              // ProbeInterval
            configuration.probeTimeout = .milliseconds(500)         // ProbeTimeout
            configuration.indirectProbeCount = 3                    // IndirectChecks
            configuration.suspicionMultiplier = 4                   // SuspicionMult
            configuration.maximumSuspicionMultiplier = 6            // SuspicionMaxTimeoutMult
            configuration.suspicionConfirmations = 2                // SuspicionMult - 2
            configuration.confirmationProbes = 0                    // memberlist has none
            configuration.retransmitMultiplier = 4                  // RetransmitMult
            configuration.gossipInterval = .milliseconds(200)       // GossipInterval
            configuration.gossipFanout = 3                          // GossipNodes
            configuration.pushPullInterval = .seconds(30)           // PushPullInterval
        }
        return configuration
    }
}
