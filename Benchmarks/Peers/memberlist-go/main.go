// memberlist-peer: hashicorp/memberlist (Debian package, built offline)
// measured the way Chorus measures its SWIM on real UDP: N members in one
// process on 127.0.0.1, each with memberlist.DefaultLANConfig().
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// ---- counting transport -------------------------------------------------

// counters are shared by every member's transport (the whole cluster's sends).
type counters struct {
	udpPackets int64 // WriteTo calls (one UDP datagram each)
	udpBytes   int64
	tcpStreams int64 // outgoing streams opened (DialTimeout)
	tcpBytes   int64 // bytes written on any stream (dialled or accepted)
}

func (c *counters) snapshot() counters {
	return counters{
		udpPackets: atomic.LoadInt64(&c.udpPackets),
		udpBytes:   atomic.LoadInt64(&c.udpBytes),
		tcpStreams: atomic.LoadInt64(&c.tcpStreams),
		tcpBytes:   atomic.LoadInt64(&c.tcpBytes),
	}
}

type countingConn struct {
	net.Conn
	c *counters
}

func (cc *countingConn) Write(b []byte) (int, error) {
	n, err := cc.Conn.Write(b)
	atomic.AddInt64(&cc.c.tcpBytes, int64(n))
	return n, err
}

// countingTransport wraps memberlist.NetTransport. memberlist wraps a plain
// Transport in its own shim for the node-aware calls, which end in WriteTo
// and DialTimeout, so every send passes through here.
type countingTransport struct {
	*memberlist.NetTransport
	c       *counters
	streams chan net.Conn
	stop    chan struct{}
}

func newCountingTransport(nt *memberlist.NetTransport, c *counters) *countingTransport {
	t := &countingTransport{NetTransport: nt, c: c, streams: make(chan net.Conn), stop: make(chan struct{})}
	go func() {
		for {
			select {
			case conn := <-nt.StreamCh():
				select {
				case t.streams <- &countingConn{conn, c}:
				case <-t.stop:
					conn.Close()
					return
				}
			case <-t.stop:
				return
			}
		}
	}()
	return t
}

func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	ts, err := t.NetTransport.WriteTo(b, addr)
	if err == nil {
		atomic.AddInt64(&t.c.udpPackets, 1)
		atomic.AddInt64(&t.c.udpBytes, int64(len(b)))
	}
	return ts, err
}

// NetTransport is node-aware; memberlist prefers these two, so they must
// count too (the embedded ones would bypass the counters).
func (t *countingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, a.Addr)
}

