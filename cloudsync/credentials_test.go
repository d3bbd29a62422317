package cloudsync

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func testCreds() Credentials {
	return Credentials{
		URL:         "https://cloud.example/api",
		ApplianceID: "acme-hq",
		Secret:      "s3cret",
		PushKey:     "00ff10",
		PairedAt:    time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC),
	}
}

func TestCredentialsRoundTrip(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "sub", "cloud.json")
	if err := SaveCredentials(path, testCreds()); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600", st.Mode().Perm())
	}
	got, err := LoadCredentials(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != testCreds() {
		t.Errorf("loaded %+v, want %+v", got, testCreds())
	}
	if k, err := got.PushKeyBytes(); err != nil || len(k) != 3 || k[1] != 0xff {
		t.Errorf("PushKeyBytes = %x, %v", k, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("the directory holds %d files, want only cloud.json (no temporary file left)", len(entries))
	}
}

func TestSaveCredentialsFixesAWiderMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cloud.json")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := SaveCredentials(path, testCreds()); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o after replacing a 0644 file, want 0600", st.Mode().Perm())
	}
	if _, err := LoadCredentials(path); err != nil {
		t.Errorf("load: %v", err)
	}
}

func TestSaveCredentialsRefusesIncomplete(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cloud.json")
	c := testCreds()
	c.Secret = ""
	if err := SaveCredentials(path, c); err == nil || !strings.Contains(err.Error(), "no secret") {
		t.Errorf("save without secret: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused save left a file: %v", err)
	}
}

func TestLoadCredentialsErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := `{"url":"https://c.example","appliance_id":"a","secret":"s","push_key":"ab"}`
	tests := []struct {
		name    string
		path    string
		wantIs  error
		wantMsg string
	}{
		{"missing file: not paired", filepath.Join(dir, "none.json"), ErrNotPaired, "outpost pair"},
		{"readable by others", write("wide.json", good, 0o644), nil, "wider than 0600"},
		{"writable by the group", write("group.json", good, 0o620), nil, "chmod 600"},
		{"not JSON", write("garbage.json", "{", 0o600), nil, "not a credentials file"},
		{"no secret", write("nosecret.json", `{"url":"https://c.example","appliance_id":"a","push_key":"ab"}`, 0o600), nil, "no secret"},
		{"push key not hex", write("badkey.json", `{"url":"https://c.example","appliance_id":"a","secret":"s","push_key":"zz"}`, 0o600), nil, "push_key is not hex"},
		{"url not http", write("badurl.json", `{"url":"ftp://c.example","appliance_id":"a","secret":"s","push_key":"ab"}`, 0o600), nil, "http(s)://"},
		{"a directory", dir, nil, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadCredentials(tt.path)
			if err == nil {
				t.Fatal("loaded")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v does not wrap %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not say %q", err, tt.wantMsg)
			}
		})
	}
	// 0400 is narrower than 0600: fine.
	if _, err := LoadCredentials(write("readonly.json", good, 0o400)); err != nil {
		t.Errorf("0400: %v", err)
	}
}
