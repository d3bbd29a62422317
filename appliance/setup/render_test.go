package setup

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/config"
)

var stamp = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

// fakeAdmin records the break-glass admin as the real writer's caller
// sees it, without bcrypt's cost.
func fakeWriter(root string) Writer {
	set := func(path, user, secret string) error {
		return WriteFileAtomic(path, []byte(`{"username":"`+user+`","secret":"`+secret+`"}`), 0o600)
	}
	return Writer{Root: root, SetAdmin: set, SetAdminHash: set}
}

func filesByPath(fs []File) map[string]File {
	m := map[string]File{}
	for _, f := range fs {
		m[f.Path] = f
	}
	return m
}

func TestRenderStatic(t *testing.T) {
	s := goodStatic()
	s.DNSDomain = "survive.acme.example"
	s.CloudURL = "https://cloud.outpost.example"
	s.Hostname = "pbx-1.acme.example"
	files, err := Render(s, System{Now: stamp})
	if err != nil {
		t.Fatal(err)
	}
	m := filesByPath(files)
	if files[len(files)-1].Path != MarkerPath {
		t.Errorf("the marker is not written last: %s", files[len(files)-1].Path)
	}
	for path, want := range map[string][]string{
		NetworkPath:    {"[Match]\nName=eth0\n", "Address=192.0.2.10/24\nGateway=192.0.2.1\nDNS=192.0.2.53\n"},
		TimesyncPath:   {"[Time]\nNTP=0.debian.pool.ntp.org 1.debian.pool.ntp.org\n"},
		ResolvConfPath: {"nameserver 192.0.2.53\n"},
		HostnamePath:   {"pbx-1\n"},
		HostsPath:      {"127.0.0.1\tlocalhost\n127.0.1.1\tpbx-1.acme.example pbx-1\n", "ip6-allnodes"},
		DefaultConfigPath: {`node_id: "pbx-1"`, `advertise: "192.0.2.10:7000"`, `tls_listen: "0.0.0.0:443"`,
			`bootstrap: true`, `domain: "survive.acme.example"`, `url: "https://cloud.outpost.example"`},
	} {
		got := string(m[path].Data)
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s lacks %q:\n%s", path, w, got)
			}
		}
	}
	if strings.Contains(string(m[MarkerPath].Data), s.AdminPassword) {
		t.Error("the marker holds the password")
	}
	if _, ok := m[ResolvedPath]; ok {
		t.Error("resolved.conf.d written without systemd-resolved")
	}

	// The configuration is config's format and validates.
	dir := t.TempDir()
	path := filepath.Join(dir, "outpost.yaml")
	if err := os.WriteFile(path, m[DefaultConfigPath].Data, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path, nil)
	if err != nil {
		t.Fatalf("config does not load: %v\n%s", err, m[DefaultConfigPath].Data)
	}
	if c.NodeID != "pbx-1" || c.Site != "hq" || !c.Raft.Bootstrap || len(c.Raft.Join) != 0 ||
		c.SIP.Advertise != "192.0.2.10" || c.HTTP.Advertise != "192.0.2.10:8080" || !c.HTTP.SelfSigned() ||
		c.DNS.Listen != "0.0.0.0:53" || c.DataDir != DataDir || c.Cloud.URL != "https://cloud.outpost.example" {
		t.Errorf("config: %+v", c)
	}
}

func TestRenderDHCPJoinResolved(t *testing.T) {
	s := Defaults("pbx-2", "BC:24:11:2A:3B:4C")
	s.AdminPassword = "correct horse battery"
	s.DNS = []netip.Addr{netip.MustParseAddr("2001:db8::53")}
	s.Join = []string{"10.0.0.1:8080", "https://pbx-1.acme.example"}
	s.ClusterToken = NewToken()
	files, err := Render(s, System{Now: stamp, Resolved: true, Hosts: []byte("127.0.0.1 localhost\n127.0.1.1 debian\n10.9.9.9 printer\n")})
	if err != nil {
		t.Fatal(err)
	}
	m := filesByPath(files)
	network := string(m[NetworkPath].Data)
	for _, w := range []string{"MACAddress=bc:24:11:2a:3b:4c\n", "DHCP=yes", "DNS=2001:db8::53", "[DHCPv4]\nUseDNS=no"} {
		if !strings.Contains(network, w) {
			t.Errorf("network lacks %q:\n%s", w, network)
		}
	}
	if got := string(m[ResolvedPath].Data); !strings.Contains(got, "DNS=2001:db8::53\nDNSStubListener=no\n") {
		t.Errorf("resolved.conf.d:\n%s", got)
	}
	if m[ResolvConfPath].Symlink != "../run/systemd/resolve/resolv.conf" {
		t.Errorf("resolv.conf: %+v", m[ResolvConfPath])
	}
	if got, want := string(m[HostsPath].Data), "127.0.0.1 localhost\n127.0.1.1\tpbx-2\n10.9.9.9 printer\n"; got != want {
		t.Errorf("hosts = %q, want %q", got, want)
	}
	cfg := string(m[DefaultConfigPath].Data)
	if !strings.Contains(cfg, "bootstrap: false\n  join:\n    - \"10.0.0.1:8080\"\n    - \"https://pbx-1.acme.example\"\n") ||
		strings.Contains(cfg, "advertise") || strings.Contains(cfg, "dns:") || strings.Contains(cfg, "cloud:") {
		t.Errorf("config:\n%s", cfg)
	}
}

