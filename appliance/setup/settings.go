package setup

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Settings are the answers of the first-boot setup, from the console or
// unattended. Parse each field with its parse function and check the whole
// with Validate before rendering.
type Settings struct {
	// AdminUser is the web UI's break-glass admin (default "admin").
	AdminUser string `json:"admin_user"`
	// AdminPassword (plaintext) or AdminPasswordHash (bcrypt): exactly one
	// is set. It is the break-glass admin's password and root's console
	// password.
	AdminPassword     string `json:"-"`
	AdminPasswordHash string `json:"-"`
	// Hostname is a host name or a fully qualified name; its first label
	// goes to /etc/hostname.
	Hostname string `json:"hostname"`
	// Interface is the network interface configured: a name, a glob
	// (en*) or a MAC address; empty: every Ethernet interface.
	Interface string `json:"interface"`
	// DHCP, or else Address and Gateway, static.
	DHCP    bool         `json:"dhcp"`
	Address netip.Prefix `json:"address"`
	Gateway netip.Addr   `json:"gateway"`
	// DNS are the resolvers (at most MaxDNS); none with DHCP: the DHCP
	// server's.
	DNS []netip.Addr `json:"dns"`
	// NTP are time servers, host names or addresses.
	NTP []string `json:"ntp"`
	// Site and NodeID are the node's site and cluster id; an empty NodeID
	// is the host name's first label.
	Site   string `json:"site"`
	NodeID string `json:"node_id"`
	// DNSDomain is the zone the node's DNS server answers for phones
	// (dns.domain); empty: no DNS server.
	DNSDomain string `json:"dns_domain"`
	// CloudURL is the control plane; empty: offline. PairingCode, when
	// set, is exchanged for the cluster's credentials once the network is
	// up.
	CloudURL    string `json:"cloud_url"`
	PairingCode string `json:"-"`
	// Join lists HTTP addresses of members of an existing cluster; set, the
	// node joins it instead of forming its own, with ClusterToken, the
	// cluster's admin token.
	Join         []string `json:"join"`
	ClusterToken string   `json:"-"`
}

// Defaults of the settings.
const (
	DefaultAdminUser = "admin"
	DefaultSite      = "hq"
	MinPassword      = 12 // the web UI's minimum (appliance/web/ui.MinPasswordLength)
	maxPassword      = 72 // bcrypt's limit, in bytes
	MaxDNS           = 3
	joinPort         = "8080" // the default http.listen port
)

// DefaultNTP are Debian's pool servers (timesyncd uses one server at a
// time and each name is many servers: two names are plenty).
var DefaultNTP = []string{"0.debian.pool.ntp.org", "1.debian.pool.ntp.org"}

// Defaults returns the settings before any answer: DHCP on iface, Debian's
// NTP pool, site hq, admin user admin, host name hostname when it is a
// valid one (else "outpost").
func Defaults(hostname, iface string) Settings {
	if _, err := ParseHostname(hostname); err != nil || hostname == "localhost" {
		hostname = "outpost"
	}
	return Settings{
		AdminUser: DefaultAdminUser,
		Hostname:  hostname,
		Interface: iface,
		DHCP:      true,
		NTP:       append([]string(nil), DefaultNTP...),
		Site:      DefaultSite,
	}
}

// ShortHostname is the first label of Hostname.
func (s Settings) ShortHostname() string {
	short, _, _ := strings.Cut(s.Hostname, ".")
	return short
}

// EffectiveNodeID is NodeID, or the short host name when it is empty.
func (s Settings) EffectiveNodeID() string {
	if s.NodeID != "" {
		return s.NodeID
	}
	return s.ShortHostname()
}

// Joining reports whether the node joins an existing cluster.
func (s Settings) Joining() bool { return len(s.Join) > 0 }

// Field names a setting in problems. Its String is the setting's name in
// the NoCloud `outpost:` mapping; sources map it to their own keys.
type Field string

