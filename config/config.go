package config

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Config is the node configuration. The yaml tags are the file's keys and, by
// reflection, the names of the environment overrides (see Load); the json tags
// are the same names, for the web UI's Settings page.
type Config struct {
	// NodeID names this node in the cluster. Default: the host name.
	NodeID string `yaml:"node_id" json:"node_id"`
	// Site is the account site whose phones this node serves first.
	Site string `yaml:"site" json:"site"`
	// DataDir holds the store, the Raft log and the cloud credentials.
	DataDir string `yaml:"data_dir" json:"data_dir"`

	SIP   SIP   `yaml:"sip" json:"sip"`
	HTTP  HTTP  `yaml:"http" json:"http"`
	Raft  Raft  `yaml:"raft" json:"raft"`
	DNS   DNS   `yaml:"dns" json:"dns"`
	Media Media `yaml:"media" json:"media"`
	SBC   SBC   `yaml:"sbc" json:"sbc"`
	Calls Calls `yaml:"calls" json:"calls"`
	Cloud Cloud `yaml:"cloud" json:"cloud"`
	Log   Log   `yaml:"log" json:"log"`

	// BootstrapSnapshot is a snapshot file applied once when the store is empty.
	BootstrapSnapshot string `yaml:"bootstrap_snapshot" json:"bootstrap_snapshot"`
}

// SIP configures the SIP listeners. An empty address disables that transport.
type SIP struct {
	UDP     string `yaml:"udp" json:"udp"`
	TCP     string `yaml:"tcp" json:"tcp"`
	TLS     string `yaml:"tls" json:"tls"`
	TLSCert string `yaml:"tls_cert" json:"tls_cert"`
	TLSKey  string `yaml:"tls_key" json:"tls_key"`
	// Advertise is the host (or host:port) the node puts in Via, Contact and
	// Record-Route. Empty: derived from the listener (see Advertised).
	Advertise string `yaml:"advertise" json:"advertise"`
	// MinExpires: REGISTERs asking for less get 423 Interval Too Brief.
	MinExpires Duration `yaml:"min_expires" json:"min_expires"`
	// MaxExpires caps the registration interval granted in any mode (each
	// mode caps it further) and is the interval of a REGISTER naming none.
	MaxExpires Duration `yaml:"max_expires" json:"max_expires"`
	// SurvivabilityExpires caps it while the mode is survivability or
	// recovering, so phones go back to the cloud soon after it returns.
	SurvivabilityExpires Duration `yaml:"survivability_expires" json:"survivability_expires"`
	// Failback is how the registrar sends phones back to the cloud once
	// the mode is normal again: FailbackOff (only the short interval of
	// FailbackExpires), FailbackNotify (also NOTIFY Event: check-sync to
	// idle phones) or FailbackReject (also 503 with Retry-After to the
	// re-REGISTER of an idle phone's binding). An extension of the
	// contract; docs/sip.md, "Failback".
	Failback string `yaml:"failback" json:"failback"`
	// FailbackExpires caps the registration interval while the mode is
	// normal, so phones that failed over re-register soon and find the
	// cloud again.
	FailbackExpires Duration `yaml:"failback_expires" json:"failback_expires"`
	// FailbackRetryAfter is the Retry-After of the 503 that Failback
	// "reject" answers.
	FailbackRetryAfter Duration `yaml:"failback_retry_after" json:"failback_retry_after"`
	// SiteCapacity is the most live registrations one site may hold on this
	// node; beyond it REGISTER gets 503 with Retry-After. 0: no limit.
	SiteCapacity uint64 `yaml:"site_capacity" json:"site_capacity"`
	// DigestAlgorithms are challenged in this order (RFC 8760): a phone
	// answers the first it supports. MD5 alone by default: the cloud phones
	// come from uses MD5, and some SIP stacks fail a 401 that carries any
	// challenge they do not know, even beside MD5.
	DigestAlgorithms []string `yaml:"digest_algorithms" json:"digest_algorithms"`
	// FloodRate is the most SIP messages a second one source (an IPv4
	// address, an IPv6 /64) may send, on any transport, with bursts of
	// five seconds' worth; messages over it are dropped unanswered, and a
	// source refused more than five seconds' worth within a minute is
	// banned for FloodBan. 0 turns the flood guard off. An extension of
	// the contract; docs/sip.md, "Floods and connections".
	FloodRate uint64 `yaml:"flood_rate" json:"flood_rate"`
	// FloodBan is how long everything a flooding source sends is dropped.
	FloodBan Duration `yaml:"flood_ban" json:"flood_ban"`
	// FloodExempt lists addresses and prefixes the flood guard never
	// limits nor bans, nor holds to TCPMaxPerSource (a NAT with many
	// phones behind it). The trunks' SBCs and the cluster's members are
	// exempt without being listed.
	FloodExempt []string `yaml:"flood_exempt" json:"flood_exempt"`
	// TCPMaxConnections caps the SIP TCP and TLS connections open at
	// once, together; more are closed as they are accepted. 0: no cap.
	TCPMaxConnections uint64 `yaml:"tcp_max_connections" json:"tcp_max_connections"`
	// TCPMaxPerSource caps them per source. 0: no cap.
	TCPMaxPerSource uint64 `yaml:"tcp_max_per_source" json:"tcp_max_per_source"`
	// TCPMessageTimeout: a SIP TCP or TLS connection must deliver its first
	// message (the TLS handshake included) within it of opening, and every
	// message within it of the message's first byte, or it is closed
	// (slowloris). A connection that delivered a message may then stay
	// silent for MaxExpires and a minute.
	TCPMessageTimeout Duration `yaml:"tcp_message_timeout" json:"tcp_message_timeout"`
	// TLSCBCCiphers also offers, on SIP TLS, the TLS 1.2 AES-CBC cipher
	// suites (ECDHE, SHA-1 MAC) for phones whose TLS offers no
	// AEAD suite. Off by default: SIP TLS, like HTTPS, offers TLS 1.3 and
	// TLS 1.2's ECDHE AES-GCM and ChaCha20-Poly1305 suites only.
	TLSCBCCiphers bool `yaml:"tls_cbc_ciphers" json:"tls_cbc_ciphers"`
}

