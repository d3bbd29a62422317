package sbc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/outpost-voice/outpost/internal/certfile"
)

// Files of a trunk's directory under TLSOptions.Dir.
const (
	TrunkCertFile = "cert.pem" // the trunk's client certificate, chain after it
	TrunkKeyFile  = "key.pem"  // its key
	TrunkCAFile   = "ca.pem"   // the CAs the trunk's SBC certificate chains to
)

// ErrTLS marks a TLS failure toward an SBC: the files, the handshake, or
// the SBC's certificate.
var ErrTLS = errors.New("tls to the sbc failed")

// TLSOptions are the node's TLS files toward SBCs (config section sbc).
type TLSOptions struct {
	CertFile, KeyFile string // the client certificate presented when an SBC asks; empty: none
	CAFile            string // the CAs SBC certificates chain to; empty: the system's roots
	Dir               string // per-trunk overrides: Dir/<trunk id>/{cert.pem,key.pem,ca.pem}
	Log               *slog.Logger
	// Dialer opens the TCP connection; default a net.Dialer.
	Dialer interface {
		DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	}
}

// TLSDialer opens TLS connections to trunks (transport "tls"), each with
// its own settings: TLS 1.2 or later; the SBC's certificate must chain to
// the trunk's CAs (its ca.pem, else CAFile, else the system's roots) and
// name the trunk's host (its FQDN, or its IP address when the host is
// one — RFC 5922: the SIP domain, not an SRV target); the trunk's client
// certificate (its cert.pem, else CertFile) goes to an SBC that asks for
// one. Every file is read again when it changes. Safe for concurrent use.
type TLSDialer struct {
	o      TLSOptions
	log    *slog.Logger
	cert   *certfile.Pair // nil: no default client certificate
	roots  *certfile.Pool // nil: the system's roots
	mu     sync.Mutex
	trunks map[string]*trunkFiles // by trunk id, loaded on first use
}

// trunkFiles are one trunk's overrides, and why they failed to load.
type trunkFiles struct {
	cert  *certfile.Pair
	roots *certfile.Pool
	err   error
	stamp string // the directory listing they were loaded for
}

// NewTLSDialer loads the default files; the error names the file at fault.
func NewTLSDialer(o TLSOptions) (*TLSDialer, error) {
	d := &TLSDialer{o: o, log: o.Log, trunks: map[string]*trunkFiles{}}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.log = d.log.With("component", "sbc")
	if o.Dialer == nil {
		d.o.Dialer = &net.Dialer{}
	}
	var err error
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, fmt.Errorf("%w: sbc.tls_cert and sbc.tls_key go together", ErrTLS)
	}
	if o.CertFile != "" {
		if d.cert, err = certfile.LoadPair(certfile.File{Path: o.CertFile, Label: "sbc.tls_cert"},
			certfile.File{Path: o.KeyFile, Label: "sbc.tls_key"}, d.log); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrTLS, err)
		}
	}
	if o.CAFile != "" {
		if d.roots, err = certfile.LoadPool(certfile.File{Path: o.CAFile, Label: "sbc.tls_ca"}, d.log); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrTLS, err)
		}
	}
	return d, nil
}

// Dial opens a TCP connection to addr ("ip:port", one address of the
// trunk's target t) and completes the TLS handshake with t's settings.
func (d *TLSDialer) Dial(ctx context.Context, t Target, addr string) (*tls.Conn, error) {
	conf, err := d.Config(t)
	if err != nil {
		return nil, err
	}
	raw, err := d.o.Dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	conn := tls.Client(raw, conf)
	if err := conn.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("%w: trunk %s at %s: %w", ErrTLS, t.TrunkID, addr, err)
	}
	return conn, nil
}

// Config is the client TLS configuration toward trunk t.
func (d *TLSDialer) Config(t Target) (*tls.Config, error) {
	tf, err := d.trunk(t.TrunkID)
	if err != nil {
		return nil, err
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.Host}
	switch {
	case tf.roots != nil:
		conf.RootCAs = tf.roots.CertPool()
	case d.roots != nil:
		conf.RootCAs = d.roots.CertPool()
	}
	cert := tf.cert
	if cert == nil {
		cert = d.cert
	}
	if cert != nil {
		conf.GetClientCertificate = cert.GetClientCertificate
	}
	return conf, nil
}

// trunk is the trunk's own files, loaded when first asked for and again
// when its directory's listing changes (files come or go; changed contents
// are picked up by the files themselves).
func (d *TLSDialer) trunk(id string) (*trunkFiles, error) {
	if d.o.Dir == "" {
		return &trunkFiles{}, nil
	}
	dir := filepath.Join(d.o.Dir, id)
	stamp := listing(dir)
	d.mu.Lock()
	defer d.mu.Unlock()
	old, ok := d.trunks[id]
	if ok && old.stamp == stamp && old.err == nil {
		return old, nil
	}
	tf := d.loadTrunk(id, dir, stamp) // failures are tried again each time: a fixed file is picked up
	if tf.err != nil && (old == nil || old.err == nil || old.err.Error() != tf.err.Error()) {
		d.log.Warn("trunk tls files do not load", "trunk", id, "error", tf.err)
	}
	d.trunks[id] = tf
	return tf, tf.err
}

func (d *TLSDialer) loadTrunk(id, dir, stamp string) *trunkFiles {
	tf := &trunkFiles{stamp: stamp}
	file := func(name string) (certfile.File, bool) {
		f := certfile.File{Path: filepath.Join(dir, name), Label: "sbc.tls_dir " + id + "/" + name}
		_, err := os.Stat(f.Path)
		return f, err == nil
	}
	certF, hasCert := file(TrunkCertFile)
	keyF, hasKey := file(TrunkKeyFile)
	caF, hasCA := file(TrunkCAFile)
	var err error
	switch {
	case hasCert != hasKey:
		tf.err = fmt.Errorf("%w: trunk %s: %s and %s go together in %s", ErrTLS, id, TrunkCertFile, TrunkKeyFile, dir)
	case hasCert:
		if tf.cert, err = certfile.LoadPair(certF, keyF, d.log); err != nil {
			tf.err = fmt.Errorf("%w: %w", ErrTLS, err)
		}
	}
	if hasCA && tf.err == nil {
		if tf.roots, err = certfile.LoadPool(caF, d.log); err != nil {
			tf.err = fmt.Errorf("%w: %w", ErrTLS, err)
		}
	}
	return tf
}

// listing names the files of dir that matter, with their presence.
func listing(dir string) string {
	s := ""
	for _, name := range []string{TrunkCertFile, TrunkKeyFile, TrunkCAFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			s += name + ";"
		}
	}
	return s
}