// The fields, by their NoCloud names.
const (
	FieldAdminUser     Field = "admin_user"
	FieldAdminPassword Field = "admin_password"
	FieldAdminHash     Field = "admin_password_hash"
	FieldHostname      Field = "hostname"
	FieldInterface     Field = "interface"
	FieldDHCP          Field = "network.dhcp"
	FieldAddress       Field = "network.address"
	FieldGateway       Field = "network.gateway"
	FieldDNS           Field = "dns"
	FieldNTP           Field = "ntp"
	FieldSite          Field = "site"
	FieldNodeID        Field = "node_id"
	FieldDNSDomain     Field = "dns_domain"
	FieldCloudURL      Field = "cloud_url"
	FieldPairingCode   Field = "pairing_code"
	FieldJoin          Field = "join"
	FieldClusterToken  Field = "cluster_token"
)

// Problem is one thing wrong with the settings.
type Problem struct {
	Field   Field
	Message string
}

// Validate checks what single fields cannot: a password is given, a
// static address has a gateway in its subnet and DNS servers, a join has
// the cluster token, a pairing code has a cloud URL. The fields themselves
// are checked again too, so settings built by hand are safe to render.
func (s Settings) Validate() []Problem {
	var ps []Problem
	add := func(f Field, format string, args ...any) {
		ps = append(ps, Problem{f, fmt.Sprintf(format, args...)})
	}
	check := func(f Field, err error) {
		if err != nil {
			add(f, "%v", err)
		}
	}
	check(FieldAdminUser, CheckUsername(s.AdminUser))
	switch {
	case s.AdminPassword == "" && s.AdminPasswordHash == "":
		add(FieldAdminPassword, "missing: give the admin password (at least %d characters)", MinPassword)
	case s.AdminPassword != "" && s.AdminPasswordHash != "":
		add(FieldAdminHash, "give the password or its hash, not both")
	case s.AdminPassword != "":
		check(FieldAdminPassword, CheckPassword(s.AdminPassword))
	default:
		check(FieldAdminHash, CheckBcrypt(s.AdminPasswordHash))
	}
	if _, err := ParseHostname(s.Hostname); err != nil {
		check(FieldHostname, err)
	}
	if s.Interface != "" {
		check(FieldInterface, CheckInterface(s.Interface))
	}
	if !s.DHCP {
		if !s.Address.IsValid() {
			add(FieldAddress, "missing: a static network needs this node's address with a prefix (like 192.0.2.10/24)")
		} else {
			check(FieldAddress, checkHostPrefix(s.Address))
		}
		switch {
		case !s.Gateway.IsValid():
			add(FieldGateway, "missing: a static network needs the gateway's address (like 192.0.2.1)")
		case s.Address.IsValid():
			check(FieldGateway, CheckGateway(s.Address, s.Gateway))
		}
		if len(s.DNS) == 0 {
			add(FieldDNS, "missing: a static network needs 1 to %d DNS servers (like 192.0.2.53)", MaxDNS)
		}
	} else if s.Address.IsValid() || s.Gateway.IsValid() {
		add(FieldAddress, "a static address and DHCP both given: choose one")
	}
	if len(s.DNS) > MaxDNS {
		add(FieldDNS, "%d DNS servers: give at most %d", len(s.DNS), MaxDNS)
	}
	for _, n := range s.NTP {
		if _, err := ParseServer(n); err != nil {
			check(FieldNTP, err)
		}
	}
	check(FieldSite, CheckID(s.Site))
	if s.NodeID != "" {
		check(FieldNodeID, CheckID(s.NodeID))
	} else if err := CheckID(s.ShortHostname()); err != nil && s.Hostname != "" {
		add(FieldNodeID, "the host name does not make a node id (%v): give node_id", err)
	}
	if s.DNSDomain != "" {
		_, err := ParseDomain(s.DNSDomain)
		check(FieldDNSDomain, err)
	}
	if s.CloudURL != "" {
		_, err := ParseCloudURL(s.CloudURL)
		check(FieldCloudURL, err)
	}
	if s.PairingCode != "" {
		check(FieldPairingCode, CheckPairingCode(s.PairingCode))
		if s.CloudURL == "" {
			add(FieldPairingCode, "a pairing code needs the cloud URL (cloud_url)")
		}
	}
	for _, j := range s.Join {
		if _, err := ParseJoin(j); err != nil {
			check(FieldJoin, err)
		}
	}
	switch {
	case s.Joining() && s.ClusterToken == "":
		add(FieldClusterToken, "missing: joining a cluster needs its token (on the first node: cat /var/lib/outpost/admin-token)")
	case s.ClusterToken != "":
		check(FieldClusterToken, CheckClusterToken(s.ClusterToken))
	}
	return ps
}

