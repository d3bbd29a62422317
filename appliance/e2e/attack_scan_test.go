package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// disguise is the User-Agent the scanners use when they are not to be
// recognised: a desk phone's.
const disguise = "Yealink SIP-T46S 66.86.0.15"

// sipvicious runs one SIPVicious tool through testdata/sipvicious/run.py
// (which can change its User-Agent and source address) and returns its
// output.
func sipvicious(t *testing.T, tool, userAgent, bind string, args ...string) string {
	t.Helper()
	wrapper, err := filepath.Abs(filepath.Join("testdata", "sipvicious", "run.py"))
	if err != nil {
		t.Fatal(err)
	}
	cmdArgs := []string{wrapper, tool}
	if userAgent != "" {
		cmdArgs = append(cmdArgs, "--user-agent", userAgent)
	}
	if bind != "" {
		cmdArgs = append(cmdArgs, "--bind", bind)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "python3", append(cmdArgs, args...)...)
	cmd.Dir = t.TempDir() // svmap and friends write session files
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil && ctx.Err() != nil {
		t.Fatalf("%s %v did not end within 3 minutes:\n%s", tool, args, out.String())
	}
	return out.String()
}

// tableRows are the rows of a SIPVicious result table: "| a | b |".
func tableRows(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			continue
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(line, "|"), "|") {
			cells = append(cells, strings.TrimSpace(c))
		}
		rows = append(rows, cells)
	}
	if len(rows) > 0 {
		rows = rows[1:] // the header
	}
	return rows
}

// SIPVicious from Debian against a node with the demo account. Each tool
// runs as shipped (User-Agent friendly-scanner: dropped unanswered, so it
// finds nothing at all) and disguised as a desk phone:
//   - svmap finds a SIP device and nothing about it (no User-Agent, no
//     Server, no version);
//   - svwar, by REGISTER (and in the full suite INVITE and OPTIONS),
//     enumerates none of the account's extensions: unknown users get the
//     same challenge as real ones (decoy HA1s), and OPTIONS is answered
//     alike for any user;
//   - svcrack, with the right password 31st in its dictionary, is locked
//     out after 21 wrong guesses: the throttle blocks the source and the
//     flood guard bans it (sip.flood_ban), so it hears nothing more and
//     gives up; a phone elsewhere registers meanwhile.
func TestAttackSIPVicious(t *testing.T) {
	if _, err := exec.LookPath("svmap"); err != nil {
		t.Skip("sipvicious (svmap, svwar, svcrack) is not installed: make deps installs it (Debian package sipvicious)")
	}
	n := startNode(t, "scan", nodeOpts{bootstrapSnapshot: writeFile(t, "demo.json", demoSnapshot(t)), logLevel: "info",
		// Loopback is exempt from the flood guard by default; here the
		// attackers are on it (each tool on an address of its own).
		env: []string{"OUTPOST_SIP_FLOOD_EXEMPT="}})
	waitRevision(t, []*node{n}, 1)
	host, port, _ := strings.Cut(n.sipUDP, ":")
	real := []string{"1001", "1002", "1003", "2001", "2002", "alice", "bob", "carol", "dave", "erin"}
	var report []string

	// svmap
	out := sipvicious(t, "svmap", "", "127.0.0.41", "-p"+port, "-P", fmt.Sprint(freeUDPPort(t)), host)
	if rows := tableRows(out); len(rows) != 0 || !strings.Contains(out, "found nothing") {
		t.Errorf("svmap found something:\n%s", out)
	}
	out = sipvicious(t, "svmap", disguise, "127.0.0.41", "-p"+port, "-P", fmt.Sprint(freeUDPPort(t)), host)
	rows := tableRows(out)
	if len(rows) != 1 || len(rows[0]) < 2 || rows[0][1] != "unknown" {
		t.Errorf("disguised svmap: want one device whose User-Agent is unknown:\n%s", out)
	}
	report = append(report, fmt.Sprintf("svmap: nothing; disguised: %d device, user agent %q", len(rows), cell(rows, 0, 1)))

	// svwar
	war := func(ua, method string) (found []string, enumerated int) {
		args := []string{"-p" + port, "-P", fmt.Sprint(freeUDPPort(t)), "-e1000-1010,1900-1901,2000-2010", "--maximumtime=5"}
		if method != "" {
			args = append(args, "-m", method)
		}
		out := sipvicious(t, "svwar", ua, "127.0.0.42", append(args, host)...)
		for _, r := range tableRows(out) {
			found = append(found, r[0])
			for _, ext := range real {
				if r[0] == ext {
					enumerated++
					t.Errorf("svwar (%s, %s) enumerated %s:\n%s", method, ua, ext, out)
				}
			}
		}
		return found, enumerated
	}
	if found, _ := war("", ""); len(found) != 0 {
		t.Errorf("svwar as shipped found %v", found)
	}
	methods := []string{"REGISTER"}
	if attackFull() {
		methods = append(methods, "INVITE", "OPTIONS")
	}
	for _, m := range methods {
		found, enumerated := war(disguise, m)
		report = append(report, fmt.Sprintf("svwar -m %s (disguised): %d of the account's extensions (reported: %v)", m, enumerated, found))
	}

	// svcrack
	dict := []string{}
	for i := 1; i <= 30; i++ {
		dict = append(dict, fmt.Sprintf("guess%d", i))
	}
	dict = append(dict, "pw-alice", "guess31", "guess32")
	dictFile := writeFile(t, "dict.txt", []byte(strings.Join(dict, "\n")+"\n"))
	crack := func(ua, src string) string {
		return sipvicious(t, "svcrack", ua, src, "-p"+port, "-P", fmt.Sprint(freeUDPPort(t)), "-u", "alice",
			"-d", dictFile, "--maximumtime=5", "-vv", host)
	}
	if out := crack("", "127.0.0.43"); strings.Contains(out, "pw-alice") || len(tableRows(out)) != 0 {
		t.Errorf("svcrack as shipped cracked something:\n%s", out)
	}
	begin := time.Now()
	out = crack(disguise, "127.0.0.44")
	if strings.Contains(out, "pw-alice") || len(tableRows(out)) != 0 {
		t.Errorf("svcrack (disguised) cracked alice's password; it should be locked out after 21 wrong guesses:\n%s", out)
	}
	tried := len(regexp.MustCompile(`trying guess\d+`).FindAllString(out, -1))
	banAt := waitLogLine(t, n, 10*time.Second, "sip source banned: too many failed authentications", "source=127.0.0.44")
	if code := udpProbe(t, "127.0.0.44", n.sipUDP, 2*time.Second); code != 0 {
		t.Errorf("the locked-out source was answered %d", code)
	}
	if res := runSIPp(t, "register.xml", n.sipUDP, 1, 20*time.Second,
		"-inf", writeUsersCSV(t, [][3]string{{"alice", "pw-alice", "acme.example"}})); res.exit != 0 {
		t.Errorf("alice, elsewhere, could not register after the attack: exit %d\n%s", res.exit, tail(res.stdout, 20))
	}
	report = append(report, fmt.Sprintf("svcrack: nothing; disguised: %d guesses sent, banned %s after it began, gave up after %s; the right password (31st) never answered",
		tried, banAt.Sub(begin).Round(10*time.Millisecond), time.Since(begin).Round(time.Second)))
	t.Logf("SIPVicious against %s:\n  %s", n.id, strings.Join(report, "\n  "))
}

func cell(rows [][]string, r, c int) string {
	if r < len(rows) && c < len(rows[r]) {
		return rows[r][c]
	}
	return ""
}
