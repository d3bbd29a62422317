package calls

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

func TestCallAnsweredCallerHangsUp(t *testing.T) {
	t.Parallel()
	node, _, alice, bobs := cluster(t, onCue)
	bob := bobs[0]
	call := alice.dial(t, node, "1002", alice.sdp("sendrecv"))
	inv := bob.expect(t, "INVITE").req
	if !bytes.Equal(inv.Body(), call.offer) {
		t.Errorf("callee's INVITE body:\n%s\nwant the caller's offer:\n%s", inv.Body(), call.offer)
	}
	if ct := inv.GetHeader("Content-Type"); ct == nil || ct.Value() != "application/sdp" {
		t.Errorf("callee's INVITE Content-Type %v", ct)
	}
	if from := inv.From(); from.Address.User != "1001" || from.DisplayName != "Alice" {
		t.Errorf("callee sees the call from %q <%s>, want Alice <1001>", from.DisplayName, from.Address.User)
	}
	if to := inv.To(); to.Address.User != "bob" {
		t.Errorf("callee's INVITE To %s, want bob", to.Address.User)
	}
	if inv.GetHeader("X-Outpost-Hop-Auth") != nil || inv.GetHeader("X-Outpost-Binding") != nil {
		t.Error("a phone was sent the node-to-node headers")
	}
	bob.expect(t, "180")
	call.progress(t, 180)
	bob.pickUp(t)
	answer := bob.expect(t, "200").body
	call.answered(t, answer)
	bob.expect(t, "ACK")
	eventually(t, "Active() = 1", func() bool { return node.b.Active() == 1 })
	if recs := node.journal.all(); len(recs) != 0 {
		t.Fatalf("recorded %+v before the call ended", recs)
	}

	if err := call.sess.Bye(context.Background()); err != nil {
		t.Fatalf("caller's BYE: %v", err)
	}
	bob.expect(t, "BYE")
	recs := node.journal.wait(t, 1)
	checkRecord(t, recs[0], call.callID, wantRecord{DispAnswered, 200, "bob", "1002", DestUser})
	settled(t, node)
	alice.idle(t)
	bob.idle(t)
}

func TestCallAnsweredCalleeHangsUp(t *testing.T) {
	t.Parallel()
	node, _, alice, bobs := cluster(t, onCue)
	bob := bobs[0]
	call, ds := connect(t, node, alice, "1002", bob)
	if err := ds.Bye(context.Background()); err != nil {
		t.Fatalf("callee's BYE: %v", err)
	}
	alice.expect(t, "BYE")
	recs := node.journal.wait(t, 1)
	checkRecord(t, recs[0], call.callID, wantRecord{DispAnswered, 200, "bob", "1002", DestUser})
	settled(t, node)
	alice.idle(t)
	bob.idle(t)
}

// TestCallForked rings both of bob's phones: the caller hears one 180,
// the first to answer gets the call and the other is cancelled.
func TestCallForked(t *testing.T) {
	t.Parallel()
	node, _, alice, bobs := cluster(t, onCue, onCue)
	call := alice.dial(t, node, "1002", alice.sdp("sendrecv"))
	for _, bob := range bobs {
		if inv := bob.expect(t, "INVITE").req; !bytes.Equal(inv.Body(), call.offer) {
			t.Errorf("%s's INVITE body:\n%s\nwant the caller's offer", bob.name, inv.Body())
		}
		bob.expect(t, "180")
	}
	call.progress(t, 180)
	bobs[1].pickUp(t)
	answer := bobs[1].expect(t, "200").body
	bobs[0].expect(t, "CANCEL")
	call.answered(t, answer) // one 180 though both rang
	bobs[1].expect(t, "ACK")
	eventually(t, "Active() = 1", func() bool { return node.b.Active() == 1 })

	if err := call.sess.Bye(context.Background()); err != nil {
		t.Fatalf("caller's BYE: %v", err)
	}
	bobs[1].expect(t, "BYE")
	recs := node.journal.wait(t, 1)
	checkRecord(t, recs[0], call.callID, wantRecord{DispAnswered, 200, "bob", "1002", DestUser})
	settled(t, node)
	for _, bob := range bobs {
		bob.idle(t)
	}
}

