package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Problem is one thing wrong with a configuration, at a dotted key such as
// "sip.udp".
type Problem struct {
	Key     string `json:"key"`
	Message string `json:"message"`
}

func (p Problem) String() string { return p.Key + ": " + p.Message }

// ValidationError lists every problem found; a configuration with any
// problem is refused whole.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return "invalid configuration: " + strings.Join(parts, "; ")
}

const (
	maxIDLen        = 64
	minRaftTimeout  = 50 * time.Millisecond
	minRTPPort      = 1024
	maxPort         = 65535
	maxDNSNameLen   = 253
	maxDNSLabelLen  = 63
	exampleListen   = " (e.g. 0.0.0.0:5060)"
	exampleJoinAddr = " (e.g. 10.0.0.2:8080 or https://node-2.example:8080)"
)

// Validate checks every rule and returns nil or a *ValidationError listing
// every problem, in key order. It reads the file system only to check that
// the files the configuration names exist and are readable.
func (c Config) Validate() error {
	v := &validator{}

	v.check("node_id", checkID(c.NodeID))
	v.check("site", checkID(c.Site))
	if c.DataDir == "" {
		v.add("data_dir", "must not be empty; set the directory for the store and the Raft log")
	}

	// sip
	if c.SIP.UDP == "" && c.SIP.TCP == "" {
		v.add("sip.udp", "sip.udp and sip.tcp are both empty; set at least one so phones can reach the node")
	}
	v.check("sip.udp", optional(c.SIP.UDP, checkHostPort))
	v.check("sip.tcp", optional(c.SIP.TCP, checkHostPort))
	v.check("sip.tls", optional(c.SIP.TLS, checkHostPort))
	switch {
	case c.SIP.TLSCert != "" && c.SIP.TLSKey == "":
		v.add("sip.tls_key", "must be set when sip.tls_cert is set")
	case c.SIP.TLSCert == "" && c.SIP.TLSKey != "":
		v.add("sip.tls_cert", "must be set when sip.tls_key is set")
	}
	certOK := v.check("sip.tls_cert", optional(c.SIP.TLSCert, checkReadable))
	keyOK := v.check("sip.tls_key", optional(c.SIP.TLSKey, checkReadable))
	if c.SIP.TLSEnabled() && certOK && keyOK {
		if _, err := tls.LoadX509KeyPair(c.SIP.TLSCert, c.SIP.TLSKey); err != nil {
			v.add("sip.tls_cert", "is not a usable certificate for sip.tls_key: "+err.Error())
		}
	}
	v.check("sip.advertise", optional(c.SIP.Advertise, checkAdvertise))

	minOK := v.check("sip.min_expires", atLeast(c.SIP.MinExpires, time.Second))
	maxOK := v.check("sip.max_expires", atLeast(c.SIP.MaxExpires, time.Second))
	survOK := v.check("sip.survivability_expires", atLeast(c.SIP.SurvivabilityExpires, time.Second))
	if minOK && maxOK && c.SIP.MaxExpires.Duration < c.SIP.MinExpires.Duration {
		v.add("sip.max_expires", "must be at least sip.min_expires ("+c.SIP.MinExpires.String()+")")
	}
	if minOK && survOK && c.SIP.SurvivabilityExpires.Duration < c.SIP.MinExpires.Duration {
		v.add("sip.survivability_expires", "must be at least sip.min_expires ("+c.SIP.MinExpires.String()+")")
	}
	v.check("sip.failback", oneOf(c.SIP.Failback, FailbackOff, FailbackNotify, FailbackReject))
	failbackOK := v.check("sip.failback_expires", atLeast(c.SIP.FailbackExpires, time.Second))
	if minOK && failbackOK && c.SIP.FailbackExpires.Duration < c.SIP.MinExpires.Duration {
		v.add("sip.failback_expires", "must be at least sip.min_expires ("+c.SIP.MinExpires.String()+
			"): shorter registrations would be refused with 423")
	}
	if v.check("sip.failback_retry_after", atLeast(c.SIP.FailbackRetryAfter, time.Second)) &&
		c.SIP.FailbackRetryAfter.Duration%time.Second != 0 {
		v.add("sip.failback_retry_after", c.SIP.FailbackRetryAfter.String()+": must be whole seconds (Retry-After counts seconds), e.g. 30s")
	}

	if len(c.SIP.DigestAlgorithms) == 0 {
		v.add("sip.digest_algorithms", "list at least one of MD5, SHA-256")
	}
	for i, a := range c.SIP.DigestAlgorithms {
		switch {
		case a != "MD5" && a != "SHA-256":
			v.add("sip.digest_algorithms", fmt.Sprintf("entry %d: %q is not MD5 or SHA-256", i+1, a))
		case slices.Contains(c.SIP.DigestAlgorithms[:i], a):
			v.add("sip.digest_algorithms", fmt.Sprintf("entry %d: %s is listed twice", i+1, a))
		}
	}

	v.check("sip.flood_ban", atLeast(c.SIP.FloodBan, time.Second))
	for i, e := range c.SIP.FloodExempt {
		if err := checkPrefix(e); err != nil {
			v.add("sip.flood_exempt", fmt.Sprintf("entry %d: %v", i+1, err))
		}
	}
	v.check("sip.tcp_message_timeout", atLeast(c.SIP.TCPMessageTimeout, 100*time.Millisecond))

	// http
	v.check("http.listen", required(c.HTTP.Listen, checkHostPort))
	v.checkHTTPS(c.HTTP)
	v.check("http.advertise", optional(c.HTTP.Advertise, checkAdvertise))
	v.check("http.admin_token_file", optional(c.HTTP.AdminTokenFile, checkReadable))

	// raft
	v.check("raft.listen", required(c.Raft.Listen, checkHostPort))
	v.check("raft.advertise", optional(c.Raft.Advertise, checkAdvertise))
	for i, j := range c.Raft.Join {
		if err := checkJoin(j); err != nil {
			v.add("raft.join", fmt.Sprintf("entry %d: %v", i+1, err))
		}
	}
	heartbeatOK := v.check("raft.heartbeat_timeout", atLeast(c.Raft.HeartbeatTimeout, minRaftTimeout))
	electionOK := v.check("raft.election_timeout", atLeast(c.Raft.ElectionTimeout, minRaftTimeout))
	if heartbeatOK && electionOK && c.Raft.ElectionTimeout.Duration < c.Raft.HeartbeatTimeout.Duration {
		v.add("raft.election_timeout", "must be at least raft.heartbeat_timeout ("+c.Raft.HeartbeatTimeout.String()+")")
	}
	if c.Raft.SnapshotThreshold == 0 {
		v.add("raft.snapshot_threshold", "must be at least 1")
	}

	// dns
	v.check("dns.listen", optional(c.DNS.Listen, checkHostPort))
	if c.DNS.Listen != "" && c.DNS.Domain == "" {
		v.add("dns.domain", "must be set when dns.listen is set: the zone the DNS server answers, e.g. survive.acme.example")
	}
	v.check("dns.domain", optional(c.DNS.Domain, checkDomain))

	// media
	_, _, err := c.Media.PortRange()
	v.check("media.rtp_ports", err)
	v.check("media.timeout", atLeast(c.Media.Timeout, time.Second))

	// sbc
	v.checkSBC(c.SBC)

	// calls
	v.checkCalls(c.Calls)

	// cloud
	v.check("cloud.url", optional(c.Cloud.URL, checkHTTPURL))
	probeOK := v.check("cloud.probe_interval", atLeast(c.Cloud.ProbeInterval, 0))
	v.check("cloud.outage_after", notBelowProbe(c.Cloud.OutageAfter, c.Cloud.ProbeInterval, probeOK))
	v.check("cloud.recover_after", notBelowProbe(c.Cloud.RecoverAfter, c.Cloud.ProbeInterval, probeOK))

	// log
	v.check("log.level", oneOf(c.Log.Level, "debug", "info", "warn", "error"))
	v.check("log.format", oneOf(c.Log.Format, "text", "json"))

	v.check("bootstrap_snapshot", optional(c.BootstrapSnapshot, checkReadable))

	v.checkPortClashes(c)

	if len(v.problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: v.problems}
}

