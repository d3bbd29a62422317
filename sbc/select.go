package sbc

import (
	"cmp"
	"slices"
	"time"

	"github.com/outpost-voice/outpost/account"
)

// InviteAnswerTimeout is how long an INVITE to a trunk may go without any
// provisional or final answer before the call moves to the next trunk.
const InviteAnswerTimeout = 4 * time.Second

// SelectRequest is everything a trunk selection depends on.
type SelectRequest struct {
	Site      string          // the caller's site
	Emergency bool            // an emergency call: no channel limit, down trunks last
	Trunks    []account.Trunk // the snapshot's trunks (every site's)
	Health    map[string]State
	InUse     map[string]int // channels in use per trunk id
}

// Skip reasons.
const (
	SkipDown = "down" // health says down
	SkipFull = "full" // max_channels in use
)

// Skipped is a trunk of the site that was left out, and why.
type Skipped struct {
	TrunkID string
	Reason  string // SkipDown or SkipFull
}

// Selection is the order in which to try trunks for one call.
type Selection struct {
	Trunks  []account.Trunk
	Skipped []Skipped // so "no trunk" can say whether they were down or full
}

// Select orders the caller's site's trunks for one call. It is pure.
//
// Usable trunks (up or unknown) come first, lowest priority first, weighted
// random within a priority (RFC 2782; weight 0 only after the others of its
// priority). A trunk with max_channels in use is skipped (max_channels < 1
// means no limit). Emergency calls ignore max_channels and, rather than
// fail, try down trunks after the usable ones, in the same order. Trunks of
// other sites are never used.
func Select(req SelectRequest, rnd Rand) Selection {
	var usable, down []account.Trunk
	var sel Selection
	for _, t := range req.Trunks {
		if t.Site != req.Site {
			continue
		}
		if st, ok := req.Health[t.ID]; ok && !st.Usable() {
			down = append(down, t)
			if !req.Emergency {
				sel.Skipped = append(sel.Skipped, Skipped{TrunkID: t.ID, Reason: SkipDown})
			}
			continue
		}
		if !req.Emergency && t.MaxChannels > 0 && req.InUse[t.ID] >= t.MaxChannels {
			sel.Skipped = append(sel.Skipped, Skipped{TrunkID: t.ID, Reason: SkipFull})
			continue
		}
		usable = append(usable, t)
	}
	sel.Trunks = byPriority(usable, rnd)
	if req.Emergency {
		sel.Trunks = append(sel.Trunks, byPriority(down, rnd)...)
	}
	return sel
}

// byPriority sorts trunks by priority (then id, so the input order does not
// matter) and orders each priority by weight.
func byPriority(trunks []account.Trunk, rnd Rand) []account.Trunk {
	sorted := slices.Clone(trunks)
	slices.SortFunc(sorted, func(a, b account.Trunk) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(a.ID, b.ID))
	})
	out := make([]account.Trunk, 0, len(sorted))
	for i := 0; i < len(sorted); {
		j := i
		for j < len(sorted) && sorted[j].Priority == sorted[i].Priority {
			j++
		}
		group := sorted[i:j]
		for _, k := range weightedOrder(len(group), func(k int) int { return group[k].Weight }, rnd) {
			out = append(out, group[k])
		}
		i = j
	}
	return out
}

// weightedOrder returns a permutation of 0..n-1: the items with a positive
// weight drawn one by one with probability weight/remaining total (RFC 2782),
// then the weight-0 items in uniform random order. It calls rnd.IntN once per
// draw among several items, never with a single candidate left.
func weightedOrder(n int, weight func(int) int, rnd Rand) []int {
	var weighted, zero []int
	for i := range n {
		if weight(i) > 0 {
			weighted = append(weighted, i)
		} else {
			zero = append(zero, i)
		}
	}
	out := make([]int, 0, n)
	for len(weighted) > 0 {
		k := 0
		if len(weighted) > 1 {
			total := 0
			for _, i := range weighted {
				total += weight(i)
			}
			pick := rnd.IntN(total)
			for pick >= weight(weighted[k]) {
				pick -= weight(weighted[k])
				k++
			}
		}
		out = append(out, weighted[k])
		weighted = slices.Delete(weighted, k, k+1)
	}
	for len(zero) > 0 {
		k := 0
		if len(zero) > 1 {
			k = rnd.IntN(len(zero))
		}
		out = append(out, zero[k])
		zero = slices.Delete(zero, k, k+1)
	}
	return out
}

// Attempt is how one INVITE to one trunk ended, as the B2BUA saw it.
type Attempt struct {
	Emergency      bool
	Status         int  // the final response's status; 0 when none arrived
	TransportError bool // the request could not be sent or the connection failed
	NoAnswer       bool // no provisional or final answer within InviteAnswerTimeout
	Alerted        bool // an 18x arrived: the callee was alerted or early media began
	Unusable       bool // the trunk answered with what Outpost cannot use (SRTP without a usable key): the trunk's fault
}

// FailOver reports whether the call moves to the next trunk after this
// attempt. It is pure.
//
//   - Transport errors, no answer within InviteAnswerTimeout, 408 and every
//     5xx (503 too, with or without Retry-After: it asks not to retry that
//     server, and the next trunk is another one) fail over.
//   - Other 4xx and 6xx do not: the far end answered for the callee. Neither
//     does 487: the caller cancelled. 2xx and 3xx are not failures.
//   - Once an 18x arrived the callee was alerted, so a normal call stops
//     failing over (the caller heard it ring).
//   - Emergency calls fail over on every failure but 487, alerted or not:
//     another trunk may route what this one refused.
//   - An answer Outpost cannot use (Unusable) is the trunk's failure, not
//     the callee's: it fails over, alerted or not.
func FailOver(a Attempt) bool {
	if a.Status == 487 {
		return false
	}
	if a.Unusable {
		return true
	}
	if a.Emergency {
		return a.TransportError || a.NoAnswer || a.Status >= 400
	}
	if a.Alerted {
		return false
	}
	switch {
	case a.TransportError, a.NoAnswer:
		return true
	case a.Status == 408:
		return true
	case a.Status >= 500 && a.Status <= 599:
		return true
	}
	return false
}