// TestCallUnanswered covers calls no phone answers: busy when one was
// busy, else no answer.
func TestCallUnanswered(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		phones []script
		code   int
		disp   string
	}{
		{"the only phone busy", []script{refusing(486, "Busy Here")}, 486, DispBusy},
		{"every phone busy", []script{refusing(486, "Busy Here"), refusing(486, "Busy Here")}, 486, DispBusy},
		{"one busy, one declining", []script{refusing(603, "Decline"), refusing(486, "Busy Here")}, 486, DispBusy},
		{"the only phone declining", []script{refusing(603, "Decline")}, 480, DispNoAnswer},
		{"every phone failing", []script{refusing(480, "Temporarily Unavailable"), refusing(500, "Server Internal Error")},
			480, DispNoAnswer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			node, _, alice, bobs := cluster(t, tc.phones...)
			call := alice.dial(t, node, "1002", alice.sdp("sendrecv"))
			for _, bob := range bobs {
				bob.expect(t, "INVITE")
			}
			seen, err := call.result(t)
			var de *sipgo.ErrDialogResponse
			if !errors.As(err, &de) || de.Res.StatusCode != tc.code {
				t.Fatalf("caller got %v, want %d", err, tc.code)
			}
			checkProgress(t, seen, 0, tc.code)
			recs := node.journal.wait(t, 1)
			checkRecord(t, recs[0], call.callID, wantRecord{tc.disp, tc.code, "bob", "1002", DestUser})
			settled(t, node)
		})
	}
}

// TestCallCancelled: the caller hangs up while bob's phones ring; they
// are cancelled and the caller gets 487.
func TestCallCancelled(t *testing.T) {
	t.Parallel()
	node, _, alice, bobs := cluster(t, onCue, onCue)
	call := alice.dial(t, node, "1002", alice.sdp("sendrecv"))
	for _, bob := range bobs {
		bob.expect(t, "INVITE", "180")
	}
	call.progress(t, 180)
	call.cancel()
	if _, err := call.result(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("caller's cancelled INVITE ended with %v", err)
	}
	if got := call.sess.InviteResponse.StatusCode; got != 487 {
		t.Errorf("cancelled INVITE answered %d, want 487", got)
	}
	for _, bob := range bobs {
		bob.expect(t, "CANCEL")
	}
	recs := node.journal.wait(t, 1)
	checkRecord(t, recs[0], call.callID, wantRecord{DispCancelled, 487, "bob", "1002", DestUser})
	settled(t, node)
	for _, bob := range bobs {
		bob.idle(t)
	}
}

// inDialog is either side's dialog, as a test phone drives it.
type inDialog interface {
	Do(ctx context.Context, req *sip.Request) (*sip.Response, error)
	WriteRequest(req *sip.Request) error
}

