package ui

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"strings"
	"testing"
)

// The vendored htmx, when make deps has fetched it, is the pinned one, and
// scripts/deps.sh pins the same version and sum as this package.
func TestVendoredHTMX(t *testing.T) {
	script, err := os.ReadFile("../../../scripts/deps.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"htmx_version=" + HTMXVersion + "\n", "htmx_sha256=" + HTMXSHA256 + "\n"} {
		if !strings.Contains(string(script), want) {
			t.Errorf("scripts/deps.sh lacks %q: the pins differ", strings.TrimSpace(want))
		}
	}
	data, err := os.ReadFile(htmxPath)
	if os.IsNotExist(err) {
		t.Skipf("%s is not there (make deps fetches it); the UI works without it", htmxPath)
	}
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != HTMXSHA256 {
		t.Fatalf("%s has SHA-256 %s, pinned %s: delete it and run make deps", htmxPath, got, HTMXSHA256)
	}
	if !vendoredHTMX(slog.New(slog.DiscardHandler)) {
		t.Error("the embedded copy is not used")
	}
}