func TestRenderRefusesInvalid(t *testing.T) {
	s := goodStatic()
	s.Gateway = netip.MustParseAddr("198.51.100.1")
	if _, err := Render(s, System{}); err == nil || !strings.Contains(err.Error(), "network.gateway") {
		t.Fatalf("Render: %v, want the gateway refused", err)
	}
}

func TestWrite(t *testing.T) {
	root := t.TempDir()
	w := fakeWriter(root)
	// An earlier configuration is kept.
	if err := WriteFileAtomic(w.Path(DefaultConfigPath), []byte("site: old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := goodStatic()
	files, err := Render(s, System{Now: stamp, Resolved: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := w.Write(s, files)
	if err != nil {
		t.Fatal(err)
	}
	if !got.TokenNew || CheckClusterToken(got.Token) != nil {
		t.Errorf("token %q new %v", got.Token, got.TokenNew)
	}
	if got.Backup != DefaultConfigPath+".before-setup" {
		t.Errorf("backup %q", got.Backup)
	}
	for path, mode := range map[string]os.FileMode{BreakGlassPath: 0o600, TokenPath: 0o600, DefaultConfigPath: 0o644, MarkerPath: 0o644, NetworkPath: 0o644} {
		fi, err := os.Stat(w.Path(path))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v %v; want mode %v", path, fi.Mode(), err, mode)
		}
	}
	if fi, err := os.Stat(w.Path(DataDir)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir: %v %v", fi.Mode(), err)
	}
	if link, err := os.Readlink(w.Path(ResolvConfPath)); err != nil || link != "../run/systemd/resolve/resolv.conf" {
		t.Errorf("resolv.conf link %q %v", link, err)
	}
	if tok, _ := os.ReadFile(w.Path(TokenPath)); string(tok) != got.Token+"\n" {
		t.Errorf("token file %q", tok)
	}
	var mk Marker
	data, _ := os.ReadFile(w.Path(MarkerPath))
	if err := json.Unmarshal(data, &mk); err != nil || mk.Settings.Address != s.Address || mk.Settings.Hostname != "pbx-1" || mk.Source != "console" {
		t.Errorf("marker %+v %v\n%s", mk, err, data)
	}
	// Again: the token is kept; a joining node gets the cluster's.
	again, err := w.Write(s, files)
	if err != nil || again.Token != got.Token || again.TokenNew {
		t.Errorf("second write: token %q new %v err %v; want %q kept", again.Token, again.TokenNew, err, got.Token)
	}
	s.Join, s.ClusterToken = []string{"10.0.0.1:8080"}, "abcd-efgh-ijkl-mnop"
	joined, err := w.Write(s, files)
	if err != nil || joined.Token != "abcd-efgh-ijkl-mnop" {
		t.Errorf("join write: %q %v", joined.Token, err)
	}
	// No temporary files are left behind.
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if strings.Contains(filepath.Base(p), ".tmp-") {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
}

func TestWriteStopsOnAdminError(t *testing.T) {
	root := t.TempDir()
	w := fakeWriter(root)
	w.SetAdmin = func(string, string, string) error { return errors.New("disk full") }
	s := goodStatic()
	files, _ := Render(s, System{Now: stamp})
	if _, err := w.Write(s, files); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Write: %v", err)
	}
	if _, err := os.Stat(w.Path(MarkerPath)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("marker written after a failure: %v", err)
	}
}

func TestLookupUser(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "passwd")
	_ = os.WriteFile(p, []byte("root:x:0:0:root:/root:/bin/bash\noutpost:x:998:997::/var/lib/outpost:/usr/sbin/nologin\n"), 0o644)
	uid, gid, ok, err := lookupUser(p, "outpost")
	if err != nil || !ok || uid != 998 || gid != 997 {
		t.Errorf("lookupUser = %d %d %v %v", uid, gid, ok, err)
	}
	if _, _, ok, err := lookupUser(filepath.Join(dir, "none"), "outpost"); ok || err != nil {
		t.Errorf("missing passwd: %v %v", ok, err)
	}
	// Without the user, Own leaves the file alone.
	w := Writer{Root: dir}
	if err := w.Own("/passwd"); err != nil {
		t.Errorf("Own without a service user: %v", err)
	}
}

func TestPlanAndApply(t *testing.T) {
	s := goodStatic()
	s.CloudURL, s.PairingCode = "https://cloud.outpost.example", "7KQ2M-ZX9PA-3DT8R"
	steps := Plan(s, System{Resolved: true})
	var ran []string
	run := func(_ context.Context, stdin, name string, args ...string) (string, error) {
		line := strings.Join(append([]string{name}, args...), " ")
		ran = append(ran, line)
		switch {
		case name == "hostnamectl":
			return "", errors.New("no dbus")
		case name == "chpasswd" && stdin != "root:correct horse battery\n":
			t.Errorf("chpasswd stdin %q", stdin)
		case name == "systemctl" && strings.Contains(line, "timesyncd"):
			return "", errors.New("unit not found")
		}
		return "", nil
	}
	var paired string
	pair := func(_ context.Context, configPath, url, code string) error {
		paired = configPath + " " + url + " " + code
		return errors.New("pairing code refused")
	}
	var out strings.Builder
	rep, err := Apply(context.Background(), steps, s, DefaultConfigPath, run, pair, &out)
	if err != nil {
		t.Fatalf("Apply: %v\n%s", err, out.String())
	}
	want := []string{
		"hostnamectl set-hostname pbx-1", "hostname pbx-1",
		"systemctl enable --now systemd-networkd.service", "networkctl reload", "networkctl reconfigure eth0",
		"systemctl restart systemd-resolved.service", "systemctl restart systemd-timesyncd.service", "chpasswd",
		waitOnline + " --timeout=60 --interface=eth0",
		"systemctl enable outpost.service", "systemctl start --no-block outpost.service",
	}
	if strings.Join(ran, "\n") != strings.Join(want, "\n") {
		t.Errorf("ran:\n%s\nwant:\n%s", strings.Join(ran, "\n"), strings.Join(want, "\n"))
	}
	if paired != DefaultConfigPath+" https://cloud.outpost.example 7KQ2M-ZX9PA-3DT8R" || rep.Paired || rep.PairError == nil {
		t.Errorf("pairing: %q %+v", paired, rep)
	}
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "timesyncd") {
		t.Errorf("warnings %v", rep.Warnings)
	}
	if strings.Contains(out.String(), "correct horse") {
		t.Error("the password was shown")
	}

	// A required step failing stops the apply.
	failing := func(_ context.Context, _, name string, args ...string) (string, error) {
		if len(args) > 0 && args[len(args)-1] == "outpost.service" {
			return "", errors.New("unit outpost.service not found")
		}
		return "", nil
	}
	s.PairingCode = ""
	if _, err := Apply(context.Background(), Plan(s, System{}), s, DefaultConfigPath, failing, pair, &out); err == nil ||
		!strings.Contains(err.Error(), "enable the outpost service") {
		t.Errorf("Apply with outpost.service missing: %v", err)
	}
}

func TestInterfaceMatch(t *testing.T) {
	for iface, want := range map[string]string{
		"":                  "[Match]\nType=ether\n",
		"ens18":             "[Match]\nName=ens18\n",
		"en*":               "[Match]\nName=en*\n",
		"BC:24:11:2A:3B:4C": "[Match]\nMACAddress=bc:24:11:2a:3b:4c\n",
	} {
		s := goodStatic()
		s.Interface = iface
		if got := renderNetwork(s, ""); !strings.HasPrefix(got, want) {
			t.Errorf("interface %q: %q, want %q first", iface, got, want)
		}
		reconfigure := false
		for _, st := range Plan(s, System{}) {
			reconfigure = reconfigure || st.Cmd != nil && st.Cmd[0] == "networkctl" && st.Cmd[1] == "reconfigure"
		}
		if reconfigure != (iface == "ens18") {
			t.Errorf("interface %q: networkctl reconfigure planned: %v", iface, reconfigure)
		}
	}
}

// The marker round-trips: a later console setup starts from its settings.
func TestReadMarker(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "setup-done")
	if m, err := ReadMarker(p); m != nil || err != nil {
		t.Fatalf("no marker: %v %v", m, err)
	}
	s := goodStatic()
	files, _ := Render(s, System{Now: stamp, Source: "ovf-env.xml"})
	_ = os.WriteFile(p, files[len(files)-1].Data, 0o644)
	m, err := ReadMarker(p)
	if err != nil || m.Source != "ovf-env.xml" || m.Settings.Address != s.Address || m.Settings.Gateway != s.Gateway ||
		m.Settings.AdminPassword != "" || len(m.Settings.DNS) != 1 {
		t.Errorf("marker %+v %v", m, err)
	}
	_ = os.WriteFile(p, nil, 0o644) // touched by hand
	if m, err := ReadMarker(p); err != nil || m == nil {
		t.Errorf("touched marker: %v %v", m, err)
	}
	if HasResolved(dir) {
		t.Error("resolved found in an empty root")
	}
	_ = os.MkdirAll(filepath.Join(dir, "usr/lib/systemd"), 0o755)
	_ = os.WriteFile(filepath.Join(dir, "usr/lib/systemd/systemd-resolved"), nil, 0o755)
	if !HasResolved(dir) {
		t.Error("resolved not found")
	}
}
