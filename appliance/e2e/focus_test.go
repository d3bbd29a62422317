package e2e

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/appliance/media/g711"
)

// The phone's conference key (issue 8), as phones set to "network
// conference" use it: alice calls bob and carol, then merges both calls
// into a conference on the node. Her INVITE to the conference factory
// carries Replaces naming her call with bob (bob joins with her); her
// REFER in the new dialog names her call with carol, with Replaces (carol
// joins). Each hears the other two, not itself; a REFER without Replaces
// invites dave. The two calls end as transferred and the conference is
// recorded once.
func TestConferenceKey(t *testing.T) {
	needSIPp(t)
	n := startNode(t, "confkey", nodeOpts{bootstrapSnapshot: writeFile(t, "demo.json", demoSnapshot(t))})
	waitRevision(t, []*node{n}, 1)

	aliceRTP := newRTPPhone(t, "alice", "127.0.0.1", g711.PCMU, 400)
	bob := newRTPPhone(t, "bob", "127.0.0.1", g711.PCMU, 700)
	carol := newRTPPhone(t, "carol", "127.0.0.1", g711.PCMA, 1100)
	bobDone := answerWith(t, n, "bob", freeUDPPort(t), "-sf",
		sippTemplate(t, "uas-conference.xml", map[string]string{"MEDIA_PORT": bob.port()}))
	carolDone := answerWith(t, n, "carol", freeUDPPort(t), "-sf", sippTemplate(t, "uas-conference-merged.xml",
		map[string]string{"MEDIA_PORT": carol.port(), "RING_MS": "100", "HOLD_MS": "20000"}))
	dave := newRTPPhone(t, "dave", "127.0.0.1", g711.PCMU, 1500)
	daveDone := answerWith(t, n, "dave", freeUDPPort(t), "-sf", sippTemplate(t, "uas-conference-invitee.xml",
		map[string]string{"MEDIA_PORT": dave.port(), "RING_MS": "500", "HOLD_MS": "4000"}))
	alice := newGoPhone(t, n, "alice", "pw-alice")
	alice.media = aliceRTP
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	toBob := alice.call(ctx, t, "1002")
	toCarol := alice.call(ctx, t, "1003")

	// The conference key: an INVITE to the factory replacing the call
	// with bob.
	focus := alice.call(ctx, t, "conference", sip.NewHeader("Replaces", replacesOf(toBob)))
	contact := focus.InviteResponse.Contact()
	if contact == nil || !strings.HasPrefix(contact.Address.User, "conf-") || !contact.Params.Has("isfocus") {
		t.Fatalf("the conference's Contact: %v; want sip:conf-<id>@…;isfocus", contact)
	}
	confID := strings.TrimPrefix(contact.Address.User, "conf-")
	eventually(t, 10*time.Second, "alice's call with bob replaced", func(context.Context) error {
		if toBob.LoadState() != sip.DialogStateEnded {
			return fmt.Errorf("state %v", toBob.LoadState())
		}
		return nil
	})

	// The REFER merging the call with carol.
	referInDialog(ctx, t, n, alice, focus, "<sip:1003@acme.example?Replaces="+url.QueryEscape(replacesOf(toCarol))+">")
	eventually(t, 10*time.Second, "alice's call with carol replaced", func(context.Context) error {
		if toCarol.LoadState() != sip.DialogStateEnded {
			return fmt.Errorf("state %v", toCarol.LoadState())
		}
		return nil
	})

	if !t.Run("conference of three", func(t *testing.T) {
		waitCall(t, n, 15*time.Second, "the conference", confID, func(c apiCall) error {
			if c.State != "conference" || c.Owner != "u-alice" || !slices.Equal(c.users(), []string{"u-alice", "u-bob", "u-carol"}) {
				return fmt.Errorf("state %q, owner %q, participants %v; want conference, u-alice, [u-alice u-bob u-carol]",
					c.State, c.Owner, c.users())
			}
			return nil
		})
	}) {
		t.Fatalf("no conference; the node's conference lines:\n%s", conferenceLog(n))
	}
	t.Run("each hears the others, not itself", func(t *testing.T) {
		checkHearing(t, map[*rtpPhone][2][]float64{
			aliceRTP: {{700, 1100}, {400}},
			bob:      {{400, 1100}, {700}},
			carol:    {{400, 700}, {1100}},
		})
	})

	// A REFER without Replaces invites: dave rings, answers, joins, and
	// the final NOTIFY says so; he hangs up after a while.
	referInDialog(ctx, t, n, alice, focus, "<sip:2001@acme.example>")
	waitCall(t, n, 10*time.Second, "dave invited by REFER", confID, func(c apiCall) error {
		if !slices.Equal(c.users(), []string{"u-alice", "u-bob", "u-carol", "u-dave"}) || len(c.Invitations) != 1 ||
			c.Invitations[0].User != "u-dave" || c.Invitations[0].State != "accepted" {
			return fmt.Errorf("participants %v, invitations %+v; want dave in, by an accepted invitation", c.users(), c.Invitations)
		}
		return nil
	})
	if code := daveDone(); code != 0 {
		t.Errorf("dave's SIPp exited %d", code)
	}

	// alice leaves; carol hangs up on her own; bob, alone, is hung up.
	if err := focus.Bye(ctx); err != nil {
		t.Errorf("alice leaves: %v", err)
	}
	if code := carolDone(); code != 0 {
		t.Errorf("carol's SIPp exited %d", code)
	}
	if code := bobDone(); code != 0 {
		t.Errorf("bob's SIPp exited %d (not re-INVITEd into the room, or not hung up once alone?)\n%s", code, conferenceLog(n))
	}
	eventually(t, 10*time.Second, "the calls journalled", func(ctx context.Context) error {
		recs, err := n.client().Journal(ctx, 10)
		if err != nil {
			return err
		}
		want := map[string]int{"alice>bob transferred": 0, "alice>carol transferred": 0, "alice>conference answered": 0}
		for _, r := range recs {
			to := r.Callee
			if r.Destination == "conference" {
				to = "conference"
			}
			k := r.Caller + ">" + to + " " + r.Disposition
			if _, ok := want[k]; ok {
				want[k]++
			}
		}
		for k, got := range want {
			if got != 1 {
				return fmt.Errorf("%d records %s in %+v, want 1", got, k, recs)
			}
		}
		return nil
	})
	if st, err := n.status(context.Background()); err != nil || st.ActiveCalls != 0 {
		t.Errorf("after the conference: %d active calls (%v)", st.ActiveCalls, err)
	}
}

