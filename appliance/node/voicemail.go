package node

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/outpost-voice/outpost/appliance/cluster"
	"github.com/outpost-voice/outpost/appliance/store"
	"github.com/outpost-voice/outpost/appliance/voicemail"
	"github.com/outpost-voice/outpost/appliance/web"
)

// Voicemail: the node's mailboxes keep message audio in
// <data_dir>/voicemail and the messages on the presence plane; a sharer
// proposes what this node recorded or changed, like call records. Audio
// recorded on another node is fetched by sha256 (GET
// /api/v1/cluster/voicemail/{hash}), from the recording node or any
// member that keeps a copy, so it never crosses Raft: the replicator
// fetches it ahead of time, as soon as the message is known here, and
// every node keeps a copy until the cloud took the message.
type nodeVoicemail struct {
	box        *voicemail.Box
	sharer     *sharer[store.VoicemailMessage]
	replicator *voicemail.Replicator
}

func newVoicemail(n *Node) (*nodeVoicemail, error) {
	box, err := voicemail.New(n.store, filepath.Join(n.cfg.DataDir, "voicemail"), n.cfg.NodeID, n.log)
	if err != nil {
		return nil, err
	}
	sh := &sharer[store.VoicemailMessage]{
		what:    "voicemail",
		id:      func(m store.VoicemailMessage) string { return m.ID },
		version: func(m store.VoicemailMessage) time.Time { return m.UpdatedAt },
		since:   n.store.Reader().LocalVoicemailSince,
		encode:  cluster.EncodeVoicemail,
		catchUp: true, shared: map[string]time.Time{},
	}
	if _, err := box.Sweep(context.Background()); err != nil {
		n.log.Warn("voicemail: sweep at start", "error", err)
	}
	box.OnPersisted(sh.persisted)
	box.SetFetcher(memberAudio{n})
	// After the sweep: its own sweep queues the audio still missing.
	rep := voicemail.NewReplicator(box, voicemail.ReplicatorOptions{})
	return &nodeVoicemail{box: box, sharer: sh, replicator: rep}, nil
}

// memberAudio fetches voicemail audio from the members.
type memberAudio struct{ n *Node }

func (m memberAudio) VoicemailPeers(ctx context.Context) ([]string, error) {
	members, err := m.n.store.Reader().Members(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, mb := range members {
		if mb.ID != m.n.cfg.NodeID {
			ids = append(ids, mb.ID)
		}
	}
	return ids, nil
}

func (m memberAudio) FetchVoicemail(ctx context.Context, node, sha256 string) ([]byte, error) {
	members, err := m.n.store.Reader().Members(ctx)
	if err != nil {
		return nil, err
	}
	for _, mb := range members {
		if mb.ID == node && mb.HTTPAddr != "" {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			return web.NewClient(mb.HTTPAddr, m.n.token).VoicemailAudio(rctx, sha256)
		}
	}
	return nil, fmt.Errorf("member %s has no known HTTP address", node)
}
