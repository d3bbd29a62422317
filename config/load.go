package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load builds the effective configuration: Default(), then the YAML file at
// path ("" means no file), then the OUTPOST_ overrides in environ (the
// os.Environ() form "K=V"), then Validate. File errors name the line; an
// OUTPOST_ variable that names no key, or whose value does not parse, is an
// error. A validation failure is returned wrapped: use errors.As to get the
// *ValidationError.
func Load(path string, environ []string) (Config, error) {
	where := "config"
	if path != "" {
		where = "config " + path
	}
	c := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		if err := decodeYAML(data, &c); err != nil {
			return Config{}, fmt.Errorf("%s: %w", where, err)
		}
	}
	if err := applyEnv(&c, environ); err != nil {
		return Config{}, fmt.Errorf("%s: %w", where, err)
	}
	normalize(&c)
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", where, err)
	}
	return c, nil
}

// normalize makes equal configurations compare equal: an empty join list is
// nil whether it came from the defaults, "join: []" or OUTPOST_RAFT_JOIN="".
func normalize(c *Config) {
	if len(c.Raft.Join) == 0 {
		c.Raft.Join = nil
	}
}

// decodeYAML overlays one YAML document onto c. It walks the document
// against the key table and parses every value with the same code as the
// environment overrides, so errors name the line and the key.
func decodeYAML(data []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty file: defaults
		}
		return yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return yamlError(err)
		}
		return fmt.Errorf("line %d: only one YAML document is allowed", extra.Line)
	}
	root := resolve(&doc)
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = resolve(root.Content[0])
	}
	if isNull(root) {
		return nil // a file of comments only
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: the configuration must be a mapping of keys such as \"sip:\"", root.Line)
	}
	d := &yamlDecoder{c: c, seen: map[string]int{}}
	d.mapping(root, "")
	if len(d.problems) > 0 {
		return errors.New(strings.Join(d.problems, "; "))
	}
	return nil
}

type yamlDecoder struct {
	c        *Config
	seen     map[string]int // key path -> line, to refuse duplicates
	problems []string
}

func (d *yamlDecoder) fail(line int, format string, args ...any) {
	d.problems = append(d.problems, fmt.Sprintf("line %d: ", line)+fmt.Sprintf(format, args...))
}

// mapping applies the pairs of m, a section's keys when prefix is "sip." and
// so on, the top level when prefix is "".
func (d *yamlDecoder) mapping(m *yaml.Node, prefix string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		kn, vn := m.Content[i], resolve(m.Content[i+1])
		path := prefix + kn.Value
		if kn.Value == "<<" {
			d.fail(kn.Line, "YAML merge keys (<<) are not supported; write the keys out")
			continue
		}
		if line, dup := d.seen[path]; dup {
			d.fail(kn.Line, "%s is already set on line %d", path, line)
			continue
		}
		d.seen[path] = kn.Line
		if prefix == "" && sectionNames[kn.Value] {
			switch {
			case vn.Kind == yaml.MappingNode:
				d.mapping(vn, path+".")
			case !isNull(vn): // null keeps the section's defaults
				d.fail(vn.Line, "%s must be a mapping of keys such as \"%s:\" on indented lines", path, firstKey(path))
			}
			continue
		}
		k, ok := lookupKey(path)
		if !ok {
			d.fail(kn.Line, "unknown key %q%s", path, suggest(path, keyPaths()))
			continue
		}
		d.leaf(k, vn)
	}
}

// leaf parses one value with Key.set, the parser the environment uses. A
// null value clears a string or a list and is an error for other kinds; a
// list is a YAML sequence or, as in the environment, a comma-separated string.
func (d *yamlDecoder) leaf(k Key, vn *yaml.Node) {
	var value string
	switch {
	case isNull(vn):
		if k.Kind != "string" && k.Kind != "list" {
			d.fail(vn.Line, "%s has no value (want a %s)", k.Path, k.Kind)
			return
		}
	case vn.Kind == yaml.ScalarNode:
		value = vn.Value
	case vn.Kind == yaml.SequenceNode && k.Kind == "list":
		items := make([]string, 0, len(vn.Content))
		for _, item := range vn.Content {
			item = resolve(item)
			if item.Kind != yaml.ScalarNode || isNull(item) || strings.Contains(item.Value, ",") {
				d.fail(item.Line, "%s: each item must be a single address", k.Path)
				return
			}
			items = append(items, item.Value)
		}
		value = strings.Join(items, ",")
	default:
		d.fail(vn.Line, "%s: want a %s, not a %s", k.Path, k.Kind, nodeKind(vn))
		return
	}
	if err := k.set(d.c, value); err != nil {
		d.fail(vn.Line, "%s: %v", k.Path, err)
	}
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	}
	return "scalar"
}

// firstKey is the first key of a section, for error messages.
func firstKey(section string) string {
	for _, k := range keyTable {
		if rest, ok := strings.CutPrefix(k.Path, section+"."); ok {
			return rest
		}
	}
	return "key"
}

func keyPaths() []string {
	paths := make([]string, len(keyTable))
	for i, k := range keyTable {
		paths[i] = k.Path
	}
	return paths
}

// yamlError makes a parser error one line, without the "yaml: " prefix; it
// already names the line.
func yamlError(err error) error {
	return errors.New(strings.ReplaceAll(strings.TrimPrefix(err.Error(), "yaml: "), "\n", "; "))
}
