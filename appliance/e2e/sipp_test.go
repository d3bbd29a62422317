package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sippResult is what one SIPp run did.
type sippResult struct {
	exit   int
	stdout string
	stats  string // the final statistics CSV
	dir    string // its working directory: trace files such as -trace_rtt's
}

// freeUDPPort finds a loopback UDP port for SIPp to bind.
func freeUDPPort(t testing.TB) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// scenarioPath is the absolute path of a scenario in testdata/sipp.
func scenarioPath(t testing.TB, name string) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("testdata", "sipp", name))
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// runSIPp runs a scenario from testdata/sipp against target until it has
// made calls calls (or ends on its own), within timeout.
func runSIPp(t testing.TB, scenario, target string, calls int, timeout time.Duration, extra ...string) sippResult {
	t.Helper()
	res, err := startSIPp(t, scenario, target, calls, timeout, extra...).wait()
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// sippRun is a SIPp process started by startSIPp.
type sippRun struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	dir    string
	out    bytes.Buffer
}

// startSIPp starts what runSIPp runs and returns without waiting, so that
// several SIPps can run at once; wait may be called from any goroutine.
func startSIPp(t testing.TB, scenario, target string, calls int, timeout time.Duration, extra ...string) *sippRun {
	t.Helper()
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Fatalf("sipp is not installed: run make deps (%v)", err)
	}
	dir := t.TempDir()
	abs := scenario
	if !filepath.IsAbs(scenario) {
		abs = scenarioPath(t, scenario)
	}
	args := append([]string{
		"-sf", abs, "-m", fmt.Sprint(calls), "-i", "127.0.0.1", "-p", fmt.Sprint(freeUDPPort(t)),
		"-timeout", fmt.Sprintf("%ds", int(timeout.Seconds())), "-timeout_error",
		"-nostdin", "-trace_stat", "-stf", filepath.Join(dir, "stats.csv"), "-fd", "60",
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
	}, extra...)
	args = append(args, target)
	ctx, cancel := context.WithTimeout(context.Background(), timeout+30*time.Second)
	r := &sippRun{cmd: exec.CommandContext(ctx, "sipp", args...), cancel: cancel, dir: dir}
	r.cmd.Dir = dir
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	if err := r.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("run sipp: %v", err)
	}
	t.Cleanup(cancel)
	return r
}

// wait waits for the SIPp to end and collects what it did.
func (r *sippRun) wait() (sippResult, error) {
	err := r.cmd.Wait()
	r.cancel()
	res := sippResult{stdout: r.out.String(), dir: r.dir}
	if ee, ok := err.(*exec.ExitError); ok {
		res.exit = ee.ExitCode()
	} else if err != nil {
		return res, fmt.Errorf("run sipp: %v\n%s", err, res.stdout)
	}
	stats, _ := os.ReadFile(filepath.Join(r.dir, "stats.csv"))
	res.stats = string(stats)
	if res.exit != 0 {
		errs, _ := os.ReadFile(filepath.Join(r.dir, "errors.log"))
		if len(errs) > 4000 {
			errs = errs[:4000]
		}
		res.stdout += "\n--- errors.log ---\n" + string(errs)
	}
	return res, nil
}

// writeUsersCSV writes a SIPp injection file from username, password,
// domain rows: username;[authentication ...];domain.
func writeUsersCSV(t testing.TB, rows [][3]string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("SEQUENTIAL\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "%s;[authentication username=%s password=%s];%s\n", r[0], r[0], r[1], r[2])
	}
	p := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
