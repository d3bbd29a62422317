package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
)

// peakRSS reads a process's peak resident set (VmHWM) in MiB.
func peakRSS(pid int) (float64, error) { return procStatusMiB(pid, "VmHWM") }

// BenchmarkSnapshotApply10k applies a 10,000-user / 20,000-number / 1,000-SDG
// account to a 3-node cluster of real outpost processes: from the POST to a
// follower until all three serve the new revision. It reports the peak RSS
// of the largest node.
func BenchmarkSnapshotApply10k(b *testing.B) {
	snap := account.Generate(account.GenerateOptions{Users: 10000, Numbers: 20000, SDGs: 1000, Trunks: 8, Seed: 1})
	nodes := formCluster(b)
	ctx := context.Background()
	l, err := leaderOf(ctx, nodes)
	if err != nil {
		b.Fatal(err)
	}
	target := others(nodes, l)[0]
	docs := make([][]byte, b.N)
	for i := range docs {
		snap.Revision = int64(i + 1)
		if docs[i], err = snap.Encode(); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(docs[0])))
	b.ResetTimer()
	for i := range b.N {
		rev, err := target.client().ApplySnapshot(ctx, docs[i])
		if err != nil || rev != int64(i+1) {
			b.Fatalf("apply revision %d: got %d, %v", i+1, rev, err)
		}
		for _, n := range nodes {
			for {
				st, err := n.status(ctx)
				if err == nil && st.Revision == rev {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	b.StopTimer()
	var peak float64
	for _, n := range nodes {
		rss, err := peakRSS(n.cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("%s: peak RSS %.1f MiB", n.id, rss)
		peak = max(peak, rss)
	}
	b.ReportMetric(peak, "peak-RSS-MiB")
	b.ReportMetric(float64(len(docs[0]))/(1<<20), "doc-MiB")
}
