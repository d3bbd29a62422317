package deb

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/config"
)

// The files as build.sh installs them.
const (
	configFile   = "outpost.yaml"    // -> /etc/outpost/outpost.yaml
	firewallFile = "outpost.nft"     // -> /etc/outpost/outpost.nft
	unitFile     = "outpost.service" // -> /lib/systemd/system/outpost.service
	sysusersFile = "sysusers.conf"   // -> /usr/lib/sysusers.d/outpost.conf

	installedConfig = "/etc/outpost/outpost.yaml"
)

// rule is one "open this port" rule of the firewall: a protocol, a port or
// range ("53", "20000-29999") and the configuration key it serves.
type rule struct{ proto, ports, key string }

func (r rule) String() string { return r.proto + " " + r.ports + " (" + r.key + ")" }

// notOutpost are the firewall's rules for the machine itself, not for a
// listener of the configuration: SSH and the DHCP clients' answers.
var notOutpost = []rule{{"tcp", "22", ""}, {"udp", "68", ""}, {"udp", "546", ""}}

func shippedConfig(t *testing.T) config.Config {
	t.Helper()
	c, err := config.Load(configFile, nil)
	if err != nil {
		t.Fatalf("the shipped configuration does not load: %v", err)
	}
	return c
}

func TestShippedConfigValidates(t *testing.T) {
	c := shippedConfig(t)
	if c.DataDir != "/var/lib/outpost" {
		t.Errorf("data_dir = %q, want /var/lib/outpost (the unit's StateDirectory)", c.DataDir)
	}
	if !c.HTTP.SelfSigned() {
		t.Errorf("HTTPS should be on with the self-signed certificate: tls_listen %q", c.HTTP.TLSListen)
	}
	if c.SIP.TLSEnabled() {
		t.Errorf("SIP TLS is on without certificates the package could ship")
	}
	if c.DNS.Listen == "" {
		t.Errorf("dns.listen is empty; the appliance answers DNS")
	}
}

// listeners are the rules the configuration needs: every listener's
// address, SIP TLS's too (it listens once certificates are set, which
// should need no firewall change) and the RTP range.
func listeners(t *testing.T, c config.Config) []rule {
	t.Helper()
	var rules []rule
	add := func(proto, key, addr string) {
		if addr == "" {
			return
		}
		_, port, err := net.SplitHostPort(addr)
		if err != nil || port == "0" {
			t.Fatalf("%s = %q: want a fixed host:port", key, addr)
		}
		rules = append(rules, rule{proto, port, key})
	}
	add("udp", "sip.udp", c.SIP.UDP)
	add("tcp", "sip.tcp", c.SIP.TCP)
	add("tcp", "sip.tls", c.SIP.TLS)
	add("tcp", "http.listen", c.HTTP.Listen)
	add("tcp", "http.tls_listen", c.HTTP.TLSListen)
	add("tcp", "raft.listen", c.Raft.Listen)
	add("udp", "dns.listen", c.DNS.Listen)
	add("tcp", "dns.listen", c.DNS.Listen)
	lo, hi, err := c.Media.PortRange()
	if err != nil {
		t.Fatal(err)
	}
	rules = append(rules, rule{"udp", fmt.Sprintf("%d-%d", lo, hi), "media.rtp_ports"})
	return rules
}

var ruleRE = regexp.MustCompile(`\b(tcp|udp) dport ([0-9]+(?:-[0-9]+)?)\b.*?\baccept\b(?:\s+comment "([^"]*)")?`)

// firewallRules parses the accepting dport rules of the firewall file.
func firewallRules(t *testing.T) (rules []rule, text string) {
	t.Helper()
	data, err := os.ReadFile(firewallFile)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		if m := ruleRE.FindStringSubmatch(line); m != nil {
			r := rule{m[1], m[2], m[3]}
			if !slices.Contains(rules, r) { // one rule per address family counts once
				rules = append(rules, r)
			}
		}
	}
	return rules, string(data)
}

func sortRules(rs []rule) []rule {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b rule) int { return strings.Compare(a.String(), b.String()) })
	return rs
}

