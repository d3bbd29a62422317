package embed

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/calls"
	"github.com/outpost-voice/outpost/appliance/store"
)

// sse is one event read from the stream ("" name: a comment).
type sse struct {
	name string
	data map[string]any
	text string
}

// stream is an open /embed/api/events.
type stream struct {
	t      *testing.T
	resp   *http.Response
	events chan sse
	cancel context.CancelFunc
}

func openStream(t *testing.T, srv *httptest.Server, tok string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/embed/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &stream{t: t, resp: resp, events: make(chan sse, 100), cancel: cancel}
	go func() {
		defer close(s.events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var cur sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if cur.name != "" || cur.text != "" {
					s.events <- cur
				}
				cur = sse{}
			case strings.HasPrefix(line, ":"):
				cur.text = line
			case strings.HasPrefix(line, "event: "):
				cur.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				cur.text = strings.TrimPrefix(line, "data: ")
				_ = json.Unmarshal([]byte(cur.text), &cur.data)
			}
		}
	}()
	return s
}

// next is the next event that is not a heartbeat.
func (s *stream) next() sse {
	s.t.Helper()
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				s.t.Fatal("the stream ended")
			}
			if ev.name == "" {
				continue
			}
			return ev
		case <-time.After(5 * time.Second):
			s.t.Fatal("no event in 5s")
		}
	}
}

// zcc is the next event, which must be a message for the host of type typ.
func (s *stream) zcc(typ string) map[string]any {
	s.t.Helper()
	ev := s.next()
	if ev.name != "zcc" || ev.data["type"] != typ {
		s.t.Fatalf("got %s %s, want zcc %s", ev.name, ev.text, typ)
	}
	d, _ := ev.data["data"].(map[string]any)
	return d
}

// engagement is the next event, which must be the widget's list update.
func (s *stream) engagement(id, state string) {
	s.t.Helper()
	ev := s.next()
	if ev.name != "engagement" || ev.data["engagementId"] != id || ev.data["state"] != state {
		s.t.Fatalf("got %s %s, want engagement %s %s", ev.name, ev.text, id, state)
	}
}

func check(t *testing.T, what string, got map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("%s.%s = %#v, want %#v (all: %v)", what, k, got[k], v, got)
		}
	}
}

