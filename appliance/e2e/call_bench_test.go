package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
)

// callLoads are the call loads every call benchmark offers, each on a
// fresh server: past the target's rate (1,100/s for 10 s), and a capacity
// load ramping from 500/s by 500/s every 2 s to 6,000/s, past what Outpost
// or Kamailio can take, at most 4,000 calls at once (each is held 0.5 s,
// so that is room for 6,000/s).
var callLoads = []sipLoad{
	{name: "offered-1100", scenario: "uac-auth.xml", calls: 11000, rate: 1100, limit: 2000},
	{name: "capacity", scenario: "uac-auth.xml", calls: 200000, rate: 500, limit: 4000, rampStep: 500, rampMax: 6500},
}

// benchCalls has SIPp place calls with digest authentication (INVITE, 407,
// ACK, INVITE with credentials, 180, 200, ACK, 0.5 s, BYE) from alice of
// the demo account to bob's extension, through the server start gives, to
// a second SIPp registered as bob that answers every call (uas.xml), at
// each of callLoads. Callers send to the server's first address, bob
// registers at its last: through two nodes of a cluster. It reports the
// completed calls/s, the failures, the response time from the first INVITE
// to the 200, and the peak memory.
func benchCalls(b *testing.B, start func(*testing.B, *account.Snapshot) benchServer) {
	demo, err := account.DecodeBytes(demoSnapshot(b))
	if err != nil {
		b.Fatal(err)
	}
	realm := demo.Account.SIPRealm
	bob, err := demoUser(demo, "bob")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range callLoads {
		b.Run(l.name, func(b *testing.B) {
			srv := start(b, demo)
			callee := srv.addrs[len(srv.addrs)-1]
			srv.addrs = srv.addrs[:1]
			port := freeUDPPort(b)
			reg := runSIPp(b, "register.xml", callee, 1, 20*time.Second,
				"-inf", writeUsersCSV(b, [][3]string{{"bob", "pw-bob", realm}}), "-p", fmt.Sprint(port))
			if reg.exit != 0 {
				b.Fatalf("register bob: exit %d\n%s", reg.exit, reg.stdout)
			}
			if srv.bindings != nil {
				eventually(b, 15*time.Second, "bob's binding on every node", func(ctx context.Context) error {
					n, err := srv.bindings(ctx)
					if err == nil && n != 1 {
						err = fmt.Errorf("%d registrations", n)
					}
					return err
				})
			}
			startUAS(b, callee, port, 0, "-sf", scenarioPath(b, "uas.xml")) // answers until the benchmark ends
			waitBound(b, port)
			callers := writeCallersCSV(b, [][4]string{{"alice", "pw-alice", realm, bob.Extension}})
			var f loadFigures
			b.ResetTimer()
			for range b.N {
				f = runLoad(b, srv, l, []string{callers})
			}
			b.StopTimer()
			f.report(b, srv, "calls/s")
		})
	}
}

// BenchmarkCalls: benchCalls through one Outpost node.
func BenchmarkCalls(b *testing.B) { benchCalls(b, startOutpostNode) }

// BenchmarkClusterCalls: benchCalls from a phone on n1 to one on n3 of a
// 3-node cluster: every call goes node to node. Memory is the largest node's.
func BenchmarkClusterCalls(b *testing.B) { benchCalls(b, startOutpostCluster) }

func demoUser(s *account.Snapshot, username string) (account.User, error) {
	for _, u := range s.Users {
		if u.SIP.Username == username {
			return u, nil
		}
	}
	return account.User{}, fmt.Errorf("no user %s in the demo account", username)
}