// TestInDialogPassed: re-INVITE and UPDATE (hold: an offer with
// a=sendonly) and INFO (DTMF) from either party reach the other with
// their body, and the other's answer comes back, refusals included.
func TestInDialogPassed(t *testing.T) {
	t.Parallel()
	const dtmf = "Signal=5\r\nDuration=160\r\n"
	for _, tc := range []struct {
		name       string
		method     sip.RequestMethod
		fromCallee bool
		refuse     int // the other party's answer, when not 200
	}{
		{name: "re-INVITE from the caller", method: sip.INVITE},
		{name: "re-INVITE from the callee", method: sip.INVITE, fromCallee: true},
		{name: "UPDATE from the caller", method: sip.UPDATE},
		{name: "UPDATE from the callee", method: sip.UPDATE, fromCallee: true},
		{name: "INFO from the caller", method: sip.INFO},
		{name: "INFO from the callee", method: sip.INFO, fromCallee: true},
		{name: "re-INVITE the callee refuses", method: sip.INVITE, refuse: 488},
		{name: "UPDATE the caller refuses", method: sip.UPDATE, fromCallee: true, refuse: 488},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			node, _, alice, bobs := cluster(t, onCue)
			bob := bobs[0]
			call, ds := connect(t, node, alice, "1002", bob)
			var sender inDialog = call.sess
			target := call.sess.InviteResponse.Contact().Address
			from, to := alice, bob
			if tc.fromCallee {
				sender, target = ds, ds.InviteRequest.Contact().Address
				from, to = bob, alice
			}
			to.refuseInDialog.Store(int32(tc.refuse))

			body, ctype := []byte(dtmf), "application/dtmf-relay"
			if tc.method != sip.INFO {
				body, ctype = from.sdp("sendonly"), "application/sdp"
			}
			req := sip.NewRequest(tc.method, target)
			req.AppendHeader(sip.NewHeader("Content-Type", ctype))
			req.SetBody(body)
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			res, err := sender.Do(ctx, req)
			if err != nil {
				t.Fatalf("%s: %v", tc.method, err)
			}

			got := to.expect(t, tc.method.String()).req
			if !bytes.Equal(got.Body(), body) {
				t.Errorf("%s reached %s with body:\n%s\nwant:\n%s", tc.method, to.name, got.Body(), body)
			}
			if ct := got.GetHeader("Content-Type"); ct == nil || ct.Value() != ctype {
				t.Errorf("%s reached %s with Content-Type %v, want %s", tc.method, to.name, ct, ctype)
			}
			if tc.refuse != 0 {
				to.expect(t, strconv.Itoa(tc.refuse))
				if res.StatusCode != tc.refuse {
					t.Fatalf("%s answered %s, want %d", tc.method, res.StartLine(), tc.refuse)
				}
			} else {
				answer := to.expect(t, "200").body
				if tc.method == sip.INVITE {
					to.expect(t, "ACK") // the node acknowledges the answer on the far leg
				}
				if res.StatusCode != 200 || !bytes.Equal(res.Body(), answer) {
					t.Fatalf("%s answered %s with body:\n%s\nwant 200 with:\n%s", tc.method, res.StartLine(), res.Body(), answer)
				}
				if ct := res.GetHeader("Content-Type"); answer != nil && (ct == nil || ct.Value() != "application/sdp") {
					t.Errorf("answer's Content-Type %v", ct)
				}
				if tc.method == sip.INVITE {
					if err := sender.WriteRequest(sip.NewRequest(sip.ACK, target)); err != nil {
						t.Fatal(err)
					}
				}
			}

			if err := call.sess.Bye(context.Background()); err != nil {
				t.Fatalf("caller's BYE: %v", err)
			}
			bob.expect(t, "BYE")
			recs := node.journal.wait(t, 1)
			checkRecord(t, recs[0], call.callID, wantRecord{DispAnswered, 200, "bob", "1002", DestUser})
			settled(t, node)
			alice.idle(t)
			bob.idle(t)
		})
	}
}

// TestActiveCountsConnectedCalls: two calls at once, hung up one by one.
func TestActiveCountsConnectedCalls(t *testing.T) {
	t.Parallel()
	node, dir, alice, bobs := cluster(t, onCue)
	carol := startPhone(t, "carol1", onCue)
	dir.bind("carol", "b-carol1", carol.contactURI, carol.addr, "n1")
	if node.b.Active() != 0 {
		t.Fatalf("Active() = %d before any call", node.b.Active())
	}
	toBob, _ := connect(t, node, alice, "1002", bobs[0])
	if got := node.b.Active(); got != 1 {
		t.Fatalf("Active() = %d with one call", got)
	}
	toCarol, carolDS := connect(t, node, alice, "1003", carol)
	if got := node.b.Active(); got != 2 {
		t.Fatalf("Active() = %d with two calls", got)
	}

	if err := toBob.sess.Bye(context.Background()); err != nil {
		t.Fatal(err)
	}
	bobs[0].expect(t, "BYE")
	eventually(t, "Active() = 1", func() bool { return node.b.Active() == 1 })
	if err := carolDS.Bye(context.Background()); err != nil {
		t.Fatal(err)
	}
	alice.expect(t, "BYE")
	settled(t, node)
	recs := node.journal.wait(t, 2)
	checkRecord(t, recs[0], toBob.callID, wantRecord{DispAnswered, 200, "bob", "1002", DestUser})
	checkRecord(t, recs[1], toCarol.callID, wantRecord{DispAnswered, 200, "carol", "1003", DestUser})
}