func TestFirewallOpensExactlyTheConfiguredPorts(t *testing.T) {
	want := sortRules(append(listeners(t, shippedConfig(t)), notOutpost...))
	got, text := firewallRules(t)
	got = sortRules(got)
	if !slices.Equal(got, want) {
		t.Errorf("the firewall opens\n  %v\nthe configuration (and SSH, DHCP) needs\n  %v", got, want)
	}
	if !regexp.MustCompile(`type filter hook input priority filter; policy drop;`).MatchString(text) {
		t.Errorf("the input chain's policy is not drop")
	}
	for _, set := range regexp.MustCompile(`@([a-z0-9_]+)`).FindAllStringSubmatch(text, -1) {
		if !strings.Contains(text, "set "+set[1]+" {") {
			t.Errorf("rule uses @%s, which is not declared", set[1])
		}
	}
}

func TestFirewallSyntax(t *testing.T) {
	nft := lookNft(t)
	if out, err := exec.Command(nft, "-c", "-f", firewallFile).CombinedOutput(); err != nil {
		t.Fatalf("nft -c -f %s: %v\n%s", firewallFile, err, out)
	}
}

func lookNft(t *testing.T) string {
	t.Helper()
	nft, err := exec.LookPath("nft")
	if err != nil {
		nft = "/usr/sbin/nft"
		if _, err := os.Stat(nft); err != nil {
			t.Skip("nft is not installed (apt-get install nftables): the firewall's syntax is not checked")
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("nft -c needs root (CAP_NET_ADMIN): the firewall's syntax is not checked")
	}
	return nft
}

// TestFirewallInNamespace loads the firewall in a network namespace and
// connects to it from another over a veth pair: an opened port answers
// (with a reset: nothing listens), any other port and a narrowed set's
// port are dropped (the connection times out).
func TestFirewallInNamespace(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	nft := lookNft(t)
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("ip (iproute2) is not installed")
	}
	abs, err := filepath.Abs(firewallFile)
	if err != nil {
		t.Fatal(err)
	}
	suffix := strconv.Itoa(os.Getpid() % 100000)
	fw, client := "opfw"+suffix, "opcl"+suffix
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, ns := range []string{fw, client} {
		if err := exec.Command(ip, "netns", "add", ns).Run(); err != nil {
			t.Skipf("cannot create a network namespace: %v", err)
		}
		t.Cleanup(func() { _ = exec.Command(ip, "netns", "del", ns).Run() })
	}
	run(ip, "link", "add", "vfw"+suffix, "netns", fw, "type", "veth", "peer", "name", "vcl"+suffix, "netns", client)
	run(ip, "-n", fw, "addr", "add", "10.213.0.1/30", "dev", "vfw"+suffix)
	run(ip, "-n", client, "addr", "add", "10.213.0.2/30", "dev", "vcl"+suffix)
	for _, ns := range []string{fw, client} {
		run(ip, "-n", ns, "link", "set", "lo", "up")
	}
	run(ip, "-n", fw, "link", "set", "vfw"+suffix, "up")
	run(ip, "-n", client, "link", "set", "vcl"+suffix, "up")
	run(ip, "netns", "exec", fw, nft, "-f", abs)
	// Loading it twice replaces the table (the unit's reload).
	run(ip, "netns", "exec", fw, nft, "-f", abs)

	// reaches reports whether a TCP connection from the client namespace
	// gets an answer (accepted or reset) rather than silence.
	reaches := func(port int) bool {
		t.Helper()
		script := fmt.Sprintf("exec 3<>/dev/tcp/10.213.0.1/%d", port)
		cmd := exec.Command(ip, "netns", "exec", client, "timeout", "1", "bash", "-c", script)
		start := time.Now()
		err := cmd.Run()
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 124 {
			return false
		}
		if time.Since(start) > 900*time.Millisecond {
			return false
		}
		return true
	}
	for _, c := range []struct {
		port int
		want bool
	}{{22, true}, {5060, true}, {5061, true}, {443, true}, {53, true}, {8080, true}, {7000, true}, {9, false}, {8443, false}} {
		if got := reaches(c.port); got != c.want {
			t.Errorf("tcp %d: reached %v, want %v", c.port, got, c.want)
		}
	}

	// Narrowing the cluster set to another host closes Raft and the plain
	// HTTP API to the client, and nothing else.
	run(ip, "netns", "exec", fw, nft, "flush", "set", "inet", "outpost", "cluster_v4")
	run(ip, "netns", "exec", fw, nft, "add", "element", "inet", "outpost", "cluster_v4", "{ 192.0.2.7 }")
	for _, c := range []struct {
		port int
		want bool
	}{{7000, false}, {8080, false}, {5060, true}} {
		if got := reaches(c.port); got != c.want {
			t.Errorf("narrowed cluster set: tcp %d: reached %v, want %v", c.port, got, c.want)
		}
	}
}

