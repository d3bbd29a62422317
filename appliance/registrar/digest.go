package registrar

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-voice/outpost/account"
)

// Errors returned by ParseCredentials and Digest.Verify, wrapped with what was
// wrong; check them with errors.Is. None of them tells an unknown user from a
// wrong password: both are ErrWrongResponse (see Digest.DecoyHA1).
var (
	// ErrMalformedCredentials: the Authorization / Proxy-Authorization value
	// does not parse, lacks a required parameter, or has a bad nc, qop or
	// cnonce. Answer 400 or re-challenge.
	ErrMalformedCredentials = errors.New("malformed digest credentials")
	// ErrStaleNonce: the nonce is genuine but expired (or its replay history
	// was pushed out under load). Re-challenge with stale=true.
	ErrStaleNonce = errors.New("stale digest nonce")
	// ErrBadNonce: the nonce was not minted by this cluster for this realm:
	// tampered, forged, or signed with another secret. Re-challenge.
	ErrBadNonce = errors.New("digest nonce not issued by this cluster")
	// ErrReplay: the response is right but the nc is not above the highest
	// already accepted for the nonce, or a nonce used without qop is reused.
	// Re-challenge with stale=true.
	ErrReplay = errors.New("digest nonce count replayed")
	// ErrWrongResponse: the response does not match: wrong password or
	// unknown user. Re-challenge and count a failure.
	ErrWrongResponse = errors.New("wrong digest response")
	// ErrUnsupportedAlgorithm: an algorithm other than MD5 or SHA-256.
	ErrUnsupportedAlgorithm = errors.New("unsupported digest algorithm")
	// ErrRealmMismatch: the credentials name another realm than the account's.
	ErrRealmMismatch = errors.New("digest realm mismatch")
)

// DefaultMaxTrackedNonces bounds the per-node table of nonce counts kept by a
// Digest to detect replays.
const DefaultMaxTrackedNonces = 200_000

// maxCredentialsLen bounds the header value ParseCredentials accepts.
const maxCredentialsLen = 8 << 10

// Digest issues and checks SIP digest challenges (RFC 3261 §22, RFC 7616
// semantics, RFC 8760 algorithms MD5 and SHA-256, qop=auth). Its nonces are
// stateless and signed with a key derived from the cluster secret, so any node
// verifies a nonce minted by any other; replays are caught per node by a
// bounded table of nonce counts. The same Digest serves REGISTER (401,
// WWW-Authenticate, Authorization) and INVITE (407, Proxy-Authenticate,
// Proxy-Authorization). Safe for concurrent use.
type Digest struct {
	nonceKey []byte
	decoyKey []byte
	ttl      time.Duration
	now      func() time.Time
	seen     *replayTable
	algs     []string // challenge order, most preferred first
}

// NewDigest returns a Digest whose nonces are signed with a key derived from
// secret, which every node of the cluster must share (at least 16 bytes), and
// stay valid for nonceTTL after they are issued. now is the clock; nil means
// time.Now. It panics if secret is shorter than 16 bytes or nonceTTL is not
// positive: both are programming errors.
func NewDigest(secret []byte, nonceTTL time.Duration, now func() time.Time) *Digest {
	return newDigest(secret, nonceTTL, now, DefaultMaxTrackedNonces)
}

func newDigest(secret []byte, nonceTTL time.Duration, now func() time.Time, maxTracked int) *Digest {
	if len(secret) < 16 {
		panic(fmt.Sprintf("registrar: digest secret is %d bytes, want at least 16", len(secret)))
	}
	if nonceTTL <= 0 {
		panic(fmt.Sprintf("registrar: digest nonce TTL %v, want > 0", nonceTTL))
	}
	if now == nil {
		now = time.Now
	}
	return &Digest{
		nonceKey: deriveKey(secret, "outpost registrar nonce key v1"),
		decoyKey: deriveKey(secret, "outpost registrar decoy key v1"),
		ttl:      nonceTTL,
		now:      now,
		seen:     newReplayTable(maxTracked),
		algs:     []string{account.DigestMD5, account.DigestSHA256},
	}
}

// SetAlgorithms sets which algorithms are challenged, in order of
// preference (RFC 8760 §2.4: a phone takes the first it supports). The
// default offers MD5 first: many desk phones, and SIPp, answer only the first
// challenge and fail on SHA-256. Call it before the Digest is in use.
func (d *Digest) SetAlgorithms(algs []string) error {
	if len(algs) == 0 {
		return errors.New("digest algorithms: at least one is needed")
	}
	for i, a := range algs {
		if a != account.DigestMD5 && a != account.DigestSHA256 {
			return fmt.Errorf("digest algorithm %q: want %s or %s", a, account.DigestMD5, account.DigestSHA256)
		}
		if slices.Contains(algs[:i], a) {
			return fmt.Errorf("digest algorithm %s listed twice", a)
		}
	}
	d.algs = slices.Clone(algs)
	return nil
}

