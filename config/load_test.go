package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadNoFile(t *testing.T) {
	environ := []string{"PATH=/usr/bin", "HOME=/root", "OUTPOSTX=ignored", "outpost_sip_udp=ignored"}
	got, err := Load("", environ)
	if err != nil {
		t.Fatal(err)
	}
	if want := Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("Load(\"\") = %+v, want Default() %+v", got, want)
	}
}

func TestLoadFile(t *testing.T) {
	tokenFile := writeFile(t, "token", "secret\n")
	path := writeFile(t, "outpost.yaml", `
node_id: pbx-2
site: branch
data_dir: /srv/outpost
sip:
  udp: 10.0.0.2:5060
  tcp: ""
  tls:            # empty: disables TLS
  advertise: pbx-2.acme.example
http:
  listen: 127.0.0.1:8081
  admin_token_file: `+tokenFile+`
raft:
  bootstrap: false
  join: [10.0.0.1:8080, "https://pbx-1.acme.example"]
  election_timeout: 2s
dns:
  listen: 0.0.0.0:53
  domain: survive.acme.example
cloud:
  url: https://cloud.example
  probe_interval: 10s
  outage_after: 1m30s
log:
  format: json
`)
	got, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.NodeID, want.Site, want.DataDir = "pbx-2", "branch", "/srv/outpost"
	want.SIP.UDP, want.SIP.TCP, want.SIP.TLS, want.SIP.Advertise = "10.0.0.2:5060", "", "", "pbx-2.acme.example"
	want.HTTP.Listen, want.HTTP.AdminTokenFile = "127.0.0.1:8081", tokenFile
	want.Raft.Bootstrap = false
	want.Raft.Join = []string{"10.0.0.1:8080", "https://pbx-1.acme.example"}
	want.Raft.ElectionTimeout = Duration{2 * time.Second}
	want.DNS = DNS{Listen: "0.0.0.0:53", Domain: "survive.acme.example"}
	want.Cloud.URL = "https://cloud.example"
	want.Cloud.ProbeInterval = Duration{10 * time.Second}
	want.Cloud.OutageAfter = Duration{90 * time.Second}
	want.Log.Format = "json"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load() =\n%+v\nwant\n%+v", got, want)
	}
}

