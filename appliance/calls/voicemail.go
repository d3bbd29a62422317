package calls

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/appliance/media/ivr"
	"github.com/outpost-voice/outpost/appliance/media/wav"
	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/appliance/voicemail"
	"github.com/outpost-voice/outpost/sdg"
)

// Voicemail (issue 12; docs/sip.md, "Voicemail"). A call to a user whose
// mailbox is enabled goes there when nobody answers within the user's
// no-answer time, when every phone is busy, or when no phone of theirs is
// registered; so does a route that ends in a voicemail route. The node
// answers the caller with its IVR endpoint (as for a menu), plays the
// greeting (the user's own prompt, else the built-in one) and a beep, and
// records until the caller hangs up, presses #, stays silent for
// voicemail.Silence or reaches voicemail.MaxMessage; package voicemail
// keeps the message. Dialling *97 plays the caller's own mailbox (retrieve).

// Mailboxes is what calls needs of the node's mailboxes (voicemail.Box).
type Mailboxes interface {
	Deposit(d voicemail.Deposit) (store.VoicemailMessage, error)
	Messages(ctx context.Context, mailbox string) ([]store.VoicemailMessage, error)
	Audio(ctx context.Context, m store.VoicemailMessage) ([]byte, error)
	MarkSaved(id string) error
	Delete(id string) error
}

// SetVoicemail enables voicemail: without mailboxes, unanswered calls end
// as before and *97 is refused.
func (b *B2BUA) SetVoicemail(m Mailboxes) {
	b.mu.Lock()
	b.mailboxes = m
	b.mu.Unlock()
}

func (b *B2BUA) boxes() Mailboxes {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mailboxes
}

// DispVoicemail is the disposition of a call that reached a mailbox.
const DispVoicemail = "voicemail"

// Built-in prompts of voicemail.
const (
	promptGreeting = "vm-greeting-default"
	promptBeep     = "beep"
)

// mailboxOf is user's mailbox settings when calls to them may go to
// voicemail here: the mailbox is enabled and the node has mailboxes.
func (b *B2BUA) mailboxOf(user account.User) *account.VoicemailSettings {
	if b.boxes() == nil || user.ID == "" {
		return nil
	}
	s := user.VoicemailSettings()
	if !s.Enabled {
		return nil
	}
	return &s
}

// toMailbox answers an unanswered caller and records a message for
// mailbox (why: "no_answer", "busy", "unavailable" or a route's path, for
// the record's route). It reports false when the caller could not be
// answered: the call is then the caller's as before.
func (b *B2BUA) toMailbox(ds *sipgo.DialogServerSession, req *sip.Request, caller account.User, rt *route,
	mailbox, greeting, why string, rec *store.CallRecord) bool {
	log := b.log.With("call_id", req.CallID().Value(), "mailbox", mailbox)
	iv := b.ivrOf(ds.ID)
	if iv == nil {
		var err error
		if iv, err = b.answerForIVR(ds, req, rt); err != nil {
			log.Warn("voicemail: cannot answer", "error", err)
			return false
		}
	}
	rec.Answer, rec.Status = b.now().UTC(), 200
	if rec.Route == "" {
		rec.Route = why
	}
	rec.Route = strings.TrimPrefix(rec.Route+" > voicemail:"+mailbox, " > ")
	b.deposit(ds.Context(), iv.leg, mailbox, greeting, caller, rec, log)
	b.takeIVR(ds.ID)
	if ds.Context().Err() == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = ds.Bye(ctx)
		cancel()
	}
	b.finish(rec, 200, DispVoicemail)
	return true
}

// deposit plays the greeting and the beep on leg and records a message.
func (b *B2BUA) deposit(ctx context.Context, leg IVRLeg, mailbox, greeting string, caller account.User,
	rec *store.CallRecord, log interface{ Info(string, ...any) }) {
	if greeting == "" {
		greeting = promptGreeting
	}
	if err := leg.Play(ctx, greeting, promptBeep); err != nil {
		return // the caller hung up
	}
	var r voicemail.Recording
	for {
		k, err := leg.Record(ctx, voicemail.Silence, func(f []int16) bool { return !r.Add(f) })
		if err == nil && k != 0 && k != '#' {
			continue // other keys are part of the message
		}
		break
	}
	samples, ok := r.Message()
	if !ok {
		log.Info("voicemail: message too short, dropped", "recorded", r.Duration())
		return
	}
	name := caller.Name
	from := caller.SIP.Username
	if from == "" {
		from = rec.Caller
	}
	if name == "" {
		name = rec.CallerName
	}
	m, err := b.boxes().Deposit(voicemail.Deposit{Mailbox: mailbox, Caller: from, CallerName: name,
		CallRecord: rec.ID, Samples: samples})
	if err != nil {
		b.log.Error("voicemail: cannot keep the message", "mailbox", mailbox, "error", err)
		return
	}
	log.Info("voicemail: message left", "id", m.ID, "duration_ms", m.DurationMS)
	if ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = leg.Play(pctx, "goodbye")
		cancel()
	}
}

