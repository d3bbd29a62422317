package mwi

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
)

// A subscription's life: granted with its NOTIFY at once, a NOTIFY per
// change (not per repeat), refreshed, ended by Expires: 0.
func TestSubscriptionLifetime(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.set(func(h *harness) { h.counts["u-carol"] = [2]int{1, 0} })
	res := h.serve(t, subscribe{expires: "600"}.request(t))
	if res.StatusCode != 200 || hdr(res, "Expires") != "600" || res.Contact() == nil {
		t.Fatalf("SUBSCRIBE: %d, Expires %q, Contact %v", res.StatusCode, hdr(res, "Expires"), res.Contact())
	}
	ourTag, _ := res.To().Params.Get("tag")
	if ourTag == "" {
		t.Fatal("200 without a To tag")
	}
	req := h.next(t)
	checkNotify(t, req, "active;expires=600", body10)
	if got := req.Recipient.String(); got != "sip:carol@192.0.2.10:5062" {
		t.Errorf("Request-URI %s, want the subscriber's Contact", got)
	}
	if req.Destination() != "192.0.2.10:5062" {
		t.Errorf("sent to %s, want the SUBSCRIBE's source", req.Destination())
	}
	fromTag, _ := req.From().Params.Get("tag")
	toTag, _ := req.To().Params.Get("tag")
	if fromTag != ourTag || toTag != "phone-1" || req.CallID().Value() != "sub-1@192.0.2.10" {
		t.Errorf("dialog: From tag %q (want %q), To tag %q, Call-ID %q", fromTag, ourTag, toTag, req.CallID().Value())
	}
	if req.CSeq().SeqNo != 1 || req.CSeq().MethodName != sip.NOTIFY {
		t.Errorf("CSeq %v", req.CSeq())
	}

	h.n.Changed(ctx, "u-carol") // nothing new
	h.none(t)

	h.set(func(h *harness) { h.counts["u-carol"] = [2]int{0, 1}; h.now = h.now.Add(100 * time.Second) })
	h.n.Changed(ctx, "u-carol")
	req = h.next(t)
	checkNotify(t, req, "active;expires=500", body01)
	if req.CSeq().SeqNo != 2 {
		t.Errorf("second NOTIFY CSeq %d, want 2", req.CSeq().SeqNo)
	}

	res = h.serve(t, subscribe{expires: "300", toTag: ourTag, cseq: 2}.request(t))
	if res.StatusCode != 200 || hdr(res, "Expires") != "300" {
		t.Fatalf("refresh: %d, Expires %q", res.StatusCode, hdr(res, "Expires"))
	}
	req = h.next(t)
	checkNotify(t, req, "active;expires=300", body01)
	if req.CSeq().SeqNo != 3 {
		t.Errorf("refresh NOTIFY CSeq %d, want 3", req.CSeq().SeqNo)
	}

	res = h.serve(t, subscribe{expires: "0", toTag: ourTag, cseq: 3}.request(t))
	if res.StatusCode != 200 || hdr(res, "Expires") != "0" {
		t.Fatalf("unsubscribe: %d, Expires %q", res.StatusCode, hdr(res, "Expires"))
	}
	checkNotify(t, h.next(t), "terminated;reason=timeout", body01)
	if n := h.n.Subscriptions(); n != 0 {
		t.Errorf("%d subscriptions after the unsubscribe", n)
	}
	h.set(func(h *harness) { h.counts["u-carol"] = [2]int{2, 0} })
	h.n.Changed(ctx, "u-carol")
	h.none(t)
	if res := h.serve(t, subscribe{expires: "600", toTag: ourTag, cseq: 4}.request(t)); res.StatusCode != 481 {
		t.Errorf("refresh of the ended subscription: %d, want 481", res.StatusCode)
	}
}

