// etcd raft (go.etcd.io/etcd/raft, Debian golang-etcd-server-dev) in the
// harness shape of Chorus's DirectRaftGroup: three RawNodes of one group
// with MemoryStorage, in one process and one goroutine, no sockets, no
// timers; every message marshalled (raftpb.Message.MarshalTo) into the
// destination's inbox buffer and unmarshalled before Step, as Chorus
// encodes every message as its UDP frame.
//
// The pump runs in rounds: every node that has a Ready performs it (append
// entries + hard state to MemoryStorage, marshal messages into inboxes,
// apply committed entries - counted on the leader -, Advance); then every
// frame in flight is unmarshalled and stepped into its destination.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"os"
	"runtime"
	"runtime/pprof"
	"encoding/binary"
	"sort"
	"time"

	"go.etcd.io/etcd/raft"
	pb "go.etcd.io/etcd/raft/raftpb"
)

type inbox struct {
	buf  []byte
	ends []int
}

type outcome struct {
	commits                int
	seconds                float64
	leaderPersists         int
	leaderEntriesPersisted int
	persists               int
	frames, frameBytes     int
	rounds                 int
	latencies              []int64
}

type group struct {
	nodes         [3]*raft.RawNode
	storages      [3]*raft.MemoryStorage
	applied       [3]uint64 // last applied index per node (for compaction)
	inboxes       [3]inbox
	spare         inbox
	commands      [][]byte
	nextCommand   int
	leaderApplied int
	out           outcome
	compact       bool
	// ReadIndex reads: asked since the last ReadIndex call, each call's
	// reads by its context, and those the leader confirmed.
	readsAsked     int
	readBatches    map[uint64]int
	lastReadCtx    uint64
	readsConfirmed int
}

func newGroup(commandSize int, compact bool) *group {
	g := &group{compact: compact, readBatches: map[uint64]int{}}
	logger := &raft.DefaultLogger{Logger: log.New(ioutil.Discard, "", 0)}
	for i := 0; i < 3; i++ {
		ms := raft.NewMemoryStorage()
		// The group's membership, as etcd's own tests and benchmarks give it.
		if err := ms.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{
			Index: 1, Term: 1, ConfState: pb.ConfState{Voters: []uint64{1, 2, 3}}}}); err != nil {
			panic(err)
		}
		// Chorus's RaftConfiguration defaults where etcd has the knob.
		c := &raft.Config{
			ID:                        uint64(i + 1),
			ElectionTick:              10,
			HeartbeatTick:             1,
			Storage:                   ms,
			MaxSizePerMsg:             64 << 10, // maximumAppendBytes
			MaxInflightMsgs:           256,      // maximumInflightMessages
			MaxUncommittedEntriesSize: 16 << 20, // maximumUncommittedBytes
			PreVote:                   true,
			CheckQuorum:               true,
			Logger:                    logger,
		}
		rn, err := raft.NewRawNode(c)
		if err != nil {
			panic(err)
		}
		g.nodes[i] = rn
		g.storages[i] = ms
		g.applied[i] = 1
		g.inboxes[i].buf = make([]byte, 0, 1<<16)
	}
	g.spare.buf = make([]byte, 0, 1<<16)
	g.commands = make([][]byte, 1024)
	for n := range g.commands {
		c := make([]byte, commandSize)
		for j := range c {
			c[j] = 0x2A
		}
		copy(c, fmt.Sprintf("key-%04d", n))
		g.commands[n] = c
	}
	return g
}

func (g *group) elect() error {
	if err := g.nodes[0].Campaign(); err != nil {
		return err
	}
	g.pumpUntilIdle()
	st := g.nodes[0].Status()
	if st.RaftState != raft.StateLeader || st.Commit != lastIndex(g.storages[0]) {
		return fmt.Errorf("node 1 did not become leader: %v commit %d", st.RaftState, st.Commit)
	}
	g.out = outcome{}
	return nil
}

func (g *group) propose() {
	c := g.commands[g.nextCommand]
	g.nextCommand = (g.nextCommand + 1) & 1023
	if err := g.nodes[0].Propose(c); err != nil {
		panic(fmt.Sprintf("proposal refused: %v", err))
	}
}

func (g *group) pumpUntilIdle() {
	for g.round(-1) {
	}
}

// round: every node performs its Ready, then every frame is delivered.
// With target >= 0 it stops right after the Ready in which the leader
// applied its target-th command.
func (g *group) round(target int) bool {
	busy := false
	for i := 0; i < 3; i++ {
		if g.nodes[i].HasReady() {
			g.perform(i)
			busy = true
			if target >= 0 && g.leaderApplied >= target {
				g.out.rounds++
				return true
			}
		}
	}
	for i := 0; i < 3; i++ {
		if len(g.inboxes[i].ends) > 0 {
			g.deliver(i)
			busy = true
		}
	}
	if busy {
		g.out.rounds++
	}
	return busy
}

