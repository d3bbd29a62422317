package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/media/g711"
)

// pcapAudio decodes the G.711 RTP of a pcap of Ethernet/IPv4/UDP frames
// (SIPp's g711a.pcap) into 8 kHz linear samples, in capture order.
func pcapAudio(t *testing.T, path string) []int16 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("no pcap (%v): SIPp's capture is needed", err)
	}
	if len(b) < 24 || binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 || binary.LittleEndian.Uint32(b[20:]) != 1 {
		t.Fatalf("%s is not a little-endian Ethernet pcap", path)
	}
	var out []int16
	for off := 24; off+16 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[off+8:]))
		frame := b[off+16 : min(len(b), off+16+n)]
		off += 16 + n
		if len(frame) < 14+20+8 || binary.BigEndian.Uint16(frame[12:]) != 0x0800 {
			continue
		}
		ihl := int(frame[14]&0x0f) * 4
		udp := frame[14+ihl:]
		if frame[14+9] != 17 || len(udp) < 8 {
			continue
		}
		var p rtp.Packet
		if p.Unmarshal(udp[8:]) != nil {
			continue
		}
		c := g711.Codec(p.PayloadType)
		if !c.Valid() {
			continue
		}
		pcm := make([]int16, len(p.Payload))
		c.Decode(pcm, p.Payload)
		out = append(out, pcm...)
	}
	return out
}

// bestMatch finds where ref's loudest 100 ms is in got and returns the
// correlation of ref with got aligned there (1: the same waveform).
func bestMatch(ref, got []int16) (lag int, corr float64) {
	const probe = 800
	start, loud := 0, 0.0
	for i := 0; i+probe <= len(ref); i += probe / 2 {
		if e := energy(ref[i : i+probe]); e > loud {
			start, loud = i, e
		}
	}
	best := -1.0
	for l := 0; l+probe <= len(got); l++ {
		if c := correlate(ref[start:start+probe], got[l:l+probe]); c > best {
			best, lag = c, l-start
		}
	}
	if lag < 0 || lag+len(ref) > len(got) {
		return lag, best
	}
	return lag, correlate(ref, got[lag:lag+len(ref)])
}

func energy(x []int16) float64 {
	var e float64
	for _, v := range x {
		e += float64(v) * float64(v)
	}
	return e
}

func correlate(a, b []int16) float64 {
	var ab float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
	}
	d := math.Sqrt(energy(a) * energy(b))
	if d == 0 {
		return 0
	}
	return ab / d
}

// A SIPp caller leaves a message (the g711a pcap) for carol, who has no
// phone registered; carol dials *97 from a phone (authenticated like any
// INVITE) and hears the count and then what the caller said: the audio
// she receives correlates with the pcap's over its whole length, through
// PCMA, the WAV and PCMU.
func TestVoicemailDepositAndRetrieve(t *testing.T) {
	ref := pcapAudio(t, "/usr/share/sip-tester/g711a.pcap")
	n := startNode(t, "vm", nodeOpts{bootstrapSnapshot: writeFile(t, "demo.json", demoSnapshot(t))})
	waitRevision(t, []*node{n}, 1)
	callers := writeCallersCSV(t, [][4]string{{"alice", "pw-alice", "acme.example", "1003"}})
	if res := runSIPp(t, scenarioPath(t, "uac-voicemail.xml"), n.sipUDP, 1, 40*time.Second, "-inf", callers); res.exit != 0 {
		t.Fatalf("leaving a message: sipp exit %d\n%s\n%s", res.exit, res.stdout, n.log())
	}
	eventually(t, 10*time.Second, "the call recorded as voicemail", func(ctx context.Context) error {
		recs, err := n.client().Journal(ctx, 10)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Dialled == "1003" && r.Disposition == "voicemail" && strings.HasSuffix(r.Route, "voicemail:u-carol") {
				return nil
			}
		}
		return fmt.Errorf("no voicemail record for 1003 in %+v", recs)
	})

	carol := newGoPhone(t, n, "carol", "pw-carol")
	carol.media = newRTPPhone(t, "carol", "127.0.0.1", g711.PCMU, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := carol.call(ctx, t, "*97")
	// The count (about 4 s), then the message: wait for the whole of it.
	want := 4*g711.SampleRate + len(ref) + 2*g711.SampleRate
	got := carol.media.window(0, want, time.Now().Add(30*time.Second))
	if got == nil {
		t.Fatalf("carol heard %d samples in 30 s, want %d\n%s", carol.media.received(), want, n.log())
	}
	lag, corr := bestMatch(ref, got)
	if corr < 0.9 {
		t.Fatalf("the message carol heard correlates %.3f with what was left (at %d ms), want 0.9 or more", corr, lag/8)
	}
	t.Logf("the message played %.1f s into the call, correlation %.3f", float64(lag)/8000, corr)
	_ = s.Bye(ctx)
}

