// Package certfile serves TLS material held in PEM files — a certificate
// with its key, or a bundle of CA certificates — and loads the files again
// when they change (modification time or size, looked at on each use), so
// a renewed certificate needs no restart. Files that stop loading (a
// renewal half written) are logged once and the material loaded before
// goes on serving. It never writes a file and never logs key material.
package certfile

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// File is a PEM file and the name the operator knows it by in errors and
// logs (a flag such as "--tls-cert", or a config key such as
// "sbc.tls_cert").
type File struct {
	Path, Label string
}

// stamp tells a file changed.
type stamp struct {
	mod  time.Time
	size int64
}

// watched holds what was loaded from files and reloads it when they change.
type watched[T any] struct {
	files []File
	load  func() (T, error)
	log   *slog.Logger
	what  string // "tls certificate", "ca bundle"

	mu     sync.Mutex
	value  T
	loaded []stamp // of the files value was loaded from
	failed []stamp // of the files that last failed to load
}

func newWatched[T any](what string, files []File, log *slog.Logger, load func() (T, error)) (*watched[T], error) {
	w := &watched[T]{files: files, load: load, log: log, what: what}
	stamps, err := w.stamps()
	if err != nil {
		return nil, err
	}
	v, err := load()
	if err != nil {
		return nil, err
	}
	w.value, w.loaded = v, stamps
	return w, nil
}

// get is the current value, loaded again first when the files changed;
// reloaded says it was.
func (w *watched[T]) get() (v T, reloaded bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	stamps, err := w.stamps()
	if err != nil || equal(stamps, w.loaded) || equal(stamps, w.failed) {
		if err != nil && !equal(stamps, w.failed) {
			w.failed = stamps
			w.log.Warn(w.what+" files unreadable; using the one loaded before", "error", err)
		}
		return w.value, false
	}
	v, err = w.load()
	if err != nil {
		w.failed = stamps
		w.log.Warn(w.what+" files changed but do not load; using the one loaded before", "error", err)
		return w.value, false
	}
	w.value, w.loaded, w.failed = v, stamps, nil
	return v, true
}

func (w *watched[T]) stamps() ([]stamp, error) {
	s := make([]stamp, len(w.files))
	for i, f := range w.files {
		fi, err := os.Stat(f.Path)
		if err != nil {
			return s, fmt.Errorf("%s: %w", f.Label, err)
		}
		s[i] = stamp{mod: fi.ModTime(), size: fi.Size()}
	}
	return s, nil
}

func equal(a, b []stamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].mod.Equal(b[i].mod) || a[i].size != b[i].size {
			return false
		}
	}
	return true
}

// Pair is a certificate (with its chain after it) and its private key.
type Pair struct {
	w *watched[*tls.Certificate]
}

// LoadPair loads the pair once; the error names the file at fault.
func LoadPair(cert, key File, log *slog.Logger) (*Pair, error) {
	w, err := newWatched("tls certificate", []File{cert, key}, log, func() (*tls.Certificate, error) {
		return loadPair(cert, key)
	})
	if err != nil {
		return nil, err
	}
	p := &Pair{w: w}
	p.logLoaded("tls certificate loaded", w.value)
	return p, nil
}

// Certificate is the current certificate, loaded again first when the
// files changed.
func (p *Pair) Certificate() *tls.Certificate {
	c, reloaded := p.w.get()
	if reloaded {
		p.logLoaded("tls certificate reloaded", c)
	}
	return c
}

// GetCertificate is tls.Config.GetCertificate for a server.
func (p *Pair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return p.Certificate(), nil
}

// GetClientCertificate is tls.Config.GetClientCertificate for a client.
func (p *Pair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return p.Certificate(), nil
}

func loadPair(cert, key File) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(cert.Path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cert.Label, err)
	}
	if err := checkCertPEM(certPEM); err != nil {
		return nil, fmt.Errorf("%s %s: %w", cert.Label, cert.Path, err)
	}
	keyPEM, err := os.ReadFile(key.Path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key.Label, err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s %s (for %s %s): %w", key.Label, key.Path, cert.Label, cert.Path, err)
	}
	return &c, nil
}

// checkCertPEM checks the first certificate of a PEM file parses.
func checkCertPEM(data []byte) error {
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return errors.New("no PEM CERTIFICATE block in it (want the certificate, then its chain)")
		}
		if b.Type == "CERTIFICATE" {
			_, err := x509.ParseCertificate(b.Bytes)
			return err
		}
	}
}

func (p *Pair) logLoaded(msg string, cert *tls.Certificate) {
	path := p.w.files[0].Path
	leaf := cert.Leaf // X509KeyPair parsed it
	if leaf == nil {
		p.w.log.Info(msg, "cert", path)
		return
	}
	names := append([]string(nil), leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	level := slog.LevelInfo
	if time.Now().After(leaf.NotAfter) {
		level, msg = slog.LevelWarn, msg+"; it has expired"
	}
	p.w.log.Log(context.Background(), level, msg, "cert", path, "names", strings.Join(names, ","),
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
}

// Pool is a bundle of CA certificates.
type Pool struct {
	w *watched[*x509.CertPool]
}

// LoadPool loads the bundle once: at least one certificate, every
// CERTIFICATE block parsing.
func LoadPool(f File, log *slog.Logger) (*Pool, error) {
	w, err := newWatched("ca bundle", []File{f}, log, func() (*x509.CertPool, error) { return loadPool(f) })
	if err != nil {
		return nil, err
	}
	return &Pool{w: w}, nil
}

// CertPool is the current pool, loaded again first when the file changed.
func (p *Pool) CertPool() *x509.CertPool {
	pool, reloaded := p.w.get()
	if reloaded {
		p.w.log.Info("ca bundle reloaded", "ca", p.w.files[0].Path)
	}
	return pool
}

func loadPool(f File) (*x509.CertPool, error) {
	data, err := os.ReadFile(f.Path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Label, err)
	}
	pool := x509.NewCertPool()
	n := 0
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s %s: certificate %d: %w", f.Label, f.Path, n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%s %s: no PEM CERTIFICATE block in it (want the CA certificates)", f.Label, f.Path)
	}
	return pool, nil
}
