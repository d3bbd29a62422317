package node

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/outpost-voice/outpost/config"
)

// TokenPath is where the admin token is read from: http.admin_token_file, or
// <data_dir>/admin-token, generated on first start.
func TokenPath(c config.Config) string {
	if c.HTTP.AdminTokenFile != "" {
		return c.HTTP.AdminTokenFile
	}
	return filepath.Join(c.DataDir, "admin-token")
}

// loadToken reads the admin token, generating <data_dir>/admin-token (0600)
// when no token file is configured and none exists yet.
func loadToken(c config.Config) (string, error) {
	path := TokenPath(c)
	tok, err := ReadToken(path)
	if err == nil || c.HTTP.AdminTokenFile != "" || !errors.Is(err, os.ErrNotExist) {
		return tok, err
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("generate admin token: %w", err)
	}
	tok = hex.EncodeToString(buf)
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write admin token: %w", err)
	}
	return tok, nil
}

// ReadToken reads a token file; an empty file is an error.
func ReadToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read admin token: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("read admin token: %s is empty", path)
	}
	return tok, nil
}
