package calls

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/outpost-voice/outpost/account"
	relay "github.com/outpost-voice/outpost/appliance/media"
)

// SRTP toward a trunk that asks for it (trunks[].srtp "sdes"): the relay's
// side toward the SBC speaks SRTP keyed with SDES (RFC 4568), the phone's
// side plain RTP. The relay is the SRTP endpoint: it offers (or answers
// with) a key of its own and decrypts with the SBC's.

// ErrNoCrypto marks a description from an SRTP trunk that carries no
// usable a=crypto for its audio.
var ErrNoCrypto = errors.New("no usable SRTP key (a=crypto) in the description")

// sdesSuite is the suite Outpost offers (RFC 4568's mandatory one).
const sdesSuite = relay.SuiteAES128SHA1_80

// wantsSDES reports whether media toward trunk is SRTP keyed with SDES.
func wantsSDES(trunk account.Trunk) bool { return trunk.SRTP == account.SRTPSDES }

// sdes is the SRTP state of the relay side toward one SBC: the key the
// relay encrypts with (in the descriptions the SBC is sent) and the SBC's,
// from its descriptions.
type sdes struct {
	mu      sync.Mutex
	local   *relay.Crypto // nil until known: offering, made at once; answering, once the offer is heard
	remote  *relay.Crypto
	applied [2]string // local and remote as last given to the relay
}

// offerSDES starts the state of a side Outpost offers to, with a fresh key.
func offerSDES() (*sdes, error) {
	c, err := relay.NewCrypto(1, sdesSuite)
	if err != nil {
		return nil, fmt.Errorf("srtp key: %w", err)
	}
	return &sdes{local: &c}, nil
}

// heard takes the SBC's description: its key (the first usable a=crypto;
// with our key already chosen, the first of the same suite, whose tag ours
// takes) and, answering, our key of the suite it chose. It returns the
// pair to key the relay with.
func (s *sdes) heard(sdp []byte) (local, remote relay.Crypto, err error) {
	offered, err := sdpCryptos(sdp)
	if err != nil {
		return relay.Crypto{}, relay.Crypto{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.local == nil {
		c := offered[0]
		l, err := relay.NewCrypto(c.Tag, c.Suite)
		if err != nil {
			return relay.Crypto{}, relay.Crypto{}, fmt.Errorf("srtp key: %w", err)
		}
		s.local, s.remote = &l, &c
		return l, c, nil
	}
	for _, c := range offered {
		if c.Suite == s.local.Suite {
			s.local.Tag = c.Tag
			s.remote = &c
			return *s.local, c, nil
		}
	}
	return relay.Crypto{}, relay.Crypto{}, fmt.Errorf("%w: the SBC's keys are not for %s, the suite offered", ErrNoCrypto, s.local.Suite)
}

// changed reports whether local and remote differ from what the relay was
// last keyed with, and records them: keying again would restart the SRTP
// contexts (their rollover counters) for nothing.
func (s *sdes) changed(local, remote relay.Crypto) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{local.String(), remote.String()}
	if k == s.applied {
		return false
	}
	s.applied = k
	return true
}

// localKey is the key the SBC is told (false while none is chosen).
func (s *sdes) localKey() (relay.Crypto, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.local == nil {
		return relay.Crypto{}, false
	}
	return *s.local, true
}

// key keys the relay's side from a description the SBC sent: SRTP on the
// side before its address is set, so nothing reaches the SBC in the clear.
func (m *media) key(sdp []byte) error {
	if m.srtp == nil || len(sdp) == 0 {
		return nil
	}
	local, remote, err := m.srtp.heard(sdp)
	if err != nil {
		return err
	}
	if !m.srtp.changed(local, remote) {
		return nil
	}
	if err := m.sess.SetSRTP(m.side, local, remote); err != nil {
		m.srtp.changed(relay.Crypto{}, relay.Crypto{})
		return fmt.Errorf("key the relay: %w", err)
	}
	return nil
}

// protect finishes an anchored description for this side: an SRTP
// SBC's carries the relay's key, a phone whose other side is such an SBC
// is told plain RTP, anything else is left as it is.
func (m *media) protect(sdp []byte) []byte {
	if m.srtp != nil {
		if c, ok := m.srtp.localKey(); ok {
			return securedSDP(sdp, c)
		}
		return sdp
	}
	if m.plain.Load() {
		return plainSDP(sdp)
	}
	return sdp
}

// sdpCryptos is the usable a=crypto attributes of a description's audio
// stream, in order of preference. The stream must be RTP/SAVP (or SAVPF).
func sdpCryptos(body []byte) ([]relay.Crypto, error) {
	inAudio, found := false, false
	var usable []relay.Crypto
	var errs []error
	for _, line := range sdpLines(body) {
		switch {
		case strings.HasPrefix(line, "m="):
			if found {
				inAudio = false
				continue
			}
			f := strings.Fields(line[2:])
			inAudio = len(f) >= 3 && f[0] == "audio"
			if !inAudio {
				continue
			}
			found = true
			if !strings.Contains(f[2], "SAVP") {
				return nil, fmt.Errorf("%w: the audio stream is %s, not RTP/SAVP", ErrNoCrypto, f[2])
			}
		case inAudio && strings.HasPrefix(line, "a=crypto:"):
			c, err := relay.ParseCrypto(line)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			usable = append(usable, c)
		}
	}
	switch {
	case !found:
		return nil, fmt.Errorf("%w: no audio stream", ErrNoCrypto)
	case len(usable) == 0 && len(errs) == 0:
		return nil, fmt.Errorf("%w: the audio stream has no a=crypto", ErrNoCrypto)
	case len(usable) == 0:
		return nil, fmt.Errorf("%w: %w", ErrNoCrypto, errors.Join(errs...))
	}
	return usable, nil
}

// securedSDP rewrites an anchored description for an SBC that speaks SRTP:
// the audio stream becomes RTP/SAVP (SAVPF for AVPF) with c as its only
// a=crypto; whatever keys the description carried are dropped.
func securedSDP(body []byte, c relay.Crypto) []byte {
	return rewriteAudio(body, func(proto string) string {
		if strings.HasSuffix(proto, "F") {
			return "RTP/SAVPF"
		}
		return "RTP/SAVP"
	}, "a=crypto:"+c.String())
}

// plainSDP rewrites an anchored description for a phone whose call goes
// to an SRTP trunk: the relay decrypts, so the audio stream is plain RTP
// (RTP/AVP, AVPF for SAVPF) and carries no a=crypto.
func plainSDP(body []byte) []byte {
	return rewriteAudio(body, func(proto string) string {
		return strings.Replace(proto, "SAVP", "AVP", 1)
	}, "")
}

// rewriteAudio sets the first audio stream's protocol with proto, drops
// every a=crypto of it and, when crypto is not empty, adds that line.
func rewriteAudio(body []byte, proto func(string) string, crypto string) []byte {
	var out bytes.Buffer
	inAudio, audioDone := false, false
	line := func(l string) { out.WriteString(l); out.WriteString("\r\n") }
	for _, l := range sdpLines(body) {
		switch {
		case strings.HasPrefix(l, "m="):
			if inAudio && crypto != "" {
				line(crypto)
			}
			f := strings.Fields(l[2:])
			inAudio = len(f) >= 3 && f[0] == "audio" && !audioDone
			if inAudio {
				audioDone = true
				f[2] = proto(f[2])
				l = "m=" + strings.Join(f, " ")
			}
		case inAudio && strings.HasPrefix(l, "a=crypto:"):
			continue
		}
		line(l)
	}
	if inAudio && crypto != "" {
		line(crypto)
	}
	return out.Bytes()
}
