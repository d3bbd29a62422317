package e2e

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/outpost-voice/outpost/appliance/web"
)

// configHistory records what clients did to the config plane while a fault
// test ran: every apply of a snapshot revision (to any node, forwarded to
// the leader), with when it was sent, when it was answered and how
// (applied, refused as stale, or unknown: an error, a timeout, a node
// gone), and reads of the revision served. It then checks the history:
//
//   - linearizability (porcupine) of the applies and of the reads served by
//     a node that said, in the same answer, that it leads with a quorum:
//     the config plane as one register whose revision only grows;
//   - every node's reads never go back (a follower may lag; it never
//     un-applies);
//   - every revision acknowledged is served at the end by every node, and
//     no node serves a revision nobody sent.
type configHistory struct {
	t     *testing.T
	doc   []byte // the document applied, at each revision
	start time.Time

	mu    sync.Mutex
	ops   []porcupine.Operation
	acked []int64
	sent  map[int64]bool
	reads map[string][]int64 // node -> revisions read, in order
	count map[string]int     // outcome -> applies
}

// configInput is an operation on the config plane.
type configInput struct {
	Apply bool
	Rev   int64 // the revision applied
	Node  string
}

// configOutput is its outcome: for an apply, "ok", "stale", "failed" (it
// never reached a leader) or "unknown";
// for a read, the revision served.
type configOutput struct {
	Outcome string
	Rev     int64
}

func newConfigHistory(t *testing.T, doc []byte) *configHistory {
	return &configHistory{t: t, doc: doc, start: time.Now(), sent: map[int64]bool{},
		reads: map[string][]int64{}, count: map[string]int{}}
}

func (h *configHistory) now() int64 { return int64(time.Since(h.start)) }

// apply applies revision rev on n and records the outcome.
func (h *configHistory) apply(ctx context.Context, client int, n *node, rev int64) string {
	doc := withRevision(h.t, h.doc, rev, func(m map[string]any) {
		m["account"].(map[string]any)["name"] = fmt.Sprintf("Acme Corp (revision %d)", rev)
	})
	h.mu.Lock()
	h.sent[rev] = true
	h.mu.Unlock()
	call := h.now()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	got, err := n.client().ApplySnapshot(ctx, doc)
	cancel()
	ret := h.now()
	out := configOutput{Outcome: "unknown"}
	var apiErr *web.APIError
	switch {
	case err == nil && got == rev:
		out.Outcome = "ok"
	case err == nil:
		h.t.Errorf("apply of revision %d on %s answered revision %d", rev, n.id, got)
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusBadRequest && strings.Contains(err.Error(), "revision"):
		out.Outcome = "stale"
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusBadRequest:
		h.t.Errorf("apply of revision %d on %s refused: %v", rev, n.id, err)
	case notProposed(err):
		out.Outcome = "failed"
	}
	if out.Outcome == "unknown" {
		ret = math.MaxInt64 // it may take effect at any time from its call on
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.count[out.Outcome]++
	if out.Outcome == "ok" {
		h.acked = append(h.acked, rev)
	}
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: configInput{Apply: true, Rev: rev, Node: n.id},
		Call: call, Output: out, Return: ret})
	return out.Outcome
}

// notProposed reports whether an apply's error says it never reached a
// leader, so it cannot take effect: the node had no leader to forward it
// to, the leader's API refused the connection, or the node itself was
// down. Any other error (a leadership lost while the entry was in flight,
// a timeout) leaves the outcome unknown.
func notProposed(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "no raft leader is known") || strings.Contains(msg, "connection refused")
}

// read reads n's status; a read served by a node that says it leads with
// a quorum goes into the linearizability check.
func (h *configHistory) read(ctx context.Context, client int, n *node) {
	call := h.now()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	st, err := n.status(ctx)
	cancel()
	ret := h.now()
	if err != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reads[n.id] = append(h.reads[n.id], st.Revision)
	if st.Leader == n.id && st.Quorum {
		h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: configInput{Node: n.id},
			Call: call, Output: configOutput{Rev: st.Revision}, Return: ret})
	}
}

