// Command phonecheck tests the phone guides' example configurations
// (docs/phones/examples/) against Outpost's own settings.
//
// Each example carries its expectations as comments, one per line:
//
//	# outpost-check: account.1.sip_server.2.port = {sip.udp.port}
//	<!-- outpost-check: P32 in sip.min_expires..sip.max_expires minutes -->
//
// and phonecheck reads the example's keys (Yealink key = value, Poly XML
// attributes, Cisco flat-profile elements, Grandstream P-values), works out
// each expectation from the node configuration (loaded with config.Load:
// the defaults, then docs/phones/examples/outpost.yaml) and the account's
// realm (the demo snapshot, decoded by package account), and reports every
// value that does not match, naming the file, the key, what it holds and
// what Outpost needs. It exits 1 when anything does not match and 2 on bad
// usage. The check syntax is in check.go; `make phone-guides-check` runs it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// run is the whole command: flags, then every file under the given paths
// (default: the examples directory). environ is passed to config.Load, so
// OUTPOST_ overrides apply as they would on a node.
func run(args, environ []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("phonecheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: phonecheck [-config FILE] [-snapshot FILE] [PATH ...]")
		fmt.Fprintln(stderr, "Checks phone configurations (files or directories of .cfg/.xml files;")
		fmt.Fprintln(stderr, "default docs/phones/examples) against Outpost's settings.")
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "", "node configuration (YAML) the phones point at; default docs/phones/examples/outpost.yaml, \"none\" for the built-in defaults only")
	snapshotPath := fs.String("snapshot", "", "account snapshot giving the realm; default ../shared/contract/demo-snapshot.json beside the repository")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	paths := fs.Args()
	if *configPath == "" || *snapshotPath == "" || len(paths) == 0 {
		root, err := repoRoot()
		if err != nil {
			fmt.Fprintf(stderr, "phonecheck: %v; pass -config, -snapshot and the paths\n", err)
			return 2
		}
		if *configPath == "" {
			*configPath = filepath.Join(root, "docs", "phones", "examples", "outpost.yaml")
		}
		if *snapshotPath == "" {
			*snapshotPath = filepath.Join(root, "..", "shared", "contract", "demo-snapshot.json")
		}
		if len(paths) == 0 {
			paths = []string{filepath.Join(root, "docs", "phones", "examples")}
		}
	}
	if *configPath == "none" {
		*configPath = ""
	}
	set, err := loadSettings(*configPath, *snapshotPath, environ)
	if err != nil {
		fmt.Fprintf(stderr, "phonecheck: %v\n", err)
		return 2
	}
	files, err := phoneFiles(paths)
	if err != nil {
		fmt.Fprintf(stderr, "phonecheck: %v\n", err)
		return 2
	}
	var problems []string
	checks := 0
	for _, f := range files {
		n, p := checkFile(f, set)
		checks += n
		problems = append(problems, p...)
	}
	for _, p := range problems {
		fmt.Fprintln(stderr, p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "phonecheck: %d problem(s) in %d file(s)\n", len(problems), len(files))
		return 1
	}
	fmt.Fprintf(stdout, "phonecheck: %d files, %d checks: ok (realm %q, node configuration %s)\n",
		len(files), checks, set.realm, displayPath(set.configPath))
	return 0
}

// phoneFiles expands paths: a file is taken as it is; a directory gives
// every .cfg and .xml file under it, sorted.
func phoneFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			out = append(out, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if ext := filepath.Ext(path); !d.IsDir() && (ext == ".cfg" || ext == ".xml") {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: no .cfg or .xml files", p)
		}
		slices.Sort(found)
		out = append(out, found...)
	}
	return out, nil
}

// repoRoot is the nearest directory at or above the working directory
// whose go.mod declares Outpost's module.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), "module github.com/outpost-voice/outpost\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the Outpost repository")
		}
		dir = parent
	}
}

// displayPath is p relative to the working directory when that is shorter,
// so messages read docs/phones/examples/x.cfg when run from the root.
func displayPath(p string) string {
	if p == "" {
		return "(defaults only)"
	}
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	if rel, err := filepath.Rel(wd, abs); err == nil && len(rel) < len(p) {
		return rel
	}
	return p
}
