package main

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/web/ui"
	"github.com/outpost-voice/outpost/config"
	"golang.org/x/crypto/bcrypt"
)

const setupPassword = "correct horse battery"

// TestSetupUnderTmux drives the console setup as an admin would, on a
// terminal: tmux runs the real binary, send-keys types the answers and
// capture-pane reads the screen. A bad IP address and a short password
// are refused with a clear message and asked again; then the files it
// writes are checked.
func TestSetupUnderTmux(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (apt-get install tmux; scripts/deps.sh installs it): the console setup is not driven on a terminal")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "outpost")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	tm := &tmux{t: t, sock: filepath.Join(dir, "tmux.sock")}
	cmd := shellQuote(bin) + " setup --root " + shellQuote(root) + " --no-apply --interface eth-test; echo \"exit status $?\"; read x"
	tm.run("-f", "/dev/null", "new-session", "-d", "-x", "120", "-y", "40", "-s", "setup", cmd)
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", tm.sock, "kill-server").Run() })

	tm.answer("Admin user name [admin]: ", 1, "")
	passwordPrompt := "Admin password (at least 12 characters, not shown): "
	tm.answer(passwordPrompt, 1, "short")
	tm.expect("  ! password too short: at least 12 characters", 1)
	tm.answer(passwordPrompt, 2, setupPassword)
	tm.answer("Admin password again: ", 1, setupPassword)
	tm.answer("Host name [", 1, "pbx-tmux")
	tm.answer("Network: dhcp or static [dhcp]: ", 1, "static")
	addrPrompt := "IP address with prefix (like 192.0.2.10/24): "
	tm.answer(addrPrompt, 1, "10.0.0.300/24")
	tm.expect("  ! 10.0.0.300/24 is not an IPv4/IPv6 address with a prefix (like 192.0.2.10/24)", 1)
	tm.answer(addrPrompt, 2, "192.0.2.10/24")
	tm.answer("Gateway (like 192.0.2.1): ", 1, "198.51.100.1")
	tm.expect("  ! gateway 198.51.100.1 is not in 192.0.2.0/24, the subnet of 192.0.2.10/24", 1)
	tm.answer("Gateway (like 192.0.2.1): ", 2, "192.0.2.1")
	tm.answer("DNS servers, 1 to 3, separated by spaces: ", 1, "192.0.2.53 192.0.2.54")
	tm.answer("NTP servers, separated by spaces [0.debian.pool.ntp.org 1.debian.pool.ntp.org]: ", 1, "")
	tm.answer("Site (whose phones this node serves first) [hq]: ", 1, "branch")
	tm.answer("Node id (unique in the cluster) [pbx-tmux]: ", 1, "")
	tm.answer("Phone DNS zone", 1, "")
	tm.answer("Join a cluster?", 1, "")
	tm.answer("Cloud URL", 1, "https://cloud.outpost.example")
	tm.answer("Pairing code from the cloud", 1, "")
	tm.expect("  network          static 192.0.2.10/24, gateway 192.0.2.1", 1)
	tm.answer("Write this configuration and start Outpost? [y/N]: ", 1, "y")
	tm.answer("Press Enter to finish. ", 1, "")
	screen := tm.expect("exit status 0", 1)
	for _, w := range []string{"Outpost is set up.", "Web UI:   https://192.0.2.10/", "Not paired yet; with a pairing code from the cloud:\n    outpost pair --config /etc/outpost/outpost.yaml --cloud https://cloud.outpost.example --code CODE"} {
		if !strings.Contains(screen, w) {
			t.Errorf("the screen lacks %q", w)
		}
	}
	if strings.Contains(screen, setupPassword) || strings.Contains(screen, "short\n") {
		t.Errorf("a password was echoed:\n%s", screen)
	}
	t.Logf("the console at the end:\n%s", screen)
	if tok, err := os.ReadFile(filepath.Join(root, "var/lib/outpost/admin-token")); err != nil ||
		!strings.Contains(screen, "Cluster token: "+strings.TrimSpace(string(tok))+"\n") {
		t.Errorf("the cluster token (%q, %v) is not shown", tok, err)
	}

	// The node configuration loads and validates with the config package.
	c, err := config.Load(filepath.Join(root, "etc/outpost/outpost.yaml"), nil)
	if err != nil {
		t.Fatalf("outpost.yaml: %v", err)
	}
	if c.NodeID != "pbx-tmux" || c.Site != "branch" || c.DataDir != "/var/lib/outpost" || c.HTTP.TLSListen != "0.0.0.0:443" ||
		!c.HTTP.SelfSigned() || c.SIP.Advertise != "192.0.2.10" || c.Raft.Advertise != "192.0.2.10:7000" ||
		!c.Raft.Bootstrap || c.Cloud.URL != "https://cloud.outpost.example" {
		t.Errorf("config %+v", c)
	}
	// The break-glass admin signs in with the password typed.
	bg, err := ui.ReadBreakGlass(filepath.Join(root, "var/lib/outpost", ui.BreakGlassFile))
	if err != nil || bg == nil || bg.Username != "admin" || bcrypt.CompareHashAndPassword([]byte(bg.Bcrypt), []byte(setupPassword)) != nil {
		t.Errorf("breakglass.json: %+v %v", bg, err)
	}
	checkFile(t, root, "etc/systemd/network/10-outpost.network", "Name=eth-test", "Address=192.0.2.10/24", "Gateway=192.0.2.1", "DNS=192.0.2.53\nDNS=192.0.2.54")
	checkFile(t, root, "etc/hostname", "pbx-tmux\n")
	checkFile(t, root, "etc/hosts", "127.0.1.1\tpbx-tmux\n")
	checkFile(t, root, "etc/resolv.conf", "nameserver 192.0.2.53\nnameserver 192.0.2.54\n")
	checkFile(t, root, "etc/systemd/timesyncd.conf.d/outpost.conf", "NTP=0.debian.pool.ntp.org 1.debian.pool.ntp.org")
	checkFile(t, root, "var/lib/outpost/setup-done", `"source": "console"`)
}

