package setup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The NoCloud seed's files (cloud-init's names).
const (
	metaDataFile      = "meta-data"
	userDataFile      = "user-data"
	networkConfigFile = "network-config"
)

// maxSeedFile bounds what is read of one seed file.
const maxSeedFile = 1 << 20

// outpostKeys are the keys of user-data's `outpost:` mapping; network is
// a mapping of networkKeys.
var outpostKeys = map[string]Field{
	"admin_user": FieldAdminUser, "admin_password": FieldAdminPassword, "admin_password_hash": FieldAdminHash,
	"hostname": FieldHostname, "interface": FieldInterface, "dns": FieldDNS, "ntp": FieldNTP,
	"site": FieldSite, "node_id": FieldNodeID, "dns_domain": FieldDNSDomain, "cloud_url": FieldCloudURL,
	"pairing_code": FieldPairingCode, "join": FieldJoin, "cluster_token": FieldClusterToken,
}

var networkKeys = map[string]Field{"dhcp": FieldDHCP, "address": FieldAddress, "gateway": FieldGateway}

// ReadNoCloud reads a NoCloud seed directory: user-data (#cloud-config:
// hostname, fqdn and the `outpost:` mapping), meta-data (local-hostname)
// and, optionally, network-config (version 1 or 2, the subset in
// docs/install.md). Settings in user-data win over network-config's and
// meta-data's. A seed whose user-data has no `outpost:` mapping is someone
// else's: it is returned with Outpost false and Skipped saying why, the
// rest unread. A file that does not parse, or a key of the outpost mapping
// or of network-config that is not supported, is an error naming the file
// and the key.
func ReadNoCloud(dir string) (*Input, error) {
	source := "NoCloud seed " + dir
	keyFor := func(f Field) string { return "user-data: outpost." + string(f) }
	in, nc, ud := NewInput(source, keyFor), NewInput(source, keyFor), NewInput(source, keyFor)
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }

	// user-data first: a seed without Outpost settings is someone else's,
	// and the rest of it is none of our business.
	data, err := readSeedFile(dir, userDataFile)
	if err != nil {
		return nil, err
	}
	first, _, _ := bytes.Cut(bytes.TrimSpace(data), []byte("\n"))
	switch first := strings.ToLower(strings.TrimSpace(string(first))); {
	case first == "#cloud-config":
	case first == "":
		in.Skipped = "it has no user-data"
	case strings.HasPrefix(first, "#!"):
		in.Skipped = "its user-data is a script; only #cloud-config user-data is read"
	case strings.HasPrefix(first, "content-type:"), strings.HasPrefix(first, "mime-version:"):
		in.Skipped = "its user-data is MIME multi-part; only #cloud-config user-data is read"
	default:
		in.Skipped = "its user-data does not start with #cloud-config"
	}
	if in.Skipped != "" {
		return in, nil
	}
	doc, err := parseYAML(data)
	if err != nil {
		return nil, fmt.Errorf("%s: user-data: %w", source, err)
	}
	readCloudConfig(doc, ud, fail)
	if !ud.Outpost && len(errs) == 0 {
		in.Skipped = "its user-data has no outpost: mapping"
		return in, nil
	}

	meta, err := readSeedYAML(dir, metaDataFile)
	if err != nil {
		return nil, err
	}
	if meta != nil {
		if m := mapping(meta); m == nil {
			fail("meta-data: want a mapping of keys such as instance-id and local-hostname")
		} else if v, ok := m["local-hostname"]; ok {
			if s, ok := scalar(v); ok && s != "" {
				in.Set(FieldHostname, Value{Key: "meta-data: local-hostname", Text: s})
			} else if !ok {
				fail("meta-data: local-hostname: want a host name")
			}
		}
	}
	if doc, err := readSeedYAML(dir, networkConfigFile); err != nil {
		return nil, err
	} else if doc != nil {
		readNetworkConfig(doc, nc, fail)
	}
	if len(errs) > 0 {
		return nil, &InputError{Source: source, Problems: errs}
	}
	// user-data wins: its network settings replace network-config's as a
	// whole (DHCP, address and gateway go together), each other key one by
	// one.
	network := []Field{FieldDHCP, FieldAddress, FieldGateway}
	udNetwork := false
	for _, f := range network {
		udNetwork = udNetwork || ud.Has(f)
	}
	for f, v := range nc.values {
		if !udNetwork || !slices.Contains(network, f) {
			in.Set(f, v)
		}
	}
	for f, v := range ud.values {
		in.Set(f, v)
	}
	in.Outpost = ud.Outpost
	return in, nil
}