func TestLoadEmptyFiles(t *testing.T) {
	for name, content := range map[string]string{
		"empty":         "",
		"comments only": "# nothing set\n",
		"null sections": "sip:\nraft:\n",
		"empty join":    "raft:\n  join: []\n",
		"null join":     "raft:\n  join:\n",
	} {
		t.Run(name, func(t *testing.T) {
			got, err := Load(writeFile(t, "c.yaml", content), nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := Default(); !reflect.DeepEqual(got, want) {
				t.Errorf("Load() = %+v, want Default() %+v", got, want)
			}
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []string // substrings of the error
	}{
		{"unknown key", "sip:\n  udpp: 0.0.0.0:5060\n", []string{"line 2", `unknown key "sip.udpp"`, "did you mean sip.udp?"}},
		{"unknown section", "site: hq\nsipp:\n  udp: x\n", []string{"line 2", `unknown key "sipp"`}},
		{"unknown top-level key", "node: x\n", []string{"line 1", `unknown key "node"`}},
		{"two unknown keys", "sip:\n  a: 1\nraft:\n  b: 2\n", []string{`line 2: unknown key "sip.a"`, `line 4: unknown key "raft.b"`}},
		{"syntax error", "sip:\n  udp: 0.0.0.0:5060\n tcp: x\n", []string{"line 2", "did not find expected key"}},
		{"tab indentation", "sip:\n\tudp: x\n", []string{"line 2"}},
		{"duplicate key", "site: a\nsite: b\n", []string{"line 2", "site is already set on line 1"}},
		{"bad bool", "raft:\n  bootstrap: maybe\n", []string{"line 2: raft.bootstrap:", `"maybe" is not a boolean`}},
		{"bad integer", "raft:\n  snapshot_threshold: lots\n", []string{"line 2: raft.snapshot_threshold:", "whole number"}},
		{"string as mapping", "sip:\n  udp: {a: 1}\n", []string{"line 2: sip.udp: want a string, not a mapping"}},
		{"list of mappings", "raft:\n  join:\n    - {a: 1}\n", []string{"line 3: raft.join: each item"}},
		{"merge key", "base: &b\n  udp: x\nsip:\n  <<: *b\n", []string{"merge keys"}},
		{"bad duration", "cloud:\n  probe_interval: 5\n", []string{"line 2: cloud.probe_interval:", `"5" is not a duration`}},
		{"duration as mapping", "cloud:\n  probe_interval: {a: 1}\n", []string{"line 2", "duration"}},
		{"bool without value", "raft:\n  bootstrap:\n", []string{"line 2", "raft.bootstrap has no value"}},
		{"not a mapping", "- a\n- b\n", []string{"line 1", "mapping"}},
		{"section not a mapping", "sip: yes\n", []string{"line 1: sip must be a mapping"}},
		{"two documents", "site: a\n---\nsite: b\n", []string{"line 2", "one YAML document"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "c.yaml", tt.content)
			_, err := Load(path, nil)
			if err == nil {
				t.Fatal("Load() = nil error, want an error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "config "+path+": ") {
				t.Errorf("error %q does not start with the file name", msg)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q is not one line", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
		})
	}
}

func TestLoadFileForms(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    func(c *Config)
	}{
		{"list as comma-separated string", "raft:\n  join: 10.0.0.1:8080, 10.0.0.2:8080\n",
			func(c *Config) { c.Raft.Join = []string{"10.0.0.1:8080", "10.0.0.2:8080"} }},
		{"block list", "raft:\n  join:\n    - 10.0.0.1:8080\n    - https://pbx-2.example\n",
			func(c *Config) { c.Raft.Join = []string{"10.0.0.1:8080", "https://pbx-2.example"} }},
		{"null and ~ clear strings", "sip:\n  tls: null\n  advertise: ~\n", func(c *Config) { c.SIP.TLS = "" }},
		{"number as string", "site: 42\n", func(c *Config) { c.Site = "42" }},
		{"quoted duration", "cloud:\n  probe_interval: \"2s\"\n", func(c *Config) { c.Cloud.ProbeInterval = Duration{2 * time.Second} }},
		{"alias", "site: &s branch\nnode_id: *s\n", func(c *Config) { c.Site, c.NodeID = "branch", "branch" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(writeFile(t, "c.yaml", tt.content), nil)
			if err != nil {
				t.Fatal(err)
			}
			want := Default()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Load() =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(t.TempDir()+"/nope.yaml", nil)
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("Load(missing) = %v, want an error naming the file", err)
	}
}

func TestLoadEnvOverrides(t *testing.T) {
	certFile, keyFile := writeKeyPair(t)
	tests := []struct {
		name string
		env  []string
		want func(c *Config)
	}{
		{"string", []string{"OUTPOST_SIP_UDP=127.0.0.1:5070"}, func(c *Config) { c.SIP.UDP = "127.0.0.1:5070" }},
		{"string with underscore key", []string{"OUTPOST_SIP_TLS_CERT=" + certFile, "OUTPOST_SIP_TLS_KEY=" + keyFile},
			func(c *Config) { c.SIP.TLSCert, c.SIP.TLSKey = certFile, keyFile }},
		{"empty string clears", []string{"OUTPOST_SIP_TLS="}, func(c *Config) { c.SIP.TLS = "" }},
		{"https", []string{"OUTPOST_HTTP_TLS_LISTEN=0.0.0.0:8443", "OUTPOST_HTTP_TLS_CERT=" + certFile, "OUTPOST_HTTP_TLS_KEY=" + keyFile},
			func(c *Config) { c.HTTP.TLSListen, c.HTTP.TLSCert, c.HTTP.TLSKey = "0.0.0.0:8443", certFile, keyFile }},
		{"bool false", []string{"OUTPOST_RAFT_BOOTSTRAP=false"}, func(c *Config) { c.Raft.Bootstrap = false }},
		{"bool 0", []string{"OUTPOST_RAFT_BOOTSTRAP=0"}, func(c *Config) { c.Raft.Bootstrap = false }},
		{"bool 1", []string{"OUTPOST_RAFT_BOOTSTRAP=0", "OUTPOST_RAFT_BOOTSTRAP=1"}, func(c *Config) { c.Raft.Bootstrap = true }},
		{"list", []string{"OUTPOST_RAFT_JOIN=10.0.0.1:8080, https://pbx-3.example ,"},
			func(c *Config) { c.Raft.Join = []string{"10.0.0.1:8080", "https://pbx-3.example"} }},
		{"empty list", []string{"OUTPOST_RAFT_JOIN="}, func(c *Config) {}},
		{"duration", []string{"OUTPOST_CLOUD_PROBE_INTERVAL=2s"}, func(c *Config) { c.Cloud.ProbeInterval = Duration{2 * time.Second} }},
		{"integer", []string{"OUTPOST_RAFT_SNAPSHOT_THRESHOLD=100"}, func(c *Config) { c.Raft.SnapshotThreshold = 100 }},
		{"top-level", []string{"OUTPOST_NODE_ID=pbx-9", "OUTPOST_SITE=branch", "OUTPOST_DATA_DIR=/srv/o"},
			func(c *Config) { c.NodeID, c.Site, c.DataDir = "pbx-9", "branch", "/srv/o" }},
		{"top-level with underscore", []string{"OUTPOST_BOOTSTRAP_SNAPSHOT=" + certFile}, func(c *Config) { c.BootstrapSnapshot = certFile }},
		{"value with =", []string{"OUTPOST_CLOUD_URL=https://cloud.example/?a=b"}, func(c *Config) { c.Cloud.URL = "https://cloud.example/?a=b" }},
		{"failback", []string{"OUTPOST_SIP_FAILBACK=reject", "OUTPOST_SIP_FAILBACK_EXPIRES=5m", "OUTPOST_SIP_FAILBACK_RETRY_AFTER=45s"},
			func(c *Config) {
				c.SIP.Failback, c.SIP.FailbackExpires, c.SIP.FailbackRetryAfter = FailbackReject, Duration{5 * time.Minute}, Duration{45 * time.Second}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load("", tt.env)
			if err != nil {
				t.Fatal(err)
			}
			want := Default()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Load(%q) =\n%+v\nwant\n%+v", tt.env, got, want)
			}
		})
	}
}

func TestLoadEnvOverridesFile(t *testing.T) {
	path := writeFile(t, "c.yaml", "site: from-file\nsip:\n  udp: 10.0.0.1:5060\n")
	got, err := Load(path, []string{"OUTPOST_SITE=from-env"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Site != "from-env" || got.SIP.UDP != "10.0.0.1:5060" {
		t.Errorf("site %q sip.udp %q, want from-env 10.0.0.1:5060", got.Site, got.SIP.UDP)
	}
}

func TestLoadEnvErrors(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want []string
	}{
		{"unknown key", []string{"OUTPOST_SIP_UPD=x"}, []string{"unknown environment override OUTPOST_SIP_UPD", "did you mean OUTPOST_SIP_UDP?"}},
		{"unknown section", []string{"OUTPOST_FOO=1"}, []string{"unknown environment override OUTPOST_FOO"}},
		{"section name only", []string{"OUTPOST_SIP=x"}, []string{"unknown environment override OUTPOST_SIP"}},
		{"bad bool", []string{"OUTPOST_RAFT_BOOTSTRAP=maybe"}, []string{"OUTPOST_RAFT_BOOTSTRAP", `"maybe" is not a boolean`}},
		{"empty bool", []string{"OUTPOST_RAFT_BOOTSTRAP="}, []string{"OUTPOST_RAFT_BOOTSTRAP"}},
		{"bad duration", []string{"OUTPOST_CLOUD_PROBE_INTERVAL=5"}, []string{"OUTPOST_CLOUD_PROBE_INTERVAL", `"5" is not a duration`}},
		{"bad integer", []string{"OUTPOST_RAFT_SNAPSHOT_THRESHOLD=-1"}, []string{"OUTPOST_RAFT_SNAPSHOT_THRESHOLD", "whole number"}},
		{"all reported", []string{"OUTPOST_A=1", "OUTPOST_RAFT_BOOTSTRAP=x"}, []string{"OUTPOST_A", "OUTPOST_RAFT_BOOTSTRAP"}},
		{"bad failback", []string{"OUTPOST_SIP_FAILBACK=bounce"}, []string{"sip.failback", `"bounce" is not one of off, notify, reject`}},
		{"failback_expires below min_expires", []string{"OUTPOST_SIP_FAILBACK_EXPIRES=30s"},
			[]string{"sip.failback_expires: must be at least sip.min_expires (1m0s)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load("", tt.env)
			if err == nil {
				t.Fatal("Load() = nil error, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestLoadValidates(t *testing.T) {
	path := writeFile(t, "c.yaml", "sip:\n  udp: nonsense\n")
	_, err := Load(path, []string{"OUTPOST_LOG_LEVEL=loud"})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Load() = %v, want a *ValidationError", err)
	}
	if got, want := problemKeys(ve), []string{"sip.udp", "log.level"}; !reflect.DeepEqual(got, want) {
		t.Errorf("problem keys = %q, want %q", got, want)
	}
	if !strings.HasPrefix(err.Error(), "config "+path+": invalid configuration: sip.udp: ") {
		t.Errorf("error = %q", err)
	}
}
