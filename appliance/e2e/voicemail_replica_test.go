package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/media/g711"
)

// A message left on n1 for carol (no phone registered) is copied to n2
// and n3 ahead of time, by sha256, before anyone plays it. Then n1 dies
// (kill -9) and its data directory is deleted: the recording is gone
// with it. n2's copy is deleted too, so that n2 has to fetch n3's (the
// recording node first, then the other members). carol registers on n2,
// dials *97 and hears the message: the audio correlates with the pcap's.
func TestVoicemailSurvivesRecordingNodeDiskLoss(t *testing.T) {
	ref := pcapAudio(t, "/usr/share/sip-tester/g711a.pcap")
	nodes := formClusterWith(t, nodeOpts{bootstrapSnapshot: writeFile(t, "demo.json", demoSnapshot(t))})
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	waitRevision(t, nodes, 1)

	callers := writeCallersCSV(t, [][4]string{{"alice", "pw-alice", "acme.example", "1003"}})
	if res := runSIPp(t, scenarioPath(t, "uac-voicemail.xml"), n1.sipUDP, 1, 40*time.Second, "-inf", callers); res.exit != 0 {
		t.Fatalf("leaving a message: sipp exit %d\n%s\n%s", res.exit, res.stdout, n1.log())
	}
	var hash string
	eventually(t, 10*time.Second, "the message's audio on n1", func(context.Context) error {
		files, err := filepath.Glob(filepath.Join(n1.dir, "data", "voicemail", "*.wav"))
		if err != nil || len(files) != 1 {
			return fmt.Errorf("voicemail files %v (%v), want one", files, err)
		}
		data, err := os.ReadFile(files[0])
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		hash = hex.EncodeToString(sum[:])
		if filepath.Base(files[0]) != hash+".wav" {
			return fmt.Errorf("%s is not named by its sha256 %s", files[0], hash)
		}
		return nil
	})
	deposited := waitLogLine(t, n1, 10*time.Second, `msg="voicemail deposited"`, hash)
	for _, n := range []*node{n2, n3} {
		eventually(t, 20*time.Second, "a copy of the audio on "+n.id, func(context.Context) error {
			data, err := os.ReadFile(filepath.Join(n.dir, "data", "voicemail", hash+".wav"))
			if err != nil {
				return err
			}
			if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != hash {
				return fmt.Errorf("%s's copy does not match its sha256", n.id)
			}
			return nil
		})
		copied := waitLogLine(t, n, 10*time.Second, `msg="voicemail audio replicated"`, hash)
		t.Logf("the copy on %s %v after the deposit on n1", n.id, copied.Sub(deposited).Round(time.Millisecond))
		m := metrics(t, n)
		if ok, missing := m(`outpost_voicemail_audio_fetches_total{result="ok"}`), m("outpost_voicemail_audio_missing"); ok < 1 || missing != 0 {
			t.Errorf("%s: fetches ok %v, audio missing %v; want at least 1 and 0", n.id, ok, missing)
		}
	}

	n1.kill()
	if err := os.RemoveAll(filepath.Join(n1.dir, "data")); err != nil {
		t.Fatal(err)
	}
	// n2's copy goes too: n2 must fetch n3's, the recording node being gone.
	if err := os.Remove(filepath.Join(n2.dir, "data", "voicemail", hash+".wav")); err != nil {
		t.Fatal(err)
	}

	carol := newGoPhone(t, n2, "carol", "pw-carol")
	carol.media = newRTPPhone(t, "carol", "127.0.0.1", g711.PCMU, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	carol.register(ctx, t)
	s := carol.call(ctx, t, "*97")
	// The count (about 4 s), then the message: wait for the whole of it.
	want := 4*g711.SampleRate + len(ref) + 2*g711.SampleRate
	got := carol.media.window(0, want, time.Now().Add(30*time.Second))
	if got == nil {
		t.Fatalf("carol heard %d samples in 30 s, want %d\n%s", carol.media.received(), want, n2.log())
	}
	lag, corr := bestMatch(ref, got)
	if corr < 0.9 {
		t.Fatalf("the message carol heard on n2 correlates %.3f with what was left on n1 (at %d ms), want 0.9 or more\n%s",
			corr, lag/8, n2.log())
	}
	if _, err := os.Stat(filepath.Join(n2.dir, "data", "voicemail", hash+".wav")); err != nil {
		t.Errorf("n2 did not keep the copy it fetched from n3: %v", err)
	}
	t.Logf("with n1 and its disk gone, the message played on n2 %.1f s into the call, correlation %.3f", float64(lag)/8000, corr)
	_ = s.Bye(ctx)
}
