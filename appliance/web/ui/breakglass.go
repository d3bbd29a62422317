package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// BreakGlassFile is the break-glass admin's file name in the node's data
// directory, written by `outpost admin set-password`.
const BreakGlassFile = "breakglass.json"

// MinPasswordLength is the shortest break-glass password accepted.
const MinPasswordLength = 12

// breakGlassCost is bcrypt's work factor for the break-glass password (a
// variable for the tests, which run under the race detector).
var breakGlassCost = 12

// BreakGlass is the node's local admin: it signs in even with an empty
// store (no snapshot yet) and while the cloud is down. There is none until
// an operator sets one; there is no default.
type BreakGlass struct {
	Username string `json:"username"`
	Bcrypt   string `json:"bcrypt"`
}

// ReadBreakGlass reads path. A missing file is (nil, nil): no break-glass
// admin. A file that others may read or write, that is not JSON or that
// lacks a username or a bcrypt hash is an error saying what to do.
func ReadBreakGlass(path string) (*BreakGlass, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("break-glass admin: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("break-glass admin: %s has mode %04o, readable or writable by others: chmod 600 it, or set the password again with `outpost admin set-password`", path, perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("break-glass admin: %w", err)
	}
	var b BreakGlass
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("break-glass admin: %s is not valid JSON {\"username\",\"bcrypt\"} (%v): set the password again with `outpost admin set-password`", path, err)
	}
	if b.Username == "" {
		return nil, fmt.Errorf("break-glass admin: %s has no username: set the password again with `outpost admin set-password`", path)
	}
	if _, err := bcrypt.Cost([]byte(b.Bcrypt)); err != nil {
		return nil, fmt.Errorf("break-glass admin: %s has no valid bcrypt hash (%v): set the password again with `outpost admin set-password`", path, err)
	}
	return &b, nil
}

// WriteBreakGlass hashes password and writes username and the hash to path
// (mode 0600, atomically), replacing any earlier break-glass admin.
func WriteBreakGlass(path, username, password string) error {
	if err := checkUsername(username); err != nil {
		return err
	}
	if utf8.RuneCountInString(password) < MinPasswordLength {
		return fmt.Errorf("password too short: want at least %d characters", MinPasswordLength)
	}
	if len(password) > 72 {
		return errors.New("password too long: bcrypt uses at most 72 bytes")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), breakGlassCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	return WriteBreakGlassHash(path, username, string(hash))
}

// WriteBreakGlassHash is WriteBreakGlass from a bcrypt hash made elsewhere
// (unattended set-up's admin_password_hash).
func WriteBreakGlassHash(path, username, hash string) error {
	if err := checkUsername(username); err != nil {
		return err
	}
	if _, err := bcrypt.Cost([]byte(hash)); err != nil {
		return fmt.Errorf("break-glass admin: not a bcrypt hash: %w", err)
	}
	data, err := json.MarshalIndent(BreakGlass{Username: username, Bcrypt: hash}, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("break-glass admin: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".breakglass-*")
	if err != nil {
		return fmt.Errorf("break-glass admin: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("break-glass admin: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("break-glass admin: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("break-glass admin: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("break-glass admin: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("break-glass admin: %w", err)
	}
	return nil
}

// checkUsername accepts what the snapshot accepts for admins: 1 to 64
// letters, digits and - _ . @.
func checkUsername(u string) error {
	if u == "" || len(u) > 64 {
		return fmt.Errorf("username %q: want 1 to 64 letters, digits and - _ . @", u)
	}
	for _, r := range u {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.@", r)
		if !ok {
			return fmt.Errorf("username %q: want 1 to 64 letters, digits and - _ . @", u)
		}
	}
	return nil
}