// CheckPassword accepts 12 to 72 bytes (bcrypt's limit).
func CheckPassword(p string) error {
	switch {
	case utf8.RuneCountInString(p) < MinPassword:
		return fmt.Errorf("password too short: at least %d characters", MinPassword)
	case len(p) > maxPassword:
		return fmt.Errorf("password too long: at most %d bytes (bcrypt's limit)", maxPassword)
	case strings.ContainsAny(p, "\r\n"):
		return fmt.Errorf("password has a line break")
	}
	return nil
}

// CheckBcrypt accepts a bcrypt hash ($2a$, $2b$ or $2y$, cost 4 to 31).
func CheckBcrypt(h string) error {
	const bcryptLen = 60
	ok := len(h) == bcryptLen && (strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$")) && h[6] == '$'
	if ok {
		cost := int(h[4]-'0')*10 + int(h[5]-'0')
		ok = cost >= 4 && cost <= 31
	}
	if !ok {
		return fmt.Errorf("not a bcrypt hash (like $2b$12$ and 53 more characters; make one with `htpasswd -bnBC 12 \"\" PASSWORD | tr -d ':\\n'`)")
	}
	return nil
}

// CheckUsername accepts what the web UI accepts: 1 to 64 letters, digits
// and - _ . @.
func CheckUsername(u string) error {
	ok := u != "" && len(u) <= 64
	for _, r := range u {
		ok = ok && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.@", r))
	}
	if !ok {
		return fmt.Errorf("user name %q: use 1 to 64 letters, digits and - _ . @", u)
	}
	return nil
}

// ParseHostname accepts a host name of RFC 1123 labels (letters, digits,
// hyphens; 1 to 63 each, not starting or ending with a hyphen), at most
// 253 characters, lower-cased.
func ParseHostname(h string) (string, error) {
	h = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
	if !validDNSName(h) {
		return "", fmt.Errorf("%q is not a host name: letters, digits and hyphens, labels of 1 to 63 separated by dots, not starting or ending with a hyphen (like pbx-hq-1 or pbx-hq-1.acme.example)", h)
	}
	return h, nil
}

// ParseDomain accepts a DNS name, lower-cased.
func ParseDomain(d string) (string, error) {
	d = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))
	if !validDNSName(d) || !strings.Contains(d, ".") {
		return "", fmt.Errorf("%q is not a DNS zone (like survive.acme.example)", d)
	}
	return d, nil
}

// validDNSName is config's rule: letter-digit-hyphen labels, at most 253
// characters, a last label that is not all digits.
func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := range len(l) {
			b := l[i]
			if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-') {
				return false
			}
		}
	}
	return strings.Trim(labels[len(labels)-1], "0123456789") != ""
}

// CheckID accepts a site or node id: 1 to 64 letters, digits, '.', '_'
// and '-' (config's rule).
func CheckID(s string) error {
	ok := s != "" && len(s) <= 64
	for i := 0; ok && i < len(s); i++ {
		b := s[i]
		ok = b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '-'
	}
	if !ok {
		return fmt.Errorf("%q: use 1 to 64 letters, digits, '.', '_' and '-' (like hq)", s)
	}
	return nil
}

