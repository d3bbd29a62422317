package registrar

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/appliance/store"
)

const reasonFailbackTest = "Service Unavailable: the primary server is back, register there"

// busyUsers is an Options.InCall whose answer a test sets.
type busyUsers struct {
	mu    sync.Mutex
	users map[string]bool
}

func (b *busyUsers) set(username string, busy bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.users == nil {
		b.users = map[string]bool{}
	}
	b.users[username] = busy
}

func (b *busyUsers) InCall(username string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.users[username]
}

// A phone that registers to both the cloud and Outpost while the cloud is
// up (normal mode) is accepted, with normal mode's interval, and nothing
// the registrar does can change the mode: its Directory only reads it
// (the leader's cloud prober decides it, appliance/node/cloud.go).
func TestRegisterInNormalModeAcceptedModeUnchanged(t *testing.T) {
	tests := []struct {
		name            string
		failbackExpires time.Duration
		want            string
	}{
		{"without a failback cap, what the phone asked", 0, aliceContact + ";expires=600"},
		{"with the node's default cap", 60 * time.Second, aliceContact + ";expires=60"},
		{"a cap above the request", 900 * time.Second, aliceContact + ";expires=600"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRegHarness(t, func(o *Options) { o.FailbackExpires = tt.failbackExpires })
			for cseq := uint32(1); cseq <= 3; cseq++ { // a registration and two refreshes
				res := h.mustRegister(t, regMsg{cseq: cseq, contacts: []string{aliceContact}, expires: "600"}, aliceMD5)
				checkResponse(t, res, wantRes{code: 200, reason: reasonOK, contacts: []string{tt.want}})
				if mode, _, _ := h.dir.Mode(context.Background()); mode != store.ModeNormal {
					t.Fatalf("after REGISTER %d the mode is %q, want normal", cseq, mode)
				}
			}
			if got := h.contactsOf(aliceAOR); !slices.Equal(got, []string{tt.want}) {
				t.Errorf("bound %q, want %q", got, []string{tt.want})
			}
		})
	}
}

