package calls

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/registrar"
)

// A call to a phone whose flow another node holds goes to that node as an
// INVITE naming the binding, authenticated with an HMAC over its Call-ID,
// binding and time under a key every node shares; that node rings the
// phone as a leg of its own. Phones cannot use it: they do not have the
// key. A signature is good for hopWindow either side of the receiving
// node's clock, and once: a captured hop INVITE cannot be replayed.
const (
	hopBindingHeader = "X-Outpost-Binding"  // "<aor> <binding id>"
	hopAuthHeader    = "X-Outpost-Hop-Auth" // "<unix seconds>;<hex HMAC-SHA256>"
	hopWindow        = time.Minute
)

func (b *B2BUA) hopMAC(callID, aor, id string, at int64) string {
	m := hmac.New(sha256.New, b.hopKey)
	m.Write([]byte(callID + "\x00" + aor + "\x00" + id + "\x00" + strconv.FormatInt(at, 10)))
	return strconv.FormatInt(at, 10) + ";" + hex.EncodeToString(m.Sum(nil))
}

// hopSeen remembers the Call-IDs of accepted hop INVITEs while their
// signatures are valid.
type hopSeen struct {
	mu   sync.Mutex
	seen map[string]time.Time // Call-ID -> when it may be forgotten
}

// first reports whether callID is new, and remembers it until until.
func (h *hopSeen) first(callID string, now, until time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seen == nil {
		h.seen = map[string]time.Time{}
	}
	if _, ok := h.seen[callID]; ok {
		return false
	}
	if len(h.seen) >= 1024 && len(h.seen)%1024 == 0 {
		for id, t := range h.seen {
			if now.After(t) {
				delete(h.seen, id)
			}
		}
	}
	h.seen[callID] = until
	return true
}

// hopValid checks a hop INVITE's signature, its time and that it is not a
// replay.
func (b *B2BUA) hopValid(callID, aor, id, auth string) bool {
	ts, _, ok := strings.Cut(auth, ";")
	at, err := strconv.ParseInt(ts, 10, 64)
	if !ok || err != nil || !hmac.Equal([]byte(auth), []byte(b.hopMAC(callID, aor, id, at))) {
		return false
	}
	now := b.now()
	signed := time.Unix(at, 0)
	if signed.Before(now.Add(-hopWindow)) || signed.After(now.Add(hopWindow)) {
		return false
	}
	return b.hops.first(callID, now, signed.Add(hopWindow))
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
	if !ok || !b.hopValid(cid.Value(), aor, id, ah.Value()) {
		b.log.Warn("refused a node-to-node call with a bad, stale or replayed signature", "source", req.Source())
		respond(tx, req, 403, "Forbidden")
		return
	}
	if slot, ok := strings.CutPrefix(aor, parkHopPrefix); ok { // a retrieval of a call parked here (parkpeers.go)
		b.onParkHop(req, tx, slot, id)
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
	// Click-to-call's leg to the user's own phone asks it to answer at once.
	auto := false
	if ci := req.GetHeader("Call-Info"); ci != nil && strings.Contains(ci.Value(), "answer-after=0") {
		auto = true
	}
	b.ring(ds, req, caller, route{acct: acct, callee: callee, targets: tg, hops: hops, autoAnswer: auto}, nil)
}
