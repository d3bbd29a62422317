package main

import (
	"crypto/tls"
	"errors"
	"log/slog"

	"github.com/outpost-voice/outpost/internal/certfile"
)

// loadCertFiles loads the --tls-cert/--tls-key pair once (the error names
// the file at fault); the pair is loaded again when either file changes,
// so a renewed certificate needs no restart.
func loadCertFiles(certFile, keyFile string, log *slog.Logger) (*certfile.Pair, error) {
	return certfile.LoadPair(certfile.File{Path: certFile, Label: "--tls-cert"},
		certfile.File{Path: keyFile, Label: "--tls-key"}, log)
}

// serverTLS is the server's TLS configuration: TLS 1.2 or later with AEAD
// cipher suites only, the certificate from the files.
func serverTLS(p *certfile.Pair) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   certfile.AEADSuites,
		GetCertificate: p.GetCertificate,
		NextProtos:     []string{"http/1.1"},
	}
}

// errTLSFlags: --tls-cert and --tls-key go together.
var errTLSFlags = errors.New("--tls-cert and --tls-key go together: give both for HTTPS, or neither for plain HTTP")
