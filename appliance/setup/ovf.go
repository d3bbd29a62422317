package setup

import (
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"
)

// OVFKeys are the vApp properties read from the OVF environment, by key
// (docs/install.md, "vApp properties"). The OVA's descriptor declares
// them; an empty value is the default. outpost.ip empty means DHCP.
var OVFKeys = map[string]Field{
	"outpost.hostname":            FieldHostname,
	"outpost.admin_user":          FieldAdminUser,
	"outpost.admin_password":      FieldAdminPassword,
	"outpost.admin_password_hash": FieldAdminHash,
	"outpost.ip":                  FieldAddress,
	"outpost.gateway":             FieldGateway,
	"outpost.dns":                 FieldDNS,
	"outpost.ntp":                 FieldNTP,
	"outpost.site":                FieldSite,
	"outpost.node_id":             FieldNodeID,
	"outpost.dns_domain":          FieldDNSDomain,
	"outpost.cloud_url":           FieldCloudURL,
	"outpost.pairing_code":        FieldPairingCode,
	"outpost.join":                FieldJoin,
	"outpost.cluster_token":       FieldClusterToken,
}

// ovfKey is a field's vApp property key.
func ovfKey(f Field) string {
	for k, g := range OVFKeys {
		if g == f {
			return k
		}
	}
	if f == FieldDHCP {
		return "outpost.ip"
	}
	return "outpost." + string(f)
}

type ovfEnvironment struct {
	XMLName    xml.Name `xml:"Environment"`
	Properties []struct {
		Key   string `xml:"key,attr"`
		Value string `xml:"value,attr"`
	} `xml:"PropertySection>Property"`
}

// maxOVFEnv bounds what is read of an OVF environment document.
const maxOVFEnv = 1 << 20

// ReadOVF reads an OVF environment document (ovf-env.xml, as VMware puts
// it on a CD or returns from `vmtoolsd --cmd "info-get guestinfo.ovfEnv"`):
// the PropertySection's Property oe:key/oe:value pairs whose key starts
// with "outpost.". An empty value is not given. A key starting with
// "outpost." that is not one of OVFKeys is an error naming it; other keys
// are the hypervisor's and are ignored.
func ReadOVF(r io.Reader, source string) (*Input, error) {
	in := NewInput(source, func(f Field) string { return ovfKey(f) })
	data, err := io.ReadAll(io.LimitReader(r, maxOVFEnv+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if len(data) > maxOVFEnv {
		return nil, fmt.Errorf("%s: larger than %d bytes: not an OVF environment", source, maxOVFEnv)
	}
	var env ovfEnvironment
	if err := xml.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%s: not an OVF environment document: %w", source, err)
	}
	var problems []string
	seen := map[string]bool{}
	for _, p := range env.Properties {
		if !strings.HasPrefix(p.Key, "outpost.") {
			continue
		}
		f, ok := OVFKeys[p.Key]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s: unknown vApp property; known: %s", p.Key, ovfKnown()))
			continue
		case seen[p.Key]:
			problems = append(problems, p.Key+": given twice")
			continue
		}
		seen[p.Key] = true
		if strings.TrimSpace(p.Value) == "" {
			continue
		}
		in.Set(f, Value{Key: p.Key, Text: p.Value})
	}
	if len(problems) > 0 {
		return nil, &InputError{Source: source, Problems: problems}
	}
	in.Outpost = !in.Empty()
	if !in.Outpost {
		in.Skipped = "no outpost.* property has a value"
	}
	if !in.Has(FieldAddress) && !in.Empty() {
		// outpost.ip empty: DHCP (a gateway given with it is refused).
		in.Set(FieldDHCP, Value{Key: "outpost.ip", Text: "true"})
		if in.Has(FieldGateway) {
			return nil, &InputError{Source: source, Problems: []string{"outpost.gateway: given without outpost.ip (empty outpost.ip means DHCP): give both or neither"}}
		}
	}
	return in, nil
}

func ovfKnown() string {
	keys := make([]string, 0, len(OVFKeys))
	for k := range OVFKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}
