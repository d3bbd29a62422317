package node

import (
	"context"

	"github.com/emiago/sipgo/sip"

	"github.com/outpost-voice/outpost/appliance/mwi"
	"github.com/outpost-voice/outpost/appliance/store"
)

// Message waiting (appliance/mwi): the node answers SUBSCRIBE
// message-summary and NOTIFYs the phones whose flows it holds. It learns
// of every mailbox change, made here (the mailboxes' change subscription)
// or on another node (the messages the FSM applies), and each node
// notifies only its own subscriptions and bindings, so a NOTIFY always
// leaves through the node that holds the phone's flow.
func (n *Node) startMWI() {
	e := n.sip
	box := n.voicemail.box
	n.mwi = mwi.New(e.reg, n.store.Reader(), box, e.loc, mwi.Options{
		Contact: e.contact,
		Send: func(ctx context.Context, req *sip.Request) (*sip.Response, error) {
			return e.client.Do(ctx, req)
		},
	}, n.log.With("component", "mwi"))
	e.srv.OnSubscribe(n.mwi.OnSubscribe)
	box.Subscribe(func(mailbox string) { n.mwi.Changed(context.Background(), mailbox) })
	n.cluster.FSM().OnVoicemail(func(ms []store.VoicemailMessage) {
		// Raft's apply goroutine: hand off.
		go n.voicemailApplied(ms)
	})
	n.mwiReady.Store(true)
}

// voicemailApplied handles the messages the FSM applied: a mailbox
// changed, audio the cloud took is freed here too, and audio this node
// lacks is queued for the replicator.
func (n *Node) voicemailApplied(ms []store.VoicemailMessage) {
	box := n.voicemail.box
	seen := map[string]bool{}
	for _, m := range ms {
		if err := box.Free(m); err != nil {
			n.log.Warn("voicemail audio not freed", "id", m.ID, "error", err)
		}
		if !seen[m.Mailbox] {
			seen[m.Mailbox] = true
			box.Changed(m.Mailbox)
		}
	}
	n.voicemail.replicator.Add(ms)
}

// bindingsPersisted tells message waiting of the bindings the registrar
// wrote (a new one is a phone that may need its lamp lit).
func (n *Node) bindingsPersisted(bs []store.Binding) {
	if n.mwiReady.Load() {
		n.mwi.Registered(context.Background(), bs)
	}
}