// unit parses a systemd unit into "Section.Key" -> values, in order.
func unit(t *testing.T, path string) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	section := ""
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: line %q is not Key=Value", path, line)
			}
			keys[section+"."+k] = append(keys[section+"."+k], v)
		}
	}
	return keys
}

func TestUnit(t *testing.T) {
	u := unit(t, unitFile)
	c := shippedConfig(t)
	one := func(key string) string {
		t.Helper()
		v := u["Service."+key]
		if len(v) != 1 {
			t.Errorf("%s: %q, want one value", key, v)
			return ""
		}
		return v[0]
	}
	exact := map[string]string{
		"Type":                   "notify",
		"NotifyAccess":           "main",
		"Restart":                "on-failure",
		"ExecStart":              "/usr/bin/outpost serve --config " + installedConfig,
		"User":                   "outpost",
		"StateDirectory":         filepath.Base(c.DataDir),
		"ReadWritePaths":         c.DataDir,
		"WorkingDirectory":       c.DataDir,
		"AmbientCapabilities":    "CAP_NET_BIND_SERVICE",
		"CapabilityBoundingSet":  "CAP_NET_BIND_SERVICE",
		"ProtectSystem":          "strict",
		"UMask":                  "0077",
		"MemoryDenyWriteExecute": "yes",
		"NoNewPrivileges":        "yes",
	}
	for k, want := range exact {
		if got := one(k); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	if !strings.HasPrefix(c.DataDir, "/var/lib/") {
		t.Errorf("data_dir %q is not under /var/lib, where StateDirectory puts it", c.DataDir)
	}
	if d, err := time.ParseDuration(one("WatchdogSec")); err != nil || d < 15*time.Second {
		t.Errorf("WatchdogSec=%q: want a duration of at least 15s (the node pets every interval/3, at most every 5 s)", one("WatchdogSec"))
	}
	for _, k := range []string{"PrivateTmp", "PrivateDevices", "ProtectHome", "ProtectKernelTunables", "ProtectKernelModules",
		"ProtectKernelLogs", "ProtectControlGroups", "ProtectClock", "ProtectHostname", "RestrictNamespaces",
		"RestrictRealtime", "LockPersonality"} {
		if got := one(k); got != "yes" {
			t.Errorf("%s=%q, want yes", k, got)
		}
	}
	families := strings.Fields(one("RestrictAddressFamilies"))
	for _, f := range []string{"AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"} {
		if !slices.Contains(families, f) {
			t.Errorf("RestrictAddressFamilies lacks %s", f)
		}
	}
	if !slices.Contains(u["Service.SystemCallFilter"], "@system-service") {
		t.Errorf("SystemCallFilter=%q lacks @system-service", u["Service.SystemCallFilter"])
	}

	data, err := os.ReadFile(sysusersFile)
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(string(data[strings.LastIndex(string(data), "\nu ")+1:])); len(f) < 2 || f[1] != one("User") {
		t.Errorf("%s does not create the unit's user %q", sysusersFile, one("User"))
	}
}

// TestShellScripts runs shellcheck on build.sh, test.sh and the maintainer
// scripts (which are POSIX sh: dpkg runs them with /bin/sh).
func TestShellScripts(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Skip("shellcheck is not installed (apt-get install shellcheck): the scripts are not checked")
	}
	scripts := []string{"build.sh", "test.sh", "debian/preinst", "debian/postinst", "debian/prerm", "debian/postrm"}
	if out, err := exec.Command(sc, scripts...).CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
	for _, s := range scripts[2:] {
		data, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(data), "#!/bin/sh\n") || !strings.Contains(string(data), "\nset -e\n") {
			t.Errorf("%s: a maintainer script starts with #!/bin/sh and sets -e", s)
		}
		if !strings.Contains(string(data), "@VERSION@") {
			t.Errorf("%s: no @VERSION@ for build.sh to fill in", s)
		}
	}
}
