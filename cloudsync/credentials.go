package cloudsync

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// ErrNotPaired means the appliance has no credentials for a cloud: pair it
// with `outpost pair --cloud URL --code CODE`.
var ErrNotPaired = errors.New("not paired with a cloud")

// credentialsMode is the only mode a credentials file may have.
const credentialsMode fs.FileMode = 0o600

// Credentials are what pairing gives the appliance, kept in
// cloud.credentials_file: the cloud's base URL, the appliance's name and
// bearer secret, and the key the cloud signs pushes with (hex).
type Credentials struct {
	URL         string    `json:"url"`
	ApplianceID string    `json:"appliance_id"`
	Secret      string    `json:"secret"`
	PushKey     string    `json:"push_key"`
	PairedAt    time.Time `json:"paired_at"`
}

// Check says what is missing or wrong in c.
func (c Credentials) Check() error {
	switch {
	case c.URL == "":
		return errors.New("credentials: no url")
	case c.ApplianceID == "":
		return errors.New("credentials: no appliance_id")
	case c.Secret == "":
		return errors.New("credentials: no secret")
	case c.PushKey == "":
		return errors.New("credentials: no push_key")
	}
	if _, err := c.PushKeyBytes(); err != nil {
		return err
	}
	if _, err := normalizeBaseURL(c.URL); err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	return nil
}

// PushKeyBytes decodes the push key.
func (c Credentials) PushKeyBytes() ([]byte, error) {
	k, err := hex.DecodeString(c.PushKey)
	if err != nil || len(k) == 0 {
		return nil, errors.New("credentials: push_key is not hex")
	}
	return k, nil
}

// SaveCredentials writes c to path atomically (a temporary file in the
// same directory, synced, then renamed over path), mode 0600 whatever the
// umask or the mode of the file it replaces. The directory is made (0700)
// when missing.
func SaveCredentials(path string, c Credentials) error {
	if err := c.Check(); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("save credentials: encode: %w", err)
	}
	data = append(data, '\n')
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(credentialsMode); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("save credentials: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("save credentials: sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save credentials: close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	done = true
	// Make the rename durable; a directory that cannot be synced (some
	// file systems) is not worth failing the pairing for.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// LoadCredentials reads the credentials at path. A missing file wraps
// ErrNotPaired; a file others can read or write (mode wider than 0600) is
// refused, since it holds the appliance's secret.
func LoadCredentials(path string) (Credentials, error) {
	var c Credentials
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, fmt.Errorf("%w: no credentials at %s; run `outpost pair --cloud URL --code CODE`", ErrNotPaired, path)
	}
	if err != nil {
		return c, fmt.Errorf("load credentials: %w", err)
	}
	if !st.Mode().IsRegular() {
		return c, fmt.Errorf("load credentials: %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&^credentialsMode != 0 {
		return c, fmt.Errorf("load credentials: %s has mode %04o, wider than 0600, and holds the appliance's secret: run `chmod 600 %s` (and pair again if others may have read it)", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("load credentials: %w", err)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return Credentials{}, fmt.Errorf("load credentials: %s is not a credentials file: %w", path, err)
	}
	if err := c.Check(); err != nil {
		return Credentials{}, fmt.Errorf("load credentials from %s: %w; pair again", path, err)
	}
	return c, nil
}