func (t *countingTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

func (t *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	conn, err := t.NetTransport.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	atomic.AddInt64(&t.c.tcpStreams, 1)
	return &countingConn{conn, t.c}, nil
}

func (t *countingTransport) StreamCh() <-chan net.Conn { return t.streams }

func (t *countingTransport) Shutdown() error {
	close(t.stop)
	return t.NetTransport.Shutdown()
}

// ---- events ---------------------------------------------------------------

type leaveEvent struct {
	observer int
	subject  string
	at       time.Time
}

type recorder struct {
	mu     sync.Mutex
	leaves []leaveEvent
}

type eventDelegate struct {
	index int
	rec   *recorder
}

func (d *eventDelegate) NotifyJoin(*memberlist.Node)   {}
func (d *eventDelegate) NotifyUpdate(*memberlist.Node) {}
func (d *eventDelegate) NotifyLeave(n *memberlist.Node) {
	now := time.Now()
	d.rec.mu.Lock()
	d.rec.leaves = append(d.rec.leaves, leaveEvent{d.index, n.Name, now})
	d.rec.mu.Unlock()
}

// ---- run ------------------------------------------------------------------

func name(i int) string { return fmt.Sprintf("m%03d", i) }

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func main() {
	count := flag.Int("n", 64, "members")
	crashes := flag.Int("crashes", 3, "members crashed one after another")
	quiet := flag.Duration("quiet", 60*time.Second, "steady-state window")
	settle := flag.Duration("settle", 90*time.Second, "wait after convergence before the window (memberlist's first periodic push-pull comes 60-90 s after Create at 64 members)")
	run := flag.Int("run", 1, "run number (printed)")
	flag.Parse()
	log.SetOutput(io.Discard)

	c := &counters{}
	rec := &recorder{}
	members := make([]*memberlist.Memberlist, *count)
	var lanProfile *memberlist.Config
	for i := 0; i < *count; i++ {
		cfg := memberlist.DefaultLANConfig()
		cfg.Name = name(i)
		cfg.BindAddr = "127.0.0.1"
		cfg.BindPort = 0
		cfg.AdvertiseAddr = ""
		cfg.LogOutput = io.Discard
		cfg.Events = &eventDelegate{i, rec}
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{cfg.BindAddr}, BindPort: 0, Logger: log.New(io.Discard, "", 0),
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "transport:", err)
			os.Exit(1)
		}
		cfg.Transport = newCountingTransport(nt, c)
		m, err := memberlist.Create(cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "create:", err)
			os.Exit(1)
		}
		members[i] = m
		lanProfile = cfg
	}
	fmt.Printf("# memberlist DefaultLANConfig: ProbeInterval=%v ProbeTimeout=%v IndirectChecks=%d SuspicionMult=%d SuspicionMaxTimeoutMult=%d GossipInterval=%v GossipNodes=%d RetransmitMult=%d PushPullInterval=%v AwarenessMaxMultiplier=%d\n",
		lanProfile.ProbeInterval, lanProfile.ProbeTimeout, lanProfile.IndirectChecks, lanProfile.SuspicionMult,
		lanProfile.SuspicionMaxTimeoutMult, lanProfile.GossipInterval, lanProfile.GossipNodes, lanProfile.RetransmitMult,
		lanProfile.PushPullInterval, lanProfile.AwarenessMaxMultiplier)

	// 1. Join every member through member 0.
	seed := members[0].LocalNode().Address()
	for i := 1; i < *count; i++ {
		if _, err := members[i].Join([]string{seed}); err != nil {
			fmt.Fprintln(os.Stderr, "join:", err)
			os.Exit(1)
		}
	}
	joinedAt := time.Now()
	converged := func(live []int, want int) bool {
		for _, i := range live {
			if members[i].NumMembers() != want {
				return false
			}
		}
		return true
	}
	all := make([]int, *count)
	for i := range all {
		all[i] = i
	}
	var conv time.Duration = -1
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if converged(all, *count) {
			conv = time.Since(joinedAt)
			break
		}
	}
	if conv < 0 {
		// Say who is missing from whom, and what memberlist reported.
		hist := map[int]int{}
		for i := range members {
			hist[members[i].NumMembers()]++
		}
		fmt.Printf("# run %d: NOT converged 60 s after the last Join; NumMembers histogram %v\n", *run, hist)
		for i, m := range members {
			if m.NumMembers() == *count {
				continue
			}
			known := map[string]bool{}
			for _, n := range m.Members() {
				known[n.Name] = true
			}
			var missing []string
			for j := range members {
				if !known[name(j)] {
					missing = append(missing, name(j))
				}
			}
			fmt.Printf("#   %s sees %d, missing %v\n", name(i), m.NumMembers(), missing)
		}
		rec.mu.Lock()
		for _, e := range rec.leaves {
			fmt.Printf("#   NotifyLeave at %s about %s, %.0f ms after the last Join\n", name(e.observer), e.subject, ms(e.at.Sub(joinedAt)))
		}
		rec.mu.Unlock()
		fmt.Printf("RESULT impl=memberlist run=%d n=%d converged=false\n", *run, *count)
		os.Exit(1)
	}
	fmt.Printf("# run %d: converged %.1f ms after the last Join\n", *run, ms(conv))
	atJoin := c.snapshot()
	fmt.Printf("# run %d: sends so far (whole cluster, join included): %d UDP datagrams, %d UDP bytes, %d TCP streams, %d TCP bytes\n",
		*run, atJoin.udpPackets, atJoin.udpBytes, atJoin.tcpStreams, atJoin.tcpBytes)

	// 2. Steady state: every send of every member over the quiet window.
	time.Sleep(*settle)
	before, t0 := c.snapshot(), time.Now()
	time.Sleep(*quiet)
	after, t1 := c.snapshot(), time.Now()
	secs := t1.Sub(t0).Seconds()
	per := float64(*count) * secs
	udpPk := float64(after.udpPackets-before.udpPackets) / per
	udpB := float64(after.udpBytes-before.udpBytes) / per
	tcpS := float64(after.tcpStreams-before.tcpStreams) / per
	tcpB := float64(after.tcpBytes-before.tcpBytes) / per
	fmt.Printf("# run %d: window (whole cluster): %d UDP datagrams, %d UDP bytes, %d TCP streams, %d TCP bytes\n", *run,
		after.udpPackets-before.udpPackets, after.udpBytes-before.udpBytes, after.tcpStreams-before.tcpStreams, after.tcpBytes-before.tcpBytes)
	fmt.Printf("# run %d: steady state over %.1f s: %.2f UDP datagrams/s, %.0f UDP B/s, %.3f TCP streams/s, %.0f TCP B/s per member\n",
		*run, secs, udpPk, udpB, tcpS, tcpB)

	// 3. Crash members one after another (Shutdown, no Leave).
	rec.mu.Lock()
	startLeaves := len(rec.leaves)
	rec.mu.Unlock()
	if startLeaves != 0 {
		fmt.Printf("# run %d: %d NotifyLeave events before any crash\n", *run, startLeaves)
	}
	crashed := map[string]bool{}
	alive := map[int]bool{}
	for i := 0; i < *count; i++ {
		alive[i] = true
	}
	var firsts, alls []time.Duration
	for k := 0; k < *crashes; k++ {
		victim := (*count/2 + k*7) % *count // never the seed
		if victim == 0 {
			victim = 1
		}
		crashedName := name(victim)
		crashed[crashedName] = true
		delete(alive, victim)
		var live []int
		for i := range alive {
			live = append(live, i)
		}
		sort.Ints(live)
		crashAt := time.Now()
		members[victim].Shutdown()
		var first, every time.Duration = -1, -1
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			rec.mu.Lock()
			seen := map[int]time.Time{}
			for _, e := range rec.leaves {
				if e.subject == crashedName && alive[e.observer] {
					if _, ok := seen[e.observer]; !ok {
						seen[e.observer] = e.at
					}
				}
			}
			rec.mu.Unlock()
			if first < 0 && len(seen) > 0 {
				var earliest time.Time
				for _, at := range seen {
					if earliest.IsZero() || at.Before(earliest) {
						earliest = at
					}
				}
				first = earliest.Sub(crashAt)
			}
			if len(seen) == len(live) {
				var latest time.Time
				for _, at := range seen {
					if at.After(latest) {
						latest = at
					}
				}
				every = latest.Sub(crashAt)
				break
			}
		}
		fmt.Printf("# run %d: crash %d (member %d): first %.1f ms, all %d live %.1f ms\n", *run, k+1, victim, ms(first), len(live), ms(every))
		firsts = append(firsts, first)
		alls = append(alls, every)
		time.Sleep(2 * time.Second) // let the cluster settle between crashes
	}

	// 4. False positives: NotifyLeave for a member never crashed.
	time.Sleep(2 * time.Second)
	rec.mu.Lock()
	falsePositives := 0
	for _, e := range rec.leaves {
		if !crashed[e.subject] {
			falsePositives++
		}
	}
	rec.mu.Unlock()

	stat := func(ds []time.Duration) (mean, max float64) {
		for _, d := range ds {
			if d < 0 {
				return -1, -1
			}
			mean += ms(d)
			if ms(d) > max {
				max = ms(d)
			}
		}
		return mean / float64(len(ds)), max
	}
	fMean, fMax := stat(firsts)
	aMean, aMax := stat(alls)
	fmt.Printf("RESULT impl=memberlist run=%d n=%d conv_ms=%.1f detect_first_mean_ms=%.0f detect_first_max_ms=%.0f detect_all_mean_ms=%.0f detect_all_max_ms=%.0f crashes=%d false_positives=%d steady_s=%.1f udp_pkts_per_member_s=%.2f udp_bytes_per_member_s=%.0f tcp_streams_per_member_s=%.3f tcp_bytes_per_member_s=%.0f total_bytes_per_member_s=%.0f\n",
		*run, *count, ms(conv), fMean, fMax, aMean, aMax, *crashes, falsePositives, secs, udpPk, udpB, tcpS, tcpB, udpB+tcpB)
	for i := range alive {
		members[i].Shutdown()
	}
}
