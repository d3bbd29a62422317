package calls

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/registrar"
)

// A call to a phone whose flow another node holds goes to that node as an
// INVITE naming the binding, authenticated with an HMAC over its Call-ID and
// binding under a key every node shares; that node rings the phone as a
// leg of its own. Phones cannot use it: they do not have the key.
const (
	hopBindingHeader = "X-Outpost-Binding" // "<aor> <binding id>"
	hopAuthHeader    = "X-Outpost-Hop-Auth"
)

func (b *B2BUA) hopMAC(callID, aor, id string) string {
	m := hmac.New(sha256.New, b.hopKey)
	m.Write([]byte(callID + "\x00" + aor + "\x00" + id))
	return hex.EncodeToString(m.Sum(nil))
}

// onHop takes a call another node hands over for a phone registered here.
func (b *B2BUA) onHop(req *sip.Request, tx sip.ServerTransaction, hops int) {
	if !registrar.Sane(req, tx) {
		return
	}
	bh, ah, cid := req.GetHeader(hopBindingHeader), req.GetHeader(hopAuthHeader), req.CallID()
	if bh == nil || ah == nil || cid == nil {
		respond(tx, req, 403, "Forbidden")
		return
	}
	aor, id, ok := strings.Cut(bh.Value(), " ")
	want := b.hopMAC(cid.Value(), aor, id)
	if !ok || !hmac.Equal([]byte(ah.Value()), []byte(want)) {
		b.log.Warn("refused a node-to-node call with a bad signature", "source", req.Source())
		respond(tx, req, 403, "Forbidden")
		return
	}
	ctx := context.Background()
	bindings, err := b.dir.Bindings(ctx, aor, time.Now())
	if err != nil {
		respond(tx, req, 500, "Server Internal Error")
		return
	}
	var tg []target
	for _, bd := range bindings {
		if bd.ID == id && bd.Node == b.nodeID {
			tg = append(tg, target{binding: bd})
		}
	}
	if len(tg) == 0 {
		respond(tx, req, 480, "Temporarily Unavailable: the phone is no longer registered here")
		return
	}
	acct, err := b.dir.Account(ctx)
	if err != nil {
		respond(tx, req, 500, "Server Internal Error")
		return
	}
	from, to := req.From(), req.To()
	if from == nil || to == nil {
		respond(tx, req, 400, "Bad Request")
		return
	}
	caller := account.User{Name: from.DisplayName, Extension: from.Address.User}
	callee := account.User{Name: to.DisplayName, SIP: account.SIPCredentials{Username: to.Address.User}}
	ds, err := b.dialogs.readInvite(req, tx)
	if err != nil {
		respond(tx, req, 500, "Server Internal Error")
		return
	}
	_ = ds.Respond(100, "Trying", nil)
	b.ring(ds, req, caller, route{acct: acct, callee: callee, targets: tg, hops: hops}, nil)
}
