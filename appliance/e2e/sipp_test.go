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

// runSIPp runs a scenario from testdata/sipp against target until it has
// made calls calls (or ends on its own), within timeout.
func runSIPp(t testing.TB, scenario, target string, calls int, timeout time.Duration, extra ...string) sippResult {
	t.Helper()
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Fatalf("sipp is not installed: run make deps (%v)", err)
	}
	dir := t.TempDir()
	abs := scenario
	if !filepath.IsAbs(scenario) {
		var err error
		if abs, err = filepath.Abs(filepath.Join("testdata", "sipp", scenario)); err != nil {
			t.Fatal(err)
		}
	}
	args := append([]string{
		"-sf", abs, "-m", fmt.Sprint(calls), "-i", "127.0.0.1", "-p", fmt.Sprint(freeUDPPort(t)),
		"-timeout", fmt.Sprintf("%ds", int(timeout.Seconds())), "-timeout_error",
		"-nostdin", "-trace_stat", "-stf", filepath.Join(dir, "stats.csv"), "-fd", "60",
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
	}, extra...)
	args = append(args, target)
	ctx, cancel := context.WithTimeout(context.Background(), timeout+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sipp", args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	res := sippResult{stdout: out.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.exit = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run sipp: %v\n%s", err, out.String())
	}
	stats, _ := os.ReadFile(filepath.Join(dir, "stats.csv"))
	res.stats = string(stats)
	if res.exit != 0 {
		errs, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
		if len(errs) > 4000 {
			errs = errs[:4000]
		}
		res.stdout += "\n--- errors.log ---\n" + string(errs)
	}
	return res
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
