package e2e

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/outpost-voice/outpost/account"
)

// Kamailio 5.6 from Debian is the reference the load benchmarks measure
// Outpost against, in the same run, on the same SIPp scenarios and loads:
// testdata/kamailio/kamailio.cfg makes it a registrar with digest
// authentication against a subscriber table of precomputed HA1s and a
// stateful, record-routing proxy. scripts/kamailio-deps.sh kamailio-sqlite-modules (make bench) installs it; the
// benchmarks skip without it.

// BenchmarkKamailioRegister10k: benchRegister against Kamailio, with the
// same 10,000 users. Memory is the PSS summed over Kamailio's processes.
func BenchmarkKamailioRegister10k(b *testing.B) {
	needKamailio(b)
	benchRegister(b, startKamailio)
}

// BenchmarkKamailioCalls: benchCalls through Kamailio, with the demo
// account's alice, bob and bob's extension (an alias of bob).
func BenchmarkKamailioCalls(b *testing.B) {
	needKamailio(b)
	benchCalls(b, startKamailio)
}

// kamailioArgs size Kamailio for the benchmarks: 1 GiB of shared memory
// (with 256 MiB, transactions waiting out their timers exhausted it near
// 2,500 calls/s; memory is measured as pages touched, not this reserve),
// 16 MiB of private memory per process, and the TLSF allocator for the
// shared memory: with Debian's default (qm) a third of a worker's time went
// to qm_malloc and registrations stalled near 4,000/s.
var kamailioArgs = []string{"-m", "1024", "-M", "16", "-x", "tlsf"}

func kamailioBin() (string, error) {
	if p, err := exec.LookPath("kamailio"); err == nil {
		return p, nil
	}
	const sbin = "/usr/sbin/kamailio" // not on a non-root PATH
	if _, err := os.Stat(sbin); err != nil {
		return "", err
	}
	return sbin, nil
}

func needKamailio(b *testing.B) {
	if _, err := kamailioBin(); err != nil {
		b.Skipf("kamailio is not installed (make bench installs it with scripts/kamailio-deps.sh kamailio-sqlite-modules): %v", err)
	}
}

// startKamailio starts Kamailio in the foreground on a free loopback port,
// with its subscriber and alias tables filled from snap and everything in
// a temporary directory, waits until it answers OPTIONS, and stops it when
// the benchmark ends.
func startKamailio(b *testing.B, snap *account.Snapshot) benchServer {
	b.Helper()
	bin, err := kamailioBin()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	db := filepath.Join(dir, "kamailio.sqlite")
	writeKamailioDB(b, db, snap)
	addr := fmt.Sprintf("127.0.0.1:%d", freeUDPPort(b))
	tmpl, err := template.ParseFiles(filepath.Join("testdata", "kamailio", "kamailio.cfg"))
	if err != nil {
		b.Fatal(err)
	}
	var cfg bytes.Buffer
	if err := tmpl.Execute(&cfg, struct{ Listen, Realm, DB, Dir string }{addr, snap.Account.SIPRealm, db, dir}); err != nil {
		b.Fatal(err)
	}
	cfgPath := writeFile(b, "kamailio.cfg", cfg.Bytes())

	args := append([]string{"-DD", "-E", "-f", cfgPath}, kamailioArgs...)
	args = append(args, "-P", filepath.Join(dir, "kamailio.pid"))
	b.Logf("%s %s", bin, strings.Join(args, " "))
	cmd, done, logs := runKamailio(b, bin, args...)

	deadline := time.Now().Add(20 * time.Second)
	for {
		err := sipOptionsAnswered(addr)
		if err == nil {
			break
		}
		select {
		case <-done:
			b.Fatalf("kamailio exited at start\n%s", logs)
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("kamailio did not answer OPTIONS on %s within 20s: %v\n%s", addr, err, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	pid := cmd.Process.Pid
	return benchServer{
		addrs: []string{addr},
		rss:   func() (float64, error) { return treePSS(pid) },
	}
}

// runKamailio starts kamailio in the foreground, in a process group of
// its own (its children end with it), and stops it when the test ends:
// SIGTERM to the group, SIGKILL after 10 s; its output is logged when the
// test failed. done closes when it exits.
func runKamailio(tb testing.TB, bin string, args ...string) (*exec.Cmd, <-chan struct{}, *cappedBuffer) {
	tb.Helper()
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logs := &cappedBuffer{max: 1 << 20}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start kamailio: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	tb.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if tb.Failed() {
			tb.Logf("kamailio:\n%s", logs)
		}
	})
	return cmd, done, logs
}

// writeKamailioDB creates Kamailio's SQLite database at path with every
// user of snap (username, realm, HA1) and each extension as an alias.
func writeKamailioDB(b *testing.B, path string, snap *account.Snapshot) {
	b.Helper()
	schema, err := os.ReadFile(filepath.Join("testdata", "kamailio", "schema.sql"))
	if err != nil {
		b.Fatal(err)
	}
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(string(schema)); err != nil {
		b.Fatalf("kamailio schema: %v", err)
	}
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	realm := snap.Account.SIPRealm
	for _, u := range snap.Users {
		if _, err := tx.Exec(`INSERT INTO subscriber (username, domain, ha1) VALUES (?, ?, ?)`,
			u.SIP.Username, realm, u.SIP.HA1MD5); err != nil {
			b.Fatal(err)
		}
		if u.Extension == "" {
			continue
		}
		if _, err := tx.Exec(`INSERT INTO dbaliases (alias_username, alias_domain, username, domain) VALUES (?, ?, ?, ?)`,
			u.Extension, realm, u.SIP.Username, realm); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// sipOptionsAnswered sends one OPTIONS to addr and wants a 200 within 500 ms.
func sipOptionsAnswered(addr string) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	local := c.LocalAddr().String()
	id := fmt.Sprintf("%x", time.Now().UnixNano())
	req := "OPTIONS sip:" + addr + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK" + id + ";rport\r\n" +
		"From: <sip:probe@" + local + ">;tag=" + id + "\r\n" +
		"To: <sip:" + addr + ">\r\n" +
		"Call-ID: " + id + "@probe\r\n" +
		"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	if err := c.SetDeadline(time.Now().Add(500 * time.Millisecond)); err != nil {
		return err
	}
	if _, err := c.Write([]byte(req)); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if status, _, _ := strings.Cut(string(buf[:n]), "\r\n"); status != "SIP/2.0 200 OK" {
		return errors.New("answered " + status)
	}
	return nil
}

// cappedBuffer keeps the first max bytes written to it, safely for
// concurrent use: a process's logs.
type cappedBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *cappedBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}
