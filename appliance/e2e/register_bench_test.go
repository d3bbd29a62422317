package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
)

var (
	sippFailedRE = regexp.MustCompile(`Failed call\s+\|\s+\d+\s+\|\s+(\d+)`)
	sippRateRE   = regexp.MustCompile(`Call Rate\s+\|\s+[\d.]+ cps\s+\|\s+([\d.]+) cps`)
)

func sippFigure(t testing.TB, re *regexp.Regexp, out string) float64 {
	t.Helper()
	m := re.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("sipp output lacks %s:\n%s", re, out)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// BenchmarkRegister10k registers 10,000 distinct users with digest
// authentication (REGISTER, 401, REGISTER with credentials, 200) on one
// node from one SIPp process offering 6,000 registrations/s (above the 5,000/s target), and reports the
// rate SIPp achieved, the failures, and the node's peak RSS with 10,000
// bindings.
func BenchmarkRegister10k(b *testing.B) {
	const users = 10000
	snap := account.Generate(account.GenerateOptions{Users: users, Numbers: users, SDGs: 100, Trunks: 2, Seed: 3})
	doc, err := snap.Encode()
	if err != nil {
		b.Fatal(err)
	}
	n := startNode(b, "bench", nodeOpts{bootstrapSnapshot: writeFile(b, "account.json", doc), logLevel: "info"})
	waitRevision(b, []*node{n}, snap.Revision)
	var rows [][3]string
	for _, u := range snap.Users {
		rows = append(rows, [3]string{u.SIP.Username, account.GeneratedPassword(u.SIP.Username), snap.Account.SIPRealm})
	}
	csv := writeUsersCSV(b, rows)
	b.ResetTimer()
	var rate, failed float64
	for range b.N {
		res := runSIPp(b, "register.xml", n.sipUDP, users, 120*time.Second,
			"-inf", csv, "-r", "6000", "-l", "5000", "-buff_size", "4194304")
		if res.exit != 0 && res.exit != 1 {
			b.Fatalf("sipp: exit %d\n%s", res.exit, res.stdout)
		}
		rate = sippFigure(b, sippRateRE, res.stdout)
		failed += sippFigure(b, sippFailedRE, res.stdout)
	}
	b.StopTimer()
	eventually(b, 30*time.Second, "bindings counted", func(ctx context.Context) error {
		st, err := n.status(ctx)
		if err == nil && st.Registrations != users {
			err = fmt.Errorf("%d registrations", st.Registrations)
		}
		return err
	})
	rss, err := peakRSS(n.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(rate, "registrations/s")
	b.ReportMetric(100*failed/float64(users*b.N), "%failed")
	b.ReportMetric(rss, "peak-RSS-MiB")
}
