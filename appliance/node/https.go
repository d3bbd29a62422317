package node

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/outpost-voice/outpost/config"
	"github.com/outpost-voice/outpost/internal/certfile"
)

// The node's self-signed HTTPS certificate, made at the first start with
// http.tls_listen set and no http.tls_cert (docs/ui.md, "HTTPS").
const (
	selfSignedCertFile = "cert.pem"
	selfSignedKeyFile  = "key.pem"
	selfSignedValidity = 10 // years
	selfSignedKeyMode  = 0o600
	selfSignedCertMode = 0o644
)

// listenHTTPS binds http.tls_listen, when set, with the configured
// certificate or the node's self-signed one. The web server serves it
// beside the plain HTTP listener (see Run).
func (n *Node) listenHTTPS() error {
	c := n.cfg
	if !c.HTTP.TLSEnabled() {
		return nil
	}
	log := n.log.With("component", "https")
	cert := certfile.File{Path: c.HTTP.TLSCert, Label: "http.tls_cert"}
	key := certfile.File{Path: c.HTTP.TLSKey, Label: "http.tls_key"}
	if c.HTTP.SelfSigned() {
		hostname, _ := os.Hostname()
		ifaddrs, err := net.InterfaceAddrs()
		if err != nil {
			log.Warn("cannot list this machine's addresses; the self-signed certificate, if made now, names only the others",
				"error", err)
		}
		certPath, keyPath, err := ensureSelfSigned(c.HTTPTLSDir(), selfSignedNames(c, hostname, ifaddrs), time.Now(), log)
		if err != nil {
			return fmt.Errorf("https: %w", err)
		}
		cert = certfile.File{Path: certPath, Label: "self-signed https certificate"}
		key = certfile.File{Path: keyPath, Label: "self-signed https key"}
	}
	pair, err := certfile.LoadPair(cert, key, log)
	if err != nil {
		return fmt.Errorf("https certificate: %w", err)
	}
	ln, err := net.Listen("tcp", c.HTTP.TLSListen)
	if err != nil {
		return fmt.Errorf("listen https on %s: %w", c.HTTP.TLSListen, err)
	}
	n.httpsLn = tls.NewListener(ln, httpsConfig(pair))
	log.Info("https listening", "https_addr", ln.Addr().String(), "cert", cert.Path,
		"self_signed", c.HTTP.SelfSigned(), "sha256", fingerprint(pair.Certificate()))
	return nil
}

// HTTPSAddr is the bound HTTPS address; "" when http.tls_listen is off.
func (n *Node) HTTPSAddr() string {
	if n.httpsLn == nil {
		return ""
	}
	return n.httpsLn.Addr().String()
}

// httpsConfig is the HTTPS listener's TLS configuration: TLS 1.2 or later
// with AEAD cipher suites only, HTTP/2 offered, the certificate from the files
// (loaded again when they change).
func httpsConfig(p *certfile.Pair) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   certfile.AEADSuites,
		GetCertificate: p.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}

// fingerprint is the certificate's SHA-256, as browsers show it.
func fingerprint(c *tls.Certificate) string {
	if c == nil || len(c.Certificate) == 0 {
		return ""
	}
	sum := sha256.Sum256(c.Certificate[0])
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// selfSignedNames are the names the self-signed certificate is made for:
// the host name, the hosts of sip.advertise, http.advertise and
// http.tls_listen when set, localhost, the loopback addresses, and the
// machine's other addresses (ifaddrs; link-local ones left out).
func selfSignedNames(c config.Config, hostname string, ifaddrs []net.Addr) []string {
	var names []string
	add := func(h string) {
		h = strings.TrimSuffix(strings.Trim(h, "[]"), ".")
		if a, err := netip.ParseAddr(h); err == nil {
			if a.IsUnspecified() {
				return
			}
			h = a.Unmap().String()
		} else if !sanName(h) {
			return
		}
		if h != "" && !slices.Contains(names, h) {
			names = append(names, h)
		}
	}
	add(hostname)
	add(hostOf(c.SIP.Advertise))
	add(hostOf(c.HTTP.Advertise))
	add(hostOf(c.HTTP.TLSListen))
	add("localhost")
	add("127.0.0.1")
	add("::1")
	for _, a := range ifaddrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsMulticast() {
			continue
		}
		add(ip.Unmap().String())
	}
	return names
}