func deriveKey(secret []byte, label string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// Challenges returns the header values for a WWW-Authenticate (401) or
// Proxy-Authenticate (407) challenge in realm: one per algorithm in the
// order SetAlgorithms gave (RFC 8760 §2.4: most preferred first), sharing
// one fresh nonce. Add each
// as its own header field, in order. stale=true tells the client its
// credentials were right but the nonce was not, so it retries without asking
// the user (after ErrStaleNonce or ErrReplay).
func (d *Digest) Challenges(realm string, stale bool) []string {
	nonce := mintNonce(d.nonceKey, realm, d.now())
	head := "Digest realm=" + quote(realm) + `, nonce="` + nonce + `", algorithm=`
	tail := `, qop="auth"`
	if stale {
		tail += ", stale=true"
	}
	out := make([]string, len(d.algs))
	for i, a := range d.algs {
		out[i] = head + a + tail
	}
	return out
}

// quote returns s as an RFC 3261 quoted-string.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// Credentials are the parameters of an Authorization or Proxy-Authorization
// header value (RFC 3261 §25.1 digest-response), unquoted.
type Credentials struct {
	Username  string
	Realm     string
	Nonce     string
	URI       string
	Response  string
	Algorithm string // as sent; "" means MD5. See DigestAlgorithm.
	CNonce    string
	NC        string
	QOP       string
	Opaque    string
}

// DigestAlgorithm returns the algorithm the credentials use, as the account
// package names it: account.DigestMD5 (also for an absent algorithm) or
// account.DigestSHA256, matched case-insensitively. Use it to choose the HA1
// (ha1_md5 or ha1_sha256) to pass to Verify. Anything else is
// ErrUnsupportedAlgorithm.
func (c Credentials) DigestAlgorithm() (string, error) {
	switch {
	case c.Algorithm == "" || strings.EqualFold(c.Algorithm, account.DigestMD5):
		return account.DigestMD5, nil
	case strings.EqualFold(c.Algorithm, account.DigestSHA256):
		return account.DigestSHA256, nil
	}
	return "", fmt.Errorf("%w %q: use MD5 or SHA-256", ErrUnsupportedAlgorithm, c.Algorithm)
}

// ParseCredentials parses an Authorization or Proxy-Authorization header
// value such as `Digest username="alice", realm="acme.example", nonce="...",
// uri="sip:acme.example", response="...", algorithm=SHA-256, qop=auth,
// nc=00000001, cnonce="..."`. The scheme and parameter names are
// case-insensitive; values may be quoted strings (with backslash escapes and
// commas inside) or bare tokens; whitespace around "=" and "," is allowed, as
// are empty list elements. Unknown parameters are ignored. username, realm,
// nonce, uri and response are required; a repeated parameter is an error.
// Every error wraps ErrMalformedCredentials and names the problem.
func ParseCredentials(headerValue string) (Credentials, error) {
	var c Credentials
	if len(headerValue) > maxCredentialsLen {
		return c, fmt.Errorf("%w: %d bytes, longer than %d", ErrMalformedCredentials, len(headerValue), maxCredentialsLen)
	}
	p := paramParser{s: headerValue}
	p.skipSpace()
	scheme := p.token()
	if scheme == "" {
		return c, fmt.Errorf("%w: no auth scheme", ErrMalformedCredentials)
	}
	if !strings.EqualFold(scheme, "Digest") {
		return c, fmt.Errorf("%w: scheme %q, want Digest", ErrMalformedCredentials, scheme)
	}
	if !p.done() && !isSpace(p.s[p.i]) {
		return c, fmt.Errorf("%w: no space after the Digest scheme", ErrMalformedCredentials)
	}
	fields := map[string]*string{
		"username":  &c.Username,
		"realm":     &c.Realm,
		"nonce":     &c.Nonce,
		"uri":       &c.URI,
		"response":  &c.Response,
		"algorithm": &c.Algorithm,
		"cnonce":    &c.CNonce,
		"nc":        &c.NC,
		"qop":       &c.QOP,
		"opaque":    &c.Opaque,
	}
	set := make(map[string]bool, len(fields))
	for {
		p.skipSpaceAndCommas()
		if p.done() {
			break
		}
		name, value, err := p.param()
		if err != nil {
			return Credentials{}, fmt.Errorf("%w: %v", ErrMalformedCredentials, err)
		}
		name = strings.ToLower(name)
		if dst, ok := fields[name]; ok {
			if set[name] {
				return Credentials{}, fmt.Errorf("%w: parameter %s repeated", ErrMalformedCredentials, name)
			}
			set[name] = true
			*dst = value
		}
		p.skipSpace()
		if !p.done() && p.s[p.i] != ',' {
			return Credentials{}, fmt.Errorf("%w: expected a comma after parameter %s at offset %d", ErrMalformedCredentials, name, p.i)
		}
	}
	for _, name := range []string{"username", "realm", "nonce", "uri", "response"} {
		if *fields[name] == "" {
			return Credentials{}, fmt.Errorf("%w: missing %s", ErrMalformedCredentials, name)
		}
	}
	return c, nil
}

// paramParser scans auth-params (RFC 3261 §25.1, RFC 7235 §2.1).
type paramParser struct {
	s string
	i int
}

func (p *paramParser) done() bool { return p.i >= len(p.s) }

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }

