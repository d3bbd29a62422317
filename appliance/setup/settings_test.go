package setup

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParsePrefix(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "192.0.2.10/24", want: "192.0.2.10/24"},
		{in: " 10.1.2.3/8 ", want: "10.1.2.3/8"},
		{in: "2001:db8::10/64", want: "2001:db8::10/64"},
		{in: "192.0.2.1/31", want: "192.0.2.1/31"},
		{in: "10.0.0.300/24", err: "10.0.0.300/24 is not an IPv4/IPv6 address with a prefix (like 192.0.2.10/24)"},
		{in: "banana", err: "banana is not an IPv4/IPv6 address with a prefix"},
		{in: "10.0.0.5", err: "10.0.0.5 has no prefix length: add it, like 10.0.0.5/24"},
		{in: "10.0.0.5/33", err: "is not an IPv4/IPv6 address with a prefix"},
		{in: "10.0.0.0/24", err: "10.0.0.0/24 is the subnet's own address: give this node's address in it, like 10.0.0.1/24"},
		{in: "10.0.0.255/24", err: "broadcast"},
		{in: "127.0.0.1/8", err: "not an address a node can have"},
		{in: "0.0.0.0/0", err: "not an address a node can have"},
		{in: "fe80::1/64", err: "not an address a node can have"},
		{in: "10.0.0.1/0", err: "a /0 prefix"},
	} {
		got, err := ParsePrefix(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParsePrefix(%q) = %v, %v; want error %q", tc.in, got, err, tc.err)
		case tc.err == "" && (err != nil || got.String() != tc.want):
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestGateway(t *testing.T) {
	addr := netip.MustParsePrefix("192.0.2.10/24")
	for _, tc := range []struct {
		addr    netip.Prefix
		gw, err string
	}{
		{addr: addr, gw: "192.0.2.1"},
		{addr: addr, gw: "192.0.2.254"},
		{addr: netip.MustParsePrefix("2001:db8::10/64"), gw: "2001:db8::1"},
		{addr: addr, gw: "192.0.3.1", err: "gateway 192.0.3.1 is not in 192.0.2.0/24, the subnet of 192.0.2.10/24"},
		{addr: addr, gw: "192.0.2.10", err: "this node's own address"},
		{addr: addr, gw: "192.0.2.0", err: "subnet's own or broadcast"},
		{addr: addr, gw: "192.0.2.255", err: "subnet's own or broadcast"},
		{addr: addr, gw: "2001:db8::1", err: "not both IPv4 or both IPv6"},
		{addr: addr, gw: "192.0.2.256", err: "192.0.2.256 is not an IP address"},
	} {
		_, err := ParseGateway(tc.addr, tc.gw)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("ParseGateway(%s, %q) = %v; want %q", tc.addr, tc.gw, err, tc.err)
		}
	}
}

func TestFieldChecks(t *testing.T) {
	ok := func(err error) bool { return err == nil }
	parsed := func(_ any, err error) error { return err }
	for _, tc := range []struct {
		name string
		err  error
		want string // "" = accepted
	}{
		{"password ok", CheckPassword("correct horse battery"), ""},
		{"password short", CheckPassword("short"), "password too short: at least 12 characters"},
		{"password 11 runes", CheckPassword("ééééééééééé"), "too short"},
		{"password long", CheckPassword(strings.Repeat("x", 73)), "too long"},
		{"bcrypt ok", CheckBcrypt("$2b$12$C6UzMDM.H6dfI/f/IKxGhuaGhCyPTnMDh/4upjuDPA3Hmqi/5lrPW"), ""},
		{"bcrypt bad", CheckBcrypt("$6$salt$hash"), "not a bcrypt hash"},
		{"user", CheckUsername("admin"), ""},
		{"user bad", CheckUsername("ad min"), "use 1 to 64 letters"},
		{"host", parsed(ParseHostname("pbx-hq-1")), ""},
		{"fqdn", parsed(ParseHostname("pbx-hq-1.acme.example")), ""},
		{"host underscore", parsed(ParseHostname("pbx_1")), "is not a host name"},
		{"host hyphen", parsed(ParseHostname("-pbx")), "is not a host name"},
		{"host long label", parsed(ParseHostname(strings.Repeat("a", 64))), "is not a host name"},
		{"host digits", parsed(ParseHostname("1.2.3.4")), "is not a host name"},
		{"host empty", parsed(ParseHostname("")), "is not a host name"},
		{"dns 3", parsed(ParseDNS([]string{"192.0.2.53", "192.0.2.54", "2001:db8::53"})), ""},
		{"dns 4", parsed(ParseDNS([]string{"1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4"})), "4 DNS servers: give at most 3"},
		{"dns bad", parsed(ParseDNS([]string{"1.1.1.1", "dns.example"})), "dns.example is not an IP address"},
		{"ntp", parsed(ParseNTP([]string{"ntp.acme.example", "192.0.2.123"})), ""},
		{"ntp bad", parsed(ParseNTP([]string{"ntp_acme"})), "neither a host name nor an IP address"},
		{"site", CheckID("hq"), ""},
		{"site bad", CheckID("h q"), "use 1 to 64 letters"},
		{"url", parsed(ParseCloudURL("https://cloud.outpost.example/")), ""},
		{"url scheme", parsed(ParseCloudURL("ftp://cloud")), "is not the cloud's URL"},
		{"url query", parsed(ParseCloudURL("https://cloud.example/?a=b")), "is not the cloud's URL"},
		{"code", CheckPairingCode("7KQ2M-ZX9PA-3DT8R"), ""},
		{"code bad", CheckPairingCode("7KQ2M/ZX9PA"), "is not a pairing code"},
		{"join", parsed(ParseJoin("10.0.0.1:8080")), ""},
		{"join bare", parsed(ParseJoin("10.0.0.1")), ""},
		{"join url", parsed(ParseJoin("https://pbx-1.acme.example:443")), ""},
		{"join port", parsed(ParseJoin("10.0.0.1:99999")), "is not a number from 1 to 65535"},
		{"join loopback", parsed(ParseJoin("127.0.0.1:8080")), "not another node's address"},
		{"token", CheckClusterToken(NewToken()), ""},
		{"token short", CheckClusterToken("abc"), "not a cluster token"},
		{"token space", CheckClusterToken("abcd efgh ijkl mnop"), "not a cluster token"},
		{"iface", CheckInterface("ens192"), ""},
		{"iface bad", CheckInterface("a/b"), "not a network interface name"},
		{"zone", parsed(ParseDomain("survive.acme.example")), ""},
		{"zone bad", parsed(ParseDomain("survive")), "is not a DNS zone"},
	} {
		if tc.want == "" && !ok(tc.err) || tc.want != "" && (tc.err == nil || !strings.Contains(tc.err.Error(), tc.want)) {
			t.Errorf("%s: %v; want %q", tc.name, tc.err, tc.want)
		}
	}
	if j, _ := ParseJoin("10.0.0.1"); j != "10.0.0.1:8080" {
		t.Errorf("ParseJoin(10.0.0.1) = %q, want the default port 8080", j)
	}
}

func goodStatic() Settings {
	s := Defaults("pbx-1", "eth0")
	s.AdminPassword = "correct horse battery"
	s.DHCP = false
	s.Address = netip.MustParsePrefix("192.0.2.10/24")
	s.Gateway = netip.MustParseAddr("192.0.2.1")
	s.DNS = []netip.Addr{netip.MustParseAddr("192.0.2.53")}
	return s
}

func TestValidate(t *testing.T) {
	if ps := goodStatic().Validate(); len(ps) != 0 {
		t.Fatalf("good settings: %v", ps)
	}
	dhcp := Defaults("pbx-1", "")
	dhcp.AdminPassword = "correct horse battery"
	if ps := dhcp.Validate(); len(ps) != 0 {
		t.Fatalf("DHCP settings: %v", ps)
	}
	for name, tc := range map[string]struct {
		mod   func(*Settings)
		field Field
		want  string
	}{
		"no password": {func(s *Settings) { s.AdminPassword = "" }, FieldAdminPassword, "missing"},
		"both passwords": {func(s *Settings) {
			s.AdminPasswordHash = "$2b$12$C6UzMDM.H6dfI/f/IKxGhuaGhCyPTnMDh/4upjuDPA3Hmqi/5lrPW"
		}, FieldAdminHash, "not both"},
		"no gateway":    {func(s *Settings) { s.Gateway = netip.Addr{} }, FieldGateway, "missing"},
		"gateway out":   {func(s *Settings) { s.Gateway = netip.MustParseAddr("198.51.100.1") }, FieldGateway, "is not in 192.0.2.0/24"},
		"no dns":        {func(s *Settings) { s.DNS = nil }, FieldDNS, "needs 1 to 3 DNS servers"},
		"no address":    {func(s *Settings) { s.Address = netip.Prefix{} }, FieldAddress, "missing"},
		"join no token": {func(s *Settings) { s.Join = []string{"10.0.0.1:8080"} }, FieldClusterToken, "needs its token"},
		"code no url":   {func(s *Settings) { s.PairingCode = "ABCD-EFGH" }, FieldPairingCode, "needs the cloud URL"},
		"bad node id":   {func(s *Settings) { s.NodeID = "a b" }, FieldNodeID, "use 1 to 64"},
	} {
		s := goodStatic()
		tc.mod(&s)
		ps := s.Validate()
		found := false
		for _, p := range ps {
			found = found || p.Field == tc.field && strings.Contains(p.Message, tc.want)
		}
		if !found {
			t.Errorf("%s: problems %v; want %s: %q", name, ps, tc.field, tc.want)
		}
	}
}

func TestLastAddr(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.10/24": "192.0.2.255", "10.1.2.3/8": "10.255.255.255", "192.0.2.9/29": "192.0.2.15",
	} {
		if got := lastAddr(netip.MustParsePrefix(in)).String(); got != want {
			t.Errorf("lastAddr(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestNewToken(t *testing.T) {
	a, b := NewToken(), NewToken()
	if a == b || len(a) != 29 || strings.ToLower(a) != a || strings.Count(a, "-") != 5 {
		t.Fatalf("tokens %q %q: want two different 6 groups of 4 lower-case characters", a, b)
	}
}