// CheckInterface accepts a Linux interface name (a glob such as en* too)
// or an Ethernet MAC address, which the interface is then matched by.
func CheckInterface(s string) error {
	if _, ok := MACAddress(s); ok {
		return nil
	}
	ok := s != "" && len(s) < 16 && s != "." && s != ".."
	for _, r := range s {
		ok = ok && r > ' ' && r < 0x7f && r != '/' && r != ':'
	}
	if !ok {
		return fmt.Errorf("%q is not a network interface name (like eth0 or ens192) nor a MAC address", s)
	}
	return nil
}

// MACAddress reports whether s is an Ethernet MAC address, and returns it
// in systemd's form (lower-case, colons).
func MACAddress(s string) (string, bool) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", false
	}
	return hw.String(), true
}

// interfaceName is Interface when it names one interface (not a glob, not
// a MAC address): what networkctl and wait-online take.
func (s Settings) interfaceName() string {
	if _, mac := MACAddress(s.Interface); mac || strings.ContainsAny(s.Interface, "*?[") {
		return ""
	}
	return s.Interface
}

// ParsePrefix parses this node's address with its prefix length, such as
// 192.0.2.10/24 or 2001:db8::10/64, and refuses a subnet's own address, its
// broadcast address and addresses no host can have.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	p, err := netip.ParsePrefix(s)
	if err != nil {
		if a, err := netip.ParseAddr(s); err == nil {
			return netip.Prefix{}, fmt.Errorf("%s has no prefix length: add it, like %s/24", s, a)
		}
		return netip.Prefix{}, fmt.Errorf("%s is not an IPv4/IPv6 address with a prefix (like 192.0.2.10/24)", s)
	}
	if err := checkHostPrefix(p); err != nil {
		return netip.Prefix{}, err
	}
	return p, nil
}

func checkHostPrefix(p netip.Prefix) error {
	a := p.Addr()
	switch {
	case a.Zone() != "":
		return fmt.Errorf("%s: leave out the zone", p)
	case a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a.IsLinkLocalUnicast():
		return fmt.Errorf("%s is not an address a node can have on its network (like 192.0.2.10/24)", p)
	case p.Bits() == 0:
		return fmt.Errorf("%s: a /0 prefix is not a subnet (like %s/24)", p, a)
	}
	if a.Is4() && p.Bits() <= 30 {
		if a == p.Masked().Addr() {
			return fmt.Errorf("%s is the subnet's own address: give this node's address in it, like %s", p, netip.PrefixFrom(a.Next(), p.Bits()))
		}
		if a == lastAddr(p) {
			return fmt.Errorf("%s is the subnet's broadcast address: give this node's address in it", p)
		}
	}
	return nil
}

// lastAddr is the highest address of p's subnet.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 7; j >= 0; j-- {
			if i*8+(7-j) >= bits {
				b[i] |= 1 << j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// ParseAddr parses one IP address.
func ParseAddr(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%s is not an IP address (like 192.0.2.1)", s)
	}
	return a, nil
}

// ParseGateway parses the gateway and checks it against the node's address.
func ParseGateway(addr netip.Prefix, s string) (netip.Addr, error) {
	g, err := ParseAddr(s)
	if err != nil {
		return g, err
	}
	return g, CheckGateway(addr, g)
}

// CheckGateway accepts a gateway in addr's subnet that is not addr itself
// nor the subnet's own or broadcast address.
func CheckGateway(addr netip.Prefix, g netip.Addr) error {
	sub := addr.Masked()
	switch {
	case g.Is4() != addr.Addr().Is4():
		return fmt.Errorf("gateway %s and address %s are not both IPv4 or both IPv6", g, addr)
	case !sub.Contains(g):
		return fmt.Errorf("gateway %s is not in %s, the subnet of %s", g, sub, addr)
	case g == addr.Addr():
		return fmt.Errorf("gateway %s is this node's own address: give the router's", g)
	case g.Is4() && addr.Bits() <= 30 && (g == sub.Addr() || g == lastAddr(addr)):
		return fmt.Errorf("gateway %s is the subnet's own or broadcast address: give the router's", g)
	}
	return nil
}