// A subscription not refreshed ends when its time is up, with a last
// NOTIFY terminated;reason=timeout; its refresh then gets 481 (as after a
// failover to another node), and a new SUBSCRIBE starts again.
func TestSubscriptionExpiry(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	res := h.serve(t, subscribe{expires: "60"}.request(t))
	ourTag, _ := res.To().Params.Get("tag")
	checkNotify(t, h.next(t), "active;expires=60", body00)
	h.set(func(h *harness) { h.now = h.now.Add(59 * time.Second) })
	h.n.Sweep(ctx)
	h.none(t)
	h.set(func(h *harness) { h.now = h.now.Add(time.Second) })
	h.n.Sweep(ctx)
	checkNotify(t, h.next(t), "terminated;reason=timeout", body00)
	if n := h.n.Subscriptions(); n != 0 {
		t.Fatalf("%d subscriptions after the expiry", n)
	}
	h.n.Sweep(ctx)
	h.none(t)
	if res := h.serve(t, subscribe{expires: "60", toTag: ourTag, cseq: 2}.request(t)); res.StatusCode != 481 {
		t.Errorf("refresh after the expiry: %d, want 481", res.StatusCode)
	}
	if res := h.serve(t, subscribe{expires: "60", callID: "sub-2"}.request(t)); res.StatusCode != 200 {
		t.Errorf("new SUBSCRIBE: %d", res.StatusCode)
	}
	checkNotify(t, h.next(t), "active;expires=60", body00)
}

// What the notifier refuses changes nothing and sends nothing.
func TestSubscribeRefused(t *testing.T) {
	for _, tc := range []struct {
		name      string
		sub       subscribe
		challenge bool
		code      int
		hdr, val  string
	}{
		{"another event package", subscribe{event: "presence"}, false, 489, "Allow-Events", "message-summary"},
		{"too short", subscribe{expires: "30"}, false, 423, "Min-Expires", "60"},
		{"malformed Expires", subscribe{expires: "soon"}, false, 400, "", ""},
		{"negative Expires", subscribe{expires: "-5"}, false, 400, "", ""},
		{"a body it cannot take", subscribe{accept: "application/sdp"}, false, 406, "Accept", ContentType},
		{"no Contact", subscribe{noContact: true}, false, 400, "", ""},
		{"another user's mailbox", subscribe{uri: "sip:bob@acme.example"}, false, 403, "", ""},
		{"without credentials", subscribe{}, true, 407, "", ""},
		{"a dialog it does not know", subscribe{toTag: "gone"}, false, 481, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.set(func(h *harness) { h.challenge = tc.challenge })
			res := h.serve(t, tc.sub.request(t))
			if res.StatusCode != tc.code {
				t.Fatalf("%d %s, want %d", res.StatusCode, res.Reason, tc.code)
			}
			if tc.hdr != "" && hdr(res, tc.hdr) != tc.val {
				t.Errorf("%s: %q, want %q", tc.hdr, hdr(res, tc.hdr), tc.val)
			}
			if n := h.n.Subscriptions(); n != 0 {
				t.Errorf("%d subscriptions", n)
			}
			h.none(t)
		})
	}
}

// The AOR's user part may be the username or the extension; Expires is
// cut to the maximum; no Expires gets the default; a fetch (Expires: 0)
// gets one NOTIFY; a user without a mailbox gets noresource.
func TestSubscribeGrants(t *testing.T) {
	for _, tc := range []struct {
		name, uri, expires, want, state string
		subs                            int
	}{
		{"by extension", "sip:1003@acme.example", "600", "600", "active;expires=600", 1},
		{"cut to the maximum", "", "7200", "3600", "active;expires=3600", 1},
		{"default", "", "", "3600", "active;expires=3600", 1},
		{"fetch", "", "0", "0", "terminated;reason=timeout", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			res := h.serve(t, subscribe{uri: tc.uri, expires: tc.expires}.request(t))
			if res.StatusCode != 200 || hdr(res, "Expires") != tc.want {
				t.Fatalf("%d, Expires %q, want 200 and %s", res.StatusCode, hdr(res, "Expires"), tc.want)
			}
			checkNotify(t, h.next(t), tc.state, body00)
			if n := h.n.Subscriptions(); n != tc.subs {
				t.Errorf("%d subscriptions, want %d", n, tc.subs)
			}
		})
	}
	t.Run("no mailbox", func(t *testing.T) {
		h := newHarness(t)
		off := false
		carolOff := carol
		carolOff.Voicemail = &account.Voicemail{Enabled: &off}
		h.n.auth = authFunc(func(*sip.Request, sip.ServerTransaction) (account.User, bool) { return carolOff, true })
		if res := h.serve(t, subscribe{}.request(t)); res.StatusCode != 200 {
			t.Fatalf("%d", res.StatusCode)
		}
		checkNotify(t, h.next(t), "terminated;reason=noresource", body00)
		if n := h.n.Subscriptions(); n != 0 {
			t.Errorf("%d subscriptions", n)
		}
	})
}

