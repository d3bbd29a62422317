package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// EnvPrefix starts every environment override.
const EnvPrefix = "OUTPOST_"

// Key is one configuration key, derived from the struct tags.
type Key struct {
	Path string // dotted YAML path: "sip.tls_cert", "node_id"
	Env  string // environment override: "OUTPOST_SIP_TLS_CERT"
	// Kind names the value type: "string", "bool", "list", "duration" or
	// "integer".
	Kind  string
	index []int
}

var durationType = reflect.TypeFor[Duration]()

// keyTable and sectionNames are built once from Config's tags; a field of an
// unsupported type panics at start-up, which every test run catches.
var keyTable, sectionNames = buildKeys(reflect.TypeFor[Config]())

// Keys returns every configuration key in struct order.
func Keys() []Key { return append([]Key(nil), keyTable...) }

func buildKeys(t reflect.Type) ([]Key, map[string]bool) {
	var keys []Key
	sections := map[string]bool{}
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			name := yamlName(f)
			idx := append(append([]int(nil), index...), i)
			if f.Type.Kind() == reflect.Struct && f.Type != durationType {
				sections[name] = true
				walk(f.Type, name+".", idx)
				continue
			}
			path := prefix + name
			keys = append(keys, Key{
				Path:  path,
				Env:   EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_")),
				Kind:  kindOf(f.Type, path),
				index: idx,
			})
		}
	}
	walk(t, "", nil)
	return keys, sections
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" || name == "-" {
		panic("config: field " + f.Name + " has no yaml name")
	}
	return name
}

func kindOf(t reflect.Type, path string) string {
	switch {
	case t == durationType:
		return "duration"
	case t.Kind() == reflect.String:
		return "string"
	case t.Kind() == reflect.Bool:
		return "bool"
	case t.Kind() == reflect.Uint64:
		return "integer"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return "list"
	}
	panic("config: key " + path + " has unsupported type " + t.String())
}

func lookupKey(path string) (Key, bool) {
	for _, k := range keyTable {
		if k.Path == path {
			return k, true
		}
	}
	return Key{}, false
}

// set parses s according to the key's kind and stores it in c.
func (k Key) set(c *Config, s string) error {
	v := reflect.ValueOf(c).Elem().FieldByIndex(k.index)
	switch k.Kind {
	case "string":
		v.SetString(s)
	case "bool":
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not a boolean (use true, false, 1 or 0)", s)
		}
		v.SetBool(b)
	case "integer":
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		v.SetUint(n)
	case "duration":
		d, err := parseDuration(s)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(d))
	case "list":
		var list []string
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		v.Set(reflect.ValueOf(list))
	}
	return nil
}

// applyEnv overlays every OUTPOST_ variable of environ ("K=V") onto c. A
// variable naming no key, or whose value does not parse, is an error; all of
// them are reported together. When a variable repeats, the last one wins.
func applyEnv(c *Config, environ []string) error {
	var problems []string
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		k, ok := lookupEnv(name)
		if !ok {
			problems = append(problems, "unknown environment override "+name+suggest(name, envNames()))
			continue
		}
		if err := k.set(c, value); err != nil {
			problems = append(problems, "environment override "+name+": "+err.Error())
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

func lookupEnv(name string) (Key, bool) {
	for _, k := range keyTable {
		if k.Env == name {
			return k, true
		}
	}
	return Key{}, false
}

func envNames() []string {
	names := make([]string, len(keyTable))
	for i, k := range keyTable {
		names[i] = k.Env
	}
	return names
}

// suggest returns " (did you mean X?)" for the closest candidate within two
// edits of name, or "".
func suggest(name string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return " (did you mean " + best + "?)"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
