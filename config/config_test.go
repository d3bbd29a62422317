package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// valid is a configuration that passes Validate and does not depend on the
// host.
func valid() Config { return defaults("node-1", 1000) }

// writeFile writes content to name in a fresh temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeKeyPair writes a self-signed certificate and its key, PEM encoded.
func writeKeyPair(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "outpost.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeFile(t, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile = writeFile(t, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	return certFile, keyFile
}

func TestDefaultsValidate(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v, want nil", err)
	}
	for _, euid := range []int{0, 1000} {
		if err := defaults("h", euid).Validate(); err != nil {
			t.Errorf("defaults(euid %d).Validate() = %v, want nil", euid, err)
		}
	}
}

func TestDefaultsDependOnHost(t *testing.T) {
	tests := []struct {
		hostname    string
		euid        int
		wantID      string
		wantDataDir string
	}{
		{"pbx-1", 0, "pbx-1", "/var/lib/outpost"},
		{"pbx-1.acme.example", 1000, "pbx-1.acme.example", "./outpost-data"},
		{"weird host!", 1000, "weird-host-", "./outpost-data"},
		{"", 1000, "outpost", "./outpost-data"},
		{strings.Repeat("a", 80), 1000, strings.Repeat("a", 64), "./outpost-data"},
	}
	for _, tt := range tests {
		c := defaults(tt.hostname, tt.euid)
		if c.NodeID != tt.wantID || c.DataDir != tt.wantDataDir {
			t.Errorf("defaults(%q, %d) = node_id %q data_dir %q, want %q %q",
				tt.hostname, tt.euid, c.NodeID, c.DataDir, tt.wantID, tt.wantDataDir)
		}
	}
}

func TestPaths(t *testing.T) {
	c := valid()
	c.DataDir = "/srv/outpost"
	tests := []struct{ name, got, want string }{
		{"DBPath", c.DBPath(), "/srv/outpost/outpost.db"},
		{"RaftDir", c.RaftDir(), "/srv/outpost/raft"},
		{"HTTPTLSDir", c.HTTPTLSDir(), "/srv/outpost/http-tls"},
		{"CloudCredentialsFile default", c.CloudCredentialsFile(), "/srv/outpost/cloud.json"},
	}
	c.Cloud.CredentialsFile = "/etc/outpost/cloud.json"
	tests = append(tests, struct{ name, got, want string }{"CloudCredentialsFile set", c.CloudCredentialsFile(), "/etc/outpost/cloud.json"})
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestRedacted(t *testing.T) {
	c := valid()
	c.Cloud.URL = "https://appliance:s3cret@cloud.example/v1"
	c.Raft.Join = []string{"10.0.0.2:8080", "https://u:pw@node-2.example:8080"}
	r := c.Redacted()
	if strings.Contains(r.Cloud.URL, "s3cret") || strings.Contains(r.Raft.Join[1], "pw@") {
		t.Errorf("Redacted() kept a password: %q %q", r.Cloud.URL, r.Raft.Join)
	}
	if got, want := r.Raft.Join[0], "10.0.0.2:8080"; got != want {
		t.Errorf("Redacted().Raft.Join[0] = %q, want %q", got, want)
	}
	r.Raft.Join[0] = "changed"
	if c.Raft.Join[0] != "10.0.0.2:8080" {
		t.Error("Redacted() shares the join slice with the original")
	}
}

func TestYAMLRoundTrip(t *testing.T) {
	c := valid()
	c.Raft.Join = []string{"10.0.0.2:8080", "https://node-3.example"}
	c.Raft.HeartbeatTimeout = Duration{1500 * time.Millisecond}
	c.Raft.ElectionTimeout = Duration{3 * time.Second}
	c.Cloud.OutageAfter = Duration{90 * time.Second}
	c.SIP.TLS = ""
	out, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"heartbeat_timeout: 1.5s", "outage_after: 1m30s", "tls: \"\"", "  udp: 0.0.0.0:5060"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("YAML() lacks %q:\n%s", want, out)
		}
	}
	got, err := Load(writeFile(t, "c.yaml", string(out)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("Load(YAML()) = %+v, want %+v", got, c)
	}
}