// Fields splits a list typed on one line or given in one property: items
// separated by commas and/or spaces.
func Fields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == ';' })
}

// ParseDNS parses 0 to MaxDNS resolver addresses.
func ParseDNS(items []string) ([]netip.Addr, error) {
	if len(items) > MaxDNS {
		return nil, fmt.Errorf("%d DNS servers: give at most %d", len(items), MaxDNS)
	}
	var out []netip.Addr
	for _, it := range items {
		a, err := ParseAddr(it)
		if err != nil {
			return nil, err
		}
		if a.IsUnspecified() || a.IsMulticast() {
			return nil, fmt.Errorf("%s cannot be a DNS server", a)
		}
		out = append(out, a)
	}
	return out, nil
}

// ParseServer accepts an NTP server: a host name or an IP address.
func ParseServer(s string) (string, error) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.String(), nil
	}
	if h, err := ParseHostname(s); err == nil {
		return h, nil
	}
	return "", fmt.Errorf("%q is neither a host name nor an IP address (like 0.debian.pool.ntp.org)", s)
}

// ParseNTP parses a list of NTP servers; none: Debian's pool.
func ParseNTP(items []string) ([]string, error) {
	if len(items) == 0 {
		return append([]string(nil), DefaultNTP...), nil
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, err := ParseServer(it)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// ParseCloudURL accepts the control plane's base URL, http or https, with
// a host, no query or fragment; the trailing slash is dropped.
func ParseCloudURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q is not the cloud's URL: want https://HOST[:PORT][/PATH] (like https://cloud.outpost.example)", s)
	}
	if h := u.Hostname(); !validDNSName(h) {
		if _, err := netip.ParseAddr(h); err != nil {
			return "", fmt.Errorf("%q: host %q is neither a DNS name nor an IP address", s, h)
		}
	}
	return strings.TrimRight(s, "/"), nil
}

// CheckPairingCode accepts a code as the cloud hands it out: letters,
// digits, dashes and spaces, 4 to 64 characters.
func CheckPairingCode(c string) error {
	ok := len(c) >= 4 && len(c) <= 64
	for _, r := range c {
		ok = ok && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == ' ')
	}
	if !ok {
		return fmt.Errorf("%q is not a pairing code (like 7KQ2M-ZX9PA-3DT8R)", c)
	}
	return nil
}

// ParseJoin accepts the HTTP address of a cluster member: host:port, a
// bare host (port 8080, the default http.listen) or an http(s) URL.
func ParseJoin(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "://") {
		if _, err := ParseCloudURL(s); err != nil {
			return "", fmt.Errorf("%q is not a node's HTTP address (like 10.0.0.1:8080 or https://pbx-hq-1.acme.example:443)", s)
		}
		return strings.TrimRight(s, "/"), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = strings.Trim(s, "[]"), joinPort
	}
	if _, err := ParseServer(host); err != nil || host == "" {
		return "", fmt.Errorf("%q is not a node's HTTP address (like 10.0.0.1:8080)", s)
	}
	if a, err := netip.ParseAddr(host); err == nil && (a.IsUnspecified() || a.IsLoopback()) {
		return "", fmt.Errorf("%q is not another node's address", s)
	}
	n := 0
	for _, r := range port {
		if r < '0' || r > '9' {
			n = -1
			break
		}
		n = n*10 + int(r-'0')
		if n > 65535 {
			break
		}
	}
	if n <= 0 || n > 65535 {
		return "", fmt.Errorf("%q: port %q is not a number from 1 to 65535", s, port)
	}
	return net.JoinHostPort(host, port), nil
}

// CheckClusterToken accepts an admin token: 16 to 128 printable
// characters, no spaces.
func CheckClusterToken(t string) error {
	ok := len(t) >= 16 && len(t) <= 128
	for _, r := range t {
		ok = ok && r > ' ' && r < 0x7f
	}
	if !ok {
		return fmt.Errorf("not a cluster token: type it as the first node shows it (cat /var/lib/outpost/admin-token), 16 to 128 characters without spaces")
	}
	return nil
}