type validator struct{ problems []Problem }

// checkSBC checks the TLS files toward the SBCs: the client certificate
// and key go together and load, the CA bundle holds certificates, the
// per-trunk directory is a directory.
func (v *validator) checkSBC(s SBC) {
	switch {
	case s.TLSCert != "" && s.TLSKey == "":
		v.add("sbc.tls_key", "must be set when sbc.tls_cert is set")
	case s.TLSCert == "" && s.TLSKey != "":
		v.add("sbc.tls_cert", "must be set when sbc.tls_key is set")
	}
	certOK := v.check("sbc.tls_cert", optional(s.TLSCert, checkReadable))
	keyOK := v.check("sbc.tls_key", optional(s.TLSKey, checkReadable))
	if s.TLSCert != "" && s.TLSKey != "" && certOK && keyOK {
		if _, err := tls.LoadX509KeyPair(s.TLSCert, s.TLSKey); err != nil {
			v.add("sbc.tls_cert", "is not a usable certificate for sbc.tls_key: "+err.Error())
		}
	}
	if v.check("sbc.tls_ca", optional(s.TLSCA, checkReadable)) && s.TLSCA != "" {
		if data, err := os.ReadFile(s.TLSCA); err == nil && !x509.NewCertPool().AppendCertsFromPEM(data) {
			v.add("sbc.tls_ca", fmt.Sprintf("%q holds no PEM certificate; give the CA certificates SBCs' certificates chain to", s.TLSCA))
		}
	}
	if s.TLSDir != "" {
		if st, err := os.Stat(s.TLSDir); err != nil || !st.IsDir() {
			v.add("sbc.tls_dir", fmt.Sprintf("%q is not a directory; create it with one sub-directory per trunk id", s.TLSDir))
		}
	}
}

