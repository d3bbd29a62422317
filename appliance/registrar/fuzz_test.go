package registrar

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/emiago/sipgo/siptest"
)

// fuzzTx returns a server transaction recording the responses to req: the
// siptest recorder when the request can key a transaction, else a plain
// recorder (sipgo itself would drop such a request before any handler).
func fuzzTx(req *sip.Request) (sip.ServerTransaction, func() []*sip.Response, func()) {
	if _, err := sip.ServerTxKeyMake(req); err == nil {
		tx := siptest.NewServerTxRecorder(req)
		return tx, tx.Result, tx.Terminate
	}
	tx := &respondRecorder{}
	return tx, func() []*sip.Response { return tx.res }, func() {}
}

// FuzzRegister feeds arbitrary messages to OnRegister (twice, so the second
// meets the bindings and nonce state of the first) and OnOptions: each must
// answer exactly once, with a final status, and never panic.
func FuzzRegister(f *testing.F) {
	// Signed seeds use nonces of a digest with the harness's secret and
	// clock, so they verify in the fuzz function's fresh harness.
	seeder := newRegHarness(f, nil)
	nonce := func() string { return freshNonce(f, seeder.digest, aliceRealm) }
	const inst = `;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";reg-id=1`
	seeds := []regMsg{
		{contacts: []string{aliceContact}},
		{contacts: []string{aliceContact}, auth: aliceMD5.authorization(nonce(), "00000001")},
		{contacts: []string{aliceContact}, expires: "600", auth: aliceSHA256.authorization(nonce(), "00000001")},
		{to: "sip:1001@acme.example", contacts: []string{aliceContact + inst}, auth: aliceMD5.authorization(nonce(), "00000001")},
		{contacts: []string{"*"}, expires: "0", auth: aliceMD5.authorization(nonce(), "00000001")},
		{contacts: []string{"*"}, auth: aliceMD5.authorization(nonce(), "00000001")},
		{contacts: []string{"*", aliceContact}, expires: "0", auth: aliceMD5.authorization(nonce(), "00000001")},
		{auth: aliceMD5.authorization(nonce(), "00000001")}, // query
		{contacts: []string{`"Alice, desk" <sip:alice@192.0.2.10:5060;transport=tcp>;expires=30, <sip:alice@192.0.2.10:5062>`},
			auth: aliceMD5.authorization(nonce(), "00000001")},
		{contacts: []string{"<tel:+16505550101>"}, auth: aliceMD5.authorization(nonce(), "00000001")},
		{contacts: []string{aliceContact + ";expires=4294967295"}, expires: "abc", auth: aliceMD5.authorization(nonce(), "00000001")},
		{contacts: []string{aliceContact}, expires: "4294967295", auth: bobMD5.authorization(nonce(), "00000001")},
		{to: "sip:alice@other.example", contacts: []string{aliceContact}},
		{contacts: []string{aliceContact}, auth: `Digest username="alice", realm="acme.example", nonce="x", uri="sip:acme.example", response="0"`},
		{contacts: []string{aliceContact}, auth: `Basic YWxpY2U6cHctYWxpY2U=`},
		{contacts: []string{aliceContact}, auth: strings.Replace(aliceMD5.authorization(nonce(), "00000001"), "MD5", "SHA-512-256", 1)},
		{method: "OPTIONS"},
	}
	for _, m := range seeds {
		f.Add([]byte(m.String()))
	}
	// The signed seeds reach the binding code.
	for _, i := range []int{1, 2, 3} {
		if res := newRegHarness(f, nil).send(f, seeds[i]); res.StatusCode != 200 {
			f.Fatalf("seed %d: %d %s, want 200", i, res.StatusCode, res.Reason)
		}
	}
	f.Add([]byte("REGISTER sip:acme.example SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.10\r\nTo: sip:alice@acme.example\r\n" +
		"From: sip:alice@acme.example;tag=1\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\nm: *\r\nExpires: 0\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("REGISTER sip:acme.example SIP/2.0\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := sip.ParseMessage(data)
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok {
			return
		}
		h := newRegHarness(t, func(o *Options) {
			o.SiteCapacity = 2
			o.LocalHost = func(host string) bool { return host == "192.0.2.1" }
		})
		for i, handler := range []func(*sip.Request, sip.ServerTransaction){h.reg.OnRegister, h.reg.OnRegister, h.reg.OnOptions} {
			r := req.Clone()
			tx, result, done := fuzzTx(r)
			handler(r, tx)
			res := result()
			done()
			if len(res) != 1 {
				t.Fatalf("handler %d sent %d responses, want 1", i, len(res))
			}
			if c := res[0].StatusCode; c < 200 || c > 699 {
				t.Fatalf("handler %d answered %d, want a final status", i, c)
			}
		}
		total, perSite := h.loc.Count()
		for site, n := range perSite {
			if n < 0 {
				t.Fatalf("Count at %q = %d", site, n)
			}
		}
		if total > 2*2 { // two sites (HQ, branch) of SiteCapacity 2
			t.Fatalf("Count = %d, over the sites' capacity", total)
		}
	})
}