// The values of sip.failback.
const (
	FailbackOff    = "off"
	FailbackNotify = "notify"
	FailbackReject = "reject"
)

// TLSEnabled reports whether the SIP TLS listener should run: it needs an
// address, a certificate and a key. With the default address and no
// certificate, TLS is simply off.
func (s SIP) TLSEnabled() bool {
	return s.TLS != "" && s.TLSCert != "" && s.TLSKey != ""
}

// HTTP configures the HTTP API, web UI, health and metrics listener, and
// the HTTPS listener that serves the same.
type HTTP struct {
	Listen string `yaml:"listen" json:"listen"`
	// TLSListen is the HTTPS listener's address, serving what Listen
	// serves; empty: no HTTPS. An extension of the contract; docs/ui.md,
	// "HTTPS".
	TLSListen string `yaml:"tls_listen" json:"tls_listen"`
	// TLSCert and TLSKey are the HTTPS certificate (PEM, its chain after
	// it) and key, loaded again when they change. Both empty: a
	// self-signed certificate the node makes in <data_dir>/http-tls.
	TLSCert string `yaml:"tls_cert" json:"tls_cert"`
	TLSKey  string `yaml:"tls_key" json:"tls_key"`
	// Advertise is the host:port other nodes use to reach this node's HTTP
	// API. Empty: derived from Listen (see Advertised).
	Advertise string `yaml:"advertise" json:"advertise"`
	// AdminTokenFile holds the bearer token for the API and `outpost apply`.
	AdminTokenFile string `yaml:"admin_token_file" json:"admin_token_file"`
}

// TLSEnabled reports whether the HTTPS listener should run.
func (h HTTP) TLSEnabled() bool { return h.TLSListen != "" }

// SelfSigned reports whether HTTPS runs on a certificate the node makes
// itself (no http.tls_cert and http.tls_key given).
func (h HTTP) SelfSigned() bool { return h.TLSEnabled() && h.TLSCert == "" && h.TLSKey == "" }

// Raft configures cluster membership and consensus.
type Raft struct {
	Listen    string `yaml:"listen" json:"listen"`
	Advertise string `yaml:"advertise" json:"advertise"`
	// Bootstrap forms a new one-node cluster when the store is empty and Join
	// is empty. When Join is set, joining wins.
	Bootstrap bool `yaml:"bootstrap" json:"bootstrap"`
	// Join lists HTTP addresses (host:port or http(s) URLs) of existing
	// members, tried in order when the store is empty.
	Join              []string `yaml:"join" json:"join"`
	HeartbeatTimeout  Duration `yaml:"heartbeat_timeout" json:"heartbeat_timeout"`
	ElectionTimeout   Duration `yaml:"election_timeout" json:"election_timeout"`
	SnapshotThreshold uint64   `yaml:"snapshot_threshold" json:"snapshot_threshold"`
}