// The interval cap and failback "reject" by mode and setting, for a new
// binding and for the refresh of one made during the outage.
func TestRegisterFailbackByMode(t *testing.T) {
	const other = "<sip:alice@192.0.2.10:5062>"
	ok := func(exp string) wantRes {
		return wantRes{code: 200, reason: reasonOK, contacts: []string{aliceContact + ";expires=" + exp}}
	}
	rejected := wantRes{code: 503, reason: reasonFailbackTest, contacts: []string{}, hdrs: map[string]string{"Retry-After": "30"}}
	tests := []struct {
		name     string
		mode     string
		failback string
		opt      func(*Options)
		inCall   bool
		refresh  bool   // alice registered during the outage first (expires 120), then sends m
		m        regMsg // cseq set by the test
		want     wantRes
		bound    []string // what is bound after, relative to the clock
	}{
		// survivability and recovering: the outage cap; nothing refused.
		{name: "survivability new off", mode: store.ModeSurvivability, failback: FailbackOff,
			m: regMsg{contacts: []string{aliceContact}, expires: "600"}, want: ok("120")},
		{name: "survivability refresh reject", mode: store.ModeSurvivability, failback: FailbackReject, refresh: true,
			m: regMsg{contacts: []string{aliceContact}, expires: "600"}, want: ok("120")},
		{name: "recovering new notify", mode: store.ModeRecovering, failback: FailbackNotify,
			m: regMsg{contacts: []string{aliceContact}, expires: "600"}, want: ok("120")},
		{name: "recovering refresh reject", mode: store.ModeRecovering, failback: FailbackReject, refresh: true,
			m: regMsg{contacts: []string{aliceContact}, expires: "3600"}, want: ok("120")},
		// normal: the failback cap on new registrations and refreshes.
		{name: "normal new off", mode: store.ModeNormal, failback: FailbackOff,
			m: regMsg{contacts: []string{aliceContact}, expires: "600"}, want: ok("60")},
		{name: "normal refresh off", mode: store.ModeNormal, failback: FailbackOff, refresh: true,
			m: regMsg{contacts: []string{aliceContact}, expires: "600"}, want: ok("60")},
		{name: "normal refresh unset setting is off", mode: store.ModeNormal, failback: "", refresh: true,
			m: regMsg{contacts: []string{aliceContact}}, want: ok("60")},
		{name: "normal new notify", mode: store.ModeNormal, failback: FailbackNotify,
			m: regMsg{contacts: []string{aliceContact}, expires: "600"}, want: ok("60")},
		{name: "normal refresh notify", mode: store.ModeNormal, failback: FailbackNotify, refresh: true,
			m: regMsg{contacts: []string{aliceContact}, expires: "600"}, want: ok("60")},
		{name: "normal keeps a shorter request", mode: store.ModeNormal, failback: FailbackOff,
			opt: func(o *Options) { o.FailbackExpires = 300 * time.Second },
			m:   regMsg{contacts: []string{aliceContact}, expires: "90"}, want: ok("90")},
		// normal with reject: only the refresh of an existing binding of a
		// user not in a call; the binding is left as it was.
		{name: "normal new reject", mode: store.ModeNormal, failback: FailbackReject,
			m: regMsg{contacts: []string{aliceContact}, expires: "600"}, want: ok("60")},
		{name: "normal refresh reject", mode: store.ModeNormal, failback: FailbackReject, refresh: true,
			m: regMsg{contacts: []string{aliceContact}, expires: "600"}, want: rejected,
			bound: []string{aliceContact + ";expires=120"}},
		{name: "normal refresh reject with another call-id", mode: store.ModeNormal, failback: FailbackReject, refresh: true,
			m: regMsg{callID: "reg-2@192.0.2.10", contacts: []string{aliceContact}, expires: "600"}, want: rejected,
			bound: []string{aliceContact + ";expires=120"}},
		{name: "normal refresh reject custom retry-after", mode: store.ModeNormal, failback: FailbackReject, refresh: true,
			opt:   func(o *Options) { o.FailbackRetryAfter = 1500 * time.Millisecond },
			m:     regMsg{contacts: []string{aliceContact}, expires: "600"},
			want:  wantRes{code: 503, reason: reasonFailbackTest, contacts: []string{}, hdrs: map[string]string{"Retry-After": "2"}},
			bound: []string{aliceContact + ";expires=120"}},
		{name: "normal refresh reject in a call", mode: store.ModeNormal, failback: FailbackReject, refresh: true, inCall: true,
			m: regMsg{contacts: []string{aliceContact}, expires: "600"}, want: ok("60")},
		{name: "normal reject lets a phone unregister", mode: store.ModeNormal, failback: FailbackReject, refresh: true,
			m:    regMsg{contacts: []string{aliceContact}, expires: "0"},
			want: wantRes{code: 200, reason: reasonOK, contacts: []string{}}, bound: []string{}},
		{name: "normal reject lets a phone unregister all", mode: store.ModeNormal, failback: FailbackReject, refresh: true,
			m:    regMsg{contacts: []string{"*"}, expires: "0"},
			want: wantRes{code: 200, reason: reasonOK, contacts: []string{}}, bound: []string{}},
		{name: "normal reject answers a query", mode: store.ModeNormal, failback: FailbackReject, refresh: true,
			m: regMsg{}, want: ok("120")},
		{name: "normal reject refuses a refresh beside a new contact", mode: store.ModeNormal, failback: FailbackReject, refresh: true,
			m: regMsg{contacts: []string{other, aliceContact}}, want: rejected, bound: []string{aliceContact + ";expires=120"}},
		{name: "normal reject takes a retransmission", mode: store.ModeNormal, failback: FailbackReject, refresh: true,
			m: regMsg{cseq: 1, contacts: []string{aliceContact}, expires: "600"}, want: ok("120")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var busy busyUsers
			busy.set(aliceUser, tt.inCall)
			h := newRegHarness(t, func(o *Options) {
				o.FailbackExpires, o.Failback, o.InCall = 60*time.Second, tt.failback, busy.InCall
				if tt.opt != nil {
					tt.opt(o)
				}
			})
			if tt.refresh {
				h.dir.setMode(store.ModeSurvivability)
				h.mustRegister(t, regMsg{cseq: 1, contacts: []string{aliceContact}, expires: "600"}, aliceMD5)
			}
			h.dir.setMode(tt.mode)
			m := tt.m
			if m.cseq == 0 {
				m.cseq = 2
			}
			res := h.exchange(t, m, aliceMD5)
			checkResponse(t, res, tt.want)
			bound := tt.bound
			if bound == nil {
				bound = tt.want.contacts
			}
			if got := h.contactsOf(aliceAOR); !slices.Equal(got, bound) {
				t.Errorf("bound %q, want %q", got, bound)
			}
		})
	}
}