// readCloudConfig takes hostname, fqdn and the outpost mapping; other
// cloud-config keys are cloud-init's and are ignored.
func readCloudConfig(doc *yaml.Node, in *Input, fail func(string, ...any)) {
	if isNull(doc) {
		return
	}
	top := mapping(doc)
	if top == nil {
		fail("user-data: want a #cloud-config mapping")
		return
	}
	for _, k := range []string{"hostname", "fqdn"} { // fqdn wins, as with cloud-init
		if v, ok := top[k]; ok {
			if s, ok := scalar(v); ok && s != "" {
				in.Set(FieldHostname, Value{Key: "user-data: " + k, Text: s})
			} else if !ok {
				fail("user-data: %s (line %d): want a host name", k, v.Line)
			}
		}
	}
	o, ok := top["outpost"]
	if !ok || isNull(o) {
		return
	}
	om := mapping(o)
	if om == nil {
		fail("user-data: outpost (line %d): want a mapping of settings such as admin_password (docs/install.md)", o.Line)
		return
	}
	in.Outpost = true
	for _, kn := range pairs(o) {
		name, v := kn[0].Value, kn[1]
		key := "user-data: outpost." + name
		if name == "network" {
			if isNull(v) {
				continue
			}
			if mapping(v) == nil {
				fail("%s (line %d): want a mapping of dhcp, address, gateway", key, v.Line)
				continue
			}
			for _, nkv := range pairs(v) {
				nk := key + "." + nkv[0].Value
				f, ok := networkKeys[nkv[0].Value]
				if !ok {
					fail("%s (line %d): unknown key; known: dhcp, address, gateway", nk, nkv[0].Line)
					continue
				}
				setYAML(in, f, nk, nkv[1], fail)
			}
			continue
		}
		f, ok := outpostKeys[name]
		if !ok {
			fail("%s (line %d): unknown key; known: %s", key, kn[0].Line, knownKeys())
			continue
		}
		setYAML(in, f, key, v, fail)
	}
}

func knownKeys() string {
	return "admin_user, admin_password, admin_password_hash, hostname, interface, network, dns, ntp, site, node_id, dns_domain, cloud_url, pairing_code, join, cluster_token"
}

// setYAML records a scalar or a list of scalars.
func setYAML(in *Input, f Field, key string, v *yaml.Node, fail func(string, ...any)) {
	v = resolve(v)
	switch {
	case isNull(v):
		in.Set(f, Value{Key: key})
	case v.Kind == yaml.ScalarNode:
		in.Set(f, Value{Key: key, Text: v.Value})
	case v.Kind == yaml.SequenceNode && (f == FieldDNS || f == FieldNTP || f == FieldJoin):
		list := []string{}
		for _, it := range v.Content {
			s, ok := scalar(it)
			if !ok {
				fail("%s (line %d): each item must be a single value", key, it.Line)
				return
			}
			list = append(list, s)
		}
		in.Set(f, Value{Key: key, List: list})
	default:
		fail("%s (line %d): want a single value", key, v.Line)
	}
}

// readNetworkConfig reads the supported subset of network-config version
// 1 and 2 into in: one interface, DHCP or one static address, its gateway
// and name servers.
func readNetworkConfig(doc *yaml.Node, in *Input, fail func(string, ...any)) {
	if isNull(doc) {
		return
	}
	top := mapping(doc)
	if top == nil {
		fail("network-config: want a mapping with version: 1 or 2")
		return
	}
	if n, ok := top["network"]; ok && len(top) == 1 { // the form wrapped in "network:"
		doc, top = n, mapping(n)
		if top == nil {
			fail("network-config: network: want a mapping with version: 1 or 2")
			return
		}
	}
	ver, _ := scalar(top["version"])
	switch ver {
	case "2":
		readNetworkV2(doc, in, fail)
	case "1":
		readNetworkV1(doc, in, fail)
	default:
		fail("network-config: version %q: only versions 1 and 2 are read", ver)
	}
}

