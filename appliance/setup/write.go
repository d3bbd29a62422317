package setup

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ServiceUser is the account the node runs as, when the package made one:
// secrets and the data directory are given to it.
const ServiceUser = "outpost"

// Writer writes rendered settings under Root ("/" on the appliance, a
// temporary directory in tests).
type Writer struct {
	Root string
	// SetAdmin writes the break-glass admin's file at path from a
	// password; SetAdminHash from a bcrypt hash (appliance/web/ui's
	// format, injected so it lives in one place).
	SetAdmin     func(path, user, password string) error
	SetAdminHash func(path, user, hash string) error
}

// Written says what Write did.
type Written struct {
	// Paths are the files written, on the target system.
	Paths []string
	// Token is the cluster's admin token: the one given to join, or this
	// node's (generated when there was none), which further nodes need.
	Token string
	// TokenNew is whether Token was generated now.
	TokenNew bool
	// Backup is where the previous node configuration was kept, if any.
	Backup string
}

// Own gives the file at p (on the target system) to the service user,
// when it exists: for files others write for it, such as the cloud
// credentials `outpost pair` saves.
func (w Writer) Own(p string) error {
	uid, gid, ok, err := lookupUser(w.Path("/etc/passwd"), ServiceUser)
	if err != nil || !ok {
		return err
	}
	if err := os.Lchown(w.Path(p), uid, gid); err != nil {
		return fmt.Errorf("give %s to %s: %w", p, ServiceUser, err)
	}
	return nil
}

// Path is p under w's root.
func (w Writer) Path(p string) string { return filepath.Join(w.Root, p) }

// Write writes the secrets (break-glass admin, admin token), then files,
// the marker last. Each file is written to a temporary file and renamed
// over the old one; secrets are 0600 and, like the data directory, owned
// by the service user when it exists.
func (w Writer) Write(s Settings, files []File) (Written, error) {
	var out Written
	uid, gid, hasUser, err := lookupUser(w.Path("/etc/passwd"), ServiceUser)
	if err != nil {
		return out, err
	}
	chown := func(p string) error {
		if !hasUser {
			return nil
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return fmt.Errorf("give %s to %s: %w", p, ServiceUser, err)
		}
		return nil
	}
	dataDir := w.Path(DataDir)
	if err := os.MkdirAll(filepath.Dir(dataDir), 0o755); err != nil {
		return out, fmt.Errorf("data directory: %w", err)
	}
	if err := os.Mkdir(dataDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return out, fmt.Errorf("data directory: %w", err)
	}
	if err := chown(dataDir); err != nil {
		return out, err
	}

	// The break-glass admin.
	bg := w.Path(BreakGlassPath)
	if s.AdminPasswordHash != "" {
		err = w.SetAdminHash(bg, s.AdminUser, s.AdminPasswordHash)
	} else {
		err = w.SetAdmin(bg, s.AdminUser, s.AdminPassword)
	}
	if err != nil {
		return out, fmt.Errorf("break-glass admin: %w", err)
	}
	if err := chown(bg); err != nil {
		return out, err
	}
	out.Paths = append(out.Paths, BreakGlassPath)

	// The admin token: the cluster's when joining, else this node's.
	tok := w.Path(TokenPath)
	out.Token = s.ClusterToken
	if out.Token == "" {
		if old, err := os.ReadFile(tok); err == nil && len(bytes.TrimSpace(old)) > 0 {
			out.Token = string(bytes.TrimSpace(old))
		} else {
			out.Token, out.TokenNew = NewToken(), true
		}
	}
	if err := WriteFileAtomic(tok, []byte(out.Token+"\n"), 0o600); err != nil {
		return out, fmt.Errorf("admin token: %w", err)
	}
	if err := chown(tok); err != nil {
		return out, err
	}
	out.Paths = append(out.Paths, TokenPath)

	for _, f := range files {
		p := w.Path(f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return out, fmt.Errorf("write %s: %w", f.Path, err)
		}
		if f.Symlink != "" {
			err = symlinkAtomic(f.Symlink, p)
		} else {
			if f.Backup {
				if out.Backup, err = backup(p, f.Data); err != nil {
					return out, err
				}
			}
			err = WriteFileAtomic(p, f.Data, f.Mode)
		}
		if err != nil {
			return out, fmt.Errorf("write %s: %w", f.Path, err)
		}
		if f.Secret {
			if err := chown(p); err != nil {
				return out, err
			}
		}
		out.Paths = append(out.Paths, f.Path)
	}
	if out.Backup != "" {
		out.Backup = strings.TrimPrefix(out.Backup, strings.TrimRight(w.Root, "/"))
	}
	return out, nil
}

// backup copies an existing, different file at p to p.before-setup and
// returns that path ("" when there was nothing to keep).
func backup(p string, next []byte) (string, error) {
	old, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && bytes.Equal(old, next)) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("keep the previous %s: %w", p, err)
	}
	dst := p + ".before-setup"
	if err := WriteFileAtomic(dst, old, 0o600); err != nil {
		return "", fmt.Errorf("keep the previous %s: %w", p, err)
	}
	return dst, nil
}

// WriteFileAtomic writes data to a temporary file beside path, syncs it,
// sets its mode and renames it over path, so a reader sees the old file
// or the new one, never a part.
func WriteFileAtomic(path string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the rename survives a crash; best effort
		d.Close()
	}
	return nil
}

// symlinkAtomic makes path a symbolic link to target, replacing whatever
// was there in one rename.
func symlinkAtomic(target, path string) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".link-"+strconv.Itoa(os.Getpid()))
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// NewToken makes an admin token an admin can type on another node's
// console: 120 random bits in lower-case base32, in groups of four.
func NewToken() string {
	buf := make([]byte, 15)
	_, _ = rand.Read(buf) // crypto/rand.Read never fails on Linux
	s := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(buf))
	var groups []string
	for len(s) > 4 {
		groups, s = append(groups, s[:4]), s[4:]
	}
	return strings.Join(append(groups, s), "-")
}

// lookupUser finds name in an /etc/passwd file; a missing file is no user.
func lookupUser(passwd, name string) (uid, gid int, ok bool, err error) {
	f, err := os.Open(passwd)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("look up the service user: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 4 || fields[0] != name {
			continue
		}
		uid, err1 := strconv.Atoi(fields[2])
		gid, err2 := strconv.Atoi(fields[3])
		if err1 != nil || err2 != nil {
			return 0, 0, false, fmt.Errorf("look up the service user: %s: bad entry for %s", passwd, name)
		}
		return uid, gid, true, nil
	}
	if err := sc.Err(); err != nil {
		return 0, 0, false, fmt.Errorf("look up the service user: %w", err)
	}
	return 0, 0, false, nil
}