// A phone refused by failback "reject" is not removed: its binding expires
// as it would have, and once it has, the phone may register afresh.
func TestRegisterFailbackRejectLeavesBindingToExpire(t *testing.T) {
	h := newRegHarness(t, func(o *Options) { o.FailbackExpires, o.Failback = 60*time.Second, FailbackReject })
	h.dir.setMode(store.ModeSurvivability)
	h.mustRegister(t, regMsg{cseq: 1, contacts: []string{aliceContact}}, aliceMD5)
	h.dir.setMode(store.ModeNormal)
	h.clock.Advance(60 * time.Second)
	if res := h.exchange(t, regMsg{cseq: 2, contacts: []string{aliceContact}}, aliceMD5); res.StatusCode != 503 {
		t.Fatalf("refresh after recovery: %d %s, want 503", res.StatusCode, res.Reason)
	}
	if got := h.contactsOf(aliceAOR); !slices.Equal(got, []string{aliceContact + ";expires=60"}) {
		t.Errorf("bound %q, want the binding untouched", got)
	}
	flushLocation(t, h.loc)
	for _, b := range h.persist.all() {
		if b.Deleted {
			t.Errorf("a tombstone was written for %s", b.Contact)
		}
	}
	h.clock.Advance(61 * time.Second)
	res := h.mustRegister(t, regMsg{cseq: 3, contacts: []string{aliceContact}}, aliceMD5)
	checkResponse(t, res, wantRes{code: 200, reason: reasonOK, contacts: []string{aliceContact + ";expires=60"}})
}

func TestMaxExpiresByMode(t *testing.T) {
	r := New(newFakeDirectory(), nil, nil, nil, Options{
		MaxExpires: time.Hour, SurvivabilityExpires: 2 * time.Minute, FailbackExpires: time.Minute,
	}, testLog)
	for mode, want := range map[string]time.Duration{
		store.ModeNormal: time.Minute, store.ModeSurvivability: 2 * time.Minute, store.ModeRecovering: 2 * time.Minute,
	} {
		if got := r.maxExpires(mode); got != want {
			t.Errorf("maxExpires(%s) = %v, want %v", mode, got, want)
		}
	}
	r = New(newFakeDirectory(), nil, nil, nil, Options{MaxExpires: 90 * time.Second, FailbackExpires: 10 * time.Minute}, testLog)
	if got := r.maxExpires(store.ModeNormal); got != 90*time.Second {
		t.Errorf("maxExpires(normal) = %v, want MaxExpires 1m30s when it is lower", got)
	}
}

// phoneListener is a UDP socket standing for phones: it answers 200 to
// every request and records the NOTIFYs.
type phoneListener struct {
	conn net.PacketConn
	mu   sync.Mutex
	got  []*sip.Request
}

func listenPhones(t *testing.T) *phoneListener {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &phoneListener{conn: conn}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			msg, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
			req, ok := msg.(*sip.Request)
			if err != nil || !ok {
				continue
			}
			p.mu.Lock()
			p.got = append(p.got, req)
			p.mu.Unlock()
			res := sip.NewResponseFromRequest(req, 200, "OK", nil)
			_, _ = conn.WriteTo([]byte(res.String()), from)
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return p
}

func (p *phoneListener) addr() string { return p.conn.LocalAddr().String() }

// notified is the To user of each NOTIFY received, in order.
func (p *phoneListener) notified() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, r := range p.got {
		out = append(out, r.To().Address.User)
	}
	return out
}

func (p *phoneListener) requests() []*sip.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}

