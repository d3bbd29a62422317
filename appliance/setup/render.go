package setup

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Paths on the target system (under Target.Root).
const (
	DefaultConfigPath = "/etc/outpost/outpost.yaml"
	DataDir           = "/var/lib/outpost"
	MarkerPath        = DataDir + "/setup-done"
	TokenPath         = DataDir + "/admin-token"     // the node's default token file (appliance/node.TokenPath)
	BreakGlassPath    = DataDir + "/breakglass.json" // appliance/web/ui.BreakGlassFile
	CredentialsPath   = DataDir + "/cloud.json"      // cloud.credentials_file's default, written by `outpost pair`
	NetworkPath       = "/etc/systemd/network/10-outpost.network"
	TimesyncPath      = "/etc/systemd/timesyncd.conf.d/outpost.conf"
	ResolvedPath      = "/etc/systemd/resolved.conf.d/outpost.conf"
	ResolvConfPath    = "/etc/resolv.conf"
	HostnamePath      = "/etc/hostname"
	HostsPath         = "/etc/hosts"
	// AutoErrorPath keeps why unattended settings were refused, for the
	// console setup to show (it is on /run: gone at the next boot).
	AutoErrorPath = "/run/outpost-setup.error"
	// resolvedStub is where /etc/resolv.conf points with systemd-resolved
	// and its stub listener off: the upstream servers themselves.
	resolvedResolvConf = "../run/systemd/resolve/resolv.conf"
)

// The node's listeners on the appliance.
const (
	sipListen   = "0.0.0.0:5060"
	httpListen  = "0.0.0.0:8080"
	httpsListen = "0.0.0.0:443"
	raftListen  = "0.0.0.0:7000"
	dnsListen   = "0.0.0.0:53"
	httpPort    = "8080"
	raftPort    = "7000"
)

// File is one file setup writes, at Path on the target system.
type File struct {
	Path string
	Data []byte
	Mode fs.FileMode
	// Secret files are owned by the service user when it exists.
	Secret bool
	// Symlink, when set, makes Path a symbolic link to it instead.
	Symlink string
	// Backup keeps a different earlier file as Path.before-setup.
	Backup bool
}

// System is what rendering needs to know of the target system.
type System struct {
	// ConfigPath is where the node configuration goes
	// (DefaultConfigPath when empty).
	ConfigPath string
	// Resolved is whether systemd-resolved is installed.
	Resolved bool
	// Hosts is the current /etc/hosts (nil: none).
	Hosts []byte
	// Now stamps the files.
	Now time.Time
	// Source says where the settings came from ("console", a seed).
	Source string
}

// Render turns valid settings into the files to write, in writing order,
// the marker last. It does not write anything; settings that do not
// validate are an error.
func Render(s Settings, sys System) ([]File, error) {
	if ps := s.Validate(); len(ps) > 0 {
		return nil, fmt.Errorf("settings: %s: %s", ps[0].Field, ps[0].Message)
	}
	if sys.ConfigPath == "" {
		sys.ConfigPath = DefaultConfigPath
	}
	stamp := sys.Now.UTC().Format(time.RFC3339)
	header := "# Written by `outpost setup` on " + stamp + "; run it again to change.\n"
	files := []File{
		{Path: sys.ConfigPath, Data: []byte(renderConfig(s, header)), Mode: 0o644, Backup: true},
		{Path: HostnamePath, Data: []byte(s.ShortHostname() + "\n"), Mode: 0o644},
		{Path: HostsPath, Data: renderHosts(s, sys.Hosts), Mode: 0o644},
		{Path: NetworkPath, Data: []byte(renderNetwork(s, header)), Mode: 0o644},
		{Path: TimesyncPath, Data: []byte(header + "[Time]\nNTP=" + strings.Join(s.NTP, " ") + "\n"), Mode: 0o644},
	}
	if sys.Resolved {
		// Resolved's stub listener would hold port 53, which the node's
		// DNS server binds: off, and resolv.conf names the servers.
		conf := header + "[Resolve]\n"
		if len(s.DNS) > 0 {
			conf += "DNS=" + joinAddrs(s.DNS) + "\n"
		}
		conf += "DNSStubListener=no\n"
		files = append(files,
			File{Path: ResolvedPath, Data: []byte(conf), Mode: 0o644},
			File{Path: ResolvConfPath, Symlink: resolvedResolvConf})
	} else if len(s.DNS) > 0 {
		var b strings.Builder
		b.WriteString(header)
		for _, a := range s.DNS {
			b.WriteString("nameserver " + a.String() + "\n")
		}
		files = append(files, File{Path: ResolvConfPath, Data: []byte(b.String()), Mode: 0o644})
	}
	marker, err := renderMarker(s, stamp, sys.Source)
	if err != nil {
		return nil, err
	}
	files = append(files, File{Path: MarkerPath, Data: marker, Mode: 0o644})
	return files, nil
}

