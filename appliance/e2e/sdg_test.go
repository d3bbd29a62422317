package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/appliance/store"
)

// groupSnapshot is the demo account with its SDGs made quick: groups ring
// 4 s a member, the main menu waits 1 s for a key and does not repeat.
// The HQ trunk points at the primary SBC.
func groupSnapshot(t *testing.T) []byte {
	return withRevision(t, demoSnapshot(t), 1, func(m map[string]any) {
		for _, s := range m["sdgs"].([]any) {
			r := s.(map[string]any)["route"].(map[string]any)
			switch r["type"] {
			case "group":
				r["ring_timeout_s"] = 4
			case "ivr":
				r["timeout_s"], r["retries"] = 1, 0
			}
		}
		for i, tr := range m["trunks"].([]any) {
			tr := tr.(map[string]any)
			tr["host"] = []string{sbcPrimary, sbcBackup}[i]
			tr["port"] = sbcSIPPort
			tr["options_interval_s"] = 1
		}
	})
}

// groupRecord waits for the record of a call whose callee and route are
// as wanted.
func groupRecord(t *testing.T, n *node, caller, callee, routePart string) store.CallRecord {
	t.Helper()
	var found store.CallRecord
	eventually(t, 15*time.Second, fmt.Sprintf("a record %s -> %s via %q", caller, callee, routePart), func(ctx context.Context) error {
		recs, err := n.client().Journal(ctx, 20)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Caller == caller && r.Callee == callee && r.Disposition == "answered" && strings.Contains(r.Route, routePart) {
				found = r
				return nil
			}
		}
		return fmt.Errorf("records %+v", recs)
	})
	return found
}

// A call to the front desk (1900: alice and bob at once) rings both; bob
// answers, alice's phone is cancelled; bob is shown "Front Desk: Carol".
func TestGroupSimultaneous(t *testing.T) {
	n := startNode(t, "group", nodeOpts{bootstrapSnapshot: writeFile(t, "account.json", groupSnapshot(t))})
	waitRevision(t, []*node{n}, 1)
	aliceDone := answerWith(t, n, "alice", freeUDPPort(t), "-sf", scenarioPath(t, "uas-ring-elsewhere.xml"))
	bobDone := answerWith(t, n, "bob", freeUDPPort(t), "-sf", scenarioPath(t, "uas-frontdesk.xml"))
	callers := writeCallersCSV(t, [][4]string{{"carol", "pw-carol", "acme.example", "1900"}})
	if res := runSIPp(t, "uac-auth.xml", n.sipUDP, 1, 30*time.Second, "-inf", callers); res.exit != 0 {
		t.Fatalf("carol's call to the front desk: SIPp exit %d\n%s", res.exit, res.stdout)
	}
	if code := bobDone(); code != 0 {
		t.Errorf("bob's phone: SIPp exit %d (not rung, or not shown the group's name)", code)
	}
	if code := aliceDone(); code != 0 {
		t.Errorf("alice's phone: SIPp exit %d (not rung, or not cancelled as answered elsewhere)", code)
	}
	r := groupRecord(t, n, "carol", "bob", "sdg:sdg-frontdesk")
	if r.Destination != "sdg" || !strings.Contains(r.Route, "member:u-bob") {
		t.Errorf("record %+v: want destination sdg and bob as the member who answered", r)
	}
	// The API shows the members' state: alice and bob registered and idle
	// again, carol (who called without registering) unregistered.
	var got struct {
		SDGs []struct {
			ID      string `json:"id"`
			Members []struct {
				UserID string `json:"user_id"`
				State  string `json:"state"`
			} `json:"members"`
		} `json:"sdgs"`
	}
	getJSON(t, "http://"+n.httpAddr+"/api/v1/sdgs", &got)
	states := map[string]string{}
	for _, g := range got.SDGs {
		for _, m := range g.Members {
			states[g.ID+"/"+m.UserID] = m.State
		}
	}
	for k, want := range map[string]string{"sdg-frontdesk/u-alice": "idle", "sdg-frontdesk/u-bob": "idle",
		"sdg-operator/u-carol": "unregistered"} {
		if states[k] != want {
			t.Errorf("GET /api/v1/sdgs: %s is %q, want %q (all: %v)", k, states[k], want, states)
		}
	}
}