func (p *paramParser) skipSpace() {
	for !p.done() && isSpace(p.s[p.i]) {
		p.i++
	}
}

func (p *paramParser) skipSpaceAndCommas() {
	for !p.done() && (isSpace(p.s[p.i]) || p.s[p.i] == ',') {
		p.i++
	}
}

// isTokenChar reports whether b is an RFC 3261 token character.
func isTokenChar(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("-.!%*_+`'~", b) >= 0
}

func (p *paramParser) token() string {
	start := p.i
	for !p.done() && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// param reads name = value, where value is a quoted string or a bare value.
// Bare values run to the next comma or whitespace, so the unquoted URIs some
// phones send (uri=sip:acme.example) still parse.
func (p *paramParser) param() (name, value string, err error) {
	start := p.i
	name = p.token()
	if name == "" {
		return "", "", fmt.Errorf("unexpected %q at offset %d, want a parameter name", p.s[start], start)
	}
	p.skipSpace()
	if p.done() || p.s[p.i] != '=' {
		return "", "", fmt.Errorf("parameter %s has no value", name)
	}
	p.i++
	p.skipSpace()
	if p.done() {
		return "", "", fmt.Errorf("parameter %s has no value", name)
	}
	if p.s[p.i] == '"' {
		value, err = p.quoted()
		if err != nil {
			return "", "", fmt.Errorf("parameter %s: %v", name, err)
		}
		return name, value, nil
	}
	vstart := p.i
	for !p.done() && p.s[p.i] != ',' && !isSpace(p.s[p.i]) {
		b := p.s[p.i]
		if b == '"' || b < 0x20 || b == 0x7f {
			return "", "", fmt.Errorf("parameter %s: unexpected %q in unquoted value", name, b)
		}
		p.i++
	}
	if p.i == vstart {
		return "", "", fmt.Errorf("parameter %s has no value", name)
	}
	return name, p.s[vstart:p.i], nil
}

// quoted reads a quoted-string starting at the opening quote and returns its
// content with quoted-pairs resolved.
func (p *paramParser) quoted() (string, error) {
	p.i++ // opening quote
	var b strings.Builder
	for !p.done() {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return b.String(), nil
		case c == '\\':
			if p.i+1 >= len(p.s) {
				return "", errors.New("unterminated quoted string")
			}
			e := p.s[p.i+1]
			if e == '\r' || e == '\n' {
				return "", errors.New("escaped line break in quoted string")
			}
			b.WriteByte(e)
			p.i += 2
		case c < 0x20 && c != '\t', c == 0x7f:
			return "", fmt.Errorf("control character %q in quoted string", c)
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return "", errors.New("unterminated quoted string")
}

// Verify checks credentials sent with a request of method (REGISTER, INVITE...)
// against ha1, the user's stored H(username:realm:password) for the
// credentials' algorithm (see Credentials.DigestAlgorithm; for an unknown user
// pass DecoyHA1 so the work and the answer are the same). realm is the
// account's sip_realm. Checks, in order: the realm (ErrRealmMismatch); the
// algorithm (ErrUnsupportedAlgorithm); the nonce's signature (ErrBadNonce);
// its age against the TTL (ErrStaleNonce; so is a nonce dated more than one
// TTL ahead, minted by a node whose clock runs far ahead); qop=auth with an
// 8-hex-digit nc and a cnonce (ErrMalformedCredentials; qop absent is
// accepted, RFC 2069 style, but then the nonce is good for one request only);
// the response, compared in constant time (ErrWrongResponse); and last that
// the nc is strictly above the highest this node accepted for the nonce
// (ErrReplay). Replays are tracked per node: the same request replayed to
// another node within the TTL is not caught. Verify does not compare c.URI with the Request-URI or
// c.Username with anything: the caller looked the user up by c.Username.
func (d *Digest) Verify(c Credentials, realm, method, ha1 string) error {
	if c.Realm != realm {
		return fmt.Errorf("%w: credentials for realm %q, want %q", ErrRealmMismatch, c.Realm, realm)
	}
	alg, err := c.DigestAlgorithm()
	if err != nil {
		return err
	}
	now := d.now()
	issued, id, ok := openNonce(d.nonceKey, realm, c.Nonce)
	if !ok {
		return fmt.Errorf("%w: nonce %.64q does not verify for realm %q", ErrBadNonce, c.Nonce, realm)
	}
	age := time.Duration(now.UnixNano() - issued)
	if age > d.ttl || age < -d.ttl {
		return fmt.Errorf("%w: nonce issued %v ago, valid for %v", ErrStaleNonce, age.Round(time.Millisecond), d.ttl)
	}
	var nc uint64
	switch {
	case c.QOP == "":
		nc = usedOnce
	case strings.EqualFold(c.QOP, "auth"):
		if nc, err = parseNC(c.NC); err != nil {
			return err
		}
		if c.CNonce == "" {
			return fmt.Errorf("%w: qop=auth without cnonce", ErrMalformedCredentials)
		}
	default:
		return fmt.Errorf("%w: qop %q was not offered, use auth", ErrMalformedCredentials, c.QOP)
	}
	hexLen := 2 * md5.Size
	if alg == account.DigestSHA256 {
		hexLen = 2 * sha256.Size
	}
	validHA1 := len(ha1) == hexLen
	if !validHA1 {
		// Never accept a response computed over an empty or malformed HA1;
		// do the same work as for a real one.
		ha1 = d.DecoyHA1(c.Username, realm, alg)
	}
	want := digestResponse(alg, ha1, c.Nonce, c.NC, c.CNonce, c.QOP, method, c.URI)
	got := strings.ToLower(c.Response)
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 || !validHA1 {
		return fmt.Errorf("%w for user %.64q", ErrWrongResponse, c.Username)
	}
	switch d.seen.advance(id, issued, issued+int64(d.ttl), now.UnixNano(), nc) {
	case replayReplay:
		if nc == usedOnce {
			return fmt.Errorf("%w: nonce already used, and without qop a nonce is good once", ErrReplay)
		}
		return fmt.Errorf("%w: nc %s not above the highest seen for this nonce", ErrReplay, c.NC)
	case replayUnknown:
		return fmt.Errorf("%w: nonce history dropped under load", ErrStaleNonce)
	}
	return nil
}

// parseNC parses an nc-value: exactly 8 hex digits, not all zero.
func parseNC(s string) (uint64, error) {
	if len(s) != 8 {
		return 0, fmt.Errorf("%w: nc %.16q, want 8 hex digits", ErrMalformedCredentials, s)
	}
	n, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: nc %q, want 8 hex digits", ErrMalformedCredentials, s)
	}
	if n == 0 {
		return 0, fmt.Errorf("%w: nc 00000000, counting starts at 00000001", ErrMalformedCredentials)
	}
	return n, nil
}

// newHash returns the hash for a supported algorithm.
func newHash(alg string) hash.Hash {
	if alg == account.DigestSHA256 {
		return sha256.New()
	}
	return md5.New()
}

// hexHash returns the lower-case hex H(parts joined by ":").
func hexHash(h hash.Hash, parts ...string) string {
	h.Reset()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{':'})
		}
		h.Write([]byte(p))
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// digestResponse computes request-digest (RFC 7616 §3.4.1, RFC 2617 §3.2.2.1)
// for alg, account.DigestMD5 or account.DigestSHA256: with qop,
// KD(HA1, nonce:nc:cnonce:qop:HA2); without, KD(HA1, nonce:HA2); where
// HA2 = H(method:uri) and KD(secret, data) = H(secret:data).
func digestResponse(alg, ha1, nonce, nc, cnonce, qop, method, uri string) string {
	h := newHash(alg)
	ha2 := hexHash(h, method, uri)
	if qop == "" {
		return hexHash(h, ha1, nonce, ha2)
	}
	return hexHash(h, ha1, nonce, nc, cnonce, qop, ha2)
}

// DecoyHA1 returns a deterministic fake HA1 for a username that does not
// exist: an HMAC of algorithm, realm and username under a key derived from the
// cluster secret, as long as a real HA1 of algorithm (account.DigestMD5 or
// account.DigestSHA256; "" means MD5). Verifying against it does the same
// work and gives the same answer (ErrWrongResponse) as a wrong password, so
// answers do not reveal which extensions exist. It returns "" for an
// unsupported algorithm, which Verify rejects before using the HA1.
func (d *Digest) DecoyHA1(username, realm, algorithm string) string {
	alg, err := Credentials{Algorithm: algorithm}.DigestAlgorithm()
	if err != nil {
		return ""
	}
	m := hmac.New(sha256.New, d.decoyKey)
	m.Write([]byte(alg))
	m.Write([]byte{0})
	m.Write([]byte(realm))
	m.Write([]byte{0})
	m.Write([]byte(username))
	sum := hex.EncodeToString(m.Sum(nil))
	if alg == account.DigestMD5 {
		return sum[:2*md5.Size]
	}
	return sum
}
