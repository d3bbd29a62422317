package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/media/g711"
)

// Invite information end to end (issue 8): a call's dial-in number and PIN
// through the REST API, a caller from the PSTN (SIPp at the SBC's address,
// an rtpPhone for its media) who dials in with the PIN as RFC 4733 events
// and joins the call, one who enters wrong PINs and is hung up, and the
// SMS invitation as a SIP MESSAGE through the trunks.

const (
	// dialInNumber is the snapshot's numbers[] entry whose route is
	// {"type":"conference"}.
	dialInNumber = "+16505550150"
	// smsNumber is where the SMS invitations go.
	smsNumber = "+16505550177"
)

// dialInSnapshot is the demo account with its HQ trunks at the SIPp SBCs,
// a dial-in number, and the call-out settings (the dedicated US caller
// ID).
func dialInSnapshot(t *testing.T) []byte {
	return withRevision(t, trunkSnapshot(t), 1, func(m map[string]any) {
		m["numbers"] = append(m["numbers"].([]any),
			map[string]any{"number": dialInNumber, "site": "hq", "route": map[string]any{"type": "conference"}})
		m["callout"] = map[string]any{"greeting_prompt": "callout-greeting", "require_press_1": true,
			"caller_ids": []any{map[string]any{"country": "US", "number": calloutCallerID, "dedicated": true}}}
	})
}

// inviteInfo is GET /api/v1/calls/{id}/invite-info.
type inviteInfo struct {
	DialIn []struct {
		Number string `json:"number"`
		Site   string `json:"site"`
	} `json:"dial_in"`
	PIN     string `json:"pin"`
	SMSText string `json:"sms_text"`
}

// getAPI GETs url with token and returns the status and body.
func getAPI(t testing.TB, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, body
}

// widgetSession signs username in to the call widget (POST
// /embed/api/session with the demo password) and returns the session
// token, which the call endpoints take from the call's owner.
func widgetSession(t *testing.T, n *node, username string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+n.httpAddr+"/embed/api/session",
		strings.NewReader(`{"username":"`+username+`","password":"pw-`+username+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	code := res.StatusCode
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &tok); code != http.StatusOK || err != nil || tok.Token == "" {
		t.Fatalf("widget session for %s: %d %s", username, code, body)
	}
	return tok.Token
}

// getInviteInfo reads call id's invite information with the admin token.
func getInviteInfo(t *testing.T, n *node, id string) inviteInfo {
	t.Helper()
	code, body := getAPI(t, "http://"+n.httpAddr+"/api/v1/calls/"+id+"/invite-info", testToken)
	var info inviteInfo
	if err := json.Unmarshal(body, &info); code != http.StatusOK || err != nil {
		t.Fatalf("GET invite-info: %d %s", code, body)
	}
	return info
}

// pressKeys sends keys as RFC 4733 events, a key every 300 ms.
func (ph *rtpPhone) pressKeys(keys string) {
	ph.t.Helper()
	for i := 0; i < len(keys); i++ {
		ph.pressKey(keys[i])
		time.Sleep(300 * time.Millisecond)
	}
}

// dialInCall has the SBC at ip call the dial-in number from callerNumber,
// with scenario (sbc-dialin.xml or sbc-dialin-refused.xml) whose media is
// ph, staying hold (or waiting that long for the node's BYE).
func dialInCall(t *testing.T, n *node, ip, scenario, callerNumber string, ph *rtpPhone, hold time.Duration) *sippRun {
	t.Helper()
	ms := strconv.Itoa(int(hold.Milliseconds()))
	vars := map[string]string{"MEDIA_PORT": ph.port(), "HOLD_MS": ms}
	if scenario == "sbc-dialin-refused.xml" {
		vars = map[string]string{"MEDIA_PORT": ph.port(), "WAIT_MS": ms}
	}
	rows := writeFile(t, "dialin-"+callerNumber+".csv", []byte("SEQUENTIAL\n"+dialInNumber+";"+callerNumber+"\n"))
	return startSIPp(t, sippTemplate(t, scenario, vars), n.sipUDP, 1, hold+30*time.Second,
		"-inf", rows, "-i", ip, "-mi", ip, "-p", strconv.Itoa(sbcSIPPort), "-aa")
}

// noRace fails the test if the node (built with -race under go test
// -race) reported a data race.
func noRace(t *testing.T, n *node) {
	t.Helper()
	if log := n.log(); strings.Contains(log, "WARNING: DATA RACE") {
		t.Errorf("the node reported a data race:\n%s", log[strings.Index(log, "WARNING: DATA RACE"):])
	}
}