// checkCalls checks the call features: the park codes are star codes
// that neither start the other, the slots a one- or two-digit number.
func (v *validator) checkCalls(c Calls) {
	parkOK := v.check("calls.park_code", checkFeatureCode(c.ParkCode))
	retrieveOK := v.check("calls.park_retrieve_code", checkFeatureCode(c.ParkRetrieveCode))
	if parkOK && retrieveOK && (strings.HasPrefix(c.ParkCode, c.ParkRetrieveCode) || strings.HasPrefix(c.ParkRetrieveCode, c.ParkCode)) {
		v.add("calls.park_retrieve_code", fmt.Sprintf("%q and calls.park_code %q: neither may start the other (e.g. *68 and *88)",
			c.ParkRetrieveCode, c.ParkCode))
	}
	if c.ParkSlots < 1 || c.ParkSlots > 99 {
		v.add("calls.park_slots", fmt.Sprintf("%d: must be 1 to 99", c.ParkSlots))
	}
	v.check("calls.park_timeout", atLeast(c.ParkTimeout, time.Second))
	v.check("calls.park_ring_for", atLeast(c.ParkRingFor, time.Second))
	if c.ParkRingbacks < 1 {
		v.add("calls.park_ringbacks", "must be at least 1")
	}
}

// checkFeatureCode: a star code, * or # then one to six digits.
func checkFeatureCode(s string) error {
	if len(s) < 2 || len(s) > 7 || (s[0] != '*' && s[0] != '#') || strings.Trim(s[1:], "0123456789") != "" {
		return fmt.Errorf("%q is not a feature code; use * or # then 1 to 6 digits, e.g. *68", s)
	}
	return nil
}

// checkHTTPS checks the HTTPS listener and its files: the certificate and
// key go together and load, and are only given with an address to serve
// them on.
func (v *validator) checkHTTPS(h HTTP) {
	v.check("http.tls_listen", optional(h.TLSListen, checkHostPort))
	switch {
	case h.TLSCert != "" && h.TLSKey == "":
		v.add("http.tls_key", "must be set when http.tls_cert is set")
	case h.TLSCert == "" && h.TLSKey != "":
		v.add("http.tls_cert", "must be set when http.tls_key is set")
	case h.TLSCert != "" && h.TLSListen == "":
		v.add("http.tls_listen", "must be set when http.tls_cert and http.tls_key are set: "+
			"the address to serve HTTPS on (e.g. 0.0.0.0:443); or clear them")
	}
	certOK := v.check("http.tls_cert", optional(h.TLSCert, checkReadable))
	keyOK := v.check("http.tls_key", optional(h.TLSKey, checkReadable))
	if h.TLSCert != "" && h.TLSKey != "" && certOK && keyOK {
		if _, err := tls.LoadX509KeyPair(h.TLSCert, h.TLSKey); err != nil {
			v.add("http.tls_cert", "is not a usable certificate for http.tls_key: "+err.Error())
		}
	}
}

