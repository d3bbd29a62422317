package e2e

import (
	"context"
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
