package store

import (
	"context"
	"reflect"
	"testing"
	"time"
)

func TestBindingCountsByNode(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	r := s.Reader()
	now := at(time.Minute)
	onNode := func(b Binding, node string) Binding { b.Node = node; return b }

	got, err := r.BindingCountsByNode(ctx, now)
	if err != nil || len(got) != 0 {
		t.Errorf("BindingCountsByNode() of an empty store = %v, %v; want none", got, err)
	}
	putLocal(t, s,
		onNode(testBinding("a", "alice@acme.example", "hq", "a", at(time.Second)), "n1"),
		onNode(testBinding("b", "bob@acme.example", "hq", "b", at(time.Second)), "n1"),
		// Moved to n2 by a newer replicated version: counted once, on n2.
		onNode(testBinding("moved", "carol@acme.example", "hq", "c", at(time.Second)), "n1"),
		onNode(testBinding("old", "dave@acme.example", "hq", "d", at(-2*time.Hour)), "n1"), // expired
	)
	putReplicated(t, s,
		onNode(testBinding("moved", "carol@acme.example", "hq", "c", at(2*time.Second)), "n2"),
		onNode(testBinding("e", "erin@acme.example", "branch", "e", at(time.Second)), "n3"),
		tombstone(onNode(testBinding("f", "frank@acme.example", "branch", "f", at(time.Second)), "n3"), at(2*time.Second)),
	)
	got, err = r.BindingCountsByNode(ctx, now)
	if want := map[string]int{"n1": 2, "n2": 1, "n3": 1}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("BindingCountsByNode() = %v, %v; want %v", got, err, want)
	}
}