func (v *validator) add(key, msg string) { v.problems = append(v.problems, Problem{key, msg}) }

// check records err under key and reports whether there was none.
func (v *validator) check(key string, err error) bool {
	if err != nil {
		v.add(key, err.Error())
		return false
	}
	return true
}

// checkPortClashes finds two enabled listeners on the same protocol and port
// whose hosts overlap (equal, or either one empty or unspecified).
func (v *validator) checkPortClashes(c Config) {
	type listener struct {
		key, addr string
		tcp, udp  bool
	}
	ls := []listener{
		{"sip.udp", c.SIP.UDP, false, true},
		{"sip.tcp", c.SIP.TCP, true, false},
		{"http.listen", c.HTTP.Listen, true, false},
		{"http.tls_listen", c.HTTP.TLSListen, true, false},
		{"raft.listen", c.Raft.Listen, true, false},
		{"dns.listen", c.DNS.Listen, true, true},
	}
	if c.SIP.TLSEnabled() {
		ls = slices.Insert(ls, 2, listener{"sip.tls", c.SIP.TLS, true, false})
	}
	for i, a := range ls {
		for _, b := range ls[:i] {
			if (a.tcp && b.tcp || a.udp && b.udp) && sameSocket(a.addr, b.addr) {
				_, port, _ := net.SplitHostPort(a.addr)
				v.add(a.key, "port "+port+" is also used by "+b.key)
			}
		}
	}
}

func sameSocket(a, b string) bool {
	ah, ap, err1 := net.SplitHostPort(a)
	bh, bp, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || ap != bp || ap == "0" {
		return false
	}
	return ah == bh || anyHost(ah) || anyHost(bh)
}

func anyHost(h string) bool {
	a, err := netip.ParseAddr(h)
	return h == "" || (err == nil && a.IsUnspecified())
}

// PortRange parses RTPPorts ("LO-HI") and checks 1024 <= LO < HI <= 65535
// with LO even (RTP takes the even port, RTCP the next one).
func (m Media) PortRange() (lo, hi int, err error) {
	los, his, ok := strings.Cut(m.RTPPorts, "-")
	lo, err1 := strconv.Atoi(los)
	hi, err2 := strconv.Atoi(his)
	switch {
	case !ok || err1 != nil || err2 != nil:
		return 0, 0, fmt.Errorf("%q is not a port range LO-HI (e.g. 20000-29999)", m.RTPPorts)
	case lo < minRTPPort || hi > maxPort || lo >= hi:
		return 0, 0, fmt.Errorf("%q: want %d <= LO < HI <= %d", m.RTPPorts, minRTPPort, maxPort)
	case lo%2 != 0:
		return 0, 0, fmt.Errorf("%q: LO must be even (RTP uses even ports, RTCP the next odd one)", m.RTPPorts)
	}
	return lo, hi, nil
}

func optional(s string, check func(string) error) error {
	if s == "" {
		return nil
	}
	return check(s)
}

func required(s string, check func(string) error) error {
	if s == "" {
		return errors.New("must not be empty" + exampleListen)
	}
	return check(s)
}

func checkID(s string) error {
	switch {
	case s == "":
		return errors.New("must not be empty")
	case len(s) > maxIDLen:
		return fmt.Errorf("%q is longer than %d characters", s, maxIDLen)
	}
	for i := range len(s) {
		if !isIDByte(s[i]) {
			return fmt.Errorf("%q has %q; use only letters, digits, '.', '_' and '-'", s, s[i])
		}
	}
	return nil
}

func isIDByte(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
		b == '.' || b == '_' || b == '-'
}

// checkHostPort accepts "host:port" where host is empty, an IP address or a
// DNS name, and port is a number 0..65535.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port%s", s, exampleListen)
	}
	if err := checkPort(port); err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	if host == "" {
		return nil
	}
	if err := checkHost(host); err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	return nil
}

