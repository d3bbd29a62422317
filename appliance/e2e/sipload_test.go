package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The load benchmarks (registrations and calls, against Outpost and against
// Kamailio) share what is here: a server under load, one SIPp load at an
// offered rate, and the figures both report under the same names.

// benchServer is a SIP server under load: one Outpost node, a cluster of
// three, or Kamailio.
type benchServer struct {
	// addrs are the SIP UDP addresses a load goes to, split evenly.
	addrs []string
	// rss is the resident memory now, in MiB (the largest node's VmRSS;
	// Kamailio's PSS summed over its processes).
	rss func() (float64, error)
	// hwm is the peak resident memory, in MiB (the largest node's VmHWM);
	// nil: the largest rss sampled while the load ran.
	hwm func() (float64, error)
	// bindings is the number of registrations the server holds (the
	// fewest of any node); nil when it does not tell.
	bindings func(ctx context.Context) (int, error)
}

// sipLoad is one SIPp load: a scenario from testdata/sipp made calls times
// at rate calls/s offered, at most limit at once. Against several addresses
// one SIPp runs per address with an even share of each.
//
// With rampStep set it is a capacity load: the offered rate starts at rate
// and grows by rampStep every rampPeriod seconds; SIPp stops once it would
// offer rampMax (or has made calls calls). Its rate is that of the best
// period: see bestPeriodRate.
type sipLoad struct {
	name     string // sub-benchmark name
	scenario string
	calls    int
	rate     int
	limit    int
	rampStep int
	rampMax  int
}

// rampPeriod is the length of each step of a capacity load, in seconds.
const rampPeriod = 2

// loadFigures is what a load did.
type loadFigures struct {
	rate     float64 // completed per second: see completedRate
	failed   int     // calls that failed or never finished
	calls    int     // calls offered
	p50, p99 float64 // response time (SIPp's rtd), ms
	peakMiB  float64
}

var (
	sippCreatedRE = regexp.MustCompile(`Outgoing calls created\s+\|\s+\d+\s+\|\s+(\d+)`)
	sippSuccessRE = regexp.MustCompile(`Successful call\s+\|\s+\d+\s+\|\s+(\d+)`)
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

// sippSummary picks from SIPp's final screens what a benchmark log shows.
func sippSummary(out string) string {
	var picked []string
	for _, line := range strings.Split(out, "\n") {
		for _, key := range []string{"Peak was", "Outgoing calls created", "Successful call", "Failed call"} {
			if strings.Contains(line, key) {
				picked = append(picked, strings.Join(strings.Fields(line), " "))
			}
		}
	}
	// The statistics screen is printed twice or more; the last is final.
	return strings.Join(picked[max(0, len(picked)-4):], "; ")
}

// rttFreq is how many response times SIPp gathers before writing them out
// (-rtt_freq); those of the last incomplete batch are not written.
const rttFreq = 100

// runLoad offers l to srv, infs[i] being the injection file of the SIPp
// sending to srv.addrs[i], and returns what SIPp measured (and, when srv
// has no hwm, the largest memory sampled meanwhile). SIPp gets 4 MiB socket
// buffers, as the servers have, and fails a call that waits 32 s for a
// message (SIP's timer B: a server that sends 100 Trying and then nothing
// would otherwise hold the call, and SIPp, until its overall timeout).
func runLoad(b *testing.B, srv benchServer, l sipLoad, infs []string) loadFigures {
	b.Helper()
	n := len(srv.addrs)
	if len(infs) != n {
		b.Fatalf("%d injection files for %d addresses", len(infs), n)
	}
	stopSampling := sampleMemory(srv)
	runs := make([]*sippRun, n)
	for i, addr := range srv.addrs {
		args := []string{"-inf", infs[i], "-r", fmt.Sprint(l.rate / n), "-l", fmt.Sprint(max(l.limit/n, 1)),
			"-buff_size", "4194304", "-recv_timeout", "32000", "-trace_rtt", "-rtt_freq", fmt.Sprint(rttFreq)}
		if l.rampStep > 0 {
			// -fd also sets the statistics period (after runSIPp's own -fd).
			args = append(args, "-rate_increase", fmt.Sprint(l.rampStep/n), "-rate_max", fmt.Sprint(l.rampMax/n),
				"-fd", fmt.Sprint(rampPeriod))
		}
		runs[i] = startSIPp(b, l.scenario, addr, share(l.calls, n, i), 120*time.Second, args...)
	}
	var f loadFigures
	var rtts []float64
	for i, r := range runs {
		res, err := r.wait()
		if err != nil {
			b.Fatal(err)
		}
		// Exit 1: some calls failed; 255 can be SIPp's overall timeout with
		// calls unfinished. Both are counted below as failures; a SIPp that
		// did nothing fails the benchmark.
		b.Logf("sipp %s to %s: exit %d; %s", l.scenario, srv.addrs[i], res.exit, sippSummary(res.stdout))
		created, succeeded := sippFigure(b, sippCreatedRE, res.stdout), sippFigure(b, sippSuccessRE, res.stdout)
		if succeeded == 0 {
			b.Fatalf("sipp %s: exit %d, no call succeeded\n%s", l.scenario, res.exit, res.stdout)
		}
		samples, rate, err := readRTT(res.dir)
		if err != nil {
			b.Fatal(err)
		}
		rtts = append(rtts, samples...)
		offered := float64(share(l.calls, n, i))
		if l.rampStep > 0 {
			offered = created // SIPp stopped at rampMax
			if rate, err = bestPeriodRate(res.stats); err != nil {
				b.Fatal(err)
			}
		}
		// Failed, or never finished, or (SIPp having stopped early) never made.
		f.failed += int(max(offered, created) - succeeded)
		f.calls += int(max(offered, created))
		f.rate += rate
	}
	peak, err := stopSampling()
	if err != nil {
		b.Fatal(err)
	}
	f.peakMiB = peak
	slices.Sort(rtts)
	f.p50, f.p99 = percentile(rtts, 50), percentile(rtts, 99)
	return f
}

// report reports f under the names every load benchmark uses, with srv's
// peak memory now (VmHWM: the whole run so far) or, without hwm, the
// largest sampled.
func (f loadFigures) report(b *testing.B, srv benchServer, unit string) {
	b.Helper()
	if srv.hwm != nil {
		var err error
		if f.peakMiB, err = srv.hwm(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(f.rate, unit)
	b.ReportMetric(100*float64(f.failed)/float64(f.calls), "%failed")
	b.ReportMetric(f.p50, "p50-ms")
	b.ReportMetric(f.p99, "p99-ms")
	b.ReportMetric(f.peakMiB, "peak-RSS-MiB")
}

// readRTT reads the response times SIPp wrote with -trace_rtt in dir
// (Date_ms;response_time_ms;rtd_no, milliseconds since SIPp started; SIPp
// measures to the millisecond) and the completed rate: the calls that
// reached their rtd (a registration's final 200, a call's answer) per
// second between the first and the last. Unlike SIPp's cumulative call
// rate it leaves out the ramp and the time calls are held (0.5 s before the
// BYE in uac-auth.xml), so a server that keeps up shows the offered rate.
func readRTT(dir string) (samples []float64, rate float64, err error) {
	files, _ := filepath.Glob(filepath.Join(dir, "*_rtt.csv"))
	if len(files) != 1 {
		return nil, 0, fmt.Errorf("want one SIPp rtt file in %s, found %v", dir, files)
	}
	f, err := os.Open(files[0])
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	first, last := math.Inf(1), math.Inf(-1)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ";")
		if len(fields) < 2 || fields[0] == "Date_ms" {
			continue
		}
		at, err1 := strconv.ParseFloat(fields[0], 64)
		ms, err2 := strconv.ParseFloat(fields[1], 64)
		if err := errors.Join(err1, err2); err != nil {
			return nil, 0, fmt.Errorf("%s: %q: %w", files[0], sc.Text(), err)
		}
		samples = append(samples, ms)
		first, last = min(first, at), max(last, at)
	}
	if err := sc.Err(); err != nil {
		return nil, 0, err
	}
	if len(samples) < 2 || last <= first {
		return nil, 0, fmt.Errorf("%s: %d response times, too few for a rate", files[0], len(samples))
	}
	return samples, float64(len(samples)-1) / ((last - first) / 1000), nil
}

// bestPeriodRate is a capacity load's rate: from SIPp's statistics file
// (-trace_stat, one row per -fd period), the most calls completed per
// second in a whole period with under 1 % of its calls failed. Past its
// capacity a server completes fewer (queues, retransmissions), so this is
// the most it sustained for a period.
func bestPeriodRate(stats string) (float64, error) {
	lines := strings.Split(strings.TrimSpace(stats), "\n")
	if len(lines) < 2 {
		return 0, fmt.Errorf("no SIPp statistics rows:\n%s", stats)
	}
	col := map[string]int{}
	for i, h := range strings.Split(lines[0], ";") {
		col[h] = i
	}
	// Times are "date<TAB>time<TAB>epoch seconds".
	epoch := func(fields []string, name string) (float64, error) {
		v := fields[col[name]]
		return strconv.ParseFloat(v[strings.LastIndexByte(v, '\t')+1:], 64)
	}
	var best float64
	for _, line := range lines[1:] {
		fields := strings.Split(line, ";")
		if len(fields) < len(col) {
			continue
		}
		from, err1 := epoch(fields, "LastResetTime")
		to, err2 := epoch(fields, "CurrentTime")
		ok, err3 := strconv.ParseFloat(fields[col["SuccessfulCall(P)"]], 64)
		failed, err4 := strconv.ParseFloat(fields[col["FailedCall(P)"]], 64)
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return 0, fmt.Errorf("SIPp statistics row %q: %w", line, err)
		}
		if to-from < 0.9*rampPeriod || failed > 0.01*(ok+failed) {
			continue // the first and last rows are partial periods
		}
		best = max(best, ok/(to-from))
	}
	if best == 0 {
		return 0, fmt.Errorf("no whole period with under 1 %% failed in SIPp's statistics:\n%s", stats)
	}
	return best, nil
}

// percentile is the nearest-rank p-th percentile of sorted.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// sampleMemory samples srv.rss every 100 ms until stop is called, when
// srv.hwm is nil (Kamailio: the kernel keeps no peak of a sum over
// processes). stop returns the largest sample, or 0 when not sampling.
func sampleMemory(srv benchServer) (stop func() (float64, error)) {
	if srv.hwm != nil {
		return func() (float64, error) { return 0, nil }
	}
	done := make(chan struct{})
	type result struct {
		peak float64
		err  error
	}
	out := make(chan result, 1)
	go func() {
		var r result
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			v, err := srv.rss()
			if err != nil {
				r.err = err
			}
			r.peak = max(r.peak, v)
			select {
			case <-done:
				out <- r
				return
			case <-t.C:
			}
		}
	}()
	return func() (float64, error) {
		close(done)
		r := <-out
		return r.peak, r.err
	}
}

