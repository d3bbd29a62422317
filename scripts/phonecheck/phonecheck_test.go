package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	examples  = "../../docs/phones/examples"
	nodeYAML  = examples + "/outpost.yaml"
	demoSnap  = "../../../shared/contract/demo-snapshot.json"
	brokenDir = "testdata/broken"
)

func runCheck(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, nil, &out, &errb)
	return code, out.String(), errb.String()
}

// The guides' examples pass against the defaults, the example node
// configuration and the demo realm, found from the repository as
// `make phone-guides-check` finds them.
func TestExamplesPass(t *testing.T) {
	code, out, errs := runCheck(t)
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, errs)
	}
	if !strings.Contains(out, "8 files") || !strings.Contains(out, `realm "acme.example"`) {
		t.Errorf("stdout %q: want 8 files checked against realm acme.example", out)
	}
	for _, vendor := range []string{"yealink", "poly", "cisco-mpp", "grandstream"} {
		for _, kind := range []string{"fallback", "dns-srv"} {
			ext := ".xml"
			if vendor == "yealink" || vendor == "poly" {
				ext = ".cfg"
			}
			if _, err := os.Stat(filepath.Join(examples, vendor+"-"+kind+ext)); err != nil {
				t.Errorf("example missing: %v", err)
			}
		}
	}
}

// Each broken copy fails, naming its file, the key, what it holds and
// what Outpost needs.
func TestBrokenCopiesFail(t *testing.T) {
	cases := map[string][]string{
		"yealink-wrong-port.cfg": {
			`yealink-wrong-port.cfg:32: account.1.sip_server.2.port: got "5070", want "5060" ({sip.udp.port})`,
		},
		"yealink-tls.cfg": {
			`account.1.sip_server.2.transport_type: got "2" (tls), want a transport the node serves (udp, tcp, dns): TLS needs sip.tls, sip.tls_cert and sip.tls_key`,
		},
		"yealink-twice.cfg": {
			`yealink-twice.cfg: line 33: account.1.sip_server.2.port is set twice (first on line 32)`,
		},
		"yealink-no-checks.cfg": {
			`yealink-no-checks.cfg: no "outpost-check:" lines`,
		},
		"yealink-bad-check.cfg": {
			`yealink-bad-check.cfg:31: outpost-check: want KEY = TEMPLATE`,
		},
		"yealink-unknown-setting.cfg": {
			`unknown Outpost setting {sip.port}`,
		},
		"poly-wrong-realm.cfg": {
			`poly-wrong-realm.cfg:27: reg.1.address: got "alice@acme.test", want "*@acme.example" (*@{realm})`,
		},
		"poly-failback-hour.cfg": {
			`reg.1.server.2.failOver.failBack.timeout: got "3600" (1h0m0s), want 1m0s to 10m0s (sip.min_expires..10m)`,
		},
		"cisco-mpp-no-dual.xml": {
			`cisco-mpp-no-dual.xml:32: Dual_Registration_1_: got "No", want "Yes"`,
		},
		"cisco-mpp-no-alternate.xml": {
			`Alternate_Proxy_1_: missing from the file, want "192.0.2.10:5060" ({sip.host}:{sip.udp.port})`,
		},
		"grandstream-expiry-hours.xml": {
			`grandstream-expiry-hours.xml:49: P32: got "120" (2h0m0s), want 1m0s to 1h0m0s (sip.min_expires..sip.max_expires minutes)`,
		},
		"grandstream-other-site.xml": {
			`P2312: got "branch.survive.acme.example", want "hq.survive.acme.example" ({site}.{dns.domain})`,
		},
	}
	entries, err := os.ReadDir(brokenDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(cases) {
		t.Errorf("%d files in %s, %d cases: every broken copy needs its expected message", len(entries), brokenDir, len(cases))
	}
	for name, wants := range cases {
		t.Run(name, func(t *testing.T) {
			code, _, errs := runCheck(t, "-config", nodeYAML, "-snapshot", demoSnap, filepath.Join(brokenDir, name))
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s", code, errs)
			}
			for _, want := range wants {
				if !strings.Contains(errs, want) {
					t.Errorf("stderr lacks %q:\n%s", want, errs)
				}
			}
		})
	}
}

// The expectations come from the node configuration: the same examples
// fail against a node on another port, and without the example node file
// (defaults only: no DNS, no advertised address, site "default").
func TestChecksFollowNodeConfiguration(t *testing.T) {
	code, _, errs := runCheck(t, "-config", "testdata/outpost-5070.yaml", "-snapshot", demoSnap, examples)
	if code != 1 || !strings.Contains(errs, `yealink-fallback.cfg:31: account.1.sip_server.2.port: got "5060", want "5070" ({sip.udp.port})`) {
		t.Errorf("against a node on 5070: exit %d, stderr:\n%s", code, errs)
	}
	code, _, errs = runCheck(t, "-config", "none", "-snapshot", demoSnap, examples)
	for _, want := range []string{
		"sip.advertise is not set in the node configuration",
		`the node's site "default" is not a site of the account (hq, branch)`,
		`got "3" (dns), want a transport the node serves (udp, tcp): Outpost's DNS server needs dns.listen and dns.domain`,
	} {
		if code != 1 || !strings.Contains(errs, want) {
			t.Errorf("defaults only: exit %d, stderr lacks %q:\n%s", code, want, errs)
		}
	}
}

