package e2e

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkCalls has one SIPp place calls with digest authentication
// (INVITE, 407, ACK, INVITE with credentials, 180, 200, ACK, BYE) through
// one node to a second SIPp answering every call, and reports the call rate
// SIPp achieved, the failures and the node's peak RSS.
func BenchmarkCalls(b *testing.B) {
	const calls = 5000
	n := startNode(b, "cbench", nodeOpts{bootstrapSnapshot: writeFile(b, "demo.json", demoSnapshot(b)), logLevel: "info"})
	waitRevision(b, []*node{n}, 1)
	port := freeUDPPort(b)
	reg := runSIPp(b, "register.xml", n.sipUDP, 1, 20*time.Second,
		"-inf", writeUsersCSV(b, [][3]string{{"bob", "pw-bob", "acme.example"}}), "-p", fmt.Sprint(port))
	if reg.exit != 0 {
		b.Fatalf("register bob: exit %d\n%s", reg.exit, reg.stdout)
	}
	callers := writeCallersCSV(b, [][4]string{{"alice", "pw-alice", "acme.example", "1002"}})
	startSIPpUAS(b, n, port, 0) // answers every call until the benchmark ends
	b.ResetTimer()
	var rate, failed float64
	for range b.N {
		res := runSIPp(b, "uac-auth.xml", n.sipUDP, calls, 120*time.Second,
			"-inf", callers, "-r", "1000", "-l", "2000", "-buff_size", "4194304")
		if res.exit != 0 && res.exit != 1 {
			b.Fatalf("sipp uac: exit %d\n%s", res.exit, res.stdout)
		}
		rate = sippFigure(b, sippRateRE, res.stdout)
		failed += sippFigure(b, sippFailedRE, res.stdout)
	}
	b.StopTimer()
	rss, err := peakRSS(n.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(rate, "calls/s")
	b.ReportMetric(100*failed/float64(calls*b.N), "%failed")
	b.ReportMetric(rss, "peak-RSS-MiB")
}