// q quotes a string for YAML (a JSON string is a YAML double-quoted one).
func q(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// renderConfig writes the node configuration (config's file format): the
// keys the setup decides, every other key at its default.
func renderConfig(s Settings, header string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	b.WriteString(header)
	b.WriteString("# Every key is in configuration.md (/usr/share/doc/outpost/); what is not\n" +
		"# here has its default. An earlier, different file is kept as\n# outpost.yaml.before-setup.\n")
	w("node_id: %s\nsite: %s\ndata_dir: %s\n", q(s.EffectiveNodeID()), q(s.Site), q(DataDir))
	host := ""
	if !s.DHCP {
		host = s.Address.Addr().String()
	}
	w("sip:\n  udp: %s\n  tcp: %s\n", q(sipListen), q(sipListen))
	if host != "" {
		w("  advertise: %s\n", q(host))
	}
	w("http:\n  listen: %s\n  # HTTPS with a self-signed certificate the node makes at its first start\n  # (<data_dir>/http-tls); set tls_cert and tls_key for your own.\n  tls_listen: %s\n", q(httpListen), q(httpsListen))
	if host != "" {
		w("  advertise: %s\n", q(net.JoinHostPort(host, httpPort)))
	}
	w("raft:\n  listen: %s\n", q(raftListen))
	if host != "" {
		w("  advertise: %s\n", q(net.JoinHostPort(host, raftPort)))
	}
	if s.Joining() {
		w("  # Joins the cluster of these members; never forms its own.\n  bootstrap: false\n  join:\n")
		for _, j := range s.Join {
			w("    - %s\n", q(j))
		}
	} else {
		w("  bootstrap: true\n")
	}
	if s.DNSDomain != "" {
		w("dns:\n  listen: %s\n  domain: %s\n", q(dnsListen), q(s.DNSDomain))
	}
	if s.CloudURL != "" {
		w("cloud:\n  url: %s\n", q(s.CloudURL))
	}
	return b.String()
}

// renderNetwork writes the systemd-networkd unit.
func renderNetwork(s Settings, header string) string {
	var b strings.Builder
	b.WriteString(header)
	b.WriteString("[Match]\n")
	if mac, ok := MACAddress(s.Interface); ok {
		b.WriteString("MACAddress=" + mac + "\n")
	} else if s.Interface != "" {
		b.WriteString("Name=" + s.Interface + "\n")
	} else {
		b.WriteString("Type=ether\n")
	}
	b.WriteString("\n[Network]\n")
	if s.DHCP {
		b.WriteString("DHCP=yes\n")
	} else {
		b.WriteString("Address=" + s.Address.String() + "\nGateway=" + s.Gateway.String() + "\n")
	}
	for _, a := range s.DNS {
		b.WriteString("DNS=" + a.String() + "\n")
	}
	if s.DHCP && len(s.DNS) > 0 {
		// The servers given replace the DHCP server's.
		b.WriteString("\n[DHCPv4]\nUseDNS=no\n\n[IPv6AcceptRA]\nUseDNS=no\n")
	}
	return b.String()
}

func joinAddrs(as []netip.Addr) string {
	ss := make([]string, len(as))
	for i, a := range as {
		ss[i] = a.String()
	}
	return strings.Join(ss, " ")
}

const defaultHosts = `127.0.0.1	localhost

# The following lines are desirable for IPv6 capable hosts
::1     localhost ip6-localhost ip6-loopback
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
`

// renderHosts puts "127.0.1.1 <fqdn> <short>" in /etc/hosts (Debian's
// way of naming the host), replacing any earlier 127.0.1.1 line and
// keeping the rest.
func renderHosts(s Settings, current []byte) []byte {
	names := s.ShortHostname()
	if s.Hostname != names {
		names = s.Hostname + " " + names
	}
	ours := "127.0.1.1\t" + names
	if len(bytes.TrimSpace(current)) == 0 {
		current = []byte(defaultHosts)
	}
	var out []string
	placed := false
	for _, line := range strings.Split(strings.TrimRight(string(current), "\n"), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 0 && fields[0] == "127.0.1.1" {
			continue
		}
		out = append(out, line)
		if !placed && len(fields) > 0 && fields[0] == "127.0.0.1" {
			out = append(out, ours)
			placed = true
		}
	}
	if !placed {
		out = append([]string{ours}, out...)
	}
	return []byte(strings.Join(out, "\n") + "\n")
}

// Marker is the setup-done file: when and from what the node was set up,
// and the settings without secrets (the defaults of a later setup).
type Marker struct {
	DoneAt   string   `json:"done_at"`
	Source   string   `json:"source"`
	Settings Settings `json:"settings"`
}

func renderMarker(s Settings, stamp, source string) ([]byte, error) {
	if source == "" {
		source = "console"
	}
	data, err := json.MarshalIndent(Marker{DoneAt: stamp, Source: source, Settings: s}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("setup-done marker: %w", err)
	}
	return append(data, '\n'), nil
}

// ReadMarker reads the setup-done marker at path: nil when the node is
// not set up. A marker that is not the setup's JSON (made by hand) counts:
// set up, settings unknown.
func ReadMarker(path string) (*Marker, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("setup-done marker: %w", err)
	}
	var m Marker
	if err := json.Unmarshal(data, &m); err != nil {
		return &Marker{DoneAt: "an earlier boot", Source: path, Settings: Defaults("", "")}, nil
	}
	return &m, nil
}

// HasResolved reports whether systemd-resolved is installed under root.
func HasResolved(root string) bool {
	for _, p := range []string{"/lib/systemd/systemd-resolved", "/usr/lib/systemd/systemd-resolved"} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			return true
		}
	}
	return false
}
