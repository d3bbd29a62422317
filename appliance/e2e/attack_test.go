package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The attack suite (issue 11): floods, connections, scanners, digest
// attacks, toll fraud, parsers, web and sync, TLS, each against a real
// node. docs/reliability.md has the table of what each test shows, with
// the figures measured; `make attack` runs them all.
//
// Tests, or parts of them, that take long run only with
// OUTPOST_ATTACK_FULL=1 (`make attack` sets it); `make e2e` runs the rest.

// attackFull reports whether the slow parts of the attack suite run.
func attackFull() bool { return os.Getenv("OUTPOST_ATTACK_FULL") == "1" }

// metrics reads the node's /metrics and returns a reader of one sample:
// name with its labels as written, e.g. `outpost_sip_guard_bans_total` or
// `outpost_sip_guard_messages_total{verdict="banned"}`. A missing sample
// is 0.
func metrics(t testing.TB, n *node) func(sample string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + n.httpAddr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	values := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			values[line[:i]] = v
		}
	}
	return func(sample string) float64 { return values[sample] }
}

// waitLogLine waits until the node logged a line containing every one of
// parts and returns the time it carries.
func waitLogLine(t testing.TB, n *node, within time.Duration, parts ...string) time.Time {
	t.Helper()
	var at time.Time
	eventually(t, within, "log line "+strings.Join(parts, " … "), func(context.Context) error {
		for _, line := range strings.Split(n.log(), "\n") {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(line, p)
			}
			if !ok {
				continue
			}
			m := logTimeRE.FindStringSubmatch(line)
			if m == nil {
				return fmt.Errorf("no time in %q", line)
			}
			var err error
			at, err = time.Parse(time.RFC3339Nano, m[1])
			return err
		}
		return fmt.Errorf("not logged yet")
	})
	return at
}

// udpProbe sends one hand-written OPTIONS from a fresh socket on src and
// returns the final answer's status, 0 when none came within wait.
func udpProbe(t testing.TB, src, target string, wait time.Duration) int {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp4", target)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(src)})
	if err != nil {
		t.Fatalf("bind %s: %v", src, err)
	}
	defer conn.Close()
	id := fmt.Sprintf("%d", time.Now().UnixNano())
	callID := "probe-" + id + "@" + src
	msg := "OPTIONS sip:" + target + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + conn.LocalAddr().String() + ";branch=z9hG4bK-p" + id + ";rport\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:probe@" + src + ">;tag=p" + id + "\r\n" +
		"To: <sip:" + target + ">\r\n" +
		"Call-ID: " + callID + "\r\n" +
		"CSeq: 1 OPTIONS\r\n" +
		"Content-Length: 0\r\n\r\n"
	if _, err := conn.WriteToUDP([]byte(msg), raddr); err != nil {
		t.Fatal(err)
	}
	return readAnswer(conn, []string{callID}, time.Now().Add(wait)).final
}

// sippPeriod is one line of SIPp's statistics file (-trace_stat -fd 1).
type sippPeriod struct {
	at        time.Time // end of the period
	succeeded int       // calls that succeeded in the period
	failed    int
	created   int // calls created so far
}

// sippPeriods reads SIPp's statistics CSV.
func sippPeriods(t testing.TB, csv string) []sippPeriod {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(csv), "\n")
	if len(lines) < 2 {
		t.Fatalf("SIPp statistics hold no period:\n%s", csv)
	}
	col := map[string]int{}
	for i, h := range strings.Split(lines[0], ";") {
		col[h] = i
	}
	num := func(f []string, name string) int {
		i, ok := col[name]
		if !ok || i >= len(f) {
			t.Fatalf("SIPp statistics lack %s", name)
		}
		v, _ := strconv.Atoi(f[i])
		return v
	}
	var out []sippPeriod
	for _, l := range lines[1:] {
		f := strings.Split(l, ";")
		// CurrentTime is "date<TAB>time<TAB>unix.micros".
		cur := strings.Split(f[col["CurrentTime"]], "\t")
		sec, err := strconv.ParseFloat(cur[len(cur)-1], 64)
		if err != nil {
			t.Fatalf("SIPp statistics: time %q: %v", f[col["CurrentTime"]], err)
		}
		out = append(out, sippPeriod{
			at:        time.Unix(0, int64(sec*1e9)),
			succeeded: num(f, "SuccessfulCall(P)"),
			failed:    num(f, "FailedCall(P)"),
			created:   num(f, "TotalCallCreated"),
		})
	}
	return out
}