// TestCallThroughAnotherNode: bob's phone is registered on node n2; alice
// calls through n1, which hands the call to n2 (a signed hop INVITE) and
// n2 rings the phone. Only the caller's node records the call.
func TestCallThroughAnotherNode(t *testing.T) {
	t.Parallel()
	for _, hangUp := range []string{"caller", "callee"} {
		t.Run(hangUp+" hangs up", func(t *testing.T) {
			t.Parallel()
			dir := newPhoneBook()
			n1, n2 := startNode(t, "n1", dir), startNode(t, "n2", dir)
			dir.member("n1", n1.addr)
			dir.member("n2", n2.addr)
			alice, bob := startPhone(t, "alice", onCue), startPhone(t, "bob1", onCue)
			dir.bind("bob", "b-bob1", bob.contactURI, bob.addr, "n2")

			call := alice.dial(t, n1, "1002", alice.sdp("sendrecv"))
			inv := bob.expect(t, "INVITE").req
			if !bytes.Equal(inv.Body(), call.offer) {
				t.Errorf("callee's INVITE body:\n%s\nwant the caller's offer:\n%s", inv.Body(), call.offer)
			}
			if from := inv.From(); from.Address.User != "1001" || from.DisplayName != "Alice" {
				t.Errorf("callee sees the call from %q <%s>, want Alice <1001>", from.DisplayName, from.Address.User)
			}
			if inv.GetHeader("X-Outpost-Hop-Auth") != nil || inv.GetHeader("X-Outpost-Binding") != nil {
				t.Error("the phone was sent the node-to-node headers")
			}
			bob.expect(t, "180")
			call.progress(t, 180)
			bob.pickUp(t)
			call.answered(t, bob.expect(t, "200").body)
			bob.expect(t, "ACK")
			ds := bob.session(t)
			n2.tookAck(t, "") // n1's, for its leg to n2
			eventually(t, "both nodes to carry the call", func() bool { return n1.b.Active() == 1 && n2.b.Active() == 1 })

			if hangUp == "caller" {
				if err := call.sess.Bye(context.Background()); err != nil {
					t.Fatalf("caller's BYE: %v", err)
				}
				bob.expect(t, "BYE")
			} else {
				if err := ds.Bye(context.Background()); err != nil {
					t.Fatalf("callee's BYE: %v", err)
				}
				alice.expect(t, "BYE")
			}
			recs := n1.journal.wait(t, 1)
			checkRecord(t, recs[0], call.callID, wantRecord{DispAnswered, 200, "bob", "1002", DestUser})
			settled(t, n1)
			settled(t, n2)
			if recs := n2.journal.all(); len(recs) != 0 {
				t.Errorf("the callee's node recorded %+v", recs)
			}
			alice.idle(t)
			bob.idle(t)
		})
	}
}

// TestCalleeHangsUpBeforeCallerAcks: bob hangs up as soon as he has the
// node's ACK, before the caller has acknowledged the 200 it was sent. The
// node answers bob's BYE, so it must hang the caller up too. (Until
// 7d730e8 the node held the call only from the caller's ACK on, and the
// caller was left connected to nobody.)
func TestCalleeHangsUpBeforeCallerAcks(t *testing.T) {
	t.Parallel()
	node, _, alice, bobs := cluster(t, onCue)
	bob := bobs[0]
	call := alice.dial(t, node, "1002", alice.sdp("sendrecv"))
	bob.expect(t, "INVITE", "180")
	call.progress(t, 180)
	bob.pickUp(t)
	call.answer200(t, bob.expect(t, "200").body)
	bob.expect(t, "ACK")
	if err := bob.session(t).Bye(context.Background()); err != nil {
		t.Fatalf("callee's BYE: %v", err)
	}
	if err := call.sess.Ack(context.Background()); err != nil {
		t.Fatal(err)
	}
	alice.expect(t, "BYE")
	recs := node.journal.wait(t, 1)
	checkRecord(t, recs[0], call.callID, wantRecord{DispAnswered, 200, "bob", "1002", DestUser})
	settled(t, node)
	alice.idle(t)
	bob.idle(t)
}