func (g *group) perform(i int) {
	rn := g.nodes[i]
	rd := rn.Ready()
	ms := g.storages[i]
	if !raft.IsEmptyHardState(rd.HardState) || len(rd.Entries) > 0 {
		if !raft.IsEmptyHardState(rd.HardState) {
			if err := ms.SetHardState(rd.HardState); err != nil {
				panic(err)
			}
		}
		if len(rd.Entries) > 0 {
			if err := ms.Append(rd.Entries); err != nil {
				panic(err)
			}
		}
		g.out.persists++
		if i == 0 {
			g.out.leaderPersists++
			g.out.leaderEntriesPersisted += len(rd.Entries)
		}
	}
	for k := range rd.Messages {
		m := &rd.Messages[k]
		d := int(m.To) - 1
		ib := &g.inboxes[d]
		n := m.Size()
		start := len(ib.buf)
		if cap(ib.buf)-start < n {
			nb := make([]byte, start, 2*cap(ib.buf)+n)
			copy(nb, ib.buf)
			ib.buf = nb
		}
		ib.buf = ib.buf[:start+n]
		if _, err := m.MarshalTo(ib.buf[start:]); err != nil {
			panic(err)
		}
		ib.ends = append(ib.ends, start+n)
		g.out.frames++
		g.out.frameBytes += n
	}
	for k := range rd.CommittedEntries {
		e := &rd.CommittedEntries[k]
		if e.Type == pb.EntryNormal && len(e.Data) > 0 && i == 0 {
			g.leaderApplied++
		}
		g.applied[i] = e.Index
	}
	if i == 0 {
		for _, rs := range rd.ReadStates {
			ctx := binary.LittleEndian.Uint64(rs.RequestCtx)
			g.readsConfirmed += g.readBatches[ctx]
			delete(g.readBatches, ctx)
		}
	}
	rn.Advance(rd)
	// Chorus's snapshotInterval / entriesKeptAfterSnapshot (10,000 / 1,000):
	// keep MemoryStorage from growing without bound.
	if g.compact && len(rd.CommittedEntries) > 0 {
		first, _ := ms.FirstIndex()
		if g.applied[i] >= first+11000 {
			if err := ms.Compact(g.applied[i] - 1000); err != nil {
				panic(err)
			}
		}
	}
}

func (g *group) deliver(i int) {
	g.inboxes[i], g.spare = g.spare, g.inboxes[i]
	start := 0
	for _, end := range g.spare.ends {
		var m pb.Message
		if err := m.Unmarshal(g.spare.buf[start:end]); err != nil {
			panic(err)
		}
		start = end
		if err := g.nodes[i].Step(m); err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) {
			panic(err)
		}
	}
	g.spare.buf = g.spare.buf[:0]
	g.spare.ends = g.spare.ends[:0]
}

func (g *group) runClosedLoop(inFlight, commits int) outcome {
	started := time.Now()
	target := g.leaderApplied + commits
	proposed := g.leaderApplied
	for g.leaderApplied < target {
		for proposed-g.leaderApplied < inFlight && proposed < target {
			g.propose()
			proposed++
		}
		if !g.round(-1) {
			panic("the group went idle with proposals outstanding")
		}
	}
	g.pumpUntilIdle()
	g.out.seconds = time.Since(started).Seconds()
	g.out.commits = commits
	return g.out
}

// runReads keeps inFlight ReadIndex reads outstanding on the leader until
// reads have been confirmed. As etcd's server batches its linearizable
// reads (and as Chorus's RaftNode shares one round among the reads of a
// loop turn), the reads asked before a round share one ReadIndex call.
func (g *group) runReads(inFlight, reads int) outcome {
	started := time.Now()
	target := g.readsConfirmed + reads
	asked := g.readsConfirmed
	for g.readsConfirmed < target {
		for asked-g.readsConfirmed < inFlight && asked < target {
			asked++
			g.readsAsked++
		}
		if g.readsAsked > 0 {
			g.lastReadCtx++
			g.readBatches[g.lastReadCtx] = g.readsAsked
			g.readsAsked = 0
			ctx := make([]byte, 8)
			binary.LittleEndian.PutUint64(ctx, g.lastReadCtx)
			g.nodes[0].ReadIndex(ctx)
		}
		if !g.round(-1) {
			panic("the group went idle with reads outstanding")
		}
	}
	g.pumpUntilIdle()
	g.out.seconds = time.Since(started).Seconds()
	g.out.commits = reads
	return g.out
}