// run applies increasing revisions from writers clients, each its own
// series (writer w applies from+w, from+w+writers, ...: they overtake
// each other, so some applies are refused as stale), to the nodes in
// turn, and reads every node's status from one more client, until ctx
// ends. It returns when they have all stopped.
func (h *configHistory) run(ctx context.Context, nodes []*node, from int64, writers int) {
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := int64(0); ctx.Err() == nil; k++ {
				rev := from + int64(w) + k*int64(writers)
				pause := 50 * time.Millisecond
				if out := h.apply(context.Background(), w, nodes[int(k+int64(w))%len(nodes)], rev); out != "ok" && out != "stale" {
					pause = 500 * time.Millisecond // no leader yet: a client backs off
				}
				select {
				case <-ctx.Done():
				case <-time.After(pause):
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			h.read(context.Background(), writers, nodes[i%len(nodes)])
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	wg.Wait()
}

// configModel is the config plane as porcupine sees it: one revision that
// an apply of a greater one replaces, and that refuses (stale) the others.
var configModel = porcupine.Model{
	Init: func() any { return int64(0) },
	Step: func(state, input, output any) (bool, any) {
		cur, in, out := state.(int64), input.(configInput), output.(configOutput)
		if !in.Apply {
			return out.Rev == cur, cur
		}
		switch out.Outcome {
		case "ok":
			return in.Rev > cur, in.Rev
		case "stale":
			return in.Rev <= cur, cur
		case "failed":
			return true, cur
		}
		return true, max(cur, in.Rev) // unknown: applied here, or refused
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(configInput), output.(configOutput)
		if in.Apply {
			return fmt.Sprintf("apply(%d)@%s -> %s", in.Rev, in.Node, out.Outcome)
		}
		return fmt.Sprintf("read@%s -> %d", in.Node, out.Rev)
	},
}

// check checks the history once the nodes have settled: see configHistory.
// It returns the figures for the log.
func (h *configHistory) check(ctx context.Context, nodes []*node) string {
	h.t.Helper()
	h.mu.Lock()
	ops := slices.Clone(h.ops)
	acked := slices.Clone(h.acked)
	reads := h.reads
	count := h.count
	h.mu.Unlock()
	// The cluster starts at revision 1 (the bootstrap), before any op.
	ops = append(ops, porcupine.Operation{ClientId: 99, Input: configInput{Apply: true, Rev: 1, Node: "bootstrap"},
		Call: -2, Output: configOutput{Outcome: "ok"}, Return: -1})
	res, info := porcupine.CheckOperationsVerbose(configModel, ops, time.Minute)
	switch res {
	case porcupine.Illegal:
		path := writeFile(h.t, "config-history.html", nil)
		if err := porcupine.VisualizePath(configModel, info, path); err == nil {
			h.t.Logf("the history, drawn: %s", path)
		}
		h.t.Errorf("the config plane's history is not linearizable (%d operations)", len(ops))
	case porcupine.Unknown:
		h.t.Logf("porcupine gave up on %d operations (timeout): linearizability not checked", len(ops))
	}
	for id, revs := range reads {
		for i := 1; i < len(revs); i++ {
			if revs[i] < revs[i-1] {
				h.t.Errorf("%s served revision %d after %d: it went back", id, revs[i], revs[i-1])
				break
			}
		}
	}
	// At the end every node serves the same revision, at least every one
	// acknowledged, and one somebody sent.
	var last int64
	for _, r := range acked {
		last = max(last, r)
	}
	var final int64
	for _, n := range nodes {
		eventually(h.t, 60*time.Second, n.id+" serves the last revision", func(ctx context.Context) error {
			st, err := n.status(ctx)
			if err != nil {
				return err
			}
			if st.Revision < last {
				return fmt.Errorf("revision %d, but %d was acknowledged", st.Revision, last)
			}
			if final == 0 {
				final = st.Revision
			}
			if st.Revision != final {
				return fmt.Errorf("revision %d, another node serves %d", st.Revision, final)
			}
			return nil
		})
	}
	h.mu.Lock()
	phantom := final != 1 && !h.sent[final]
	h.mu.Unlock()
	if phantom {
		h.t.Errorf("the nodes serve revision %d, which nobody sent", final)
	}
	waitRevision(h.t, nodes, final)
	applies := count["ok"] + count["stale"] + count["failed"] + count["unknown"]
	verdict := map[porcupine.CheckResult]string{porcupine.Ok: "yes", porcupine.Illegal: "NO", porcupine.Unknown: "not decided in 1 min"}[res]
	return fmt.Sprintf("config history: %d applies (%d acknowledged, %d refused as stale, %d never proposed, %d unknown), %d leader reads, linearizable: %s; "+
		"final revision %d on every node, acknowledged revisions lost: 0", applies, count["ok"],
		count["stale"], count["failed"], count["unknown"], len(ops)-1-applies, verdict, final)
}