// TestEndedDialogsForgotten: however a call ends, the node then holds
// none of its dialogs, and a late BYE in the caller's dialog gets 481.
// (Until 7d730e8 sipgo's DialogServerCache kept the caller's dialog of
// every call not answered or hung up by the callee.)
func TestEndedDialogsForgotten(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		phone script
		end   func(t *testing.T, node *simNode, alice, bob *simPhone) *outgoing
	}{
		{name: "caller hung up", phone: onCue, end: func(t *testing.T, node *simNode, alice, bob *simPhone) *outgoing {
			call, _ := connect(t, node, alice, "1002", bob)
			if err := call.sess.Bye(context.Background()); err != nil {
				t.Fatal(err)
			}
			bob.expect(t, "BYE")
			return call
		}},
		{name: "callee hung up", phone: onCue, end: func(t *testing.T, node *simNode, alice, bob *simPhone) *outgoing {
			call, ds := connect(t, node, alice, "1002", bob)
			if err := ds.Bye(context.Background()); err != nil {
				t.Fatal(err)
			}
			alice.expect(t, "BYE")
			return call
		}},
		{name: "busy", phone: refusing(486, "Busy Here"), end: func(t *testing.T, node *simNode, alice, bob *simPhone) *outgoing {
			call := alice.dial(t, node, "1002", alice.sdp("sendrecv"))
			if _, err := call.result(t); err == nil {
				t.Fatal("busy call answered")
			}
			return call
		}},
		{name: "cancelled", phone: onCue, end: func(t *testing.T, node *simNode, alice, bob *simPhone) *outgoing {
			call := alice.dial(t, node, "1002", alice.sdp("sendrecv"))
			bob.expect(t, "INVITE", "180")
			call.progress(t, 180)
			call.cancel()
			call.result(t)
			return call
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			node, _, alice, bobs := cluster(t, tc.phone)
			call := tc.end(t, node, alice, bobs[0])
			node.journal.wait(t, 1)
			settled(t, node)
			if got := call.byeIn(t, alice, inviteCSeq+10); got != 481 {
				t.Fatalf("BYE in the dialog of a call that is over answered %d, want 481", got)
			}
		})
	}
}

// --- regressions ----------------------------------------------------------------

// TestByeOutOfOrder: a BYE with a CSeq below the INVITE's is out of order;
// the node answers it 500 and the call goes on (RFC 3261 §12.2.2).
func TestByeOutOfOrder(t *testing.T) {
	t.Parallel()
	node, _, alice, bobs := cluster(t, onCue)
	call, _ := connect(t, node, alice, "1002", bobs[0])
	if got := call.byeIn(t, alice, inviteCSeq-1); got != 500 {
		t.Errorf("out-of-order BYE answered %d (0: not at all), want 500", got)
	}
	if got := node.b.Active(); got != 1 {
		t.Errorf("Active() = %d after an out-of-order BYE, want the call still up", got)
	}
	bobs[0].idle(t)
}

// TestReinviteAnswerHasContact: a 2xx to an INVITE, re-INVITEs included,
// carries a Contact (RFC 3261 §12.1.1 and Table 3).
func TestReinviteAnswerHasContact(t *testing.T) {
	t.Parallel()
	node, _, alice, bobs := cluster(t, onCue)
	call, _ := connect(t, node, alice, "1002", bobs[0])
	target := call.sess.InviteResponse.Contact().Address
	req := sip.NewRequest(sip.INVITE, target)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(alice.sdp("sendonly"))
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	res, err := call.sess.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	_ = call.sess.WriteRequest(sip.NewRequest(sip.ACK, target))
	if res.StatusCode != 200 || res.Contact() == nil {
		t.Fatalf("re-INVITE answered %s with Contact %v, want 200 with a Contact", res.StartLine(), res.Contact())
	}
}

