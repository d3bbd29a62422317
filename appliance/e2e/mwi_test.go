package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// authorized sends req from the phone and answers a 401 or 407 with its
// credentials; it fails the test unless the final answer is 200.
func (p *goPhone) authorized(ctx context.Context, t *testing.T, req *sip.Request) *sip.Response {
	t.Helper()
	req.SetDestination(p.node.sipUDP)
	res, err := p.client.Do(ctx, req)
	if err == nil && (res.StatusCode == 401 || res.StatusCode == 407) {
		res, err = p.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: p.user, Password: p.password})
	}
	if err != nil {
		t.Fatalf("%s %s: %v", p.user, req.Method, err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("%s %s: %d %s", p.user, req.Method, res.StatusCode, res.Reason)
	}
	return res
}

// aorRequest is a request from the phone's user to its own AOR.
func (p *goPhone) aorRequest(method sip.RequestMethod, uri sip.Uri) *sip.Request {
	req := sip.NewRequest(method, uri)
	aor := sip.Uri{Scheme: "sip", User: p.user, Host: "acme.example"}
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(10))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	req.AppendHeader(p.contact.Clone())
	return req
}

// register registers the phone's contact for two minutes.
func (p *goPhone) register(ctx context.Context, t *testing.T) {
	t.Helper()
	req := p.aorRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: "acme.example"})
	req.AppendHeader(sip.NewHeader("Expires", "120"))
	p.authorized(ctx, t, req)
}

// subscribeMWI subscribes to the user's own message summary.
func (p *goPhone) subscribeMWI(ctx context.Context, t *testing.T) *sip.Response {
	t.Helper()
	req := p.aorRequest(sip.SUBSCRIBE, sip.Uri{Scheme: "sip", User: p.user, Host: "acme.example"})
	req.AppendHeader(sip.NewHeader("Event", "message-summary"))
	req.AppendHeader(sip.NewHeader("Accept", "application/simple-message-summary"))
	req.AppendHeader(sip.NewHeader("Expires", "600"))
	return p.authorized(ctx, t, req)
}

// awaitSummary waits for a NOTIFY whose body says want (e.g.
// "Voice-Message: 1/0") and returns its body.
func (p *goPhone) awaitSummary(t *testing.T, n *node, want string, within time.Duration) string {
	t.Helper()
	deadline := time.After(within)
	var seen []string
	for {
		select {
		case body := <-p.notifies:
			if strings.Contains(body, want) {
				return body
			}
			seen = append(seen, body)
		case <-deadline:
			t.Fatalf("%s: no NOTIFY with %q in %v (got %q)\n%s", p.user, want, within, seen, n.log())
		}
	}
}

// A message is left for carol while no phone of hers is registered. Her
// desk phone registers and, without subscribing, gets an unsolicited
// NOTIFY saying 1 new message; another phone of hers subscribes to
// message-summary and gets 1/0 at once. She dials *97 and listens: the
// message is saved, and both phones hear 0/1.
func TestVoicemailMessageWaiting(t *testing.T) {
	n := startNode(t, "mwi", nodeOpts{bootstrapSnapshot: writeFile(t, "demo.json", demoSnapshot(t))})
	waitRevision(t, []*node{n}, 1)
	callers := writeCallersCSV(t, [][4]string{{"alice", "pw-alice", "acme.example", "1003"}})
	if res := runSIPp(t, scenarioPath(t, "uac-voicemail.xml"), n.sipUDP, 1, 40*time.Second, "-inf", callers); res.exit != 0 {
		t.Fatalf("leaving a message: sipp exit %d\n%s\n%s", res.exit, res.stdout, n.log())
	}
	eventually(t, 10*time.Second, "carol's message recorded", func(ctx context.Context) error {
		recs, err := n.client().Journal(ctx, 10)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Dialled == "1003" && r.Disposition == "voicemail" {
				return nil
			}
		}
		return fmt.Errorf("no voicemail record for 1003 in %+v", recs)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	desk := newGoPhone(t, n, "carol", "pw-carol")
	desk.register(ctx, t)
	body := desk.awaitSummary(t, n, "Voice-Message: 1/0", 10*time.Second)
	if !strings.HasPrefix(body, "Messages-Waiting: yes\r\n") || !strings.Contains(body, "Message-Account: sip:carol@acme.example\r\n") {
		t.Errorf("unsolicited NOTIFY body %q", body)
	}

	lamp := newGoPhone(t, n, "carol", "pw-carol")
	if res := lamp.subscribeMWI(ctx, t); res.GetHeader("Expires") == nil {
		t.Errorf("SUBSCRIBE answered without Expires")
	}
	lamp.awaitSummary(t, n, "Voice-Message: 1/0", 5*time.Second)

	handset := newGoPhone(t, n, "carol", "pw-carol")
	s := handset.call(ctx, t, "*97")
	defer func() { _ = s.Bye(context.Background()) }()
	// The count, then the message (several seconds): heard, it is saved.
	lamp.awaitSummary(t, n, "Voice-Message: 0/1", 40*time.Second)
	desk.awaitSummary(t, n, "Voice-Message: 0/1", 5*time.Second)
}
