package setup

import (
	"fmt"
	"sort"
	"strings"
)

// Input is a set of unattended settings as a source gave them, before
// parsing: each value remembers the key the source names it by, so that a
// problem names that key ("user-data: outpost.network.address: ...").
type Input struct {
	// Source says where the settings came from, e.g. "NoCloud seed
	// /run/outpost-setup/cidata".
	Source string
	// Outpost is whether the source holds settings for Outpost at all
	// (user-data's outpost: mapping, an outpost.* vApp property with a
	// value); without, it is someone else's seed.
	Outpost bool
	// Skipped says why a source without Outpost settings was passed over.
	Skipped string
	values  map[Field]Value
	// keyFor names a field the source did not give, for problems such as
	// a missing password.
	keyFor func(Field) string
}

// Value is one setting as given: Text, or List when the source gave a
// list; Key is its name in the source.
type Value struct {
	Key  string
	Text string
	List []string
}

// items is the value as a list: List, or Text split on commas and spaces.
func (v Value) items() []string {
	if v.List != nil {
		return v.List
	}
	return Fields(v.Text)
}

// NewInput starts an input; keyFor names fields the source did not give.
func NewInput(source string, keyFor func(Field) string) *Input {
	return &Input{Source: source, values: map[Field]Value{}, keyFor: keyFor}
}

// Set records a value; a later Set of the same field replaces it.
func (in *Input) Set(f Field, v Value) { in.values[f] = v }

// Has reports whether the source gave f.
func (in *Input) Has(f Field) bool { _, ok := in.values[f]; return ok }

// Empty reports whether the source gave no setting at all.
func (in *Input) Empty() bool { return len(in.values) == 0 }

func (in *Input) key(f Field) string {
	if v, ok := in.values[f]; ok {
		return v.Key
	}
	return in.keyFor(f)
}

// InputError lists every problem of an unattended input; nothing is
// written when there is one.
type InputError struct {
	Source   string
	Problems []string // "KEY: message"
}

func (e *InputError) Error() string {
	return fmt.Sprintf("%s: %s; nothing was written", e.Source, strings.Join(e.Problems, "; "))
}

// Settings parses the input over base (the defaults) and validates the
// result. Every problem is listed, each naming its key; a *InputError is
// returned when there is any.
func (in *Input) Settings(base Settings) (Settings, error) {
	s := base
	var problems []string
	var bad = map[Field]bool{}
	fail := func(f Field, err error) {
		problems = append(problems, in.key(f)+": "+err.Error())
		bad[f] = true
	}
	fields := make([]Field, 0, len(in.values))
	for f := range in.values {
		fields = append(fields, f)
	}
	sort.Slice(fields, func(i, j int) bool { return fieldOrder(fields[i]) < fieldOrder(fields[j]) })
	for _, f := range fields {
		v := in.values[f]
		text := strings.TrimSpace(v.Text)
		var err error
		switch f {
		case FieldAdminUser:
			s.AdminUser, err = text, CheckUsername(text)
		case FieldAdminPassword:
			s.AdminPassword, err = v.Text, CheckPassword(v.Text)
		case FieldAdminHash:
			s.AdminPasswordHash, err = text, CheckBcrypt(text)
		case FieldHostname:
			s.Hostname, err = ParseHostname(text)
		case FieldInterface:
			s.Interface, err = text, CheckInterface(text)
		case FieldDHCP:
			s.DHCP, err = parseBool(text)
		case FieldAddress:
			s.Address, err = ParsePrefix(text)
			s.DHCP = false
		case FieldGateway:
			s.Gateway, err = ParseAddr(text)
		case FieldDNS:
			s.DNS, err = ParseDNS(v.items())
		case FieldNTP:
			s.NTP, err = ParseNTP(v.items())
		case FieldSite:
			s.Site, err = text, CheckID(text)
		case FieldNodeID:
			s.NodeID, err = text, CheckID(text)
		case FieldDNSDomain:
			s.DNSDomain, err = ParseDomain(text)
		case FieldCloudURL:
			s.CloudURL, err = ParseCloudURL(text)
		case FieldPairingCode:
			s.PairingCode, err = text, CheckPairingCode(text)
		case FieldJoin:
			s.Join = nil
			for _, it := range v.items() {
				var j string
				if j, err = ParseJoin(it); err != nil {
					break
				}
				s.Join = append(s.Join, j)
			}
		case FieldClusterToken:
			s.ClusterToken, err = text, CheckClusterToken(text)
		default:
			err = fmt.Errorf("not a setting")
		}
		if err != nil {
			fail(f, err)
		}
	}
	if v, ok := in.values[FieldDHCP]; ok && !bad[FieldDHCP] && in.Has(FieldAddress) {
		if dhcp, _ := parseBool(strings.TrimSpace(v.Text)); dhcp {
			problems = append(problems, v.Key+": DHCP and a static address ("+in.key(FieldAddress)+") both given: choose one")
			bad[FieldAddress] = true
		}
	}
	// Whole-settings rules, for fields not already refused on their own.
	for _, p := range s.Validate() {
		if bad[p.Field] || (p.Field == FieldGateway && bad[FieldAddress]) {
			continue
		}
		problems = append(problems, in.key(p.Field)+": "+p.Message)
		bad[p.Field] = true
	}
	if len(problems) > 0 {
		return Settings{}, &InputError{Source: in.Source, Problems: problems}
	}
	return s, nil
}

// fieldOrder lists problems in the order an admin reads the settings.
func fieldOrder(f Field) int {
	for i, g := range []Field{FieldAdminUser, FieldAdminPassword, FieldAdminHash, FieldHostname, FieldInterface,
		FieldDHCP, FieldAddress, FieldGateway, FieldDNS, FieldNTP, FieldSite, FieldNodeID, FieldDNSDomain,
		FieldCloudURL, FieldPairingCode, FieldJoin, FieldClusterToken} {
		if f == g {
			return i
		}
	}
	return 1 << 10
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0", "":
		return false, nil
	}
	return false, fmt.Errorf("%q is not true or false", s)
}