func (g *group) runSequential(commits int) outcome {
	g.out.latencies = make([]int64, 0, commits)
	started := time.Now()
	for c := 0; c < commits; c++ {
		target := g.leaderApplied + 1
		began := time.Now()
		g.propose()
		for g.leaderApplied < target {
			if !g.round(target) {
				panic("the group went idle with a proposal outstanding")
			}
		}
		g.out.latencies = append(g.out.latencies, int64(time.Since(began)))
		g.pumpUntilIdle()
	}
	g.out.seconds = time.Since(started).Seconds()
	g.out.commits = commits
	sort.Slice(g.out.latencies, func(a, b int) bool { return g.out.latencies[a] < g.out.latencies[b] })
	return g.out
}

func lastIndex(ms *raft.MemoryStorage) uint64 {
	li, err := ms.LastIndex()
	if err != nil {
		panic(err)
	}
	return li
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
	reads := flag.Int("reads", 200000, "ReadIndex reads per 64-outstanding read run")
	compact := flag.Bool("compact", false, "compact MemoryStorage every 10,000 applied entries, keeping 1,000 (what RaftNode does; DirectRaftGroup does not)")
	only := flag.String("only", "", "run only this workload: pipelined, sequential, concurrent64, reads64")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			panic(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			panic(err)
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Printf("# etcd raft (go.etcd.io/etcd/raft, Debian golang-etcd-server-dev) %s GOMAXPROCS=%d runs=%d+1 warm-up\n",
		runtime.Version(), runtime.GOMAXPROCS(0), *runs)

	type workload struct {
		name string
		run  func(g *group) outcome
	}
	workloads := []workload{
		{"pipelined", func(g *group) outcome { return g.runClosedLoop(1000, *pipelined) }},
		{"sequential", func(g *group) outcome { return g.runSequential(*sequential) }},
		{"concurrent64", func(g *group) outcome { return g.runClosedLoop(64, *concurrent) }},
		{"reads64", func(g *group) outcome { return g.runReads(64, *reads) }},
	}
	for _, w := range workloads {
		if *only != "" && *only != w.name {
			continue
		}
		var lps, cps, p50, p90, p99, epp, fpc, rpc []float64
		for r := 0; r <= *runs; r++ {
			g := newGroup(64, *compact)
			if err := g.elect(); err != nil {
				panic(err)
			}
			runtime.GC()
			o := w.run(g)
			c := float64(o.commits)
			line := fmt.Sprintf("# %s run %d: %.0f commits/s, %.2f entries/leader-persist, %.2f frames/commit, %.4f rounds/commit, %.0f leader-persists/s",
				w.name, r, c/o.seconds, float64(o.leaderEntriesPersisted)/float64(max1(o.leaderPersists)),
				float64(o.frames)/c, float64(o.rounds)/c, float64(o.leaderPersists)/o.seconds)
			if len(o.latencies) > 0 {
				line += fmt.Sprintf(", p50 %d ns p90 %d ns p99 %d ns", pct(o.latencies, 50), pct(o.latencies, 90), pct(o.latencies, 99))
			}
			if r == 0 {
				fmt.Println(line + " (warm-up, not counted)")
				continue
			}
			fmt.Println(line)
			cps = append(cps, c/o.seconds)
			lps = append(lps, float64(o.leaderPersists)/o.seconds)
			epp = append(epp, float64(o.leaderEntriesPersisted)/float64(max1(o.leaderPersists)))
			fpc = append(fpc, float64(o.frames)/c)
			rpc = append(rpc, float64(o.rounds)/c)
			if len(o.latencies) > 0 {
				p50 = append(p50, float64(pct(o.latencies, 50)))
				p90 = append(p90, float64(pct(o.latencies, 90)))
				p99 = append(p99, float64(pct(o.latencies, 99)))
			}
		}
		fmt.Printf("etcd-raft %s commits/s %.0f\n", w.name, median(cps))
		fmt.Printf("etcd-raft %s entries/leader-persist %.2f\n", w.name, median(epp))
		fmt.Printf("etcd-raft %s frames/commit %.2f\n", w.name, median(fpc))
		fmt.Printf("etcd-raft %s rounds/commit %.4f\n", w.name, median(rpc))
		fmt.Printf("etcd-raft %s leader-persists/s %.0f\n", w.name, median(lps))
		if len(p50) > 0 {
			fmt.Printf("etcd-raft %s p50-ns %.0f\n", w.name, median(p50))
			fmt.Printf("etcd-raft %s p90-ns %.0f\n", w.name, median(p90))
			fmt.Printf("etcd-raft %s p99-ns %.0f\n", w.name, median(p99))
		}
	}
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}
