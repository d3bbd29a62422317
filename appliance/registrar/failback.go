package registrar

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/store"
)

// Failback settings (Options.Failback, the node's sip.failback): what the
// registrar does, beyond the short interval of FailbackExpires, to send
// phones back to the cloud once the mode is normal again.
const (
	FailbackOff    = "off"    // the short interval only
	FailbackNotify = "notify" // also NOTIFY Event: check-sync to idle phones (Run)
	FailbackReject = "reject" // also 503 + Retry-After to an idle phone's re-REGISTER
)

// reasonFailback is the reason phrase of failback "reject"'s 503.
const reasonFailback = "Service Unavailable: the primary server is back, register there"

// checkSync is the Event of the failback NOTIFY: not in an RFC, but
// Poly, Yealink, Grandstream and others re-check their configuration and
// registration on it; reboot=false asks those that would reboot not to.
const checkSync = "check-sync;reboot=false"

// notifyTimeout bounds one NOTIFY transaction; notifyInFlight bounds the
// transactions open at once (a phone that does not answer holds one for
// the whole timeout).
const (
	notifyTimeout  = 10 * time.Second
	notifyInFlight = 256
)

// maxExpires is the longest interval granted in mode: MaxExpires, cut to
// SurvivabilityExpires while the cloud is away or being reconciled with
// (phones must come back soon to hear it returned), and to FailbackExpires
// in normal mode (phones that failed over must come back soon to find
// that it did).
func (r *Registrar) maxExpires(mode string) time.Duration {
	m := r.opt.MaxExpires
	switch mode {
	case store.ModeSurvivability, store.ModeRecovering:
		m = min(m, r.opt.SurvivabilityExpires)
	case store.ModeNormal:
		if r.opt.FailbackExpires > 0 {
			m = min(m, r.opt.FailbackExpires)
		}
	}
	return m
}

// retryAfter is failback "reject"'s Retry-After, in whole seconds (at
// least 1).
func (r *Registrar) retryAfter() string {
	secs := (r.opt.FailbackRetryAfter + time.Second - 1) / time.Second
	return strconv.Itoa(int(max(secs, 1)))
}

// PriorityReserve is how many of a site's capacity places are kept for
// users whose priority is emergency or common_area: 5 %, at least 1, but
// never the whole capacity.
func PriorityReserve(capacity int) int {
	if capacity <= 1 {
		return 0
	}
	return min(max(capacity/20, 1), capacity-1)
}

// admitted is how many live bindings a site may hold here once a new one
// of user's is added: the whole capacity for a prioritized user, the
// capacity less the reserve for the others.
func admitted(capacity int, user account.User) int {
	if user.Prioritized() {
		return capacity
	}
	return capacity - PriorityReserve(capacity)
}

// Run sends failback NOTIFYs until ctx ends, when Failback is "notify"
// (otherwise it returns at once). Every FailbackScan, while the mode is
// normal, each live binding here that has not been notified since its
// last refresh, and whose user is not in a call, gets one NOTIFY with
// Event: check-sync through its flow: so once after the mode turns normal,
// and again after each refresh. A user in a call is tried again at the
// next scan. At most NotifyRate are sent a second. Leaving normal mode
// forgets who was notified.
func (r *Registrar) Run(ctx context.Context) {
	if r.opt.Failback != FailbackNotify || r.opt.Send == nil {
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, notifyInFlight)
	pace := time.NewTicker(time.Second / time.Duration(r.opt.NotifyRate))
	defer pace.Stop()
	scan := time.NewTicker(r.opt.FailbackScan)
	defer scan.Stop()
	notified := map[string]time.Time{} // binding ID -> the version notified
	for {
		select {
		case <-ctx.Done():
			return
		case <-scan.C:
		}
		for _, b := range r.failbackDue(ctx, notified) {
			select {
			case <-ctx.Done():
				return
			case <-pace.C:
			}
			if mode, _, err := r.dir.Mode(ctx); err != nil || mode != store.ModeNormal {
				break // the next scan forgets
			}
			if r.opt.InCall(b.Username) {
				continue // not now: the next scan tries again
			}
			notified[b.ID] = b.UpdatedAt
			select {
			case <-ctx.Done():
				return
			case slots <- struct{}{}:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				r.notify(ctx, b)
			}()
		}
	}
}

// failbackDue lists the live bindings to notify now, oldest refresh first:
// none unless the mode is normal, else those not notified at their current
// version. It forgets bindings that are gone, and everything outside
// normal mode.
func (r *Registrar) failbackDue(ctx context.Context, notified map[string]time.Time) []store.Binding {
	mode, _, err := r.dir.Mode(ctx)
	if err != nil || mode != store.ModeNormal {
		clear(notified)
		return nil
	}
	live := r.loc.Live(r.opt.Now())
	seen := make(map[string]bool, len(live))
	var due []store.Binding
	for _, b := range live {
		seen[b.ID] = true
		if v, ok := notified[b.ID]; !ok || b.UpdatedAt.After(v) {
			due = append(due, b)
		}
	}
	for id := range notified {
		if !seen[id] {
			delete(notified, id)
		}
	}
	return due
}

// notify sends one out-of-dialog NOTIFY Event: check-sync to the binding's
// contact, through the flow it registered from, and logs the outcome.
func (r *Registrar) notify(ctx context.Context, b store.Binding) {
	log := r.log.With("aor", b.AOR, "contact", b.Contact, "source", b.Source, "transport", b.Transport)
	req, err := checkSyncRequest(b)
	if err != nil {
		log.Warn("failback notify not sent", "error", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, notifyTimeout)
	defer cancel()
	res, err := r.opt.Send(ctx, req)
	switch {
	case err != nil:
		log.Info("failback notify sent, no answer", "error", err)
	default:
		log.Info("failback notify sent", "status", res.StatusCode)
	}
}

// checkSyncRequest builds the NOTIFY for b: to its contact URI, from the
// realm, with Event: check-sync, bound for its source over its transport.
func checkSyncRequest(b store.Binding) (*sip.Request, error) {
	var uri sip.Uri
	if err := sip.ParseUri(b.Contact, &uri); err != nil {
		return nil, err
	}
	user, realm, _ := strings.Cut(b.AOR, "@")
	req := sip.NewRequest(sip.NOTIFY, uri)
	req.SetDestination(b.Source)
	req.SetTransport(strings.ToUpper(b.Transport))
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "outpost", Host: realm}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: realm}, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Event", checkSync))
	req.AppendHeader(sip.NewHeader("Subscription-State", "terminated"))
	return req, nil
}
