package media

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/srtp/v3"
)

// SDES crypto suites (RFC 4568 section 6.2) the relay can key.
const (
	SuiteAES128SHA1_80 = "AES_CM_128_HMAC_SHA1_80"
	SuiteAES128SHA1_32 = "AES_CM_128_HMAC_SHA1_32"
)

// ErrCrypto marks an a=crypto attribute the relay cannot use.
var ErrCrypto = errors.New("unusable a=crypto attribute")

// Crypto is one SDES a=crypto attribute: the suite and the master key and
// salt one party encrypts its media with.
type Crypto struct {
	Tag   int    // 1..999999999, echoed by the answer
	Suite string // one of the Suite constants
	Key   []byte // master key followed by master salt (30 bytes for AES_CM_128)
}

// suites maps each supported suite to its pion profile.
var suites = map[string]srtp.ProtectionProfile{
	SuiteAES128SHA1_80: srtp.ProtectionProfileAes128CmHmacSha1_80,
	SuiteAES128SHA1_32: srtp.ProtectionProfileAes128CmHmacSha1_32,
}

// NewCrypto makes a Crypto with a fresh random master key and salt, for the
// SDP the relay sends to a side.
func NewCrypto(tag int, suite string) (Crypto, error) {
	c := Crypto{Tag: tag, Suite: suite}
	n, err := c.keyLen()
	if err != nil {
		return Crypto{}, err
	}
	c.Key = make([]byte, n)
	if _, err := rand.Read(c.Key); err != nil {
		return Crypto{}, fmt.Errorf("make SRTP master key: %w", err)
	}
	return c, nil
}

// String renders the attribute value, without "a=crypto:", e.g.
// "1 AES_CM_128_HMAC_SHA1_80 inline:<base64 key||salt>".
func (c Crypto) String() string {
	return strconv.Itoa(c.Tag) + " " + c.Suite + " inline:" + base64.StdEncoding.EncodeToString(c.Key)
}

// ParseCrypto reads an a=crypto attribute, with or without its "a=crypto:"
// prefix. It takes one inline key with an optional lifetime and refuses
// MKIs, several keys and session parameters other than WSH, none of which
// the relay implements.
func ParseCrypto(attr string) (Crypto, error) {
	v := strings.TrimSpace(attr)
	v = strings.TrimPrefix(v, "a=")
	v = strings.TrimPrefix(v, "crypto:")
	f := strings.Fields(v)
	if len(f) < 3 {
		return Crypto{}, fmt.Errorf("%w %q: want \"TAG SUITE inline:KEY\"", ErrCrypto, attr)
	}
	tag, err := strconv.Atoi(f[0])
	if err != nil || tag < 1 || tag > 999999999 || len(f[0]) > 9 {
		return Crypto{}, fmt.Errorf("%w %q: tag %q is not 1 to 9 digits", ErrCrypto, attr, f[0])
	}
	c := Crypto{Tag: tag, Suite: f[1]}
	n, err := c.keyLen()
	if err != nil {
		return Crypto{}, fmt.Errorf("%w %q: %w", ErrCrypto, attr, err)
	}
	key, err := parseKeyParam(f[2])
	if err != nil {
		return Crypto{}, fmt.Errorf("%w %q: %w", ErrCrypto, attr, err)
	}
	if len(key) != n {
		return Crypto{}, fmt.Errorf("%w %q: key and salt are %d bytes, %s wants %d", ErrCrypto, attr, len(key), c.Suite, n)
	}
	for _, p := range f[3:] {
		if !strings.HasPrefix(p, "WSH=") {
			return Crypto{}, fmt.Errorf("%w %q: session parameter %q is not supported", ErrCrypto, attr, p)
		}
	}
	c.Key = key
	return c, nil
}

// parseKeyParam reads "inline:KEY[|LIFETIME]" and returns the decoded key.
func parseKeyParam(p string) ([]byte, error) {
	if strings.Contains(p, ";") {
		return nil, errors.New("several keys are not supported")
	}
	v, ok := strings.CutPrefix(p, "inline:")
	if !ok {
		return nil, fmt.Errorf("key parameter %q does not start with \"inline:\"", p)
	}
	parts := strings.Split(v, "|")
	switch {
	case len(parts) > 3:
		return nil, fmt.Errorf("key parameter %q has too many | fields", p)
	case len(parts) == 3 || (len(parts) == 2 && strings.Contains(parts[1], ":")):
		return nil, errors.New("MKI is not supported")
	case len(parts) == 2 && !validLifetime(parts[1]):
		return nil, fmt.Errorf("lifetime %q is not a number or 2^N", parts[1])
	}
	key, err := base64.StdEncoding.DecodeString(parts[0])
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(parts[0], "="))
	}
	if err != nil {
		return nil, fmt.Errorf("key is not base64: %w", err)
	}
	return key, nil
}

func validLifetime(s string) bool {
	s = strings.TrimPrefix(s, "2^")
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

func (c Crypto) profile() (srtp.ProtectionProfile, error) {
	p, ok := suites[c.Suite]
	if !ok {
		return 0, fmt.Errorf("crypto suite %q is not supported (want %s or %s)", c.Suite, SuiteAES128SHA1_80, SuiteAES128SHA1_32)
	}
	return p, nil
}

// keyLen is the length of master key plus master salt for the suite.
func (c Crypto) keyLen() (int, error) {
	p, err := c.profile()
	if err != nil {
		return 0, err
	}
	k, err := p.KeyLen()
	if err != nil {
		return 0, fmt.Errorf("key length of %s: %w", c.Suite, err)
	}
	s, err := p.SaltLen()
	if err != nil {
		return 0, fmt.Errorf("salt length of %s: %w", c.Suite, err)
	}
	return k + s, nil
}

// context makes a pion SRTP context keyed with c. A receiving context
// checks replays; a sending one does not need to.
func (c Crypto) context(receive bool) (*srtp.Context, error) {
	p, err := c.profile()
	if err != nil {
		return nil, err
	}
	k, err := p.KeyLen()
	if err != nil {
		return nil, fmt.Errorf("key length of %s: %w", c.Suite, err)
	}
	if len(c.Key) <= k {
		return nil, fmt.Errorf("%s key is %d bytes, too short", c.Suite, len(c.Key))
	}
	var opts []srtp.ContextOption
	if receive {
		opts = append(opts, srtp.SRTPReplayProtection(replayWindow), srtp.SRTCPReplayProtection(replayWindow))
	}
	ctx, err := srtp.CreateContext(c.Key[:k], c.Key[k:], p, opts...)
	if err != nil {
		return nil, fmt.Errorf("create SRTP context (%s): %w", c.Suite, err)
	}
	return ctx, nil
}

// replayWindow is the SRTP replay window in packets (RFC 3711 minimum 64).
const replayWindow = 128