func checkFile(t *testing.T, root, path string, want ...string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	for _, w := range want {
		if !strings.Contains(string(data), w) {
			t.Errorf("%s lacks %q:\n%s", path, w, data)
		}
	}
}

// tmux drives one tmux server on its own socket.
type tmux struct {
	t    *testing.T
	sock string
}

func (tm *tmux) run(args ...string) string {
	tm.t.Helper()
	cmd := exec.Command("tmux", append([]string{"-S", tm.sock}, args...)...)
	cmd.Env = append(os.Environ(), "TERM=xterm")
	out, err := cmd.CombinedOutput()
	if err != nil {
		tm.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// screen is the pane with its history, wrapped lines joined.
func (tm *tmux) screen() string {
	return tm.run("capture-pane", "-p", "-J", "-t", "setup", "-S", "-")
}

// expect waits until text is on the screen n times and returns the screen.
func (tm *tmux) expect(text string, n int) string {
	tm.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		s := tm.screen()
		if strings.Count(s, text) >= n {
			return s
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("waited 30 s for %q (%d times); the screen:\n%s", text, n, s)
		}
		<-tick.C
	}
}

// answer waits for the n-th prompt and types a line.
func (tm *tmux) answer(prompt string, n int, line string) {
	tm.t.Helper()
	tm.expect(prompt, n)
	if line != "" {
		tm.run("send-keys", "-t", "setup", "-l", line)
	}
	tm.run("send-keys", "-t", "setup", "Enter")
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// TestSetupUnattended runs `outpost setup --nocloud`, `--ovf` and `--auto`
// into temporary roots: good seeds are written; bad ones are refused with
// the key named and nothing written.
func TestSetupUnattended(t *testing.T) {
	seedDir := func(userData string) string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "user-data"), []byte(userData), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "meta-data"), []byte("instance-id: i-1\nlocal-hostname: pbx-seed\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	good := "#cloud-config\noutpost:\n  admin_password_hash: " + mustHash(t, setupPassword) +
		"\n  join: [10.0.0.1:8080]\n  cluster_token: abcd-efgh-ijkl-mnop\n  site: branch\n"

	root := t.TempDir()
	out, stderr, code := runCLI(t, "setup", "--nocloud", seedDir(good), "--root", root, "--no-apply", "--interface", "eth9")
	if code != 0 {
		t.Fatalf("--nocloud: exit %d\n%s\n%s", code, out, stderr)
	}
	c, err := config.Load(filepath.Join(root, "etc/outpost/outpost.yaml"), nil)
	if err != nil || c.NodeID != "pbx-seed" || c.Raft.Bootstrap || len(c.Raft.Join) != 1 || c.Site != "branch" {
		t.Errorf("config %+v %v", c, err)
	}
	bg, err := ui.ReadBreakGlass(filepath.Join(root, "var/lib/outpost", ui.BreakGlassFile))
	if err != nil || bg == nil || bcrypt.CompareHashAndPassword([]byte(bg.Bcrypt), []byte(setupPassword)) != nil {
		t.Errorf("breakglass.json from the hash: %+v %v", bg, err)
	}
	checkFile(t, root, "var/lib/outpost/admin-token", "abcd-efgh-ijkl-mnop\n")
	checkFile(t, root, "etc/systemd/network/10-outpost.network", "Name=eth9", "DHCP=yes")

	if !strings.Contains(out, "settings from NoCloud seed") || !strings.Contains(out, "cluster          joins 10.0.0.1:8080") {
		t.Errorf("--nocloud output:\n%s", out)
	}

	// A first node from vApp properties: the journal gets no secret.
	ovfRoot := t.TempDir()
	out, stderr, code = runCLI(t, "setup", "--root", ovfRoot, "--no-apply", "--interface", "eth9", "--ovf", ovfFile(t,
		`<Property oe:key="outpost.admin_password_hash" oe:value="`+mustHash(t, setupPassword)+`"/>
		<Property oe:key="outpost.cloud_url" oe:value="https://cloud.outpost.example"/>
		<Property oe:key="outpost.pairing_code" oe:value="7KQ2M-ZX9PA-3DT8R"/><Property oe:key="outpost.ip" oe:value=""/>`))
	tok, _ := os.ReadFile(filepath.Join(ovfRoot, "var/lib/outpost/admin-token"))
	if code != 0 || !strings.Contains(out, "pairing code (given)") || len(tok) < 16 || strings.Contains(out, strings.TrimSpace(string(tok))) ||
		!strings.Contains(out, "Cluster token: in /var/lib/outpost/admin-token") {
		t.Errorf("--ovf: exit %d\n%s\n%s", code, out, stderr)
	}

	// Set up already: refused without --force; --auto does nothing.
	if _, stderr, code := runCLI(t, "setup", "--nocloud", seedDir(good), "--root", root, "--no-apply"); code != 1 || !strings.Contains(stderr, "pass --force") {
		t.Errorf("again: exit %d %q", code, stderr)
	}
	if out, _, code := runCLI(t, "setup", "--auto", "--root", root); code != 0 || !strings.Contains(out, "already set up") {
		t.Errorf("--auto when set up: exit %d %q", code, out)
	}

	// Bad input: the key is named and nothing is written.
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"nocloud address": {[]string{"--nocloud", seedDir("#cloud-config\noutpost:\n  admin_password: " + setupPassword +
			"\n  network: {address: 10.0.0.300/24, gateway: 10.0.0.1}\n  dns: [10.0.0.53]\n")},
			"user-data: outpost.network.address: 10.0.0.300/24 is not an IPv4/IPv6 address with a prefix (like 192.0.2.10/24)"},
		"nocloud password": {[]string{"--nocloud", seedDir("#cloud-config\noutpost:\n  admin_password: short\n")},
			"user-data: outpost.admin_password: password too short: at least 12 characters"},
		"nocloud not ours": {[]string{"--nocloud", seedDir("#cloud-config\npackages: [vim]\n")},
			"its user-data has no outpost: mapping: nothing to set up"},
		"ovf ip": {[]string{"--ovf", ovfFile(t, `<Property oe:key="outpost.admin_password" oe:value="`+setupPassword+`"/>
			<Property oe:key="outpost.ip" oe:value="192.0.2.10"/><Property oe:key="outpost.gateway" oe:value="192.0.2.1"/>
			<Property oe:key="outpost.dns" oe:value="192.0.2.53"/>`)},
			"outpost.ip: 192.0.2.10 has no prefix length: add it, like 192.0.2.10/24"},
	} {
		empty := t.TempDir()
		args := append([]string{"setup", "--root", empty, "--no-apply", "--interface", "eth9"}, tc.args...)
		_, stderr, code := runCLI(t, args...)
		if code != 1 || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "nothing") {
			t.Errorf("%s: exit %d, stderr %q; want %q", name, code, stderr, tc.want)
		}
		if files := listFiles(t, empty); len(files) > 0 {
			t.Errorf("%s: written %v", name, files)
		}
	}

	// --auto finds a seed directory under the root; a bad one is kept for
	// the console setup to show.
	autoRoot := t.TempDir()
	seed := filepath.Join(autoRoot, "var/lib/cloud/seed/nocloud")
	if err := os.MkdirAll(seed, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(seed, "user-data"), []byte("#cloud-config\noutpost:\n  admin_password: short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runCLI(t, "setup", "--auto", "--root", autoRoot); code != 1 || !strings.Contains(stderr, "password too short") {
		t.Errorf("--auto with a bad seed: exit %d %q", code, stderr)
	}
	checkFile(t, autoRoot, "run/outpost-setup.error", "user-data: outpost.admin_password: password too short")
	if _, err := os.Stat(filepath.Join(autoRoot, "var/lib/outpost/setup-done")); err == nil {
		t.Error("a refused seed wrote the marker")
	}
	// The console setup shows why, asks, and writes nothing when declined.
	stdin = strings.NewReader("\n" + setupPassword + "\n" + setupPassword + "\n" + strings.Repeat("\n", 9) + "n\nn\n")
	t.Cleanup(func() { stdin = os.Stdin })
	out, stderr, code = runCLI(t, "setup", "--root", autoRoot, "--interface", "eth9")
	if code != 1 || !strings.Contains(stderr, "setup stopped at your request; nothing was written") ||
		!strings.Contains(out, "Unattended settings were found but refused:\n  NoCloud seed ") ||
		!strings.Contains(out, "user-data: outpost.admin_password: password too short") {
		t.Errorf("console after a refused seed: exit %d\n%s\n%s", code, out, stderr)
	}
	if _, err := os.Stat(filepath.Join(autoRoot, "var/lib/outpost")); err == nil {
		t.Error("a declined console setup wrote the data directory")
	}
	if out, _, code := runCLI(t, "setup", "--auto", "--root", t.TempDir()); code != 0 || !strings.Contains(out, "no unattended settings found") {
		t.Errorf("--auto with nothing: exit %d %q", code, out)
	}

	if _, stderr, code := runCLI(t, "setup", "--auto", "--ovf", "x"); code != 2 || !strings.Contains(stderr, "one of --auto, --nocloud and --ovf") {
		t.Errorf("two modes: exit %d %q", code, stderr)
	}
}

func mustHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func ovfFile(t *testing.T, props string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ovf-env.xml")
	doc := `<?xml version="1.0" encoding="UTF-8"?>
<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" xmlns:oe="http://schemas.dmtf.org/ovf/environment/1">
  <PropertySection>` + props + `</PropertySection>
</Environment>`
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func listFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	return files
}
