package e2e

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/outpost-voice/outpost/account"
)

// A generated account of 1,000 users registers through SIPp with digest
// authentication; a wrong password and an unknown user are refused alike.
func TestRegisterThousandUsersWithSIPp(t *testing.T) {
	snap := account.Generate(account.GenerateOptions{Users: 1000, Numbers: 1000, SDGs: 20, Trunks: 2, Seed: 7})
	doc, err := snap.Encode()
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, "reg", nodeOpts{bootstrapSnapshot: writeFile(t, "account.json", doc)})
	waitRevision(t, []*node{n}, snap.Revision)

	realm := snap.Account.SIPRealm
	var rows [][3]string
	for _, u := range snap.Users {
		rows = append(rows, [3]string{u.SIP.Username, account.GeneratedPassword(u.SIP.Username), realm})
	}
	res := runSIPp(t, "register.xml", n.sipUDP, len(rows), 120*time.Second,
		"-inf", writeUsersCSV(t, rows), "-r", "200", "-l", "100")
	if res.exit != 0 {
		t.Fatalf("sipp register: exit %d\n%s", res.exit, res.stdout)
	}
	eventually(t, 10*time.Second, "1,000 registrations in status", func(ctx context.Context) error {
		st, err := n.status(ctx)
		if err == nil && st.Registrations != len(rows) {
			err = fmt.Errorf("%d registrations", st.Registrations)
		}
		return err
	})

	bad := [][3]string{
		{snap.Users[0].SIP.Username, "not-the-password", realm},
		{"no-such-user", "pw-no-such-user", realm},
	}
	res = runSIPp(t, "register-refused.xml", n.sipUDP, len(bad), 30*time.Second, "-inf", writeUsersCSV(t, bad))
	if res.exit != 0 {
		t.Fatalf("wrong password / unknown user not refused alike with 401: exit %d\n%s", res.exit, res.stdout)
	}
	st, err := n.status(context.Background())
	if err != nil || st.Registrations != len(rows) {
		t.Errorf("after refused attempts: %d registrations (%v), want %d", st.Registrations, err, len(rows))
	}
}

// Registrations are local-first and shared: a phone registered on one node
// shows on every node; with the other two nodes dead the survivor still
// takes registrations, and shares them once the others are back.
func TestRegistrationsSharedAcrossCluster(t *testing.T) {
	nodes := formCluster(t)
	if _, err := nodes[0].client().ApplySnapshot(context.Background(), demoSnapshot(t)); err != nil {
		t.Fatal(err)
	}
	waitRevision(t, nodes, 1)
	demoUsers := func(names ...string) string {
		var rows [][3]string
		for _, u := range names {
			rows = append(rows, [3]string{u, "pw-" + u, "acme.example"})
		}
		return writeUsersCSV(t, rows)
	}
	target := nodes[1]
	if res := runSIPp(t, "register.xml", target.sipUDP, 2, 30*time.Second, "-inf", demoUsers("alice", "bob")); res.exit != 0 {
		t.Fatalf("register on %s: exit %d\n%s", target.id, res.exit, res.stdout)
	}
	waitRegistrations := func(ns []*node, want int) {
		t.Helper()
		for _, n := range ns {
			eventually(t, 15*time.Second, fmt.Sprintf("%s sees %d registrations", n.id, want), func(ctx context.Context) error {
				st, err := n.status(ctx)
				if err == nil && st.Registrations != want {
					err = fmt.Errorf("%d registrations", st.Registrations)
				}
				return err
			})
		}
	}
	waitRegistrations(nodes, 2)

	// The survivor alone: no quorum, registrations still accepted.
	for _, n := range nodes {
		if n != target {
			n.kill()
		}
	}
	eventually(t, 15*time.Second, target.id+" has lost quorum", func(ctx context.Context) error {
		st, err := target.status(ctx)
		if err == nil && st.Quorum {
			err = errors.New("still has quorum")
		}
		return err
	})
	if res := runSIPp(t, "register.xml", target.sipUDP, 1, 30*time.Second, "-inf", demoUsers("carol")); res.exit != 0 {
		t.Fatalf("register without quorum: exit %d\n%s", res.exit, res.stdout)
	}
	waitRegistrations([]*node{target}, 3)

	// The others come back and catch up.
	for _, n := range nodes {
		if n != target {
			n.restart()
		}
	}
	waitRegistrations(nodes, 3)
}
