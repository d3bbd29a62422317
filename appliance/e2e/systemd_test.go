package e2e

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The node speaks sd_notify: READY=1 once up, WATCHDOG=1 while healthy,
// STATUS= lines, STOPPING=1 on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got := make(chan string, 256)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(got)
				return
			}
			got <- string(buf[:n])
		}
	}()
	n := startNode(t, "sd", nodeOpts{env: []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=600000"}})

	seen := map[string]bool{}
	wait := func(prefix string) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for !seen[prefix] {
			select {
			case msg, ok := <-got:
				if !ok {
					t.Fatalf("notify socket closed before %s", prefix)
				}
				for _, line := range strings.Split(msg, "\n") {
					for _, p := range []string{"READY=1", "WATCHDOG=1", "STATUS=", "STOPPING=1"} {
						if strings.HasPrefix(line, p) {
							seen[p] = true
						}
					}
				}
			case <-deadline:
				t.Fatalf("no %s from the node in 30s (saw %v)\n%s", prefix, seen, n.log())
			}
		}
	}
	wait("READY=1")
	wait("WATCHDOG=1")
	wait("STATUS=")
	if err := n.stop(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	wait("STOPPING=1")
}