// getJSON GETs an admin endpoint and decodes its JSON into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// Branch sales (2900: dave then erin, sequential): dave rings 4 s and is
// cancelled, then erin rings and answers.
func TestGroupSequential(t *testing.T) {
	n := startNode(t, "seq", nodeOpts{bootstrapSnapshot: writeFile(t, "account.json", groupSnapshot(t))})
	waitRevision(t, []*node{n}, 1)
	daveDone := answerWith(t, n, "dave", freeUDPPort(t), "-sf", scenarioPath(t, "uas-ring.xml"))
	erinDone := answerWith(t, n, "erin", freeUDPPort(t), "-sf", scenarioPath(t, "uas.xml"))
	callers := writeCallersCSV(t, [][4]string{{"alice", "pw-alice", "acme.example", "2900"}})
	start := time.Now()
	if res := runSIPp(t, "uac-auth.xml", n.sipUDP, 1, 40*time.Second, "-inf", callers); res.exit != 0 {
		t.Fatalf("alice's call to branch sales: SIPp exit %d\n%s", res.exit, res.stdout)
	}
	if code := daveDone(); code != 0 {
		t.Errorf("dave's phone: SIPp exit %d (not rung first, or not cancelled)", code)
	}
	if code := erinDone(); code != 0 {
		t.Errorf("erin's phone: SIPp exit %d", code)
	}
	if took := time.Since(start); took < 4*time.Second {
		t.Errorf("the call took %v: erin answered before dave's 4 s were up (not sequential)", took)
	}
	groupRecord(t, n, "alice", "erin", "group:sequential")
}

// ivrCall has caller dial the main menu (1999) with a SIPp scenario while
// member's phone answers, then checks the record says member took the call
// by a route containing routePart.
func ivrCall(t *testing.T, caller, scenario, member, routePart string) {
	t.Helper()
	n := startNode(t, "ivr", nodeOpts{bootstrapSnapshot: writeFile(t, "account.json", groupSnapshot(t))})
	waitRevision(t, []*node{n}, 1)
	memberDone := answerWith(t, n, member, freeUDPPort(t), "-sf", scenarioPath(t, "uas.xml"))
	callers := writeCallersCSV(t, [][4]string{{caller, "pw-" + caller, "acme.example", "1999"}})
	if res := runSIPp(t, scenario, n.sipUDP, 1, 40*time.Second, "-inf", callers); res.exit != 0 {
		t.Fatalf("%s's call to the main menu: SIPp exit %d\n%s\n%s", caller, res.exit, res.stdout, n.log())
	}
	if code := memberDone(); code != 0 {
		t.Errorf("%s's phone: SIPp exit %d", member, code)
	}
	groupRecord(t, n, caller, member, routePart)
}

// The main menu: the caller presses 1 during the prompt (RFC 4733, SIPp
// playing a capture), which reaches the front desk; alice and bob ring,
// bob answers (alice has no phone here).
func TestIVRDigit(t *testing.T) {
	ivrCall(t, "carol", "uac-ivr-dtmf1.xml", "bob", "ivr:main-menu option 1")
}

// No key at the main menu: no_input reaches the operator (carol).
func TestIVRNoInput(t *testing.T) {
	ivrCall(t, "alice", "uac-ivr.xml", "carol", "no_input")
}

// A PSTN call to the HQ main number (+16505550100) reaches the main menu
// and, with no key, the operator.
func TestPSTNToMainMenu(t *testing.T) {
	n := startNode(t, "pstn-ivr", nodeOpts{bootstrapSnapshot: writeFile(t, "account.json", groupSnapshot(t))})
	waitRevision(t, []*node{n}, 1)
	carolDone := answerWith(t, n, "carol", freeUDPPort(t), "-sf", scenarioPath(t, "uas.xml"))
	if res := callFromPSTN(t, n, sbcPrimary, "+16505550100"); res.exit != 0 {
		t.Fatalf("the PSTN call to the main number: SIPp exit %d\n%s\n%s", res.exit, res.stdout, n.log())
	}
	if code := carolDone(); code != 0 {
		t.Errorf("carol's phone: SIPp exit %d", code)
	}
	groupRecord(t, n, "+14155550000", "carol", "sdg:sdg-main-menu")
}
