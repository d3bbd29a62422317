package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// answerOn registers username from port with SIPp (that SIPp then exits)
// and starts SIPp's built-in UAS on the same port to answer one call. It
// returns a func that waits for the UAS to finish and reports its exit code.
func answerOn(t *testing.T, n *node, username string, port int) func() int {
	return answerWith(t, n, username, port, "-sn", "uas")
}

// answerWith is answerOn with a scenario of one's own (sipp -sf ... or -sn ...).
func answerWith(t *testing.T, n *node, username string, port int, scenario ...string) func() int {
	t.Helper()
	reg := runSIPp(t, "register.xml", n.sipUDP, 1, 20*time.Second,
		"-inf", writeUsersCSV(t, [][3]string{{username, "pw-" + username, "acme.example"}}), "-p", fmt.Sprint(port))
	if reg.exit != 0 {
		t.Fatalf("register %s: exit %d\n%s", username, reg.exit, reg.stdout)
	}
	done := startUAS(t, n.sipUDP, port, 1, scenario...)
	waitBound(t, port)
	return done
}

// waitBound waits until something (a SIPp UAS) listens on a loopback UDP
// port, reading /proc/net/udp so as not to race it for the port.
func waitBound(t testing.TB, port int) {
	t.Helper()
	local := fmt.Sprintf(" 0100007F:%04X ", port)
	eventually(t, 10*time.Second, fmt.Sprintf("UDP port %d bound", port), func(context.Context) error {
		table, err := os.ReadFile("/proc/net/udp")
		if err != nil {
			return err
		}
		if !strings.Contains(string(table), local) {
			return fmt.Errorf("nothing listens yet")
		}
		return nil
	})
}

// startUAS starts a SIPp UAS scenario on port, sending to target, for calls
// calls (0: until the test ends) and returns a func that waits for it to end.
func startUAS(t testing.TB, target string, port, calls int, scenario ...string) func() int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	dir := t.TempDir()
	args := append(append([]string{}, scenario...), "-i", "127.0.0.1", "-p", fmt.Sprint(port),
		"-nostdin", "-buff_size", "4194304", "-trace_err", "-error_file", filepath.Join(dir, "uas-errors.log"), target)
	if calls > 0 {
		args = append(args, "-m", fmt.Sprint(calls))
	}
	uas := exec.CommandContext(ctx, "sipp", args...)
	uas.Dir = dir
	if err := uas.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	return func() int {
		err := uas.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			return -1
		}
		return 0
	}
}

// A registered phone calls another through Outpost with digest (407)
// authentication: ringing, answer, ACK and BYE pass between the two legs.
func TestCallBetweenTwoPhones(t *testing.T) {
	n := startNode(t, "call", nodeOpts{bootstrapSnapshot: writeFile(t, "demo.json", demoSnapshot(t))})
	waitRevision(t, []*node{n}, 1)
	uasDone := answerOn(t, n, "bob", freeUDPPort(t))

	callers := writeCallersCSV(t, [][4]string{{"alice", "pw-alice", "acme.example", "1002"}})
	// The UAS needs a moment to bind after the registering SIPp released the port.
	var res sippResult
	eventually(t, 10*time.Second, "uas listening", func(ctx context.Context) error {
		res = runSIPp(t, "uac-auth.xml", n.sipUDP, 1, 20*time.Second, "-inf", callers)
		if res.exit != 0 {
			return fmt.Errorf("uac exit %d", res.exit)
		}
		return nil
	})
	if code := uasDone(); code != 0 {
		t.Fatalf("the answering phone's SIPp exited %d", code)
	}
	st, err := n.status(context.Background())
	if err != nil || st.ActiveCalls != 0 {
		t.Errorf("after hang-up: %d active calls (%v)", st.ActiveCalls, err)
	}
	// The call left a record in the outage journal.
	eventually(t, 10*time.Second, "the call's journal record", func(ctx context.Context) error {
		recs, err := n.client().Journal(ctx, 10)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Caller == "alice" && r.Callee == "bob" && r.Disposition == "answered" && r.Dialled == "1002" &&
				!r.Answer.IsZero() && r.End.After(r.Answer) && r.Node == n.id && r.Status == 200 {
				return nil
			}
		}
		return fmt.Errorf("no answered alice->bob record in %+v", recs)
	})
	if st, err := n.status(context.Background()); err != nil || st.JournalPending < 1 {
		t.Errorf("journal_pending %d (%v), want at least 1", st.JournalPending, err)
	}
}

// writeCallersCSV writes caller;[authentication ...];domain;dialled rows.
func writeCallersCSV(t testing.TB, rows [][4]string) string {
	t.Helper()
	var b []byte
	b = append(b, "SEQUENTIAL\n"...)
	for _, r := range rows {
		b = fmt.Appendf(b, "%s;[authentication username=%s password=%s];%s;%s\n", r[0], r[0], r[1], r[2], r[3])
	}
	return writeFile(t, "callers.csv", b)
}

