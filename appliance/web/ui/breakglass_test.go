package ui

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-voice/outpost/account"
)

func TestBreakGlassFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "data", BreakGlassFile)
	if bg, err := ReadBreakGlass(path); bg != nil || err != nil {
		t.Fatalf("missing file: %v %v, want none and no error", bg, err)
	}
	if err := WriteBreakGlass(path, "rescue", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("written with mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	bg, err := ReadBreakGlass(path)
	if err != nil || bg.Username != "rescue" || !strings.HasPrefix(bg.Bcrypt, "$2a$") {
		t.Fatalf("read back: %+v %v", bg, err)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), "correct horse") {
		t.Error("the password is in the file")
	}

	for name, tc := range map[string]struct {
		content string
		mode    os.FileMode
		want    string
	}{
		"readable by others": {string(data), 0o644, "chmod 600"},
		"not json":           {"{username: rescue", 0o600, "not valid JSON"},
		"unknown field":      {`{"username":"a","bcrypt":"x","password":"y"}`, 0o600, "not valid JSON"},
		"no username":        {`{"bcrypt":"` + bg.Bcrypt + `"}`, 0o600, "no username"},
		"not bcrypt":         {`{"username":"a","bcrypt":"plain"}`, 0o600, "no valid bcrypt"},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
		if err := os.WriteFile(p, []byte(tc.content), tc.mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, tc.mode) // past the umask
		if _, err := ReadBreakGlass(p); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v, want one naming the file and saying %q", name, err, tc.want)
		}
	}

	for _, bad := range []struct{ user, pw string }{
		{"rescue", "short"}, {"", "long enough password"}, {"a b", "long enough password"},
		{evilName, "long enough password"}, {"rescue", strings.Repeat("x", 73)},
	} {
		if err := WriteBreakGlass(filepath.Join(dir, "x.json"), bad.user, bad.pw); err == nil {
			t.Errorf("user %q, password of %d characters: accepted", bad.user, len(bad.pw))
		}
	}
}

func TestBreakGlassSignIn(t *testing.T) {
	path := filepath.Join(t.TempDir(), BreakGlassFile)
	f := newFixture(t, func(d *Deps) { d.BreakGlassFile = path })
	if resp, _ := f.browser("192.0.2.1").signIn("rescue", "correct horse battery"); resp.StatusCode != 401 {
		t.Errorf("before it is set: %d, want 401", resp.StatusCode)
	}
	if err := WriteBreakGlass(path, "rescue", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	// No snapshot admins at all (a node with an empty store).
	f.mu.Lock()
	f.admins = nil
	f.mu.Unlock()
	resp, page := f.browser("192.0.2.2").signIn("rescue", "correct horse battery")
	if resp.StatusCode != 200 || !strings.Contains(page, `id="signed-in-as">rescue<`) {
		t.Fatalf("break-glass sign-in: %d", resp.StatusCode)
	}
	if !strings.Contains(f.logs.String(), "via=break-glass") {
		t.Error("sign-in not logged with where it came from")
	}
	// A damaged file refuses it, logged with what to do; others still sign in.
	os.Chmod(path, 0o644)
	f.mu.Lock()
	f.admins = []account.Admin{{Username: adminUser, Role: "admin", Bcrypt: hash(t, adminPass)}}
	f.mu.Unlock()
	if resp, _ := f.browser("192.0.2.3").signIn("rescue", "correct horse battery"); resp.StatusCode != 401 {
		t.Errorf("world-readable file: %d, want 401", resp.StatusCode)
	}
	if !strings.Contains(f.logs.String(), "chmod 600") {
		t.Error("the damaged file is not logged with what to do")
	}
	if resp, _ := f.browser("192.0.2.4").signIn(adminUser, adminPass); resp.StatusCode != 200 {
		t.Errorf("snapshot admin beside a damaged break-glass file: %d", resp.StatusCode)
	}
}
