// hashicorp/raft (Debian golang-github-hashicorp-raft-dev) with three nodes
// in one process: InmemTransport (connected pairwise), InmemStore for logs
// and stable state, InmemSnapshotStore, a counting FSM. Unlike Chorus's
// DirectRaftGroup and the etcd harness this is goroutine-based (each node
// runs its own goroutines; the transport hands RPC structs over channels
// without serializing them) and it is driven through the public API only:
// Apply futures.
package main

import (
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"runtime"
	"sort"
	"sync/atomic"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

type countingFSM struct{ applied uint64 }

func (f *countingFSM) Apply(l *raft.Log) interface{} {
	atomic.AddUint64(&f.applied, 1)
	return nil
}

type snap struct{ n uint64 }

func (s snap) Persist(sink raft.SnapshotSink) error {
	_, err := fmt.Fprintf(sink, "%d", s.n)
	if err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}
func (s snap) Release() {}

func (f *countingFSM) Snapshot() (raft.FSMSnapshot, error) {
	return snap{atomic.LoadUint64(&f.applied)}, nil
}
func (f *countingFSM) Restore(r io.ReadCloser) error { return r.Close() }

type cluster struct {
	nodes  [3]*raft.Raft
	trans  [3]*raft.InmemTransport
	leader *raft.Raft
}

func newCluster() *cluster {
	c := &cluster{}
	var addrs [3]raft.ServerAddress
	for i := 0; i < 3; i++ {
		addrs[i], c.trans[i] = raft.NewInmemTransport(raft.ServerAddress(fmt.Sprintf("node%d", i+1)))
	}
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			if i != j {
				c.trans[i].Connect(addrs[j], c.trans[j])
			}
		}
	}
	servers := make([]raft.Server, 3)
	for i := range servers {
		servers[i] = raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(fmt.Sprintf("%d", i+1)), Address: addrs[i]}
	}
	for i := 0; i < 3; i++ {
		conf := raft.DefaultConfig()
		conf.LocalID = servers[i].ID
		// hashicorp/raft's defaults (1 s heartbeat and election timeouts,
		// 500 ms lease): with 100 ms, a busy shared machine made the leader
		// lose its lease mid-run ("leadership lost while committing log").
		conf.Logger = hclog.New(&hclog.LoggerOptions{Output: ioutil.Discard, Level: hclog.Error})
		logs := raft.NewInmemStore()
		snaps := raft.NewInmemSnapshotStore()
		if i == 0 {
			// Only node 1 knows the configuration, so node 1 is elected.
			if err := raft.BootstrapCluster(conf, logs, logs, snaps, c.trans[i], raft.Configuration{Servers: servers}); err != nil {
				panic(err)
			}
		}
		r, err := raft.NewRaft(conf, &countingFSM{}, logs, logs, snaps, c.trans[i])
		if err != nil {
			panic(err)
		}
		c.nodes[i] = r
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.nodes[0].State() != raft.Leader {
		if time.Now().After(deadline) {
			panic("node 1 not elected")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.nodes[0].Barrier(0).Error(); err != nil {
		panic(err)
	}
	c.leader = c.nodes[0]
	return c
}

// shutdown disconnects the transports first (closing their pipelines), then
// shuts the nodes down in parallel. Shutting the leader down first can leave
// a follower blocked forever responding on a pipeline nobody reads any more
// (seen with InmemTransport in 1.1.2); a node still stuck after 5 s is
// abandoned and reported.
func (c *cluster) shutdown() {
	for _, t := range c.trans {
		t.DisconnectAll()
	}
	done := make(chan struct{}, 3)
	for _, n := range c.nodes {
		go func(n *raft.Raft) { n.Shutdown().Error(); done <- struct{}{} }(n)
	}
	timeout := time.After(5 * time.Second)
	for k := 0; k < 3; k++ {
		select {
		case <-done:
		case <-timeout:
			fmt.Printf("# warning: %d node(s) did not shut down within 5 s (abandoned)\n", 3-k)
			return
		}
	}
	for _, t := range c.trans {
		t.Close()
	}
}

func commands(size int) [][]byte {
	cs := make([][]byte, 1024)
	for n := range cs {
		b := make([]byte, size)
		for j := range b {
			b[j] = 0x2A
		}
		copy(b, fmt.Sprintf("key-%04d", n))
		cs[n] = b
	}
	return cs
}

func (c *cluster) closedLoop(inFlight, commits int, cs [][]byte) float64 {
	futures := make([]raft.ApplyFuture, inFlight)
	started := time.Now()
	for i := 0; i < commits; i++ {
		k := i % inFlight
		if futures[k] != nil {
			if err := futures[k].Error(); err != nil {
				panic(err)
			}
		}
		futures[k] = c.leader.Apply(cs[i&1023], 0)
	}
	for _, f := range futures {
		if f != nil {
			if err := f.Error(); err != nil {
				panic(err)
			}
		}
	}
	return float64(commits) / time.Since(started).Seconds()
}

func (c *cluster) sequential(commits int, cs [][]byte) (float64, []int64) {
	lat := make([]int64, 0, commits)
	started := time.Now()
	for i := 0; i < commits; i++ {
		b := time.Now()
		if err := c.leader.Apply(cs[i&1023], 0).Error(); err != nil {
			panic(err)
		}
		lat = append(lat, int64(time.Since(b)))
	}
	s := time.Since(started).Seconds()
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	return float64(commits) / s, lat
}

func pct(l []int64, p int) int64 {
	if len(l) == 0 {
		return 0
	}
	return l[(len(l)-1)*p/100]
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func main() {
	runs := flag.Int("runs", 5, "measured runs per workload (after one warm-up)")
	pipelined := flag.Int("pipelined", 200000, "commits per pipelined run")
	sequential := flag.Int("sequential", 20000, "commits per sequential run")
	concurrent := flag.Int("concurrent", 100000, "commits per 64-outstanding run")
	only := flag.String("only", "", "run only this workload: pipelined, sequential, concurrent64")
	flag.Parse()
	fmt.Printf("# hashicorp/raft (Debian golang-github-hashicorp-raft-dev) %s GOMAXPROCS=%d runs=%d+1 warm-up\n",
		runtime.Version(), runtime.GOMAXPROCS(0), *runs)
	cs := commands(64)
	type workload struct {
		name     string
		inFlight int
		commits  int
	}
	for _, w := range []workload{{"pipelined", 1000, *pipelined}, {"sequential", 1, *sequential}, {"concurrent64", 64, *concurrent}} {
		if *only != "" && *only != w.name {
			continue
		}
		var cps, p50, p90, p99 []float64
		for r := 0; r <= *runs; r++ {
			c := newCluster()
			runtime.GC()
			var rate float64
			line := ""
			if w.inFlight == 1 {
				var lat []int64
				rate, lat = c.sequential(w.commits, cs)
				line = fmt.Sprintf("# %s run %d: %.0f commits/s, p50 %d ns p90 %d ns p99 %d ns", w.name, r, rate,
					pct(lat, 50), pct(lat, 90), pct(lat, 99))
				if r > 0 {
					p50 = append(p50, float64(pct(lat, 50)))
					p90 = append(p90, float64(pct(lat, 90)))
					p99 = append(p99, float64(pct(lat, 99)))
				}
			} else {
				rate = c.closedLoop(w.inFlight, w.commits, cs)
				line = fmt.Sprintf("# %s run %d: %.0f commits/s", w.name, r, rate)
			}
			c.shutdown()
			if r == 0 {
				fmt.Println(line + " (warm-up, not counted)")
				continue
			}
			fmt.Println(line)
			cps = append(cps, rate)
		}
		fmt.Printf("hashicorp-raft %s commits/s %.0f\n", w.name, median(cps))
		if len(p50) > 0 {
			fmt.Printf("hashicorp-raft %s p50-ns %.0f\n", w.name, median(p50))
			fmt.Printf("hashicorp-raft %s p90-ns %.0f\n", w.name, median(p90))
			fmt.Printf("hashicorp-raft %s p99-ns %.0f\n", w.name, median(p99))
		}
	}
}
