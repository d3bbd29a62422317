package registrar

import (
	"fmt"
	"testing"

	"github.com/outpost-voice/outpost/account"
)

func TestPriorityReserve(t *testing.T) {
	for capacity, want := range map[int]int{
		0: 0, 1: 0, 2: 1, 3: 1, 19: 1, 20: 1, 39: 1, 40: 2, 100: 5, 20000: 1000,
	} {
		if got := PriorityReserve(capacity); got != want {
			t.Errorf("PriorityReserve(%d) = %d, want %d", capacity, got, want)
		}
	}
}

// addPriorityUsers adds, at the HQ site, dave (emergency: the lobby
// phone), erin (common_area: the break room) and frank, whose priority is
// spelled out as normal.
func addPriorityUsers(d *fakeDirectory) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, u := range []struct{ name, priority string }{
		{"dave", account.PriorityEmergency}, {"erin", account.PriorityCommonArea}, {"frank", account.PriorityNormal},
	} {
		d.users[u.name] = account.User{
			ID: "u-" + u.name, Site: siteHQ, Name: u.name, Extension: fmt.Sprint(1010 + i), Priority: u.priority,
			SIP: account.SIPCredentials{
				Username:  u.name,
				HA1MD5:    account.HA1(account.DigestMD5, u.name, aliceRealm, "pw-"+u.name),
				HA1SHA256: account.HA1(account.DigestSHA256, u.name, aliceRealm, "pw-"+u.name),
			},
		}
	}
}

func userLogin(name string) login { return login{name, "pw-" + name, account.DigestMD5} }

func userReg(name string, port int) regMsg {
	return regMsg{to: "sip:" + name + "@acme.example", callID: "reg-" + name + "@192.0.2.10",
		contacts: []string{fmt.Sprintf("<sip:%s@192.0.2.10:%d>", name, port)}}
}

// Admission at capacity: with site_capacity 4 the HQ site keeps 1 place
// (PriorityReserve(4)) for emergency and common-area phones. Normal users
// are refused at 3, prioritized ones at 4; refreshes always pass; freeing
// a place lets the next one in.
func TestRegisterAdmissionPriority(t *testing.T) {
	full := wantRes{code: 503, reason: reasonAtCapacity, contacts: []string{}, hdrs: map[string]string{"Retry-After": "60"}}
	ok := wantRes{code: 200, reason: reasonOK}
	steps := []struct {
		name string
		who  string
		m    regMsg
		want wantRes
	}{
		{"alice (normal)", "alice", userReg("alice", 5060), ok},
		{"bob (normal)", "bob", userReg("bob", 5060), ok},
		{"frank (normal, spelled out)", "frank", userReg("frank", 5060), ok},
		{"bob's second phone: normal users stop at capacity less the reserve", "bob", userReg("bob", 5062), full},
		{"carol at another site", "carol", userReg("carol", 5060), ok},
		{"dave (emergency) uses the reserve", "dave", userReg("dave", 5060), ok},
		{"erin (common area) finds the site full", "erin", userReg("erin", 5060), full},
		{"dave's second phone finds it full too", "dave", userReg("dave", 5062), full},
		{"alice refreshes at full capacity", "alice", userReg("alice", 5060), ok},
		{"dave refreshes", "dave", userReg("dave", 5060), ok},
		{"frank unregisters", "frank", func() regMsg { m := userReg("frank", 5060); m.expires = "0"; return m }(), ok},
		{"bob still finds no place: the site holds 3 besides the reserve", "bob", userReg("bob", 5062), full},
		{"erin takes the place", "erin", userReg("erin", 5060), ok},
		{"frank cannot come back", "frank", userReg("frank", 5060), full},
	}
	h := newRegHarness(t, func(o *Options) { o.SiteCapacity = 4 })
	addPriorityUsers(h.dir)
	for i, s := range steps {
		s.m.cseq = uint32(i + 1)
		res := h.exchange(t, s.m, userLogin(s.who))
		if res.StatusCode != s.want.code {
			t.Fatalf("step %d %s: %d %s, want %d", i, s.name, res.StatusCode, res.Reason, s.want.code)
		}
		checkResponse(t, res, s.want)
	}
	total, perSite := h.loc.Count()
	if total != 5 || perSite[siteHQ] != 4 || perSite[siteBranch] != 1 {
		t.Errorf("Count = %d, %v; want 5: 4 at %s, 1 at %s", total, perSite, siteHQ, siteBranch)
	}
}

// A site already over capacity (the node restarted with a lower
// sip.site_capacity) keeps its phones: their refreshes pass, and only new
// bindings are refused, whatever their priority.
func TestRegisterAdmissionOverCapacityRefreshes(t *testing.T) {
	h := newRegHarness(t, nil)
	addPriorityUsers(h.dir)
	for _, name := range []string{"alice", "bob", "dave"} {
		h.mustRegister(t, func() regMsg { m := userReg(name, 5060); m.cseq = 1; return m }(), userLogin(name))
	}
	h.reg = New(h.dir, h.digest, h.throttle, h.loc, Options{NodeID: regNodeID, Now: h.clock.Now, SiteCapacity: 2}, testLog)
	tests := []struct {
		who  string
		port int
		want int
	}{
		{"alice", 5060, 200}, {"bob", 5060, 200}, {"dave", 5060, 200},
		{"erin", 5060, 503}, {"dave", 5062, 503}, {"frank", 5060, 503},
	}
	for i, tt := range tests {
		m := userReg(tt.who, tt.port)
		m.cseq = uint32(10 + i)
		if res := h.exchange(t, m, userLogin(tt.who)); res.StatusCode != tt.want {
			t.Errorf("%s from port %d: %d %s, want %d", tt.who, tt.port, res.StatusCode, res.Reason, tt.want)
		}
	}
}

func TestAdmitted(t *testing.T) {
	tests := []struct {
		capacity int
		priority string
		want     int
	}{
		{20000, "", 19000},
		{20000, account.PriorityNormal, 19000},
		{20000, account.PriorityEmergency, 20000},
		{20000, account.PriorityCommonArea, 20000},
		{100, "", 95},
		{4, "", 3},
		{4, account.PriorityEmergency, 4},
		{1, "", 1},
		{1, account.PriorityCommonArea, 1},
	}
	for _, tt := range tests {
		if got := admitted(tt.capacity, account.User{Priority: tt.priority}); got != tt.want {
			t.Errorf("admitted(%d, %q) = %d, want %d", tt.capacity, tt.priority, got, tt.want)
		}
	}
}