// JoinURLs returns Join as base URLs: host:port entries become
// "http://host:port"; URLs are kept, without a trailing slash.
func (r Raft) JoinURLs() []string {
	out := make([]string, 0, len(r.Join))
	for _, j := range r.Join {
		if !strings.Contains(j, "://") {
			j = "http://" + j
		}
		out = append(out, strings.TrimRight(j, "/"))
	}
	return out
}

// DNS configures the built-in DNS server. An empty Listen disables it.
type DNS struct {
	Listen string `yaml:"listen" json:"listen"`
	Domain string `yaml:"domain" json:"domain"`
}

// Media configures the RTP relay.
type Media struct {
	// RTPPorts is the inclusive port range "LO-HI" used for RTP and RTCP.
	RTPPorts string `yaml:"rtp_ports" json:"rtp_ports"`
	// Timeout ends a relayed call (a trunk call) whose media stopped in
	// both directions for this long.
	Timeout Duration `yaml:"timeout" json:"timeout"`
}

// SBC configures TLS toward the SBCs of trunks with transport "tls". The
// snapshot says which trunks use TLS; the certificates, being secrets of
// this appliance, are local files, loaded again when they change.
type SBC struct {
	// TLSCert and TLSKey are the client certificate (PEM, its chain after
	// it) and key presented to an SBC that asks for one (mutual TLS).
	TLSCert string `yaml:"tls_cert" json:"tls_cert"`
	TLSKey  string `yaml:"tls_key" json:"tls_key"`
	// TLSCA is the bundle of CA certificates an SBC's certificate must
	// chain to; empty: the system's roots.
	TLSCA string `yaml:"tls_ca" json:"tls_ca"`
	// TLSDir holds per-trunk overrides: <dir>/<trunk id>/cert.pem and
	// key.pem (the client certificate) and ca.pem (the CAs), each optional.
	TLSDir string `yaml:"tls_dir" json:"tls_dir"`
}

// Calls configures the node's call features. An extension of the
// contract; docs/sip.md, "Call park".
type Calls struct {
	// ParkCode is the feature code a call is transferred to (blind REFER)
	// to park it on the next free slot of the parker's site.
	ParkCode string `yaml:"park_code" json:"park_code"`
	// ParkRetrieveCode, followed by the slot (*883), retrieves the call
	// parked there.
	ParkRetrieveCode string `yaml:"park_retrieve_code" json:"park_retrieve_code"`
	// ParkSlots is the number of slots per site (1..99).
	ParkSlots uint64 `yaml:"park_slots" json:"park_slots"`
	// ParkTimeout: a parked call nobody retrieves rings the parker back
	// after it.
	ParkTimeout Duration `yaml:"park_timeout" json:"park_timeout"`
	// ParkRingFor is how long a ring-back rings the parker's phones.
	ParkRingFor Duration `yaml:"park_ring_for" json:"park_ring_for"`
	// ParkRingbacks: after this many unanswered ring-backs the parked
	// party hears goodbye and is hung up.
	ParkRingbacks uint64 `yaml:"park_ringbacks" json:"park_ringbacks"`
}

// Cloud configures the link to the control plane.
type Cloud struct {
	// URL is the control plane's base URL; empty means offline.
	URL string `yaml:"url" json:"url"`
	// CredentialsFile is written by `outpost pair`; empty means
	// <data_dir>/cloud.json (see Config.CloudCredentialsFile).
	CredentialsFile string   `yaml:"credentials_file" json:"credentials_file"`
	ProbeInterval   Duration `yaml:"probe_interval" json:"probe_interval"`
	OutageAfter     Duration `yaml:"outage_after" json:"outage_after"`
	RecoverAfter    Duration `yaml:"recover_after" json:"recover_after"`
}

// Log configures the process logger.
type Log struct {
	Level  string `yaml:"level" json:"level"`   // debug, info, warn or error
	Format string `yaml:"format" json:"format"` // text or json
}

// SlogLevel returns Level as a slog.Level (info for anything unknown;
// Validate refuses unknown levels).
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Default returns the embedded defaults: a single node that bootstraps its own
// cluster, offline from the cloud. NodeID is the host name (reduced to the
// allowed characters) and DataDir is /var/lib/outpost when running as root,
// ./outpost-data otherwise.
func Default() Config {
	host, _ := os.Hostname()
	return defaults(host, os.Geteuid())
}