// settleFor is how long after a load the resident memory is read as the
// steady figure: past a node's heap trim period (15 s, appliance/node
// memory.go), so the figure is what the node keeps, not the load's garbage.
const settleFor = 20 * time.Second

// settledRSS reads the resident memory settleFor after a load.
func settledRSS(b *testing.B, rss func() (float64, error)) float64 {
	b.Helper()
	time.Sleep(settleFor) // a fixed measurement window, not a synchronisation
	v, err := rss()
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// share is the i-th of n shares of total, the remainder going to the first.
func share(total, n, i int) int {
	if i < total%n {
		return total/n + 1
	}
	return total / n
}

// splitRows deals rows round-robin into n injection files written by write:
// file i holds share(len(rows), n, i) rows.
func splitRows[R any](b *testing.B, rows []R, n int, write func(testing.TB, []R) string) []string {
	parts := make([][]R, n)
	for i, r := range rows {
		parts[i%n] = append(parts[i%n], r)
	}
	files := make([]string, n)
	for i, p := range parts {
		files[i] = write(b, p)
	}
	return files
}

// procStatusMiB reads a memory field of /proc/<pid>/status (VmRSS, VmHWM),
// in MiB.
func procStatusMiB(pid int, field string) (float64, error) {
	return procKBField(fmt.Sprintf("/proc/%d/status", pid), field)
}

// procKBField reads "field: N kB" from a /proc file, in MiB.
func procKBField(path, field string) (float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no %s in %s", field, path)
}

// processTree is pid and its descendants, from the PPid of every process.
func processTree(pid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue // ended meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(stat), ')')
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(fields[1]); err == nil {
			children[ppid] = append(children[ppid], p)
		}
	}
	tree := []int{pid}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree, nil
}

// treePSS is the proportional set size summed over pid and its
// descendants, in MiB: memory shared between them (Kamailio's shared
// memory segment) counts once.
func treePSS(pid int) (float64, error) {
	pids, err := processTree(pid)
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, p := range pids {
		v, err := procKBField(fmt.Sprintf("/proc/%d/smaps_rollup", p), "Pss")
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}