func readNetworkV2(doc *yaml.Node, in *Input, fail func(string, ...any)) {
	for _, kv := range pairs(doc) {
		switch kv[0].Value {
		case "version", "renderer":
		case "ethernets":
		default:
			fail("network-config: %s: not supported (only ethernets; docs/install.md)", kv[0].Value)
		}
	}
	eths := pairs(mappingNode(doc, "ethernets"))
	if len(eths) == 0 {
		return
	}
	if len(eths) > 1 {
		fail("network-config: ethernets: %d interfaces; one is supported", len(eths))
		return
	}
	id, eth := eths[0][0].Value, eths[0][1]
	base := "network-config: ethernets." + id
	if mapping(eth) == nil {
		fail("%s: want a mapping", base)
		return
	}
	name := id
	var addrs []string
	for _, kv := range pairs(eth) {
		k, v := kv[0].Value, resolve(kv[1])
		key := base + "." + k
		switch k {
		case "match":
			for _, mkv := range pairs(v) {
				switch mkv[0].Value {
				case "name", "macaddress":
					name, _ = scalar(mkv[1])
				default:
					fail("%s.%s: not supported (match.name or match.macaddress)", key, mkv[0].Value)
				}
			}
		case "set-name":
			// The interface keeps its name; it is matched as above.
		case "dhcp4":
			s, _ := scalar(v)
			in.Set(FieldDHCP, Value{Key: key, Text: s})
		case "dhcp6", "accept-ra", "critical", "optional":
			// IPv6 autoconfiguration stays networkd's default.
		case "addresses":
			for _, it := range v.Content {
				s, ok := scalar(it)
				if !ok {
					fail("%s: each item must be an address with a prefix", key)
					continue
				}
				addrs = append(addrs, s)
			}
		case "gateway4", "gateway6":
			s, _ := scalar(v)
			in.Set(FieldGateway, Value{Key: key, Text: s})
		case "routes":
			for i, r := range v.Content {
				m := mapping(r)
				to, _ := scalar(m["to"])
				via, _ := scalar(m["via"])
				if to != "default" && to != "0.0.0.0/0" && to != "::/0" || via == "" {
					fail("%s[%d]: only a default route (to: default, via: GATEWAY) is supported", key, i)
					continue
				}
				in.Set(FieldGateway, Value{Key: fmt.Sprintf("%s[%d].via", key, i), Text: via})
			}
		case "nameservers":
			for _, nkv := range pairs(v) {
				switch nkv[0].Value {
				case "addresses":
					setYAML(in, FieldDNS, key+".addresses", nkv[1], fail)
				case "search":
				default:
					fail("%s.%s: not supported", key, nkv[0].Value)
				}
			}
		default:
			fail("%s: not supported (docs/install.md lists what network-config may hold)", key)
		}
	}
	setNetworkName(in, base, name)
	setAddresses(in, base+".addresses", addrs, fail)
}

func readNetworkV1(doc *yaml.Node, in *Input, fail func(string, ...any)) {
	cfg := resolve(mapping(doc)["config"])
	if cfg == nil || cfg.Kind != yaml.SequenceNode {
		fail("network-config: config: want a list of entries (version 1)")
		return
	}
	physical := 0
	for i, e := range cfg.Content {
		m := mapping(e)
		typ, _ := scalar(m["type"])
		base := fmt.Sprintf("network-config: config[%d]", i)
		switch typ {
		case "nameserver":
			setYAML(in, FieldDNS, base+".address", m["address"], fail)
		case "physical":
			physical++
			if physical > 1 {
				fail("%s: a second physical interface; one is supported", base)
				continue
			}
			// Matched by MAC address when there is one, as cloud-init does:
			// Proxmox names it eth0 whatever the guest calls it.
			if mac, _ := scalar(m["mac_address"]); mac != "" {
				setNetworkName(in, base+".mac_address", mac)
			} else {
				name, _ := scalar(m["name"])
				setNetworkName(in, base+".name", name)
			}
			readSubnetsV1(base, resolve(m["subnets"]), in, fail)
		default:
			fail("%s: type %q not supported (physical and nameserver are)", base, typ)
		}
	}
}