func checkPort(p string) error {
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > maxPort || p != strconv.Itoa(n) {
		return fmt.Errorf("port %q is not a number from 0 to %d", p, maxPort)
	}
	return nil
}

func checkHost(h string) error {
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	if !validDNSName(h) {
		return fmt.Errorf("host %q is neither an IP address nor a DNS name", h)
	}
	return nil
}

// checkAdvertise accepts a host or host:port that other machines can reach:
// not empty, not an unspecified address such as 0.0.0.0.
func checkAdvertise(s string) error {
	host := strings.Trim(s, "[]")
	if h, port, err := net.SplitHostPort(s); err == nil {
		if err := checkPort(port); err != nil {
			return fmt.Errorf("%q: %w", s, err)
		}
		host = h
	}
	if host == "" {
		return fmt.Errorf("%q has no host; give the address others use to reach this node", s)
	}
	if err := checkHost(host); err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	if anyHost(host) {
		return fmt.Errorf("%q is not reachable from other machines; give this node's own address", s)
	}
	return nil
}

func checkJoin(s string) error {
	if strings.Contains(s, "://") {
		return checkHTTPURL(s)
	}
	host, _, err := net.SplitHostPort(s)
	switch {
	case err != nil:
		return fmt.Errorf("%q is neither host:port nor an http(s) URL%s", s, exampleJoinAddr)
	case host == "":
		return fmt.Errorf("%q has no host%s", s, exampleJoinAddr)
	}
	return checkHostPort(s)
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", redactURL(s))
	}
	s = u.Redacted()
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: the scheme must be http or https", s)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if err := checkHost(u.Hostname()); err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	if p := u.Port(); p != "" {
		if err := checkPort(p); err != nil {
			return fmt.Errorf("%q: %w", s, err)
		}
	}
	return nil
}

func checkDomain(s string) error {
	if !validDNSName(s) {
		return fmt.Errorf("%q is not a valid DNS name (e.g. survive.acme.example)", s)
	}
	return nil
}

// validDNSName accepts letter-digit-hyphen labels of 1..63 characters, not
// starting or ending with '-', an optional trailing dot, at most 253
// characters, and a last label that is not all digits (so "999.1.1.1" is not
// mistaken for a name).
func validDNSName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > maxDNSNameLen {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > maxDNSLabelLen || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := range len(l) {
			b := l[i]
			if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-') {
				return false
			}
		}
	}
	return strings.Trim(labels[len(labels)-1], "0123456789") != ""
}

// checkReadable checks that path names a regular file this process can open.
// checkPrefix accepts an IP address or a prefix (10.0.0.0/8, 2001:db8::/32).
func checkPrefix(s string) error {
	if strings.Contains(s, "/") {
		if _, err := netip.ParsePrefix(s); err != nil {
			return fmt.Errorf("%q is not a prefix such as 10.0.0.0/8", s)
		}
		return nil
	}
	if _, err := netip.ParseAddr(s); err != nil {
		return fmt.Errorf("%q is not an IP address or a prefix such as 10.0.0.0/8", s)
	}
	return nil
}

func checkReadable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("cannot read %q: %v", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cannot read %q: %v", path, err)
	}
	if st.IsDir() {
		return fmt.Errorf("%q is a directory, not a file", path)
	}
	return nil
}

func atLeast(d Duration, least time.Duration) error {
	switch {
	case d.Duration <= 0:
		return fmt.Errorf("%s: must be greater than 0", d)
	case d.Duration < least:
		return fmt.Errorf("%s: must be at least %s", d, least)
	}
	return nil
}

func notBelowProbe(d, probe Duration, probeOK bool) error {
	if err := atLeast(d, 0); err != nil {
		return err
	}
	if probeOK && d.Duration < probe.Duration {
		return fmt.Errorf("%s: must be at least cloud.probe_interval (%s)", d, probe)
	}
	return nil
}

func oneOf(s string, allowed ...string) error {
	for _, a := range allowed {
		if s == a {
			return nil
		}
	}
	return fmt.Errorf("%q is not one of %s", s, strings.Join(allowed, ", "))
}