// Calls Outpost cannot connect get the answer that says why (carol's
// mailbox is off: with it, her calls would go to voicemail).
func TestCallRefusals(t *testing.T) {
	n := startNode(t, "refuse", nodeOpts{bootstrapSnapshot: writeFile(t, "demo.json", withoutVoicemail(t, "carol"))})
	waitRevision(t, []*node{n}, 1)
	template, err := os.ReadFile(filepath.Join("testdata", "sipp", "uac-auth-refused.xml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, dial, code string }{
		{"not registered", "1003", "480"},
		{"unknown extension", "1234", "404"},
		{"outside the account, no trunk yet", "4155550123", "503"},
		{"group routing not yet", "1900", "480"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scenario := writeFile(t, "refused.xml", bytes.ReplaceAll(template, []byte("EXPECTED"), []byte(tc.code)))
			callers := writeCallersCSV(t, [][4]string{{"alice", "pw-alice", "acme.example", tc.dial}})
			if res := runSIPp(t, scenario, n.sipUDP, 1, 20*time.Second, "-inf", callers); res.exit != 0 {
				t.Errorf("dialling %s: want %s; sipp exit %d\n%s", tc.dial, tc.code, res.exit, res.stdout)
			}
		})
	}
	// Every refused call is in the journal with the status it got.
	eventually(t, 10*time.Second, "refused calls journalled", func(ctx context.Context) error {
		recs, err := n.client().Journal(ctx, 100)
		if err != nil {
			return err
		}
		got := map[string]int{}
		for _, r := range recs {
			got[r.Dialled] = r.Status
		}
		for dial, want := range map[string]int{"1003": 480, "1234": 404, "4155550123": 503, "1900": 480} {
			if got[dial] != want {
				return fmt.Errorf("record for %s: status %d, want %d (records %+v)", dial, got[dial], want, recs)
			}
		}
		return nil
	})
}

// A phone registered on one node is called from a phone on another: the
// call goes node to node.
func TestCallAcrossNodes(t *testing.T) {
	nodes := formCluster(t)
	if _, err := nodes[0].client().ApplySnapshot(context.Background(), demoSnapshot(t)); err != nil {
		t.Fatal(err)
	}
	waitRevision(t, nodes, 1)
	callerNode, calleeNode := nodes[0], nodes[2]
	uasDone := answerOn(t, calleeNode, "bob", freeUDPPort(t))
	eventually(t, 15*time.Second, "bob's registration reaches "+callerNode.id, func(ctx context.Context) error {
		st, err := callerNode.status(ctx)
		if err == nil && st.Registrations != 1 {
			err = fmt.Errorf("%d registrations", st.Registrations)
		}
		return err
	})
	callers := writeCallersCSV(t, [][4]string{{"alice", "pw-alice", "acme.example", "1002"}})
	eventually(t, 10*time.Second, "call across nodes", func(ctx context.Context) error {
		if res := runSIPp(t, "uac-auth.xml", callerNode.sipUDP, 1, 20*time.Second, "-inf", callers); res.exit != 0 {
			return fmt.Errorf("uac exit %d\n%s", res.exit, res.stdout)
		}
		return nil
	})
	if code := uasDone(); code != 0 {
		t.Fatalf("the answering phone's SIPp exited %d", code)
	}
	// The caller's node journals the call once; the cluster shares it, so
	// every node holds it.
	for _, n := range nodes {
		eventually(t, 15*time.Second, n.id+" holds the call record", func(ctx context.Context) error {
			recs, err := n.client().Journal(ctx, 10)
			if err == nil && (len(recs) != 1 || recs[0].Node != callerNode.id || recs[0].Disposition != "answered") {
				err = fmt.Errorf("records %+v", recs)
			}
			return err
		})
	}
}

// With the other two nodes dead (no quorum), the survivor still registers
// phones and connects calls between them.
func TestCallWithoutQuorum(t *testing.T) {
	nodes := formCluster(t)
	if _, err := nodes[0].client().ApplySnapshot(context.Background(), demoSnapshot(t)); err != nil {
		t.Fatal(err)
	}
	waitRevision(t, nodes, 1)
	survivor := nodes[1]
	for _, n := range nodes {
		if n != survivor {
			n.kill()
		}
	}
	eventually(t, 15*time.Second, survivor.id+" has lost quorum", func(ctx context.Context) error {
		st, err := survivor.status(ctx)
		if err == nil && st.Quorum {
			err = fmt.Errorf("still has quorum")
		}
		return err
	})
	uasDone := answerOn(t, survivor, "bob", freeUDPPort(t))
	callers := writeCallersCSV(t, [][4]string{{"alice", "pw-alice", "acme.example", "1002"}})
	eventually(t, 10*time.Second, "call without quorum", func(ctx context.Context) error {
		if res := runSIPp(t, "uac-auth.xml", survivor.sipUDP, 1, 20*time.Second, "-inf", callers); res.exit != 0 {
			return fmt.Errorf("uac exit %d\n%s", res.exit, res.stdout)
		}
		return nil
	})
	if code := uasDone(); code != 0 {
		t.Fatalf("the answering phone's SIPp exited %d", code)
	}
}

// Hold: a re-INVITE in the call passes to the other phone and its answer
// comes back.
func TestCallHold(t *testing.T) {
	n := startNode(t, "hold", nodeOpts{bootstrapSnapshot: writeFile(t, "demo.json", demoSnapshot(t))})
	waitRevision(t, []*node{n}, 1)
	uasDone := answerWith(t, n, "bob", freeUDPPort(t), "-sf", scenarioPath(t, "uas-hold.xml"))
	callers := writeCallersCSV(t, [][4]string{{"alice", "pw-alice", "acme.example", "1002"}})
	eventually(t, 10*time.Second, "call with hold", func(ctx context.Context) error {
		if res := runSIPp(t, "uac-hold.xml", n.sipUDP, 1, 20*time.Second, "-inf", callers); res.exit != 0 {
			return fmt.Errorf("uac exit %d\n%s", res.exit, res.stdout)
		}
		return nil
	})
	if code := uasDone(); code != 0 {
		t.Fatalf("the answering phone's SIPp exited %d", code)
	}
}