// withoutVoicemail is the demo snapshot with the mailbox of each of
// usernames disabled: calls to them end with a status, as before voicemail.
func withoutVoicemail(t testing.TB, usernames ...string) []byte {
	t.Helper()
	s, err := account.DecodeBytes(demoSnapshot(t))
	if err != nil {
		t.Fatal(err)
	}
	off := false
	for i, u := range s.Users {
		if slices.Contains(usernames, u.SIP.Username) {
			s.Users[i].Voicemail = &account.Voicemail{Enabled: &off}
		}
	}
	data, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// A call nobody answers within the user's no-answer time (carol: 5 s),
// and a call to a busy phone (bob's answers 486), go to the callee's
// mailbox: the caller is answered, leaves a message, and the record says
// why it went there.
func TestVoicemailNoAnswerAndBusy(t *testing.T) {
	s, err := account.DecodeBytes(demoSnapshot(t))
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range s.Users {
		if u.SIP.Username == "carol" {
			s.Users[i].Voicemail = &account.Voicemail{NoAnswerS: 5}
		}
	}
	snap, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, "vmna", nodeOpts{bootstrapSnapshot: writeFile(t, "demo.json", snap)})
	waitRevision(t, []*node{n}, 1)
	ringing := answerWith(t, n, "carol", freeUDPPort(t), "-sf", scenarioPath(t, "uas-ring.xml"))
	busy := answerWith(t, n, "bob", freeUDPPort(t), "-sf", scenarioPath(t, "uas-busy.xml"))
	for _, tc := range []struct{ dial, why, mailbox string }{
		{"1003", "no_answer", "u-carol"},
		{"1002", "busy", "u-bob"},
	} {
		start := time.Now()
		callers := writeCallersCSV(t, [][4]string{{"alice", "pw-alice", "acme.example", tc.dial}})
		if res := runSIPp(t, scenarioPath(t, "uac-voicemail.xml"), n.sipUDP, 1, 40*time.Second, "-inf", callers); res.exit != 0 {
			t.Fatalf("calling %s: sipp exit %d\n%s\n%s", tc.dial, res.exit, res.stdout, n.log())
		}
		eventually(t, 10*time.Second, "the "+tc.why+" call recorded as voicemail", func(ctx context.Context) error {
			recs, err := n.client().Journal(ctx, 10)
			if err != nil {
				return err
			}
			for _, r := range recs {
				if r.Dialled == tc.dial && r.Disposition == "voicemail" && r.Route == tc.why+" > voicemail:"+tc.mailbox {
					if tc.why == "no_answer" && r.Answer.Sub(r.Start) < 5*time.Second {
						return fmt.Errorf("answered by voicemail %v after the start, before the 5 s no-answer time", r.Answer.Sub(r.Start))
					}
					return nil
				}
			}
			return fmt.Errorf("no voicemail record for %s (%s) in %+v", tc.dial, tc.why, recs)
		})
		t.Logf("%s: %v", tc.why, time.Since(start))
	}
	if code := ringing(); code != 0 {
		t.Errorf("carol's ringing phone: sipp exit %d (no CANCEL after the no-answer time?)", code)
	}
	if code := busy(); code != 0 {
		t.Errorf("bob's busy phone: sipp exit %d", code)
	}
}