// dialInLog is the node's log lines about dial-ins.
func dialInLog(n *node) string {
	var out []string
	for _, line := range strings.Split(n.log(), "\n") {
		if strings.Contains(line, "dial-in") || strings.Contains(line, "ivr") || strings.Contains(line, "conference") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestDialIn: alice calls bob; the call's invite information (the admin's
// or alice's widget session; bob's is refused 403, an unknown call 404) has
// the dial-in number and a PIN. A caller from the PSTN (through the
// backup SBC's address) enters three wrong PINs and is hung up, the call
// untouched. Another (the primary SBC's address) enters the PIN and #:
// the call becomes a conference of three, each hearing the other two
// (alice 400 Hz, bob 700 Hz, the caller 1400 Hz) and not itself, the
// history says "dialled in". Then they leave one by one.
func TestDialIn(t *testing.T) {
	needSIPp(t)
	const wrongCaller, rightCaller = "+14155550666", "+14155550777"
	n := startNode(t, "dialin", nodeOpts{bootstrapSnapshot: writeFile(t, "account.json", dialInSnapshot(t))})
	waitRevision(t, []*node{n}, 1)

	alice := newRTPPhone(t, "alice", "127.0.0.1", g711.PCMU, 400)
	bob := newRTPPhone(t, "bob", "127.0.0.1", g711.PCMU, 700)
	bobDone := answerWith(t, n, "bob", freeUDPPort(t), "-sf",
		sippTemplate(t, "uas-conference.xml", map[string]string{"MEDIA_PORT": bob.port()}))
	callers := writeCallersCSV(t, [][4]string{{"alice", "pw-alice", "acme.example", "1002"}})
	aliceRun := startSIPp(t, sippTemplate(t, "uac-conference.xml", map[string]string{"MEDIA_PORT": alice.port(), "HOLD_MS": "28000"}),
		n.sipUDP, 1, 120*time.Second, "-inf", callers)
	id := twoPartyCall(t, n)

	var info inviteInfo
	t.Run("invite information", func(t *testing.T) {
		base := "http://" + n.httpAddr + "/api/v1/calls/"
		info = getInviteInfo(t, n, id)
		if code, body := getAPI(t, base+id+"/invite-info", widgetSession(t, n, "bob")); code != http.StatusForbidden {
			t.Errorf("bob's token (not the owner): %d %s, want 403", code, body)
		}
		if code, body := getAPI(t, base+"no-such-call/invite-info", testToken); code != http.StatusNotFound {
			t.Errorf("an unknown call: %d %s, want 404", code, body)
		}
		if code, body := getAPI(t, base+id+"/invite-info", ""); code != http.StatusUnauthorized {
			t.Errorf("no token: %d %s, want 401", code, body)
		}
		if len(info.DialIn) != 1 || info.DialIn[0].Number != dialInNumber || info.DialIn[0].Site != "hq" {
			t.Errorf("dial_in %+v, want [%s hq]", info.DialIn, dialInNumber)
		}
		if !regexp.MustCompile(`^[0-9]{6}$`).MatchString(info.PIN) {
			t.Fatalf("pin %q", info.PIN)
		}
		if want := "Alice Adams invites you to join a call. Dial " + dialInNumber + " and enter PIN " + info.PIN + " followed by #."; info.SMSText != want {
			t.Errorf("sms_text %q, want %q", info.SMSText, want)
		}
		code, body := getAPI(t, base+id+"/invite-info", widgetSession(t, n, "alice"))
		var again inviteInfo
		if err := json.Unmarshal(body, &again); code != http.StatusOK || err != nil || again.PIN != info.PIN {
			t.Errorf("alice's token: %d %s, want the same pin %s", code, body, info.PIN)
		}
	})
	if info.PIN == "" {
		t.FailNow()
	}

	t.Run("wrong PINs are hung up", func(t *testing.T) {
		caller := newRTPPhone(t, "wrong caller", sbcBackup, g711.PCMU, 1700)
		run := dialInCall(t, n, sbcBackup, "sbc-dialin-refused.xml", wrongCaller, caller, 40*time.Second)
		if err := caller.waitSound(15 * time.Second); err != nil {
			t.Fatalf("%v\n%s", err, dialInLog(n))
		}
		// Three wrong PINs, typed ahead: each is read as the last ends.
		var wrong []string
		for i := 0; len(wrong) < 3; i++ {
			if p := fmt.Sprintf("%06d", (i*333331+7)%1000000); p != info.PIN {
				wrong = append(wrong, p)
			}
		}
		caller.pressKeys(strings.Join(wrong, "#") + "#")
		res, err := run.wait()
		if err != nil {
			t.Fatal(err)
		}
		if res.exit != 0 {
			t.Errorf("the wrong-PIN caller was not hung up: SIPp exit %d\n%s\n%s", res.exit, res.stdout, dialInLog(n))
		}
		if got := strings.Count(n.log(), "dial-in: wrong PIN"); got != 3 {
			t.Errorf("%d wrong PINs logged, want 3:\n%s", got, dialInLog(n))
		}
		waitCall(t, n, 5*time.Second, "the call untouched", id, func(c apiCall) error {
			if !slices.Equal(c.users(), []string{"u-alice", "u-bob"}) {
				return fmt.Errorf("participants %v, want [u-alice u-bob]", c.users())
			}
			return nil
		})
	})

	caller := newRTPPhone(t, "caller", sbcPrimary, g711.PCMU, 1400)
	callerRun := dialInCall(t, n, sbcPrimary, "sbc-dialin.xml", rightCaller, caller, 20*time.Second)
	if !t.Run("the PIN joins", func(t *testing.T) {
		if err := caller.waitSound(15 * time.Second); err != nil {
			t.Fatalf("%v\n%s", err, dialInLog(n))
		}
		caller.pressKeys(info.PIN + "#")
		waitCall(t, n, 15*time.Second, "the caller in the conference", id, func(c apiCall) error {
			switch {
			case c.State != "conference" || c.Owner != "u-alice":
				return fmt.Errorf("state %q, owner %q; want conference, u-alice", c.State, c.Owner)
			case !slices.Equal(c.users(), []string{"u-alice", "u-bob", rightCaller + " " + rightCaller}):
				return fmt.Errorf("participants %v, want [u-alice u-bob %s %s]", c.users(), rightCaller, rightCaller)
			}
			return nil
		})
		_, body := getAPI(t, "http://"+n.httpAddr+"/api/v1/calls", testToken)
		if !strings.Contains(string(body), rightCaller+" joined (dialled in)") {
			t.Errorf("the call's history does not say the caller dialled in:\n%s", body)
		}
	}) {
		t.Fatalf("the caller did not join; the node's dial-in lines:\n%s", dialInLog(n))
	}

	t.Run("each hears the others, not itself", func(t *testing.T) {
		checkHearing(t, map[*rtpPhone][2][]float64{
			caller: {{400, 700}, {1400}},
			alice:  {{700, 1400}, {400}},
			bob:    {{400, 1400}, {700}},
		})
	})

	t.Run("they leave", func(t *testing.T) {
		res, err := callerRun.wait()
		if err != nil {
			t.Fatal(err)
		}
		if res.exit != 0 {
			t.Errorf("the dial-in caller's SIPp exited %d\n%s", res.exit, res.stdout)
		}
		waitCall(t, n, 10*time.Second, "the caller gone", id, func(c apiCall) error {
			if !slices.Equal(c.users(), []string{"u-alice", "u-bob"}) {
				return fmt.Errorf("participants %v, want [u-alice u-bob]", c.users())
			}
			return nil
		})
		if res, err := aliceRun.wait(); err != nil || res.exit != 0 {
			t.Errorf("alice's SIPp: %v, exit %d\n%s", err, res.exit, res.stdout)
		}
		if code := bobDone(); code != 0 {
			t.Errorf("bob's SIPp exited %d (not hung up once alone?)", code)
		}
		eventually(t, 10*time.Second, "no call left", func(ctx context.Context) error {
			cs, err := liveCalls(ctx, n)
			if err == nil && len(cs) != 0 {
				err = fmt.Errorf("calls %+v", cs)
			}
			return err
		})
		code, body := getAPI(t, "http://"+n.httpAddr+"/api/v1/calls/"+id+"/invite-info", testToken)
		if code != http.StatusNotFound {
			t.Errorf("invite-info of the ended call: %d %s, want 404", code, body)
		}
	})
	noRace(t, n)
}

// TestSMSInvite: alice calls bob; the SMS API sends the invitation as a
// SIP MESSAGE. The primary SBC refuses it (503): the backup trunk's SBC
// takes it (202), so the API answers 202 through sbc-hq-2. Both MESSAGEs
// come from the dedicated US call-out caller ID, to the number, as
// text/plain in UTF-8 with the default text (the dial-in number and the
// PIN). A bad number is refused 400, bob's widget session 403.
func TestSMSInvite(t *testing.T) {
	needSIPp(t)
	n := startNode(t, "sms", nodeOpts{bootstrapSnapshot: writeFile(t, "account.json", dialInSnapshot(t))})
	waitRevision(t, []*node{n}, 1)
	primary := startSBC(t, sbcPrimary, "sbc-message-refuse.xml")
	backup := startSBC(t, sbcBackup, "sbc-message.xml")
	waitTrunk(t, n, "sbc-hq-1", "up")
	waitTrunk(t, n, "sbc-hq-2", "up")

	alice := newRTPPhone(t, "alice", "127.0.0.1", g711.PCMU, 400)
	bob := newRTPPhone(t, "bob", "127.0.0.1", g711.PCMU, 700)
	answerWith(t, n, "bob", freeUDPPort(t), "-sf", sippTemplate(t, "uas-conference.xml", map[string]string{"MEDIA_PORT": bob.port()}))
	callers := writeCallersCSV(t, [][4]string{{"alice", "pw-alice", "acme.example", "1002"}})
	startSIPp(t, sippTemplate(t, "uac-conference.xml", map[string]string{"MEDIA_PORT": alice.port(), "HOLD_MS": "60000"}),
		n.sipUDP, 1, 90*time.Second, "-inf", callers)
	id := twoPartyCall(t, n)
	url := "http://" + n.httpAddr + "/api/v1/calls/" + id + "/sms"

	t.Run("refusals", func(t *testing.T) {
		if code, body := post(t, url, widgetSession(t, n, "bob"), []byte(`{"number":"`+smsNumber+`"}`)); code != http.StatusForbidden {
			t.Errorf("bob's token (not the owner): %d %s, want 403", code, body)
		}
		code, body := post(t, url, testToken, []byte(`{"number":"6505550177"}`))
		var e struct {
			Error   string `json:"error"`
			Details []struct {
				Path string `json:"path"`
			} `json:"details"`
		}
		if err := json.Unmarshal(body, &e); code != http.StatusBadRequest || err != nil || e.Error == "" || len(e.Details) == 0 || e.Details[0].Path != "number" {
			t.Errorf("a number without +: %d %s, want 400 with details about number", code, body)
		}
		if strings.Contains(primary.trace(t)+backup.trace(t), "MESSAGE sip:") {
			t.Error("a refused request sent a MESSAGE")
		}
	})

	code, body := post(t, url, testToken, []byte(`{"number":"`+smsNumber+`"}`))
	var res struct {
		Status int    `json:"status"`
		Trunk  string `json:"trunk"`
	}
	if err := json.Unmarshal(body, &res); code != http.StatusAccepted || err != nil || res.Status != 202 || res.Trunk != "sbc-hq-2" {
		t.Fatalf("POST sms: %d %s, want 202 with status 202 through sbc-hq-2\n%s", code, body, n.log())
	}
	info := getInviteInfo(t, n, id)
	for name, s := range map[string]*sbc{"primary": primary, "backup": backup} {
		msg := firstMessage(s.trace(t), "MESSAGE sip:"+smsNumber+"@")
		if msg == "" {
			t.Errorf("the %s SBC got no MESSAGE to %s:\n%s", name, smsNumber, s.trace(t))
			continue
		}
		if from := headerOf(msg, "From"); !strings.Contains(from, "<sip:"+calloutCallerID+"@") {
			t.Errorf("the %s SBC's MESSAGE came %q, want the call-out caller ID %s", name, from, calloutCallerID)
		}
		if to := headerOf(msg, "To"); !strings.Contains(to, "<sip:"+smsNumber+"@") {
			t.Errorf("the %s SBC's MESSAGE went to %q", name, to)
		}
		if ct := headerOf(msg, "Content-Type"); !strings.EqualFold(ct, "Content-Type: text/plain;charset=UTF-8") {
			t.Errorf("the %s SBC's MESSAGE has %q", name, ct)
		}
		if !strings.Contains(msg, info.SMSText) || !strings.Contains(msg, "PIN "+info.PIN+" followed by #") {
			t.Errorf("the %s SBC's MESSAGE does not carry the default text with the PIN %s:\n%s", name, info.PIN, msg)
		}
	}
	_, calls := getAPI(t, "http://"+n.httpAddr+"/api/v1/calls", testToken)
	if !strings.Contains(string(calls), "SMS invitation to "+smsNumber+" sent (trunk sbc-hq-2)") {
		t.Errorf("the call's history does not note the SMS:\n%s", calls)
	}
	noRace(t, n)
}
