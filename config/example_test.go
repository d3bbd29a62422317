package config

import (
	"bytes"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// hostKeys are commented out in the example: their defaults depend on the host.
var hostKeys = []string{"node_id", "data_dir"}

func TestExampleLoadsAsDefault(t *testing.T) {
	got, err := Load(writeFile(t, "outpost.yaml", string(Example)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("Load(Example) =\n%+v\nwant Default()\n%+v", got, want)
	}
}

// exampleKeys returns the key paths set in the example, in file order, and
// whether each has a comment on its line.
func exampleKeys(t *testing.T) (paths []string, commented map[string]bool) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(Example, &doc); err != nil {
		t.Fatal(err)
	}
	commented = map[string]bool{}
	var walk func(m *yaml.Node, prefix string)
	walk = func(m *yaml.Node, prefix string) {
		for i := 0; i+1 < len(m.Content); i += 2 {
			kn, vn := m.Content[i], m.Content[i+1]
			if vn.Kind == yaml.MappingNode {
				walk(vn, prefix+kn.Value+".")
				continue
			}
			p := prefix + kn.Value
			paths = append(paths, p)
			commented[p] = kn.LineComment != "" || vn.LineComment != ""
		}
	}
	walk(doc.Content[0], "")
	return paths, commented
}

func TestExampleHasEveryKey(t *testing.T) {
	paths, commented := exampleKeys(t)
	var want []string
	for _, k := range Keys() {
		if slices.Contains(hostKeys, k.Path) {
			if !bytes.Contains(Example, []byte("\n# "+k.Path+": ")) {
				t.Errorf("example lacks the commented-out line \"# %s: ...\"", k.Path)
			}
			continue
		}
		want = append(want, k.Path)
	}
	if !slices.Equal(paths, want) {
		t.Errorf("example keys, in order =\n%q\nwant (struct order)\n%q", paths, want)
	}
	for _, p := range paths {
		if !commented[p] {
			t.Errorf("example key %s has no comment on its line", p)
		}
	}
}

func TestDocsHaveEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatalf("the configuration reference is missing: %v", err)
	}
	for _, k := range Keys() {
		for _, s := range []string{"`" + k.Path + "`", "`" + k.Env + "`"} {
			if !strings.Contains(string(doc), s) {
				t.Errorf("docs/configuration.md does not mention %s", s)
			}
		}
	}
}

func TestDurationYAML(t *testing.T) {
	var v struct {
		D Duration `yaml:"d"`
	}
	if err := yaml.Unmarshal([]byte("d: 1m30s\n"), &v); err != nil {
		t.Fatal(err)
	}
	if got, want := v.D.Duration, 90*time.Second; got != want {
		t.Errorf("Unmarshal = %v, want %v", got, want)
	}
	out, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), "d: 1m30s\n"; got != want {
		t.Errorf("Marshal = %q, want %q", got, want)
	}
	for _, bad := range []string{"d: 90\n", "d: [1s]\n"} {
		if err := yaml.Unmarshal([]byte(bad), &v); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("Unmarshal(%q) = %v, want an error naming line 1", bad, err)
		}
	}
}
