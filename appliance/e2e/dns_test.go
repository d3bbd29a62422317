package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const dnsDomain = "survive.acme.example"

// freeUDPTCPPort is a port free on 127.0.0.1 for both UDP and TCP: SIP and
// DNS take both on one port.
func freeUDPTCPPort(t testing.TB) int {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		pc.Close()
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}

// dnsNode is a node with its DNS server and SIP port.
type dnsNode struct {
	*node
	dns     string // DNS address, UDP and TCP
	sipPort int
}

// startDNSNode starts a node serving DNS for dnsDomain, with SIP UDP and
// TCP on one port (as the DNS server assumes every node does), both fixed
// through the environment so a restart keeps them.
func startDNSNode(t *testing.T, id, site string, join ...string) *dnsNode {
	t.Helper()
	sip, dnsPort := freeUDPTCPPort(t), freeUDPTCPPort(t)
	d := &dnsNode{dns: fmt.Sprintf("127.0.0.1:%d", dnsPort), sipPort: sip}
	d.node = startNode(t, id, nodeOpts{site: site, join: join, env: []string{
		fmt.Sprintf("OUTPOST_SIP_UDP=127.0.0.1:%d", sip),
		fmt.Sprintf("OUTPOST_SIP_TCP=127.0.0.1:%d", sip),
		"OUTPOST_DNS_LISTEN=" + d.dns,
		"OUTPOST_DNS_DOMAIN=" + dnsDomain,
	}})
	return d
}

// ask sends one query to n's DNS server over network.
func (n *dnsNode) ask(network, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, false)
	c := &dns.Client{Net: network, Timeout: time.Second}
	r, _, err := c.Exchange(m, n.dns)
	return r, err
}

// srvTargets lists "priority target:port" of an SRV answer.
func srvTargets(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		if s, ok := rr.(*dns.SRV); ok {
			out = append(out, fmt.Sprintf("%d %s:%d", s.Priority, strings.TrimSuffix(s.Target, "."+dnsDomain+"."), s.Port))
		}
	}
	return out
}

// hasNode checks that n's DNS names member m, or (want false) does not:
// in the cluster's and each site's SRV records of both transports, and
// with an A record.
func (n *dnsNode) hasNode(m *dnsNode, want bool) error {
	entry := fmt.Sprintf("%s:%d", m.id, m.sipPort)
	for _, name := range []string{"_sip._udp." + dnsDomain, "_sip._tcp." + dnsDomain, "_sip._udp.hq." + dnsDomain, "_sip._udp.branch." + dnsDomain} {
		r, err := n.ask("udp", name, dns.TypeSRV)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		found := slices.ContainsFunc(srvTargets(r), func(s string) bool { return strings.HasSuffix(s, " "+entry) })
		if found != want {
			return fmt.Errorf("%s from %s: %v, want %s there: %v", name, n.id, srvTargets(r), entry, want)
		}
	}
	r, err := n.ask("udp", m.id+"."+dnsDomain, dns.TypeA)
	if err != nil {
		return err
	}
	if got := r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1; got != want {
		return fmt.Errorf("A %s from %s: %s %v, want present: %v", m.id, n.id, dns.RcodeToString[r.Rcode], r.Answer, want)
	}
	return nil
}

// TestDNSFailover: a 3-node cluster, each node answering DNS. Every node
// names every node; site ordering, NAPTR, REFUSED and TCP work on real
// processes. SIGKILL one node: within 5 s it is gone from every survivor's
// answers. Restart it: it comes back everywhere.
func TestDNSFailover(t *testing.T) {
	n1 := startDNSNode(t, "n1", "hq")
	eventually(t, 30*time.Second, "n1 ready", func(ctx context.Context) error {
		st, err := n1.status(ctx)
		if err == nil && !st.Ready {
			err = errors.New(st.NotReadyReason)
		}
		return err
	})
	n2 := startDNSNode(t, "n2", "hq", n1.httpAddr)
	n3 := startDNSNode(t, "n3", "branch", n1.httpAddr)
	nodes := []*dnsNode{n1, n2, n3}
	for _, n := range nodes {
		for _, m := range nodes {
			eventually(t, 60*time.Second, n.id+"'s DNS names "+m.id, func(context.Context) error { return n.hasNode(m, true) })
		}
	}

	// What a phone at the branch sees, from any node, over UDP and TCP.
	for _, network := range []string{"udp", "tcp"} {
		r, err := n1.ask(network, "_sip._udp.branch."+dnsDomain, dns.TypeSRV)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			fmt.Sprintf("10 n3:%d", n3.sipPort),
			fmt.Sprintf("20 n1:%d", n1.sipPort),
			fmt.Sprintf("20 n2:%d", n2.sipPort),
		}
		if got := srvTargets(r); !slices.Equal(got, want) || !r.Authoritative {
			t.Errorf("%s _sip._udp.branch SRV from n1 = %v (aa=%v), want %v, authoritative", network, got, r.Authoritative, want)
		}
	}
	r, err := n3.ask("udp", dnsDomain, dns.TypeNAPTR)
	if err != nil {
		t.Fatal(err)
	}
	var services []string
	for _, rr := range r.Answer {
		services = append(services, rr.(*dns.NAPTR).Service)
	}
	if want := []string{"SIP+D2T", "SIP+D2U"}; !slices.Equal(services, want) { // no TLS configured
		t.Errorf("NAPTR services = %v, want %v", services, want)
	}
	if r, err := n2.ask("udp", "www.example.com", dns.TypeA); err != nil || r.Rcode != dns.RcodeRefused {
		t.Errorf("foreign name: %v, %v; want REFUSED", r, err)
	}

	// Kill n2; poll the survivors until neither names it.
	killed := time.Now()
	n2.kill()
	gone := map[string]time.Duration{}
	for len(gone) < 2 && time.Since(killed) < 20*time.Second {
		for _, n := range []*dnsNode{n1, n3} {
			if _, ok := gone[n.id]; !ok && n.hasNode(n2, false) == nil {
				gone[n.id] = time.Since(killed)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("n2 killed: gone from n1's answers after %v, from n3's after %v", gone["n1"], gone["n3"])
	for _, n := range []*dnsNode{n1, n3} {
		d, ok := gone[n.id]
		if !ok {
			t.Fatalf("%s still names n2 20s after the kill: %v", n.id, n.hasNode(n2, false))
		}
		if d > 5*time.Second {
			t.Errorf("%s named n2 for %v after the kill, want at most 5s", n.id, d)
		}
		// The survivors still name each other.
		for _, m := range []*dnsNode{n1, n3} {
			if err := n.hasNode(m, true); err != nil {
				t.Errorf("after the kill: %v", err)
			}
		}
	}

	// Restart n2: its records come back on every node, its own included.
	restarted := time.Now()
	n2.restart()
	for _, n := range nodes {
		eventually(t, 60*time.Second, n.id+"'s DNS names n2 again", func(context.Context) error { return n.hasNode(n2, true) })
	}
	t.Logf("n2 restarted: named by every node again after %v", time.Since(restarted).Round(time.Millisecond))
}