// replacesOf is a Replaces value naming a dialog the phone placed.
func replacesOf(s *sipgo.DialogClientSession) string {
	return fmt.Sprintf("%s;to-tag=%s;from-tag=%s", s.InviteRequest.CallID().Value(),
		tag(s.InviteResponse.To()), tag(s.InviteRequest.From()))
}

// referInDialog sends a REFER in dialog s and waits for the final NOTIFY,
// which must be a 2xx.
func referInDialog(ctx context.Context, t *testing.T, n *node, p *goPhone, s *sipgo.DialogClientSession, referTo string) {
	t.Helper()
	if frag := referFinal(ctx, t, n, p, s, referTo); !strings.HasPrefix(frag, "SIP/2.0 2") {
		t.Fatalf("the REFER failed: %q\n%s", frag, conferenceLog(n))
	}
}

// referFinal sends a REFER in dialog s and returns the sipfrag of the
// final NOTIFY.
func referFinal(ctx context.Context, t *testing.T, n *node, p *goPhone, s *sipgo.DialogClientSession, referTo string) string {
	t.Helper()
	refer := sip.NewRequest(sip.REFER, s.InviteResponse.Contact().Address)
	refer.AppendHeader(sip.NewHeader("Refer-To", referTo))
	refer.AppendHeader(sip.NewHeader("Referred-By", fmt.Sprintf("<sip:%s@acme.example>", p.user)))
	res, err := s.Do(ctx, refer)
	if err != nil || res.StatusCode != 202 {
		t.Fatalf("REFER: %v %v\n%s", res, err, conferenceLog(n))
	}
	for {
		select {
		case frag := <-p.notifies:
			if !strings.HasPrefix(frag, "SIP/2.0 1") {
				return frag
			}
		case <-ctx.Done():
			t.Fatalf("no final NOTIFY\n%s", conferenceLog(n))
		}
	}
}