// The stream: the state first, then each engagement event as
// embed-events.md's table maps it, in order.
func TestEventStream(t *testing.T) {
	f := newFixture(t, func(d *Deps) { d.Heartbeat = time.Hour })
	t0 := time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)
	f.backend.engagements["alice"] = []calls.Engagement{{ID: "e1", Direction: "inbound", From: "+14155550100", To: "1001", State: calls.EngConnected, Created: t0}}
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	defer f.w.Close() // first: ends the streams srv.Close waits for
	s := openStream(t, srv, f.signIn("alice"))
	st := s.next()
	if st.name != "state" {
		t.Fatalf("first event %s %s, want state", st.name, st.text)
	}
	check(t, "state", st.data, map[string]any{
		"user":        map[string]any{"username": "alice", "name": "Alice Adams", "extension": "1001"},
		"agentStatus": map[string]any{"statusCode": float64(1), "status": "Ready"},
	})
	if es := st.data["engagements"].([]any); len(es) != 1 || es[0].(map[string]any)["engagementId"] != "e1" {
		t.Errorf("state engagements %v", es)
	}
	if n := f.backend.subscribers("alice"); n != 1 {
		t.Fatalf("%d subscriptions", n)
	}

	out := calls.Engagement{ID: "e2", Direction: "outbound", From: "alice", To: "1002", State: calls.EngRinging, Created: t0}
	send := func(ev calls.EngagementEvent) { f.backend.send("alice", ev) }
	send(calls.EngagementEvent{Kind: calls.EvStarted, Engagement: out})
	s.engagement("e2", "ringing")
	check(t, "outbound-call-started", s.zcc(MsgOutboundStarted), map[string]any{
		"engagementId": "e2", "from": "alice", "to": "1002", "queueName": "", "startTs": float64(t0.UnixMilli())})

	send(calls.EngagementEvent{Kind: calls.EvRinging, Engagement: out})
	s.engagement("e2", "ringing")
	check(t, "call-ringing", s.zcc(MsgCallRinging), map[string]any{
		"engagementId": "e2", "from": "alice", "to": "1002", "createTs": float64(t0.UnixMilli()), "isConference": false, "isTransfer": false})

	out.State, out.Accepted = calls.EngConnected, t0.Add(3*time.Second)
	send(calls.EngagementEvent{Kind: calls.EvConnected, Engagement: out})
	s.engagement("e2", "connected")
	check(t, "call-connected", s.zcc(MsgCallConnected), map[string]any{
		"engagementId": "e2", "direction": "outbound", "from": "alice", "to": "1002", "acceptTs": float64(t0.Add(3 * time.Second).UnixMilli())})

	out.Held = true
	send(calls.EngagementEvent{Kind: calls.EvChanged, Engagement: out})
	s.engagement("e2", "connected") // the list only: no message for the host

	out.State = calls.EngEnded
	send(calls.EngagementEvent{Kind: calls.EvEnded, Engagement: out})
	s.engagement("e2", "ended")
	check(t, "call-ended", s.zcc(MsgCallEnded), map[string]any{"engagementId": "e2", "completeTs": float64(f.clock.Now().UnixMilli())})

	rec := store.CallRecord{ID: "e2", Caller: "alice", Callee: "bob", Dialled: "1002", Start: t0, Answer: t0.Add(3 * time.Second),
		End: t0.Add(65 * time.Second), Disposition: "answered", Status: 200}
	send(calls.EngagementEvent{Kind: calls.EvCallLog, Engagement: calls.Engagement{ID: "e2"}, Record: &rec})
	log := s.zcc(MsgCallLog)
	check(t, "call-log", log, map[string]any{"engagementId": "e2", "user": map[string]any{}})
	check(t, "call-log.objectRecord", log["objectRecord"].(map[string]any), map[string]any{
		"callType": "outbound", "from": "alice", "to": "1002", "callDuration": float64(62),
		"callStartTime": float64(t0.UnixMilli()), "callEndTime": float64(t0.Add(65 * time.Second).UnixMilli()),
		"callQueue": "", "agentExtension": "1001", "agentName": "Alice Adams", "notes": []any{}})

	in := calls.Engagement{ID: "e3", Direction: "inbound", From: "+14155550199", To: "1900", Queue: "Front Desk", State: calls.EngRinging, Created: t0}
	send(calls.EngagementEvent{Kind: calls.EvRinging, Engagement: in})
	s.engagement("e3", "ringing")
	check(t, "call-ringing (inbound)", s.zcc(MsgCallRinging), map[string]any{"engagementId": "e3", "from": "+14155550199", "queueName": "Front Desk"})
	check(t, "incomingPhone-request", s.zcc(MsgIncomingPhone), map[string]any{"incomingPhoneNumber": "+14155550199", "engagementId": "e3", "channel": "voice"})

	send(calls.EngagementEvent{Kind: calls.EvNotConnected, Engagement: in, Status: 487, Reason: "cancelled"})
	s.engagement("e3", "ended")
	check(t, "inbound-not-connected", s.zcc(MsgInboundNotConnected), map[string]any{"engagementId": "e3", "reasonCode": float64(487), "message": "Cancelled (SIP 487)"})

	// A call log whose engagement the stream never saw: from the record.
	rec = store.CallRecord{ID: "e4", Caller: "+14155550199", Callee: "alice", Dialled: "1001", Start: t0, End: t0.Add(time.Second), Disposition: "no_answer"}
	send(calls.EngagementEvent{Kind: calls.EvCallLog, Engagement: calls.Engagement{ID: "e4"}, Record: &rec})
	check(t, "call-log (unseen)", s.zcc(MsgCallLog)["objectRecord"].(map[string]any), map[string]any{
		"callType": "inbound", "from": "+14155550199", "to": "1001", "callDuration": float64(0)})

	// A call log whose engagement the event carries (the backend's word).
	rec = store.CallRecord{ID: "e6", Caller: "carol", Callee: "alice", Dialled: "1900", Start: t0, Answer: t0.Add(time.Second), End: t0.Add(11 * time.Second)}
	send(calls.EngagementEvent{Kind: calls.EvCallLog, Engagement: calls.Engagement{ID: "e6", Direction: "inbound", From: "1003", To: "1001", Queue: "Front Desk"}, Record: &rec})
	check(t, "call-log (from the event)", s.zcc(MsgCallLog)["objectRecord"].(map[string]any), map[string]any{
		"callType": "inbound", "from": "1003", "to": "1001", "callQueue": "Front Desk", "callDuration": float64(10)})

	out2 := calls.Engagement{ID: "e5", Direction: "outbound", From: "alice", To: "1003", State: calls.EngRinging, Created: t0}
	send(calls.EngagementEvent{Kind: calls.EvNotConnected, Engagement: out2, Status: 486, Reason: "busy"})
	s.engagement("e5", "ended")
	check(t, "outbound-not-connected", s.zcc(MsgOutboundNotConnected), map[string]any{"engagementId": "e5", "reasonCode": float64(486), "message": "Busy (SIP 486)"})

	send(calls.EngagementEvent{Kind: calls.EvAgentStatus, AgentStatus: calls.AgentOccupied})
	check(t, "agent-status", s.zcc(MsgAgentStatus), map[string]any{"statusCode": float64(3), "status": "Occupied"})

	// The client goes: the subscription ends.
	s.cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.backend.mu.Lock()
		n := f.backend.unsubscribe
		f.backend.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the subscription outlived its client")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Heartbeats every Heartbeat; a token that stops being valid ends the
// stream with signed-out; Close ends the others.
func TestEventStreamHeartbeatAndEnd(t *testing.T) {
	f := newFixture(t, func(d *Deps) { d.Heartbeat = 20 * time.Millisecond })
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	defer f.w.Close() // first: ends the streams srv.Close waits for
	alice := openStream(t, srv, f.signIn("alice"))
	bob := openStream(t, srv, f.signIn("bob"))
	if ev := alice.next(); ev.name != "state" {
		t.Fatal(ev)
	}
	beats := 0
	for beats < 2 {
		select {
		case ev := <-alice.events:
			if ev.text == ": heartbeat" {
				beats++
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no heartbeat")
		}
	}
	f.dir.setPassword("alice", "new")
	ev := alice.next()
	if ev.name != "signed-out" || !strings.Contains(ev.data["error"].(string), "revoked") {
		t.Fatalf("after a password change: %s %s", ev.name, ev.text)
	}
	if _, ok := <-alice.events; ok {
		t.Error("the stream went on after signed-out")
	}
	if ev := bob.next(); ev.name != "state" {
		t.Fatal(ev)
	}
	f.w.Close()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-bob.events:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("Close did not end the stream")
		}
	}
}

// A user may not open streams without end.
func TestEventStreamLimit(t *testing.T) {
	f := newFixture(t, func(d *Deps) { d.Heartbeat = time.Hour })
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	defer f.w.Close() // first: ends the streams srv.Close waits for
	tok := f.signIn("alice")
	for range maxStreamsPerUser {
		openStream(t, srv, tok).next()
	}
	req, _ := http.NewRequest("GET", srv.URL+"/embed/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("stream %d: %d, want 429", maxStreamsPerUser+1, resp.StatusCode)
	}
}