// voicemailFromGroup runs a voicemail route's Voicemail (groups.go's
// walk): the mailbox of a user (their settings) or of an SDG (the
// built-in greeting). done says the call is settled here.
func (b *B2BUA) voicemailFromGroup(ds *sipgo.DialogServerSession, req *sip.Request, caller account.User, rt *route,
	a sdg.Voicemail, c *sdg.Call, rec *store.CallRecord) (next sdg.Action, done bool) {
	greeting := ""
	if b.boxes() == nil {
		return c.Next(sdg.NoAnswer{Step: a.Step, Status: 480}), false
	}
	if u, err := b.dir.UserByID(ds.Context(), a.Mailbox); err == nil {
		s := b.mailboxOf(u)
		if s == nil {
			return c.Next(sdg.NoAnswer{Step: a.Step, Status: 480}), false
		}
		greeting = s.Greeting
	}
	act := c.Next(sdg.Answered{Step: a.Step})
	path := ""
	if done, ok := act.(sdg.Connected); ok {
		path = strings.Join(done.Path[:max(0, len(done.Path)-1)], " > ")
	}
	rec.Route = path
	if !b.toMailbox(ds, req, caller, rt, a.Mailbox, greeting, path, rec) {
		rec.Route = ""
		return sdg.Fail{Status: 488, Err: fmt.Errorf("%w: cannot answer for voicemail", sdg.ErrNoVoicemail), Path: c.Path()}, false
	}
	return act, true
}

// Keys of *97 (docs/sip.md, "Voicemail").
const (
	keyReplay  = '1'
	keyDelete  = '7'
	keySave    = '9'
	keyNext    = '#'
	keyNextAlt = '6'
)

// playMailbox plays the caller's own mailbox (*97): the counts, then each
// message, new ones first, with the keys above. A new message heard
// becomes saved.
func (b *B2BUA) playMailbox(ds *sipgo.DialogServerSession, req *sip.Request, caller account.User, rt *route, rec *store.CallRecord) {
	log := b.log.With("call_id", req.CallID().Value(), "mailbox", caller.ID)
	boxes := b.boxes()
	iv, err := b.answerForIVR(ds, req, rt)
	if boxes == nil || err != nil {
		log.Warn("voicemail retrieval: cannot answer", "error", err)
		_ = ds.Respond(488, "Not Acceptable Here", nil)
		b.finish(rec, 488, DispFailed)
		return
	}
	rec.Answer, rec.Status, rec.Route = b.now().UTC(), 200, "voicemail:"+caller.ID+" retrieve"
	defer func() {
		b.takeIVR(ds.ID)
		if ds.Context().Err() == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = ds.Bye(ctx)
			cancel()
		}
		b.finish(rec, 200, DispAnswered)
	}()
	ctx := ds.Context()
	msgs, err := boxes.Messages(ctx, caller.ID)
	if err != nil {
		log.Error("voicemail retrieval: cannot read the mailbox", "error", err)
		return
	}
	if err := iv.leg.Play(ctx, countPrompts(msgs)...); err != nil {
		return
	}
	if len(msgs) == 0 {
		_ = iv.leg.Play(ctx, "goodbye")
		return
	}
	for i := 0; i < len(msgs); {
		m := msgs[i]
		k, err := b.playMessage(ctx, iv.leg, boxes, m)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, ivr.ErrClosed) {
				return
			}
			log.Warn("voicemail retrieval: cannot play a message", "id", m.ID, "error", err)
			i++
			continue
		}
		if m.Folder == store.FolderNew {
			if err := boxes.MarkSaved(m.ID); err != nil {
				log.Warn("voicemail: cannot mark heard", "id", m.ID, "error", err)
			}
			msgs[i].Folder = store.FolderSaved
		}
		if k, err = choose(ctx, iv.leg, k); err != nil {
			if ctx.Err() == nil {
				_ = iv.leg.Play(ctx, "goodbye")
			}
			return
		}
		switch k {
		case keyReplay:
			continue
		case keyDelete:
			if err := boxes.Delete(m.ID); err != nil {
				log.Warn("voicemail: cannot delete", "id", m.ID, "error", err)
			}
			_ = iv.leg.Play(ctx, "vm-deleted")
		case keySave:
			_ = iv.leg.Play(ctx, "vm-saved")
		}
		i++
	}
	_ = iv.leg.Play(ctx, "vm-no-more", "goodbye")
}

// choose is the caller's choice after a message: k if it is one (a key
// pressed during the message), else what they press while the menu plays
// (0 and other keys play it again: the help); an error after three plays
// without a key, or on the hang-up.
func choose(ctx context.Context, leg IVRLeg, k byte) (byte, error) {
	for silent := 0; ; {
		switch k {
		case keyReplay, keyDelete, keySave, keyNext, keyNextAlt:
			return k, nil
		}
		var err error
		k, err = leg.Menu(ctx, []string{"vm-menu"}, 8*time.Second)
		switch {
		case errors.Is(err, ivr.ErrNoInput):
			if silent++; silent == 3 {
				return 0, err
			}
		case err != nil:
			return 0, err
		}
	}
}

// playMessage plays m's audio; a key pressed during it ends it early and
// is returned.
func (b *B2BUA) playMessage(ctx context.Context, leg IVRLeg, boxes Mailboxes, m store.VoicemailMessage) (byte, error) {
	data, err := boxes.Audio(ctx, m)
	if err != nil {
		return 0, err
	}
	samples, err := wav.Decode(data)
	if err != nil {
		return 0, fmt.Errorf("voicemail %s: %w", m.ID, err)
	}
	return leg.PlaySamples(ctx, samples)
}

// countPrompts says how many new and saved messages there are: "You have
// N new messages and M saved messages", or "You have no messages".
func countPrompts(msgs []store.VoicemailMessage) []string {
	if len(msgs) == 0 {
		return []string{"vm-no-messages"}
	}
	var n, s int
	for _, m := range msgs {
		if m.Folder == store.FolderNew {
			n++
		} else {
			s++
		}
	}
	return []string{"vm-you-have", numberPrompt(n), "vm-new-messages", "vm-and", numberPrompt(s), "vm-saved-messages"}
}

// numberPrompt is the built-in prompt saying n (0 to 20; more is "more
// than twenty").
func numberPrompt(n int) string {
	if n > 20 {
		return "vm-many"
	}
	return fmt.Sprintf("num-%d", n)
}
