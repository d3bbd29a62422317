package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func problemKeys(ve *ValidationError) []string {
	var keys []string
	for _, p := range ve.Problems {
		keys = append(keys, p.Key)
	}
	return keys
}

func TestValidate(t *testing.T) {
	certFile, keyFile := writeKeyPair(t)
	otherCert, _ := writeKeyPair(t)
	tokenFile := writeFile(t, "token", "secret")
	garbage := writeFile(t, "garbage.pem", "not a certificate")
	missing := t.TempDir() + "/missing"
	dir := t.TempDir()

	tests := []struct {
		name   string
		modify func(c *Config)
		want   []string // problem keys, in order; nil means valid
	}{
		{"defaults", func(c *Config) {}, nil},

		{"node_id empty", func(c *Config) { c.NodeID = "" }, []string{"node_id"}},
		{"node_id bad character", func(c *Config) { c.NodeID = "node 1" }, []string{"node_id"}},
		{"node_id too long", func(c *Config) { c.NodeID = strings.Repeat("n", 65) }, []string{"node_id"}},
		{"node_id 64 characters", func(c *Config) { c.NodeID = strings.Repeat("n", 64) }, nil},
		{"node_id all allowed characters", func(c *Config) { c.NodeID = "Node_1.a-b" }, nil},
		{"site empty", func(c *Config) { c.Site = "" }, []string{"site"}},
		{"site bad character", func(c *Config) { c.Site = "hq/1" }, []string{"site"}},
		{"site too long", func(c *Config) { c.Site = strings.Repeat("s", 65) }, []string{"site"}},
		{"data_dir empty", func(c *Config) { c.DataDir = "" }, []string{"data_dir"}},

		{"sip.udp not host:port", func(c *Config) { c.SIP.UDP = "0.0.0.0" }, []string{"sip.udp"}},
		{"sip.udp port too big", func(c *Config) { c.SIP.UDP = "0.0.0.0:65536" }, []string{"sip.udp"}},
		{"sip.udp port named", func(c *Config) { c.SIP.UDP = "0.0.0.0:sip" }, []string{"sip.udp"}},
		{"sip.udp bad host", func(c *Config) { c.SIP.UDP = "bad_host:5060" }, []string{"sip.udp"}},
		{"sip.udp bad IPv4", func(c *Config) { c.SIP.UDP = "999.1.1.1:5060" }, []string{"sip.udp"}},
		{"sip.udp IPv6 and name", func(c *Config) { c.SIP.UDP, c.SIP.TCP = "[::1]:5060", "localhost:5060" }, nil},
		{"sip.udp empty host, port 0", func(c *Config) { c.SIP.UDP = ":0" }, nil},
		{"sip.tcp bad", func(c *Config) { c.SIP.TCP = "x:-1" }, []string{"sip.tcp"}},
		{"sip.udp disabled", func(c *Config) { c.SIP.UDP = "" }, nil},
		{"sip.tcp disabled", func(c *Config) { c.SIP.TCP = "" }, nil},
		{"sip udp and tcp disabled", func(c *Config) { c.SIP.UDP, c.SIP.TCP = "", "" }, []string{"sip.udp"}},
		{"sip.tls bad", func(c *Config) { c.SIP.TLS = "5061" }, []string{"sip.tls"}},
		{"sip.tls disabled", func(c *Config) { c.SIP.TLS = "" }, nil},
		{"sip.tls with key pair", func(c *Config) { c.SIP.TLSCert, c.SIP.TLSKey = certFile, keyFile }, nil},
		{"sip.tls_cert without key", func(c *Config) { c.SIP.TLSCert = certFile }, []string{"sip.tls_key"}},
		{"sip.tls_key without cert", func(c *Config) { c.SIP.TLSKey = keyFile }, []string{"sip.tls_cert"}},
		{"sip.tls_cert missing", func(c *Config) { c.SIP.TLSCert, c.SIP.TLSKey = missing, keyFile }, []string{"sip.tls_cert"}},
		{"sip.tls_key is a directory", func(c *Config) { c.SIP.TLSCert, c.SIP.TLSKey = certFile, dir }, []string{"sip.tls_key"}},
		{"sip.tls_cert not a certificate", func(c *Config) { c.SIP.TLSCert, c.SIP.TLSKey = garbage, keyFile }, []string{"sip.tls_cert"}},
		{"sip.tls_cert for another key", func(c *Config) { c.SIP.TLSCert, c.SIP.TLSKey = otherCert, keyFile }, []string{"sip.tls_cert"}},
		{"sip.tls off, files still checked", func(c *Config) { c.SIP.TLS, c.SIP.TLSCert, c.SIP.TLSKey = "", missing, keyFile }, []string{"sip.tls_cert"}},
		{"sbc.tls_cert without key", func(c *Config) { c.SBC.TLSCert = certFile }, []string{"sbc.tls_key"}},
		{"sbc.tls_cert for another key", func(c *Config) { c.SBC.TLSCert, c.SBC.TLSKey = otherCert, keyFile }, []string{"sbc.tls_cert"}},
		{"sbc.tls_ca not certificates", func(c *Config) { c.SBC.TLSCA = garbage }, []string{"sbc.tls_ca"}},
		{"sbc.tls_ca missing", func(c *Config) { c.SBC.TLSCA = missing }, []string{"sbc.tls_ca"}},
		{"sbc.tls_dir a file", func(c *Config) { c.SBC.TLSDir = certFile }, []string{"sbc.tls_dir"}},
		{"sip.advertise host", func(c *Config) { c.SIP.Advertise = "pbx.acme.example" }, nil},
		{"sip.advertise host:port", func(c *Config) { c.SIP.Advertise = "203.0.113.4:15060" }, nil},
		{"sip.advertise IPv6", func(c *Config) { c.SIP.Advertise = "fd00::1" }, nil},
		{"sip.advertise unspecified", func(c *Config) { c.SIP.Advertise = "0.0.0.0" }, []string{"sip.advertise"}},
		{"sip.advertise bad host", func(c *Config) { c.SIP.Advertise = "pbx!" }, []string{"sip.advertise"}},
		{"sip.advertise bad port", func(c *Config) { c.SIP.Advertise = "pbx:99999" }, []string{"sip.advertise"}},

		{"http.listen empty", func(c *Config) { c.HTTP.Listen = "" }, []string{"http.listen"}},
		{"http.listen bad", func(c *Config) { c.HTTP.Listen = "localhost" }, []string{"http.listen"}},
		{"http.advertise without host", func(c *Config) { c.HTTP.Advertise = ":8080" }, []string{"http.advertise"}},
		{"http.advertise unspecified IPv6", func(c *Config) { c.HTTP.Advertise = "[::]:8080" }, []string{"http.advertise"}},
		{"http.advertise ok", func(c *Config) { c.HTTP.Advertise = "10.0.0.1:8080" }, nil},
		{"http.admin_token_file exists", func(c *Config) { c.HTTP.AdminTokenFile = tokenFile }, nil},
		{"http.admin_token_file missing", func(c *Config) { c.HTTP.AdminTokenFile = missing }, []string{"http.admin_token_file"}},
		{"http.tls_listen self-signed", func(c *Config) { c.HTTP.TLSListen = "0.0.0.0:443" }, nil},
		{"http.tls_listen with key pair", func(c *Config) {
			c.HTTP.TLSListen, c.HTTP.TLSCert, c.HTTP.TLSKey = "0.0.0.0:8443", certFile, keyFile
		}, nil},
		{"http.tls_listen not host:port", func(c *Config) { c.HTTP.TLSListen = "443" }, []string{"http.tls_listen"}},
		{"http.tls_listen bad port", func(c *Config) { c.HTTP.TLSListen = "0.0.0.0:https" }, []string{"http.tls_listen"}},
		{"http.tls_cert without key", func(c *Config) { c.HTTP.TLSListen, c.HTTP.TLSCert = ":443", certFile }, []string{"http.tls_key"}},
		{"http.tls_key without cert", func(c *Config) { c.HTTP.TLSListen, c.HTTP.TLSKey = ":443", keyFile }, []string{"http.tls_cert"}},
		{"http.tls_cert without tls_listen", func(c *Config) { c.HTTP.TLSCert, c.HTTP.TLSKey = certFile, keyFile }, []string{"http.tls_listen"}},
		{"http.tls_cert missing", func(c *Config) {
			c.HTTP.TLSListen, c.HTTP.TLSCert, c.HTTP.TLSKey = ":443", missing, keyFile
		}, []string{"http.tls_cert"}},
		{"http.tls_key is a directory", func(c *Config) {
			c.HTTP.TLSListen, c.HTTP.TLSCert, c.HTTP.TLSKey = ":443", certFile, dir
		}, []string{"http.tls_key"}},
		{"http.tls_cert not a certificate", func(c *Config) {
			c.HTTP.TLSListen, c.HTTP.TLSCert, c.HTTP.TLSKey = ":443", garbage, keyFile
		}, []string{"http.tls_cert"}},
		{"http.tls_cert for another key", func(c *Config) {
			c.HTTP.TLSListen, c.HTTP.TLSCert, c.HTTP.TLSKey = ":443", otherCert, keyFile
		}, []string{"http.tls_cert"}},

		{"raft.listen empty", func(c *Config) { c.Raft.Listen = "" }, []string{"raft.listen"}},
		{"raft.listen bad", func(c *Config) { c.Raft.Listen = "0.0.0.0:7000:1" }, []string{"raft.listen"}},
		{"raft.advertise unspecified", func(c *Config) { c.Raft.Advertise = "0.0.0.0:7000" }, []string{"raft.advertise"}},
		{"raft.advertise ok", func(c *Config) { c.Raft.Advertise = "10.0.0.1:7000" }, nil},
		{"raft.join ok with bootstrap", func(c *Config) {
			c.Raft.Join = []string{"10.0.0.2:8080", "pbx-2.acme.example:8080", "https://pbx-3.acme.example", "http://[fd00::3]:8080/"}
		}, nil},
		{"raft.join without port", func(c *Config) { c.Raft.Join = []string{"10.0.0.2"} }, []string{"raft.join"}},
		{"raft.join without host", func(c *Config) { c.Raft.Join = []string{":8080"} }, []string{"raft.join"}},
		{"raft.join bad scheme", func(c *Config) { c.Raft.Join = []string{"ftp://10.0.0.2"} }, []string{"raft.join"}},
		{"raft.join URL without host", func(c *Config) { c.Raft.Join = []string{"https://"} }, []string{"raft.join"}},
		{"raft.join URL bad port", func(c *Config) { c.Raft.Join = []string{"https://pbx:70000"} }, []string{"raft.join"}},
		{"raft.join each entry", func(c *Config) { c.Raft.Join = []string{"", "10.0.0.2:8080", "x"} }, []string{"raft.join", "raft.join"}},
		{"raft.heartbeat_timeout too short", func(c *Config) { c.Raft.HeartbeatTimeout = Duration{10 * time.Millisecond} }, []string{"raft.heartbeat_timeout"}},
		{"raft.heartbeat_timeout 50ms", func(c *Config) { c.Raft.HeartbeatTimeout = Duration{50 * time.Millisecond} }, nil},
		{"sip.digest_algorithms empty", func(c *Config) { c.SIP.DigestAlgorithms = nil }, []string{"sip.digest_algorithms"}},
		{"sip.digest_algorithms unknown", func(c *Config) { c.SIP.DigestAlgorithms = []string{"SHA-512"} }, []string{"sip.digest_algorithms"}},
		{"sip.digest_algorithms repeated", func(c *Config) { c.SIP.DigestAlgorithms = []string{"MD5", "MD5"} }, []string{"sip.digest_algorithms"}},
		{"sip.min_expires zero", func(c *Config) { c.SIP.MinExpires = Duration{} }, []string{"sip.min_expires"}},
		{"sip.max_expires below min", func(c *Config) { c.SIP.MaxExpires = Duration{30 * time.Second} }, []string{"sip.max_expires"}},
		{"sip.survivability_expires below min", func(c *Config) { c.SIP.SurvivabilityExpires = Duration{10 * time.Second} }, []string{"sip.survivability_expires"}},
		{"sip.survivability_expires zero", func(c *Config) { c.SIP.SurvivabilityExpires = Duration{} }, []string{"sip.survivability_expires"}},
		{"sip.failback notify", func(c *Config) { c.SIP.Failback = FailbackNotify }, nil},
		{"sip.failback reject", func(c *Config) { c.SIP.Failback = FailbackReject }, nil},
		{"sip.failback unknown", func(c *Config) { c.SIP.Failback = "nudge" }, []string{"sip.failback"}},
		{"sip.failback upper case", func(c *Config) { c.SIP.Failback = "Notify" }, []string{"sip.failback"}},
		{"sip.failback empty", func(c *Config) { c.SIP.Failback = "" }, []string{"sip.failback"}},
		{"sip.failback_expires below min", func(c *Config) { c.SIP.FailbackExpires = Duration{30 * time.Second} }, []string{"sip.failback_expires"}},
		{"sip.failback_expires zero", func(c *Config) { c.SIP.FailbackExpires = Duration{} }, []string{"sip.failback_expires"}},
		{"sip.failback_expires equals min", func(c *Config) { c.SIP.FailbackExpires = Duration{time.Minute} }, nil},
		{"sip.failback_expires follows min", func(c *Config) {
			c.SIP.MinExpires, c.SIP.FailbackExpires = Duration{20 * time.Second}, Duration{20 * time.Second}
		}, nil},
		{"sip.failback_retry_after zero", func(c *Config) { c.SIP.FailbackRetryAfter = Duration{} }, []string{"sip.failback_retry_after"}},
		{"sip.failback_retry_after fraction", func(c *Config) { c.SIP.FailbackRetryAfter = Duration{1500 * time.Millisecond} }, []string{"sip.failback_retry_after"}},
		{"sip.failback_retry_after below a second", func(c *Config) { c.SIP.FailbackRetryAfter = Duration{500 * time.Millisecond} }, []string{"sip.failback_retry_after"}},
		{"raft.election_timeout zero", func(c *Config) { c.Raft.ElectionTimeout = Duration{} }, []string{"raft.election_timeout"}},
		{"raft.election_timeout below heartbeat", func(c *Config) { c.Raft.HeartbeatTimeout = Duration{2 * time.Second} }, []string{"raft.election_timeout"}},
		{"raft.snapshot_threshold zero", func(c *Config) { c.Raft.SnapshotThreshold = 0 }, []string{"raft.snapshot_threshold"}},

		{"dns on", func(c *Config) { c.DNS = DNS{Listen: "0.0.0.0:53", Domain: "survive.acme.example."} }, nil},
		{"dns.domain without listen", func(c *Config) { c.DNS.Domain = "survive.acme.example" }, nil},
		{"dns.listen without domain", func(c *Config) { c.DNS.Listen = "0.0.0.0:53" }, []string{"dns.domain"}},
		{"dns.listen bad", func(c *Config) { c.DNS = DNS{Listen: "53", Domain: "a.example"} }, []string{"dns.listen"}},
		{"dns.domain empty label", func(c *Config) { c.DNS.Domain = "a..example" }, []string{"dns.domain"}},
		{"dns.domain bad character", func(c *Config) { c.DNS.Domain = "a_b.example" }, []string{"dns.domain"}},
		{"dns.domain hyphen edge", func(c *Config) { c.DNS.Domain = "-a.example" }, []string{"dns.domain"}},
		{"dns.domain long label", func(c *Config) { c.DNS.Domain = strings.Repeat("a", 64) + ".example" }, []string{"dns.domain"}},

		{"media.rtp_ports bad", func(c *Config) { c.Media.RTPPorts = "20001-29999" }, []string{"media.rtp_ports"}},
		{"media.rtp_ports low", func(c *Config) { c.Media.RTPPorts = "1000-2000" }, []string{"media.rtp_ports"}},
		{"media.rtp_ports empty", func(c *Config) { c.Media.RTPPorts = "" }, []string{"media.rtp_ports"}},

		{"cloud.url ok", func(c *Config) { c.Cloud.URL = "https://cloud.example:8443/base" }, nil},
		{"cloud.url no scheme", func(c *Config) { c.Cloud.URL = "cloud.example" }, []string{"cloud.url"}},
		{"cloud.url bad scheme", func(c *Config) { c.Cloud.URL = "ftp://cloud.example" }, []string{"cloud.url"}},
		{"cloud.url no host", func(c *Config) { c.Cloud.URL = "http:///v1" }, []string{"cloud.url"}},
		{"cloud.url unparsable", func(c *Config) { c.Cloud.URL = "http://a b/%zz" }, []string{"cloud.url"}},
		{"cloud.probe_interval zero", func(c *Config) { c.Cloud.ProbeInterval = Duration{} }, []string{"cloud.probe_interval"}},
		{"cloud.outage_after below probe", func(c *Config) { c.Cloud.OutageAfter = Duration{time.Second} }, []string{"cloud.outage_after"}},
		{"cloud.recover_after below probe", func(c *Config) { c.Cloud.RecoverAfter = Duration{time.Second} }, []string{"cloud.recover_after"}},
		{"cloud.recover_after negative", func(c *Config) { c.Cloud.RecoverAfter = Duration{-time.Second} }, []string{"cloud.recover_after"}},
		{"cloud.outage_after equals probe", func(c *Config) { c.Cloud.OutageAfter = Duration{5 * time.Second} }, nil},

		{"log.level bad", func(c *Config) { c.Log.Level = "verbose" }, []string{"log.level"}},
		{"log.level upper-case", func(c *Config) { c.Log.Level = "INFO" }, []string{"log.level"}},
		{"log.format bad", func(c *Config) { c.Log.Format = "xml" }, []string{"log.format"}},

		{"bootstrap_snapshot exists", func(c *Config) { c.BootstrapSnapshot = tokenFile }, nil},
		{"bootstrap_snapshot missing", func(c *Config) { c.BootstrapSnapshot = missing }, []string{"bootstrap_snapshot"}},

		{"port clash tcp", func(c *Config) { c.HTTP.Listen = "127.0.0.1:7000" }, []string{"raft.listen"}},
		{"port clash udp", func(c *Config) { c.DNS = DNS{Listen: "0.0.0.0:5060", Domain: "a.example"} }, []string{"dns.listen", "dns.listen"}},
		{"port clash with tls on", func(c *Config) {
			c.SIP.TLSCert, c.SIP.TLSKey, c.HTTP.Listen = certFile, keyFile, ":5061"
		}, []string{"http.listen"}},
		{"calls.park_code no star", func(c *Config) { c.Calls.ParkCode = "68" }, []string{"calls.park_code"}},
		{"calls.park_code letters", func(c *Config) { c.Calls.ParkCode = "*6a" }, []string{"calls.park_code"}},
		{"calls.park_code too long", func(c *Config) { c.Calls.ParkCode = "*1234567" }, []string{"calls.park_code"}},
		{"calls.park_code #", func(c *Config) { c.Calls.ParkCode = "#68" }, nil},
		{"calls.park_retrieve_code empty", func(c *Config) { c.Calls.ParkRetrieveCode = "" }, []string{"calls.park_retrieve_code"}},
		{"calls park codes equal", func(c *Config) { c.Calls.ParkRetrieveCode = "*68" }, []string{"calls.park_retrieve_code"}},
		{"calls park code starts the other", func(c *Config) { c.Calls.ParkRetrieveCode = "*6" }, []string{"calls.park_retrieve_code"}},
		{"calls.park_slots 0", func(c *Config) { c.Calls.ParkSlots = 0 }, []string{"calls.park_slots"}},
		{"calls.park_slots 100", func(c *Config) { c.Calls.ParkSlots = 100 }, []string{"calls.park_slots"}},
		{"calls.park_slots 99", func(c *Config) { c.Calls.ParkSlots = 99 }, nil},
		{"calls.park_timeout 0", func(c *Config) { c.Calls.ParkTimeout = Duration{} }, []string{"calls.park_timeout"}},
		{"calls.park_timeout short", func(c *Config) { c.Calls.ParkTimeout = Duration{500 * time.Millisecond} }, []string{"calls.park_timeout"}},
		{"calls.park_ring_for 0", func(c *Config) { c.Calls.ParkRingFor = Duration{} }, []string{"calls.park_ring_for"}},
		{"calls.park_ringbacks 0", func(c *Config) { c.Calls.ParkRingbacks = 0 }, []string{"calls.park_ringbacks"}},
		{"same port, different hosts", func(c *Config) { c.HTTP.Listen, c.Raft.Listen = "10.0.0.1:9000", "10.0.0.2:9000" }, nil},
		{"same port, different protocols", func(c *Config) { c.SIP.UDP, c.HTTP.Listen = "0.0.0.0:8080", "0.0.0.0:8080" }, nil},
		{"port 0 twice", func(c *Config) { c.HTTP.Listen, c.Raft.Listen = "127.0.0.1:0", "127.0.0.1:0" }, nil},
		{"tls port unused while tls off", func(c *Config) { c.HTTP.Listen = "0.0.0.0:5061" }, nil},
		{"port clash http.tls_listen and http.listen", func(c *Config) { c.HTTP.TLSListen = "127.0.0.1:8080" }, []string{"http.tls_listen"}},
		{"port clash raft.listen and http.tls_listen", func(c *Config) { c.HTTP.TLSListen = ":7000" }, []string{"raft.listen"}},
		{"http.tls_listen beside plain http on another host", func(c *Config) {
			c.HTTP.Listen, c.HTTP.TLSListen = "127.0.0.1:8080", "10.0.0.1:8080"
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.modify(&c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want a *ValidationError", err)
			}
			if got := problemKeys(ve); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problem keys = %q, want %q (%v)", got, tt.want, err)
			}
			for _, p := range ve.Problems {
				if _, ok := lookupKey(p.Key); !ok {
					t.Errorf("problem key %q is not a configuration key", p.Key)
				}
				if p.Message == "" || strings.Contains(p.Message, "\n") {
					t.Errorf("problem %q: message must be one non-empty line", p)
				}
			}
		})
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	c := valid()
	c.NodeID = ""
	c.SIP.UDP = "nope"
	c.Raft.Listen = "0.0.0.0:99999"
	c.Log.Format = "xml"
	err := c.Validate()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate() = %v, want a *ValidationError", err)
	}
	if got, want := problemKeys(ve), []string{"node_id", "sip.udp", "raft.listen", "log.format"}; !reflect.DeepEqual(got, want) {
		t.Errorf("problem keys = %q, want %q", got, want)
	}
	want := `invalid configuration: node_id: must not be empty; ` +
		`sip.udp: "nope" is not host:port (e.g. 0.0.0.0:5060); ` +
		`raft.listen: "0.0.0.0:99999": port "99999" is not a number from 0 to 65535; ` +
		`log.format: "xml" is not one of text, json`
	if got := err.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
}

func TestValidateRedactsURLPasswords(t *testing.T) {
	c := valid()
	c.Cloud.URL = "ftp://u:s3cret@cloud.example"
	err := c.Validate()
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Validate() = %v, want an error without the password", err)
	}
}
