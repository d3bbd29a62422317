package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// netLab is a small network of namespaces for the fault tests (issue 11):
// a bridge in a namespace of its own and one namespace per host, joined to
// it by a veth pair, with an address in 10.77.N.0/24 (N counts the labs of
// this process, so a pooled HTTP connection never outlives its lab's
// addresses). Links are cut and healed with nftables rules inside the
// hosts' namespaces. Nothing of the machine's own network is touched: every
// interface, address and rule lives in the lab's namespaces, which
// t.Cleanup deletes (with the processes in them) even when the test fails.
//
// The test process itself stays in the machine's namespace: it reaches a
// host's addresses by opening its sockets inside that host's namespace
// (dial, listenPacket), which http.DefaultTransport does on its own for
// the lab's addresses (see init below), so node.client() and node.status()
// work unchanged.
type netLab struct {
	t      testing.TB
	prefix string // of the namespaces' names
	bridge string // the bridge's namespace
	subnet string // 10.77.N
	hosts  []*labHost
}

// labHost is one namespace of a lab, with its address.
type labHost struct {
	lab  *netLab
	name string // short name, e.g. n1
	ns   string // the namespace
	ip   string
}

var (
	labMu    sync.Mutex
	labCount int
	labAddrs = map[string]*labHost{} // lab IP -> host, for the HTTP transport
)

func init() {
	tr, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return
	}
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if h := labHostOf(addr); h != nil {
			return h.dial(ctx, network, addr)
		}
		return dial(ctx, network, addr)
	}
}

func labHostOf(addr string) *labHost {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	labMu.Lock()
	defer labMu.Unlock()
	return labAddrs[host]
}

// needNetns skips the test unless it can make network namespaces here:
// root, `ip netns`, nft.
func needNetns(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the fault tests need root for network namespaces (ip netns, nft); run them as root (make chaos)")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the fault tests need %s (apt-get install iproute2 nftables): %v", tool, err)
		}
	}
	name := "opx-probe-" + randomHex(4)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace here (ip netns add): %v: %s", err, bytes.TrimSpace(out))
	}
	defer func() { _ = exec.Command("ip", "netns", "del", name).Run() }()
	if out, err := exec.Command("ip", "netns", "exec", name, "nft", "list", "ruleset").CombinedOutput(); err != nil {
		t.Skipf("cannot use nftables in a network namespace here: %v: %s", err, bytes.TrimSpace(out))
	}
}

// newNetLab makes the bridge and one host per name, addressed .1, .2, ...
// in the order given.
func newNetLab(t testing.TB, names ...string) *netLab {
	t.Helper()
	needNetns(t)
	labMu.Lock()
	labCount++
	n := labCount
	labMu.Unlock()
	sweepStaleLabs(t)
	l := &netLab{t: t, prefix: fmt.Sprintf("opx-%d-%s-", os.Getpid(), randomHex(2)), subnet: fmt.Sprintf("10.77.%d", n%250+1)}
	l.bridge = l.prefix + "br"
	t.Cleanup(l.close)
	l.must("ip", "netns", "add", l.bridge)
	l.must("ip", "-n", l.bridge, "link", "set", "lo", "up")
	l.must("ip", "-n", l.bridge, "link", "add", "br0", "type", "bridge")
	l.must("ip", "-n", l.bridge, "link", "set", "br0", "up")
	for i, name := range names {
		h := &labHost{lab: l, name: name, ns: l.prefix + name, ip: fmt.Sprintf("%s.%d", l.subnet, i+1)}
		veth := "v" + name
		l.must("ip", "netns", "add", h.ns)
		l.must("ip", "-n", h.ns, "link", "set", "lo", "up")
		l.must("ip", "-n", l.bridge, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.ns)
		l.must("ip", "-n", l.bridge, "link", "set", veth, "master", "br0", "up")
		l.must("ip", "-n", h.ns, "addr", "add", h.ip+"/24", "dev", "eth0")
		l.must("ip", "-n", h.ns, "link", "set", "eth0", "up")
		l.hosts = append(l.hosts, h)
		labMu.Lock()
		labAddrs[h.ip] = h
		labMu.Unlock()
	}
	return l
}

// sweepStaleLabs deletes the namespaces of labs whose test process is
// gone (killed by a timeout before its clean-ups ran), with whatever
// still runs in them. A lab's namespaces are named opx-<pid>-...; those
// of a live process, this one's or another run's, are left alone.
func sweepStaleLabs(t testing.TB) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		var pid int
		if _, err := fmt.Sscanf(name, "opx-%d-", &pid); err != nil || pid <= 0 {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue
		}
		killNetnsProcesses(name)
		if err := exec.Command("ip", "netns", "del", name).Run(); err == nil {
			t.Logf("deleted the namespace %s of a test run that is gone", name)
		}
	}
}