func TestJSONUsesYAMLNames(t *testing.T) {
	var walk func(t *testing.T, typ reflect.Type)
	walk = func(t *testing.T, typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			if y, j := f.Tag.Get("yaml"), f.Tag.Get("json"); y != j {
				t.Errorf("%s.%s: json tag %q, yaml tag %q; want equal", typ.Name(), f.Name, j, y)
			}
			if f.Type.Kind() == reflect.Struct && f.Type != durationType {
				walk(t, f.Type)
			}
		}
	}
	walk(t, reflect.TypeFor[Config]())

	b, err := json.Marshal(valid())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"probe_interval":"5s"`) {
		t.Errorf("json lacks a duration string: %s", b)
	}
	var back Config
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, valid()) {
		t.Errorf("json round trip = %+v, want %+v", back, valid())
	}
}

func TestKeys(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Keys() {
		if seen[k.Env] || seen[k.Path] {
			t.Errorf("duplicate key %s / %s", k.Path, k.Env)
		}
		seen[k.Env], seen[k.Path] = true, true
	}
	// A few fixed names from shared/CONTRACT.md.
	for _, want := range []struct{ path, env, kind string }{
		{"node_id", "OUTPOST_NODE_ID", "string"},
		{"sip.tls_cert", "OUTPOST_SIP_TLS_CERT", "string"},
		{"raft.bootstrap", "OUTPOST_RAFT_BOOTSTRAP", "bool"},
		{"raft.join", "OUTPOST_RAFT_JOIN", "list"},
		{"raft.snapshot_threshold", "OUTPOST_RAFT_SNAPSHOT_THRESHOLD", "integer"},
		{"cloud.probe_interval", "OUTPOST_CLOUD_PROBE_INTERVAL", "duration"},
		{"bootstrap_snapshot", "OUTPOST_BOOTSTRAP_SNAPSHOT", "string"},
		// Extensions: failback (docs/sip.md, "Failback").
		{"sip.failback", "OUTPOST_SIP_FAILBACK", "string"},
		{"sip.failback_expires", "OUTPOST_SIP_FAILBACK_EXPIRES", "duration"},
		{"sip.failback_retry_after", "OUTPOST_SIP_FAILBACK_RETRY_AFTER", "duration"},
		// Extensions: HTTPS (docs/ui.md, "HTTPS").
		{"http.tls_listen", "OUTPOST_HTTP_TLS_LISTEN", "string"},
		{"http.tls_cert", "OUTPOST_HTTP_TLS_CERT", "string"},
		{"http.tls_key", "OUTPOST_HTTP_TLS_KEY", "string"},
		// Extension: old phones' TLS (docs/configuration.md).
		{"sip.tls_cbc_ciphers", "OUTPOST_SIP_TLS_CBC_CIPHERS", "bool"},
		// Extensions: call park (docs/sip.md, "Call park").
		{"calls.park_code", "OUTPOST_CALLS_PARK_CODE", "string"},
		{"calls.park_retrieve_code", "OUTPOST_CALLS_PARK_RETRIEVE_CODE", "string"},
		{"calls.park_slots", "OUTPOST_CALLS_PARK_SLOTS", "integer"},
		{"calls.park_timeout", "OUTPOST_CALLS_PARK_TIMEOUT", "duration"},
		{"calls.park_ring_for", "OUTPOST_CALLS_PARK_RING_FOR", "duration"},
		{"calls.park_ringbacks", "OUTPOST_CALLS_PARK_RINGBACKS", "integer"},
	} {
		k, ok := lookupKey(want.path)
		if !ok || k.Env != want.env || k.Kind != want.kind {
			t.Errorf("key %s = %+v, %v; want env %s kind %s", want.path, k, ok, want.env, want.kind)
		}
	}
	if got, want := len(Keys()), 59; got != want {
		t.Errorf("len(Keys()) = %d, want %d (update this test, the example and docs/configuration.md together)", got, want)
	}
}

func TestHelpers(t *testing.T) {
	t.Run("TLSEnabled", func(t *testing.T) {
		tests := []struct {
			tls, cert, key string
			want           bool
		}{
			{"0.0.0.0:5061", "", "", false},
			{"0.0.0.0:5061", "c.pem", "k.pem", true},
			{"", "c.pem", "k.pem", false},
		}
		for _, tt := range tests {
			s := SIP{TLS: tt.tls, TLSCert: tt.cert, TLSKey: tt.key}
			if got := s.TLSEnabled(); got != tt.want {
				t.Errorf("%+v.TLSEnabled() = %v, want %v", s, got, tt.want)
			}
		}
	})
	t.Run("HTTPS", func(t *testing.T) {
		tests := []struct {
			listen, cert, key   string
			enabled, selfSigned bool
		}{
			{"", "", "", false, false},
			{"0.0.0.0:443", "", "", true, true},
			{"0.0.0.0:443", "c.pem", "k.pem", true, false},
		}
		for _, tt := range tests {
			h := HTTP{TLSListen: tt.listen, TLSCert: tt.cert, TLSKey: tt.key}
			if got := h.TLSEnabled(); got != tt.enabled {
				t.Errorf("%+v.TLSEnabled() = %v, want %v", h, got, tt.enabled)
			}
			if got := h.SelfSigned(); got != tt.selfSigned {
				t.Errorf("%+v.SelfSigned() = %v, want %v", h, got, tt.selfSigned)
			}
		}
	})
	t.Run("JoinURLs", func(t *testing.T) {
		r := Raft{Join: []string{"10.0.0.2:8080", "https://node-3.example:8443/", "http://[fd00::1]:8080"}}
		got := r.JoinURLs()
		want := []string{"http://10.0.0.2:8080", "https://node-3.example:8443", "http://[fd00::1]:8080"}
		if !slices.Equal(got, want) {
			t.Errorf("JoinURLs() = %q, want %q", got, want)
		}
	})
	t.Run("SlogLevel", func(t *testing.T) {
		for level, want := range map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError} {
			if got := (Log{Level: level}).SlogLevel(); got != want {
				t.Errorf("SlogLevel(%q) = %v, want %v", level, got, want)
			}
		}
	})
	t.Run("PortRange", func(t *testing.T) {
		lo, hi, err := Media{RTPPorts: "20000-29999"}.PortRange()
		if lo != 20000 || hi != 29999 || err != nil {
			t.Errorf("PortRange() = %d, %d, %v; want 20000, 29999, nil", lo, hi, err)
		}
		for _, bad := range []string{"", "20000", "a-b", "20000-", "1000-2000", "20001-29999", "30000-20000", "20000-20000", "20000-70000", "-2-100"} {
			if _, _, err := (Media{RTPPorts: bad}).PortRange(); err == nil {
				t.Errorf("PortRange(%q) = nil error, want an error", bad)
			}
		}
	})
	t.Run("Advertised", func(t *testing.T) {
		tests := []struct{ advertise, listen, fallback, want string }{
			{"", "0.0.0.0:7000", "10.0.0.5", "10.0.0.5:7000"},
			{"", ":7000", "10.0.0.5", "10.0.0.5:7000"},
			{"", "[::]:7000", "fd00::5", "[fd00::5]:7000"},
			{"", "10.0.0.9:7000", "10.0.0.5", "10.0.0.9:7000"},
			{"pbx.acme.example", "0.0.0.0:5060", "10.0.0.5", "pbx.acme.example:5060"},
			{"fd00::7", "0.0.0.0:5060", "10.0.0.5", "[fd00::7]:5060"},
			{"[fd00::7]", "0.0.0.0:5060", "10.0.0.5", "[fd00::7]:5060"},
			{"203.0.113.4:15060", "0.0.0.0:5060", "10.0.0.5", "203.0.113.4:15060"},
		}
		for _, tt := range tests {
			if got := Advertised(tt.advertise, tt.listen, tt.fallback); got != tt.want {
				t.Errorf("Advertised(%q, %q, %q) = %q, want %q", tt.advertise, tt.listen, tt.fallback, got, tt.want)
			}
		}
	})
}
