package main

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

// certFiles serves the certificate held in a pair of PEM files (--tls-cert,
// --tls-key) and loads them again when either changes (its modification
// time or size, looked at on each handshake), so a renewed certificate
// needs no restart. A pair that does not load (a renewal half written) is
// logged once and the certificate loaded before goes on serving.
type certFiles struct {
	certFile, keyFile string
	log               *slog.Logger

	mu     sync.Mutex
	cert   *tls.Certificate
	loaded [2]fileStamp // of the files the certificate was loaded from
	failed [2]fileStamp // of the files that last failed to load
}

// fileStamp tells a file changed.
type fileStamp struct {
	mod  time.Time
	size int64
}

// loadCertFiles loads the pair once; the error names the file at fault.
func loadCertFiles(certFile, keyFile string, log *slog.Logger) (*certFiles, error) {
	c := &certFiles{certFile: certFile, keyFile: keyFile, log: log}
	stamps, err := c.stamps()
	if err != nil {
		return nil, err
	}
	cert, err := c.load()
	if err != nil {
		return nil, err
	}
	c.cert, c.loaded = cert, stamps
	c.logLoaded("tls certificate loaded", cert)
	return c, nil
}

// tlsConfig is the server's TLS configuration: TLS 1.2 or later, the
// certificate from the files.
func (c *certFiles) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: c.getCertificate,
		NextProtos:     []string{"http/1.1"},
	}
}

// getCertificate is tls.Config.GetCertificate: the current certificate,
// loaded again first when the files changed.
func (c *certFiles) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	stamps, err := c.stamps()
	if err != nil || stamps == c.loaded || stamps == c.failed {
		if err != nil && stamps != c.failed {
			c.failed = stamps
			c.log.Warn("tls certificate files unreadable; serving the one loaded before", "error", err)
		}
		return c.cert, nil
	}
	cert, err := c.load()
	if err != nil {
		c.failed = stamps
		c.log.Warn("tls certificate files changed but do not load; serving the one loaded before", "error", err)
		return c.cert, nil
	}
	c.cert, c.loaded, c.failed = cert, stamps, [2]fileStamp{}
	c.logLoaded("tls certificate reloaded", cert)
	return cert, nil
}

func (c *certFiles) stamps() ([2]fileStamp, error) {
	var s [2]fileStamp
	for i, f := range [2]struct{ flag, path string }{{"--tls-cert", c.certFile}, {"--tls-key", c.keyFile}} {
		fi, err := os.Stat(f.path)
		if err != nil {
			return s, fmt.Errorf("%s: %w", f.flag, err)
		}
		s[i] = fileStamp{mod: fi.ModTime(), size: fi.Size()}
	}
	return s, nil
}

// load reads and parses the pair; the error names the file at fault.
func (c *certFiles) load() (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(c.certFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert: %w", err)
	}
	if err := checkCertPEM(certPEM); err != nil {
		return nil, fmt.Errorf("--tls-cert %s: %w", c.certFile, err)
	}
	keyPEM, err := os.ReadFile(c.keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("--tls-key %s (for --tls-cert %s): %w", c.keyFile, c.certFile, err)
	}
	return &cert, nil
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

func (c *certFiles) logLoaded(msg string, cert *tls.Certificate) {
	leaf := cert.Leaf // X509KeyPair parsed it
	if leaf == nil {
		c.log.Info(msg, "cert", c.certFile)
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
	c.log.Log(context.Background(), level, msg, "cert", c.certFile, "names", strings.Join(names, ","),
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
}

// errTLSFlags: --tls-cert and --tls-key go together.
var errTLSFlags = errors.New("--tls-cert and --tls-key go together: give both for HTTPS, or neither for plain HTTP")