func defaults(hostname string, euid int) Config {
	dataDir := "./outpost-data"
	if euid == 0 {
		dataDir = "/var/lib/outpost"
	}
	return Config{
		NodeID:  nodeIDFromHostname(hostname),
		Site:    "default",
		DataDir: dataDir,
		SIP: SIP{
			UDP: "0.0.0.0:5060",
			TCP: "0.0.0.0:5060",
			TLS: "0.0.0.0:5061",

			MinExpires:           seconds(60),
			MaxExpires:           seconds(3600),
			SurvivabilityExpires: seconds(120),
			Failback:             FailbackOff,
			FailbackExpires:      seconds(60),
			FailbackRetryAfter:   seconds(30),
			SiteCapacity:         20000,
			DigestAlgorithms:     []string{"MD5"},
			FloodRate:            200,
			FloodBan:             seconds(600),
			FloodExempt:          []string{"127.0.0.0/8", "::1"},
			TCPMaxConnections:    20000,
			TCPMaxPerSource:      500,
			TCPMessageTimeout:    seconds(10),
		},
		HTTP: HTTP{Listen: "0.0.0.0:8080"},
		Raft: Raft{
			Listen:            "0.0.0.0:7000",
			Bootstrap:         true,
			HeartbeatTimeout:  seconds(1),
			ElectionTimeout:   seconds(1),
			SnapshotThreshold: 8192,
		},
		Media: Media{RTPPorts: "20000-29999", Timeout: seconds(30)},
		Calls: Calls{
			ParkCode:         "*68",
			ParkRetrieveCode: "*88",
			ParkSlots:        10,
			ParkTimeout:      seconds(60),
			ParkRingFor:      seconds(30),
			ParkRingbacks:    3,
		},
		Cloud: Cloud{
			ProbeInterval: seconds(5),
			OutageAfter:   seconds(30),
			RecoverAfter:  seconds(30),
		},
		Log: Log{Level: "info", Format: "text"},
	}
}

// nodeIDFromHostname turns a host name into a valid node ID: characters
// outside [A-Za-z0-9._-] become '-', and it is cut to the maximum length.
func nodeIDFromHostname(h string) string {
	id := []byte(h)
	for i, b := range id {
		if !isIDByte(b) {
			id[i] = '-'
		}
	}
	if len(id) > maxIDLen {
		id = id[:maxIDLen]
	}
	if len(id) == 0 {
		return "outpost"
	}
	return string(id)
}

// DBPath is the SQLite store: <data_dir>/outpost.db.
func (c Config) DBPath() string { return filepath.Join(c.DataDir, "outpost.db") }

// RaftDir holds the Raft log and snapshots: <data_dir>/raft.
func (c Config) RaftDir() string { return filepath.Join(c.DataDir, "raft") }

// HTTPTLSDir holds the self-signed HTTPS certificate the node makes when
// http.tls_listen is set without http.tls_cert: <data_dir>/http-tls.
func (c Config) HTTPTLSDir() string { return filepath.Join(c.DataDir, "http-tls") }

// CloudCredentialsFile is cloud.credentials_file, or <data_dir>/cloud.json
// when that is empty.
func (c Config) CloudCredentialsFile() string {
	if c.Cloud.CredentialsFile != "" {
		return c.Cloud.CredentialsFile
	}
	return filepath.Join(c.DataDir, "cloud.json")
}

// Redacted returns a deep copy safe to show (the web UI's Settings page).
// Config holds paths, never secret contents; the only secrets it can carry
// are passwords inside URLs (cloud.url, raft.join), which are replaced by
// "xxxxx".
func (c Config) Redacted() Config {
	c.Raft.Join = slices.Clone(c.Raft.Join)
	for i, j := range c.Raft.Join {
		c.Raft.Join[i] = redactURL(j)
	}
	c.Cloud.URL = redactURL(c.Cloud.URL)
	return c
}

func redactURL(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	return u.Redacted()
}

// YAML renders the configuration in the file format; loading the output gives
// the same Config back. Use it for `--print-config` style dumps (on a
// Redacted copy when it is shown to someone).
func (c Config) YAML() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Advertised returns the host:port others should use to reach a listener:
// advertise itself when it has a port; advertise's host with listen's port
// when it is a bare host; otherwise listen, with its host replaced by
// fallbackHost when listen's host is empty or unspecified (0.0.0.0, ::).
// Pass the bound address as listen when listening on port 0.
func Advertised(advertise, listen, fallbackHost string) string {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		port = ""
	}
	if advertise != "" {
		if _, _, err := net.SplitHostPort(advertise); err == nil {
			return advertise
		}
		return net.JoinHostPort(strings.Trim(advertise, "[]"), port)
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if a, err := netip.ParseAddr(host); host == "" || (err == nil && a.IsUnspecified()) {
		return net.JoinHostPort(fallbackHost, port)
	}
	return listen
}
