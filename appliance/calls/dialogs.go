package calls

import (
	"context"
	"sync"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// dialogs holds the node's dialogs with phones and other nodes: those it
// answered (the caller's leg) and those it placed (the callee's). Unlike
// sipgo's caches it sends in-dialog requests to the flow the dialog came
// from (RewriteContact), not to the Contact, which a phone behind NAT
// cannot be reached at; and it forgets a dialog when the dialog ends.
type dialogs struct {
	ua     sipgo.DialogUA
	mu     sync.Mutex
	server map[string]*sipgo.DialogServerSession
	client map[string]*sipgo.DialogClientSession
}

func newDialogs(client *sipgo.Client, contact sip.ContactHeader) *dialogs {
	return &dialogs{
		ua:     sipgo.DialogUA{Client: client, ContactHDR: contact, RewriteContact: true},
		server: map[string]*sipgo.DialogServerSession{},
		client: map[string]*sipgo.DialogClientSession{},
	}
}

// readInvite starts a dialog for an INVITE this node answers.
func (d *dialogs) readInvite(req *sip.Request, tx sip.ServerTransaction) (*sipgo.DialogServerSession, error) {
	ds, err := d.ua.ReadInvite(req, tx)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.server[ds.ID] = ds
	d.mu.Unlock()
	context.AfterFunc(ds.Context(), func() { d.forget(ds.ID) })
	return ds, nil
}

// writeInvite places an INVITE; the dialog is kept once it is established.
func (d *dialogs) writeInvite(ctx context.Context, req *sip.Request) (*sipgo.DialogClientSession, error) {
	cs, err := d.ua.WriteInvite(ctx, req)
	if err != nil {
		return nil, err
	}
	cs.OnState(func(s sip.DialogState) {
		if s == sip.DialogStateEstablished {
			d.mu.Lock()
			d.client[cs.ID] = cs
			d.mu.Unlock()
			context.AfterFunc(cs.Context(), func() { d.forget(cs.ID) })
		}
	})
	return cs, nil
}

// forget drops a dialog by ID.
func (d *dialogs) forget(id string) {
	d.mu.Lock()
	delete(d.server, id)
	delete(d.client, id)
	d.mu.Unlock()
}

// matchServer finds the answered dialog an in-dialog request belongs to.
func (d *dialogs) matchServer(req *sip.Request) *sipgo.DialogServerSession {
	id, err := sip.DialogIDFromRequestUAS(req)
	if err != nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.server[id]
}

// answered is the answered dialog id; nil when it ended.
func (d *dialogs) answered(id string) *sipgo.DialogServerSession {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.server[id]
}

// matchClient finds the placed dialog an in-dialog request belongs to.
func (d *dialogs) matchClient(req *sip.Request) *sipgo.DialogClientSession {
	id, err := sip.DialogIDFromRequestUAC(req)
	if err != nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.client[id]
}

// byTags finds a dialog by Call-ID and its two tags in either order (as
// a Replaces header names one), returning its ID.
func (d *dialogs) byTags(callID, tag1, tag2 string) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range []string{sip.DialogIDMake(callID, tag1, tag2), sip.DialogIDMake(callID, tag2, tag1)} {
		if d.server[id] != nil || d.client[id] != nil {
			return id, true
		}
	}
	return "", false
}

// count is the number of dialogs held.
func (d *dialogs) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.server) + len(d.client)
}