// hostOf is the host of a host or host:port.
func hostOf(s string) string {
	if h, _, err := net.SplitHostPort(s); err == nil {
		return h
	}
	return s
}

// sanName accepts a DNS name a certificate can carry: letters, digits,
// '-', '_' and '.'.
func sanName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for i := range len(s) {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_' || b == '.') {
			return false
		}
	}
	return true
}

// ensureSelfSigned returns the self-signed certificate and key in dir,
// making them first when they are missing or unusable (unreadable, not a
// matching pair, expired); a pair that loads is kept whatever names it
// has. Each making is logged, with why.
func ensureSelfSigned(dir string, names []string, now time.Time, log *slog.Logger) (certPath, keyPath string, err error) {
	certPath, keyPath = filepath.Join(dir, selfSignedCertFile), filepath.Join(dir, selfSignedKeyFile)
	why := usableSelfSigned(certPath, keyPath, now)
	if why == nil {
		return certPath, keyPath, nil
	}
	if errors.Is(why, fs.ErrNotExist) {
		log.Info("making a self-signed https certificate", "dir", dir, "reason", why.Error())
	} else {
		log.Warn("the self-signed https certificate is unusable; making a new one (browsers that trusted the old one must trust the new one)",
			"dir", dir, "reason", why.Error())
	}
	certPEM, keyPEM, leaf, err := newSelfSigned(names, now)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("self-signed certificate: %w", err)
	}
	// The key first: a crash between the two renames leaves a pair that
	// does not match, made again at the next start.
	if err := writeFileAtomic(keyPath, keyPEM, selfSignedKeyMode); err != nil {
		return "", "", fmt.Errorf("self-signed certificate: %w", err)
	}
	if err := writeFileAtomic(certPath, certPEM, selfSignedCertMode); err != nil {
		return "", "", fmt.Errorf("self-signed certificate: %w", err)
	}
	log.Info("self-signed https certificate made", "cert", certPath, "names", strings.Join(names, ","),
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "sha256", fingerprint(&tls.Certificate{Certificate: [][]byte{leaf.Raw}}))
	return certPath, keyPath, nil
}

// usableSelfSigned says why the pair at certPath and keyPath cannot serve
// (wrapping fs.ErrNotExist when a file is missing), or nil.
func usableSelfSigned(certPath, keyPath string, now time.Time) error {
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Stat(p); err != nil {
			return err
		}
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return err
	}
	if pair.Leaf == nil {
		return errors.New("no certificate in " + certPath)
	}
	if now.After(pair.Leaf.NotAfter) {
		return fmt.Errorf("%s expired at %s", certPath, pair.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// newSelfSigned makes an ECDSA P-256 key and a certificate for names
// signed with it, valid from an hour before now for 10 years, for TLS
// servers only. It returns both as PEM and the certificate parsed.
func newSelfSigned(names []string, now time.Time) (certPEM, keyPEM []byte, leaf *x509.Certificate, err error) {
	if len(names) == 0 {
		return nil, nil, nil, errors.New("self-signed certificate: no names to make it for")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	cn := names[0]
	if len(cn) > 64 { // the most a common name may hold
		cn = cn[:64]
	}
	tmpl := &x509.Certificate{
		// SerialNumber nil: CreateCertificate draws a random one.
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Outpost (self-signed)"}},
		NotBefore:             now.Add(-time.Hour), // clocks a little behind still accept it
		NotAfter:              now.AddDate(selfSignedValidity, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, n := range names {
		if a, err := netip.ParseAddr(n); err == nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(a.AsSlice()))
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	if leaf, err = x509.ParseCertificate(der); err != nil {
		return nil, nil, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, leaf, nil
}

// writeFileAtomic replaces path with data: a temporary file in the same
// directory, mode perm whatever the umask, synced, then renamed over path.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	done = true
	// Make the rename durable; a directory that cannot be synced (some
	// file systems) is not worth failing the start for.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
