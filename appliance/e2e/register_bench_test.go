package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
)

// registerLoads are the registration loads every registration benchmark
// offers, each on a fresh server: the target's rate (6,000/s offered for
// the 5,000/s target, each of the 10,000 users once), and a capacity load
// ramping from 2,000/s by 2,000/s every 2 s to 20,000/s, past what Outpost
// or Kamailio can take, going over the users again and again, at most 500
// at once (a server at capacity then queues each for well under SIPp's
// first retransmission, 500 ms, and under Outpost's 1,024 REGISTERs in
// flight).
var registerLoads = []sipLoad{
	{name: "offered-6000", scenario: "register.xml", calls: 10000, rate: 6000, limit: 5000},
	{name: "capacity", scenario: "register.xml", calls: 300000, rate: 2000, limit: 500, rampStep: 2000, rampMax: 22000},
}

// benchRegister registers the 10,000 users of account.Generate (seed 3)
// with digest authentication (REGISTER, 401, REGISTER with credentials,
// 200) on the server start gives, at each of registerLoads, and reports the
// completed registrations/s, the failures, the response time from the
// first REGISTER to the 200, the peak memory, and the memory once settled
// with 10,000 bindings.
func benchRegister(b *testing.B, start func(*testing.B, *account.Snapshot) benchServer) {
	snap := account.Generate(account.GenerateOptions{Users: 10000, Numbers: 10000, SDGs: 100, Trunks: 2, Seed: 3})
	var rows [][3]string
	for _, u := range snap.Users {
		rows = append(rows, [3]string{u.SIP.Username, account.GeneratedPassword(u.SIP.Username), snap.Account.SIPRealm})
	}
	for _, l := range registerLoads {
		b.Run(l.name, func(b *testing.B) {
			srv := start(b, snap)
			infs := splitRows(b, rows, len(srv.addrs), writeUsersCSV)
			var f loadFigures
			b.ResetTimer()
			for range b.N {
				f = runLoad(b, srv, l, infs)
			}
			b.StopTimer()
			if srv.bindings != nil {
				// Every user once, less those whose registrations failed.
				want, held := len(rows)-f.failed, 0
				eventually(b, 30*time.Second, "bindings counted", func(ctx context.Context) error {
					var err error
					if held, err = srv.bindings(ctx); err == nil && held < want {
						err = fmt.Errorf("%d registrations, want at least %d", held, want)
					}
					return err
				})
				b.ReportMetric(float64(held), "bindings")
			}
			steady := settledRSS(b, srv.rss)
			f.peakMiB = max(f.peakMiB, steady)
			f.report(b, srv, "registrations/s")
			b.ReportMetric(steady, "steady-RSS-MiB")
		})
	}
}

// BenchmarkRegister10k: benchRegister against one Outpost node.
func BenchmarkRegister10k(b *testing.B) { benchRegister(b, startOutpostNode) }

// BenchmarkClusterRegister10k: benchRegister against a 3-node cluster, one
// SIPp per node with a third of the users and of the rate: the cluster's
// aggregate rate while each node shares its registrations with the other
// two (three nodes and three SIPps on the same 2 cores). Memory is the
// largest node's.
func BenchmarkClusterRegister10k(b *testing.B) { benchRegister(b, startOutpostCluster) }

// startOutpostNode starts one node serving snap, logging at info.
func startOutpostNode(b *testing.B, snap *account.Snapshot) benchServer {
	n := startNode(b, "bench", nodeOpts{bootstrapSnapshot: writeFile(b, "account.json", encodeSnapshot(b, snap)), logLevel: "info"})
	waitRevision(b, []*node{n}, snap.Revision)
	return outpostServer(n)
}

// startOutpostCluster forms a 3-node cluster logging at info and applies snap.
func startOutpostCluster(b *testing.B, snap *account.Snapshot) benchServer {
	nodes := formClusterLogging(b, "info")
	if _, err := nodes[0].client().ApplySnapshot(context.Background(), encodeSnapshot(b, snap)); err != nil {
		b.Fatal(err)
	}
	waitRevision(b, nodes, snap.Revision)
	return outpostServer(nodes...)
}

func encodeSnapshot(b *testing.B, snap *account.Snapshot) []byte {
	doc, err := snap.Encode()
	if err != nil {
		b.Fatal(err)
	}
	return doc
}

// outpostServer is nodes under load: memory is the largest node's,
// bindings the fewest any node holds.
func outpostServer(nodes ...*node) benchServer {
	largest := func(field string) func() (float64, error) {
		return func() (float64, error) {
			var most float64
			for _, n := range nodes {
				v, err := procStatusMiB(n.cmd.Process.Pid, field)
				if err != nil {
					return 0, err
				}
				most = max(most, v)
			}
			return most, nil
		}
	}
	srv := benchServer{
		rss: largest("VmRSS"),
		hwm: largest("VmHWM"),
		bindings: func(ctx context.Context) (int, error) {
			fewest := -1
			for _, n := range nodes {
				st, err := n.status(ctx)
				if err != nil {
					return 0, err
				}
				if fewest < 0 || st.Registrations < fewest {
					fewest = st.Registrations
				}
			}
			return fewest, nil
		},
	}
	for _, n := range nodes {
		srv.addrs = append(srv.addrs, n.sipUDP)
	}
	return srv
}