// waitNotified waits until the listener has received want (in any order),
// then a little longer to see that nothing more comes.
func waitNotified(t *testing.T, p *phoneListener, want []string) {
	t.Helper()
	sorted := func(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && len(p.notified()) < len(want) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(150 * time.Millisecond) // several scans: nothing more
	if got := p.notified(); !slices.Equal(sorted(got), sorted(want)) {
		t.Fatalf("NOTIFYs to %q, want %q", got, want)
	}
}

// Failback "notify": once the mode is normal, each binding whose user is
// not in a call gets one NOTIFY Event: check-sync through its flow; again
// after it refreshes; a user in a call only once the call ends; nothing
// outside normal mode, and everyone again after the next recovery.
func TestFailbackNotify(t *testing.T) {
	phones := listenPhones(t)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("outpost-test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	client, err := sipgo.NewClient(ua)
	if err != nil {
		t.Fatal(err)
	}
	var busy busyUsers
	busy.set(bobUser, true)
	h := newRegHarness(t, func(o *Options) {
		o.FailbackExpires, o.Failback, o.InCall = 60*time.Second, FailbackNotify, busy.InCall
		o.FailbackScan, o.NotifyRate = 10*time.Millisecond, 1000
		o.Send = func(ctx context.Context, req *sip.Request) (*sip.Response, error) { return client.Do(ctx, req) }
	})
	port := phones.addr()[strings.LastIndexByte(phones.addr(), ':')+1:]
	aliceAt := "<sip:alice@127.0.0.1:" + port + ";transport=udp>"
	bobAt := "<sip:bob@127.0.0.1:" + port + ">"
	h.dir.setMode(store.ModeSurvivability)
	h.mustRegister(t, regMsg{cseq: 1, via: phones.addr(), contacts: []string{aliceAt}}, aliceMD5)
	h.mustRegister(t, regMsg{cseq: 1, to: "sip:bob@acme.example", callID: "reg-bob", via: phones.addr(), contacts: []string{bobAt}}, bobMD5)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.reg.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	// During the outage: nothing.
	time.Sleep(100 * time.Millisecond)
	if got := phones.notified(); len(got) != 0 {
		t.Fatalf("NOTIFYs during the outage: %q", got)
	}
	h.dir.setMode(store.ModeRecovering)
	time.Sleep(100 * time.Millisecond)
	if got := phones.notified(); len(got) != 0 {
		t.Fatalf("NOTIFYs while recovering: %q", got)
	}

	// Normal: alice once; bob, in a call, not.
	h.dir.setMode(store.ModeNormal)
	waitNotified(t, phones, []string{aliceUser})
	req := phones.requests()[0]
	if req.Method != sip.NOTIFY || req.Recipient.String() != "sip:alice@127.0.0.1:"+port+";transport=udp" {
		t.Errorf("request line %s, want NOTIFY to alice's contact", req.StartLine())
	}
	for name, want := range map[string]string{"Event": "check-sync;reboot=false", "Subscription-State": "terminated"} {
		if h := req.GetHeader(name); h == nil || h.Value() != want {
			t.Errorf("%s: %v, want %q", name, h, want)
		}
	}
	if to, from := req.To(), req.From(); to.Address.String() != "sip:alice@acme.example" || from.Address.Host != "acme.example" {
		t.Errorf("To %s From %s, want alice's AOR from the realm", to.Address.String(), from.Address.String())
	}

	// alice refreshes here (she did not go back): notified again.
	h.mustRegister(t, regMsg{cseq: 2, via: phones.addr(), contacts: []string{aliceAt}}, aliceMD5)
	waitNotified(t, phones, []string{aliceUser, aliceUser})

	// bob's call ends: he is notified, once.
	busy.set(bobUser, false)
	waitNotified(t, phones, []string{aliceUser, aliceUser, bobUser})

	// Another outage and recovery: everyone once more.
	h.dir.setMode(store.ModeSurvivability)
	time.Sleep(50 * time.Millisecond)
	h.dir.setMode(store.ModeNormal)
	waitNotified(t, phones, []string{aliceUser, aliceUser, bobUser, aliceUser, bobUser})
}

// Run does nothing unless failback is "notify" with a way to send.
func TestFailbackRunIdle(t *testing.T) {
	for _, fb := range []string{"", FailbackOff, FailbackReject, FailbackNotify} {
		h := newRegHarness(t, func(o *Options) { o.Failback = fb })
		done := make(chan struct{})
		go func() { defer close(done); h.reg.Run(context.Background()) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Fatalf("Run with failback %q and no Send did not return", fb)
		}
	}
}

// The NOTIFY goes where the phone's flow is: its source, its transport.
func TestCheckSyncRequest(t *testing.T) {
	b := store.Binding{AOR: "alice@acme.example", Contact: "sip:alice@10.1.2.3:5062;transport=tcp", Source: "203.0.113.9:40123", Transport: "tcp"}
	req, err := checkSyncRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if req.Destination() != "203.0.113.9:40123" || req.Transport() != "TCP" {
		t.Errorf("destination %s over %s, want the flow 203.0.113.9:40123 over TCP", req.Destination(), req.Transport())
	}
	if _, err := checkSyncRequest(store.Binding{AOR: "a@b", Contact: "not a uri"}); err == nil {
		t.Error("a contact that does not parse: no error")
	}
}