// The realm comes from the snapshot.
func TestChecksFollowSnapshotRealm(t *testing.T) {
	data, err := os.ReadFile(demoSnap)
	if err != nil {
		t.Fatal(err)
	}
	other := bytes.Replace(data, []byte(`"sip_realm": "acme.example"`), []byte(`"sip_realm": "voice.acme.example"`), 1)
	if bytes.Equal(other, data) {
		t.Fatal("demo snapshot: sip_realm not found")
	}
	snap := filepath.Join(t.TempDir(), "snapshot.json")
	if err := os.WriteFile(snap, other, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCheck(t, "-config", nodeYAML, "-snapshot", snap, filepath.Join(examples, "cisco-mpp-fallback.xml"))
	if code != 1 || !strings.Contains(errs, `Proxy_1_: got "acme.example", want "voice.acme.example" ({realm})`) {
		t.Errorf("exit %d, stderr:\n%s", code, errs)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-nosuchflag"},
		{"-config", "testdata/missing.yaml", "-snapshot", demoSnap, examples},
		{"-config", nodeYAML, "-snapshot", "testdata/missing.json", examples},
		{"-config", nodeYAML, "-snapshot", demoSnap, "testdata/missing-dir"},
	} {
		if code, _, errs := runCheck(t, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2\n%s", args, code, errs)
		}
	}
}

// Each format gives its keys with the line they are on, and its
// outpost-check lines with theirs.
func TestParseFormats(t *testing.T) {
	cases := []struct {
		name, data, format string
		keys               map[string]entry
		notes              []note
	}{
		{
			name:   "yealink",
			data:   "#!version:1.0.0.1\n# outpost-check: a.b = {realm}\n\na.b = x.example\nc = \"quoted value\"\n",
			format: "yealink",
			keys:   map[string]entry{"a.b": {"x.example", 4}, "c": {"quoted value", 5}},
			notes:  []note{{"a.b = {realm}", 2}},
		},
		{
			name:   "poly",
			data:   "<?xml version=\"1.0\"?>\n<polycomConfig>\n  <!-- text\n       outpost-check: reg.1.x = 1 -->\n  <reg\n    reg.1.x=\"1\"\n    reg.1.y=\"two\"/>\n</polycomConfig>\n",
			format: "poly",
			keys:   map[string]entry{"reg.1.x": {"1", 6}, "reg.1.y": {"two", 7}},
			notes:  []note{{"reg.1.x = 1", 4}},
		},
		{
			name:   "cisco",
			data:   "<flat-profile>\n  <!-- outpost-check: Proxy_1_ = {realm} -->\n  <Proxy_1_ ua=\"na\"> acme.example </Proxy_1_>\n  <Empty_1_ ua=\"na\"/>\n</flat-profile>\n",
			format: "cisco-mpp",
			keys:   map[string]entry{"Proxy_1_": {"acme.example", 3}, "Empty_1_": {"", 4}},
			notes:  []note{{"Proxy_1_ = {realm}", 2}},
		},
		{
			name:   "grandstream",
			data:   "<gs_provision version=\"1\">\n  <mac>000b82000000</mac>\n  <config version=\"1\">\n    <P47>acme.example</P47>\n  </config>\n</gs_provision>\n",
			format: "grandstream",
			keys:   map[string]entry{"P47": {"acme.example", 4}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pc, err := parsePhoneConfig([]byte(c.data))
			if err != nil {
				t.Fatal(err)
			}
			if pc.format != c.format {
				t.Errorf("format %q, want %q", pc.format, c.format)
			}
			if len(pc.keys) != len(c.keys) {
				t.Errorf("keys %v, want %v", pc.keys, c.keys)
			}
			for k, want := range c.keys {
				if got := pc.keys[k]; got != want {
					t.Errorf("%s = %+v, want %+v", k, got, want)
				}
			}
			if len(pc.notes) != len(c.notes) {
				t.Fatalf("notes %v, want %v", pc.notes, c.notes)
			}
			for i := range c.notes {
				if pc.notes[i] != c.notes[i] {
					t.Errorf("note %d = %+v, want %+v", i, pc.notes[i], c.notes[i])
				}
			}
		})
	}
	for _, bad := range []string{"no equals sign\n", "<html></html>", "<flat-profile><A>1</A><A>2</A></flat-profile>"} {
		if _, err := parsePhoneConfig([]byte(bad)); err == nil {
			t.Errorf("%q: parsed, want an error", bad)
		}
	}
}