// killNetnsProcesses kills -9 every process in the namespace ns (the
// suite's own: nodes and phones it started there).
func killNetnsProcesses(ns string) {
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(out)) {
		var p int
		if _, err := fmt.Sscan(f, &p); err == nil && p > 1 {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
}

// host is the host named name.
func (l *netLab) host(name string) *labHost {
	for _, h := range l.hosts {
		if h.name == name {
			return h
		}
	}
	l.t.Fatalf("the lab has no host %q", name)
	return nil
}

// must runs a command of the lab's set-up, failing the test if it fails.
func (l *netLab) must(args ...string) {
	l.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		l.t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

// close kills whatever still runs in the lab's namespaces and deletes them
// (which deletes their interfaces and rules). Registered by newNetLab
// before anything is made, so it runs after the nodes' own clean-ups
// (t.Cleanup runs last in, first out) and when the set-up failed half-way.
func (l *netLab) close() {
	for _, h := range l.hosts {
		labMu.Lock()
		delete(labAddrs, h.ip)
		labMu.Unlock()
	}
	if tr, ok := http.DefaultTransport.(*http.Transport); ok {
		tr.CloseIdleConnections()
	}
	names := []string{l.bridge}
	for _, h := range l.hosts {
		names = append(names, h.ns)
	}
	for _, ns := range names {
		killNetnsProcesses(ns)
	}
	for _, ns := range names {
		// A process just killed may hold the namespace a moment longer:
		// the name goes at once, the namespace with its last process.
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil &&
			!strings.Contains(string(out), "No such file") {
			l.t.Logf("delete namespace %s: %v: %s", ns, err, bytes.TrimSpace(out))
		}
	}
}

// chaosTable is the nftables table of the cuts, in each host's namespace.
const chaosTable = "inet outpost_chaos"

// isolate cuts h off from every other host of the lab, both ways (drop,
// as a dead link does: no ICMP, no reset). The processes in h's namespace
// still reach each other, and the test process still reaches h.
func (l *netLab) isolate(h *labHost) {
	l.t.Helper()
	var peers []*labHost
	for _, o := range l.hosts {
		if o != h {
			peers = append(peers, o)
		}
	}
	l.cut(h, peers...)
}

// cut drops every packet between h and each of peers (rules on both
// sides), replacing the cuts h had.
func (l *netLab) cut(h *labHost, peers ...*labHost) {
	l.t.Helper()
	var ips []string
	for _, p := range peers {
		ips = append(ips, p.ip)
		p.drop(h.ip)
	}
	h.drop(ips...)
}

// heal removes every cut in the lab.
func (l *netLab) heal() {
	l.t.Helper()
	for _, h := range l.hosts {
		h.drop()
	}
}

// drop replaces the host's rules by ones dropping every packet from or to
// ips (none: no rules).
func (h *labHost) drop(ips ...string) {
	h.lab.t.Helper()
	rules := fmt.Sprintf("table %s {}\ndelete table %s\n", chaosTable, chaosTable)
	if len(ips) > 0 {
		set := strings.Join(ips, ", ")
		rules += fmt.Sprintf(`table %s {
	chain input {
		type filter hook input priority 0; policy accept;
		ip saddr { %s } drop
	}
	chain output {
		type filter hook output priority 0; policy accept;
		ip daddr { %s } drop
	}
}
`, chaosTable, set, set)
	}
	h.nft(rules)
}

// lose replaces the host's rules by ones dropping, at random, pct percent
// of the packets it receives from each of ips (nftables' numgen; this
// kernel has no netem for delay or reordering). On every host, that makes
// each link lose pct percent in each direction.
func (h *labHost) lose(pct int, ips ...string) {
	h.lab.t.Helper()
	rules := fmt.Sprintf(`table %s {}
delete table %s
table %s {
	chain input {
		type filter hook input priority 0; policy accept;
		ip saddr { %s } numgen random mod 100 < %d drop
	}
}
`, chaosTable, chaosTable, chaosTable, strings.Join(ips, ", "), pct)
	h.nft(rules)
}

// nft loads rules in the host's namespace.
func (h *labHost) nft(rules string) {
	h.lab.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", h.ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		h.lab.t.Fatalf("nft in %s: %v: %s\n%s", h.ns, err, bytes.TrimSpace(out), rules)
	}
}

// inNetns runs f on a thread moved into the namespace ns: the sockets f
// opens belong to ns (and stay there), nothing else does. The thread goes
// back to the process's namespace after f; if it cannot, it is left
// locked, and Go ends it with the goroutine.
func inNetns(ns string, f func() error) error {
	target, err := os.Open("/var/run/netns/" + ns)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", ns, err)
	}
	defer target.Close()
	runtime.LockOSThread()
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", syscall.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open this thread's namespace: %w", err)
	}
	defer self.Close()
	if err := setns(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter namespace %s: %w", ns, err)
	}
	ferr := f()
	if err := setns(self); err != nil {
		return errors.Join(ferr, fmt.Errorf("leave namespace %s: %w", ns, err)) // the thread stays locked: Go ends it
	}
	runtime.UnlockOSThread()
	return ferr
}

func setns(f *os.File) error {
	return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
}

// dial opens a connection from inside h's namespace.
func (h *labHost) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNetns(h.ns, func() error {
		var err error
		c, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// listenPacket opens a UDP socket in h's namespace on h's address (port 0:
// any).
func (h *labHost) listenPacket(port int) (net.PacketConn, error) {
	var c net.PacketConn
	err := inNetns(h.ns, func() error {
		var err error
		c, err = net.ListenPacket("udp4", fmt.Sprintf("%s:%d", h.ip, port))
		return err
	})
	return c, err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