func readSubnetsV1(base string, subnets *yaml.Node, in *Input, fail func(string, ...any)) {
	if subnets == nil {
		return
	}
	v4 := 0
	for j, sn := range subnets.Content {
		m := mapping(sn)
		key := fmt.Sprintf("%s.subnets[%d]", base, j)
		typ, _ := scalar(m["type"])
		switch typ {
		case "dhcp", "dhcp4":
			v4++
			in.Set(FieldDHCP, Value{Key: key + ".type", Text: "true"})
		case "static", "static4", "static6":
			v4++
			addr, _ := scalar(m["address"])
			if mask, ok := scalar(m["netmask"]); ok && mask != "" && !strings.Contains(addr, "/") {
				bits, err := maskBits(mask)
				if err != nil {
					fail("%s.netmask: %v", key, err)
					continue
				}
				addr = fmt.Sprintf("%s/%d", addr, bits)
			}
			in.Set(FieldAddress, Value{Key: key + ".address", Text: addr})
			if gw, ok := scalar(m["gateway"]); ok && gw != "" {
				in.Set(FieldGateway, Value{Key: key + ".gateway", Text: gw})
			}
			if ns, ok := m["dns_nameservers"]; ok {
				setYAML(in, FieldDNS, key+".dns_nameservers", ns, fail)
			}
		case "ipv6_slaac", "ipv6_dhcpv6-stateless", "ipv6_dhcpv6-stateful", "dhcp6":
			// IPv6 autoconfiguration stays networkd's default.
		default:
			fail("%s.type: %q not supported (dhcp, static)", key, typ)
		}
		if v4 > 1 {
			fail("%s: a second address; one is supported", key)
			return
		}
	}
}

func setNetworkName(in *Input, key, name string) {
	if name != "" {
		in.Set(FieldInterface, Value{Key: key, Text: name})
	}
}

func setAddresses(in *Input, key string, addrs []string, fail func(string, ...any)) {
	switch len(addrs) {
	case 0:
	case 1:
		in.Set(FieldAddress, Value{Key: key, Text: addrs[0]})
	default:
		fail("%s: %d addresses; one is supported", key, len(addrs))
	}
}

// maskBits turns a dotted netmask into a prefix length.
func maskBits(mask string) (int, error) {
	a, err := netip.ParseAddr(mask)
	if err != nil || !a.Is4() {
		return 0, fmt.Errorf("%q is not a netmask (like 255.255.255.0)", mask)
	}
	b := a.As4()
	n := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	bits := 0
	for n&(1<<31) != 0 {
		bits++
		n <<= 1
	}
	if n != 0 {
		return 0, fmt.Errorf("%q is not a netmask (like 255.255.255.0)", mask)
	}
	return bits, nil
}

func readSeedFile(dir, name string) ([]byte, error) {
	f, err := os.Open(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("NoCloud seed: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSeedFile+1))
	if err != nil {
		return nil, fmt.Errorf("NoCloud seed: read %s: %w", name, err)
	}
	if len(data) > maxSeedFile {
		return nil, fmt.Errorf("NoCloud seed %s: %s is larger than %d bytes", dir, name, maxSeedFile)
	}
	return data, nil
}

// readSeedYAML reads and parses a seed file; a missing file is nil.
func readSeedYAML(dir, name string) (*yaml.Node, error) {
	data, err := readSeedFile(dir, name)
	if err != nil || data == nil {
		return nil, err
	}
	doc, err := parseYAML(data)
	if err != nil {
		return nil, fmt.Errorf("NoCloud seed %s: %s: %w", dir, name, err)
	}
	return doc, nil
}

// parseYAML returns the document's root node (nil for an empty document).
func parseYAML(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, errors.New(strings.ReplaceAll(strings.TrimPrefix(err.Error(), "yaml: "), "\n", "; "))
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return resolve(doc.Content[0]), nil
	}
	return nil, nil
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || n.Kind == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// pairs lists a mapping's key and value nodes; nil for anything else.
func pairs(n *yaml.Node) [][2]*yaml.Node {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	out := make([][2]*yaml.Node, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, [2]*yaml.Node{n.Content[i], resolve(n.Content[i+1])})
	}
	return out
}

// mapping indexes a mapping by key; nil for anything else.
func mapping(n *yaml.Node) map[string]*yaml.Node {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	m := map[string]*yaml.Node{}
	for _, kv := range pairs(n) {
		m[kv[0].Value] = kv[1]
	}
	return m
}

func mappingNode(n *yaml.Node, key string) *yaml.Node { return mapping(n)[key] }

// scalar is a scalar's text; ok is false for a mapping or a list.
func scalar(n *yaml.Node) (string, bool) {
	n = resolve(n)
	switch {
	case isNull(n):
		return "", true
	case n.Kind == yaml.ScalarNode:
		return n.Value, true
	}
	return "", false
}