// TestLateOffer: a caller may send its INVITE without SDP; the callee's
// 200 then carries the offer and the caller's ACK the answer, which the
// callee must get in its ACK (RFC 3261 §13.2.1, RFC 3264).
func TestLateOffer(t *testing.T) {
	t.Parallel()
	node, _, alice, bobs := cluster(t, onCue)
	bob := bobs[0]
	call := alice.dial(t, node, "1002", nil)
	if inv := bob.expect(t, "INVITE").req; len(inv.Body()) != 0 {
		t.Fatalf("callee's INVITE has a body: %s", inv.Body())
	}
	bob.expect(t, "180")
	call.progress(t, 180)
	bob.pickUp(t)
	call.answer200(t, bob.expect(t, "200").body)
	answer := alice.sdp("sendrecv")
	ack := sip.NewRequest(sip.ACK, call.sess.InviteResponse.Contact().Address)
	ack.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	ack.SetBody(answer)
	if err := call.sess.WriteAck(context.Background(), ack); err != nil {
		t.Fatal(err)
	}
	if got := bob.expect(t, "ACK").body; !bytes.Equal(got, answer) {
		t.Fatalf("callee's ACK body:\n%s\nwant the caller's answer:\n%s", got, answer)
	}
}

// TestForkAnswerCrossesCancel: bob's second phone answers just as the node
// cancels it (its 200 crosses the CANCEL). The node must acknowledge that
// 200 and hang the phone up with a BYE (RFC 3261 §9.1, §15), or the phone
// stays off-hook in a call nobody is in.
func TestForkAnswerCrossesCancel(t *testing.T) {
	t.Parallel()
	node, dir, alice, bobs := cluster(t, onCue)
	raw := startRawPhone(t)
	dir.bind("bob", "b-raw", "sip:bob@"+raw.addr, raw.addr, "n1")

	call := alice.dial(t, node, "1002", alice.sdp("sendrecv"))
	inv, from := raw.request(t, sip.INVITE)
	inv.To().Params.Add("tag", "raw-tag")
	raw.send(t, sip.NewResponseFromRequest(inv, 180, "Ringing", nil), from)
	bobs[0].expect(t, "INVITE", "180")
	call.progress(t, 180)
	bobs[0].pickUp(t)
	answer := bobs[0].expect(t, "200").body

	cancelReq, cancelFrom := raw.request(t, sip.CANCEL)
	raw.send(t, sip.NewResponseFromRequest(cancelReq, 200, "OK", nil), cancelFrom)
	ok := sip.NewResponseFromRequest(inv, 200, "OK", []byte("v=0\r\no=raw 1 1 IN IP4 127.0.0.1\r\ns=-\r\n"+
		"c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"))
	ok.AppendHeader(sip.NewHeader("Contact", "<sip:bob@"+raw.addr+">"))
	ok.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	raw.send(t, ok, from)

	call.answered(t, answer)
	bobs[0].expect(t, "ACK")
	raw.request(t, sip.ACK)
	bye, byeFrom := raw.request(t, sip.BYE)
	raw.send(t, sip.NewResponseFromRequest(bye, 200, "OK", nil), byeFrom)
}

// TestForkStaleContact: one of bob's two contacts is stale (the phone is
// gone and answers nothing). When the other answers, the caller must be
// connected at once, not when the stale contact's INVITE times out.
func TestForkStaleContact(t *testing.T) {
	t.Parallel()
	node, dir, alice, bobs := cluster(t, onCue)
	stale := startRawPhone(t)
	dir.bind("bob", "b-stale", "sip:bob@"+stale.addr, stale.addr, "n1")

	call := alice.dial(t, node, "1002", alice.sdp("sendrecv"))
	stale.request(t, sip.INVITE)
	bobs[0].expect(t, "INVITE", "180")
	call.progress(t, 180)
	bobs[0].pickUp(t)
	call.answered(t, bobs[0].expect(t, "200").body)
	bobs[0].expect(t, "ACK")
}