// A subscriber that refuses a NOTIFY (481: it forgot the dialog) ends
// the subscription; later changes send nothing.
func TestNotifyRefusedEndsSubscription(t *testing.T) {
	h := newHarness(t)
	h.set(func(h *harness) { h.refuse = 481 })
	h.serve(t, subscribe{}.request(t))
	h.next(t)
	deadline := time.Now().Add(time.Second)
	for h.n.Subscriptions() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := h.n.Subscriptions(); n != 0 {
		t.Fatalf("%d subscriptions after a refused NOTIFY", n)
	}
	h.set(func(h *harness) { h.counts["u-carol"] = [2]int{1, 0} })
	h.n.Changed(context.Background(), "u-carol")
	h.none(t)
}

func binding(id, user, contact, source string, expires time.Time) store.Binding {
	return store.Binding{ID: id, AOR: user + "@acme.example", UserID: "u-" + user, Username: user,
		Contact: contact, Source: source, Transport: "udp", Node: "n1", Expires: expires}
}

// Unsolicited NOTIFYs go to the user's live bindings here that have no
// subscription: on a change (once per summary), and to a phone that
// registers while the mailbox holds messages.
func TestUnsolicited(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	later := h.now.Add(time.Hour)
	desk := binding("b-desk", "carol", "sip:carol@192.0.2.20;transport=udp", "192.0.2.20:5060", later)
	subscribed := binding("b-sub", "carol", "sip:carol@192.0.2.10:5062", "192.0.2.10:5062", later)
	expired := binding("b-old", "carol", "sip:carol@192.0.2.30", "192.0.2.30:5060", h.now.Add(-time.Second))
	bob := binding("b-bob", "bob", "sip:bob@192.0.2.40", "192.0.2.40:5060", later)
	h.set(func(h *harness) { h.bindings = []store.Binding{desk, subscribed, expired, bob} })
	h.serve(t, subscribe{}.request(t))
	checkNotify(t, h.next(t), "active;expires=3600", body00)

	h.set(func(h *harness) { h.counts["u-carol"] = [2]int{1, 0} })
	h.n.Changed(ctx, "u-carol")
	var toDesk, toSub *sip.Request
	for range 2 {
		req := h.next(t)
		if strings.HasPrefix(hdr(req, "Subscription-State"), "active") {
			toSub = req
		} else {
			toDesk = req
		}
	}
	h.none(t) // not to the expired binding, nor to bob
	if toSub == nil || toDesk == nil {
		t.Fatal("want one NOTIFY in the subscription and one unsolicited")
	}
	checkNotify(t, toSub, "active;expires=3600", body10)
	checkNotify(t, toDesk, "terminated", body10)
	if got := toDesk.Recipient.String(); got != "sip:carol@192.0.2.20;transport=udp" || toDesk.Destination() != "192.0.2.20:5060" {
		t.Errorf("unsolicited NOTIFY to %s via %s, want the desk phone's contact through its flow", got, toDesk.Destination())
	}
	if toDesk.From().Address.String() != "sip:carol@acme.example" || toDesk.To().Address.String() != "sip:carol@acme.example" {
		t.Errorf("From %s To %s, want the mailbox's account", toDesk.From().Address.String(), toDesk.To().Address.String())
	}

	h.n.Changed(ctx, "u-carol") // the same change again (applied from Raft)
	h.none(t)

	// Registrations: a refresh of a known binding says nothing; a new
	// binding of carol's hears of her message; bob's, with an empty
	// mailbox, hears nothing; the subscribed phone's own binding
	// neither (its subscription told it).
	h.n.Registered(ctx, []store.Binding{desk})
	h.none(t)
	h.n.Registered(ctx, []store.Binding{bob, subscribed})
	h.none(t)
	second := binding("b-second", "carol", "sip:carol@192.0.2.21", "192.0.2.21:5060", later)
	h.set(func(h *harness) { h.bindings = append(h.bindings, second) })
	h.n.Registered(ctx, []store.Binding{second})
	req := h.next(t)
	checkNotify(t, req, "terminated", body10)
	if req.Destination() != "192.0.2.21:5060" {
		t.Errorf("greeting sent to %s", req.Destination())
	}
	h.n.Registered(ctx, []store.Binding{second}) // its refresh
	h.none(t)
	gone := desk
	gone.Deleted = true
	h.n.Registered(ctx, []store.Binding{gone})
	h.n.Registered(ctx, []store.Binding{desk}) // unregistered, then registered again
	checkNotify(t, h.next(t), "terminated", body10)
}
