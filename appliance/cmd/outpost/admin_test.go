package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-voice/outpost/appliance/web/ui"
)

func TestAdminSetPassword(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "outpost.yaml")
	data := filepath.Join(dir, "data")
	if err := os.WriteFile(cfg, []byte("data_dir: "+data+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withStdin := func(s string) { stdin = strings.NewReader(s) }
	t.Cleanup(func() { stdin = os.Stdin })

	withStdin("a long enough password\n")
	out, stderr, code := runCLI(t, "admin", "set-password", "--config", cfg, "--user", "rescue")
	if code != 0 || !strings.Contains(out, "break-glass admin rescue set") {
		t.Fatalf("exit %d, out %q, err %q", code, out, stderr)
	}
	bg, err := ui.ReadBreakGlass(filepath.Join(data, ui.BreakGlassFile))
	if err != nil || bg == nil || bg.Username != "rescue" {
		t.Fatalf("breakglass.json: %+v %v", bg, err)
	}

	for name, tc := range map[string]struct {
		args  []string
		input string
		code  int
		want  string
	}{
		"no user":        {[]string{"admin", "set-password", "--config", cfg}, "a long enough password\n", 2, "needs --user"},
		"no subcommand":  {[]string{"admin"}, "", 2, "admin needs set-password"},
		"empty stdin":    {[]string{"admin", "set-password", "--config", cfg, "--user", "rescue"}, "", 1, "no password on standard input"},
		"short password": {[]string{"admin", "set-password", "--config", cfg, "--user", "rescue"}, "short\n", 1, "too short"},
		"bad username":   {[]string{"admin", "set-password", "--config", cfg, "--user", "<b>"}, "a long enough password\n", 1, "username"},
	} {
		withStdin(tc.input)
		_, stderr, code := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", name, code, stderr, tc.code, tc.want)
		}
	}
}
