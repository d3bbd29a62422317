package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// floodRate is what each flood offers, in requests per second, from one
// source; the node's sip.flood_rate is its default, 200.
const floodRate = 500

// floodCase is one flood: a SIPp scenario sent from a loopback address of
// its own (Linux answers the whole of 127/8), so each flooder is a
// separate source and the legitimate phones (on 127.0.0.1) another.
type floodCase struct {
	method, scenario, source string
}

var floodCases = []floodCase{
	{"OPTIONS", "flood-options.xml", "127.0.0.11"},
	{"REGISTER", "flood-register.xml", "127.0.0.12"},
	{"INVITE", "flood-invite.xml", "127.0.0.13"},
}

// floodFigures is what one flood measured, for docs/reliability.md.
type floodFigures struct {
	offered, answered   int
	answeredBeforeBan   int
	answeredAfterBan    int // in the periods that began a second after the ban
	timeToBan           time.Duration
	banAt               time.Time // when the node logged the ban
	bannedNow           float64   // outpost_sip_guard_banned_sources just after the ban
	limited, bannedDrop float64   // the node's drop counts (metrics)
	legit               []string
}

// Floods of OPTIONS, REGISTER and INVITE at 500/s from one source each:
// the node answers the burst (5 s worth of sip.flood_rate), then at most
// 200/s, bans the source once it was refused 5 s worth within a minute,
// and from then on drops all it sends, silently. Meanwhile a phone on
// another source registers and calls, and is answered at once. In the
// full suite every method floods, and a ban is seen to end after
// sip.flood_ban (20 s here); otherwise only OPTIONS floods.
func TestAttackFlood(t *testing.T) {
	cases := floodCases
	if !attackFull() {
		cases = cases[:1]
	}
	const ban = 20 * time.Second
	n := startNode(t, "flood", nodeOpts{
		bootstrapSnapshot: writeFile(t, "demo.json", demoSnapshot(t)),
		logLevel:          "info",
		// Loopback is exempt by default; here it is where the attackers are.
		env: []string{"OUTPOST_SIP_FLOOD_EXEMPT=", fmt.Sprintf("OUTPOST_SIP_FLOOD_BAN=%ds", int(ban.Seconds()))},
	})
	waitRevision(t, []*node{n}, 1)

	var report []string
	var last floodFigures
	for _, fc := range cases {
		f := runFlood(t, n, fc)
		report = append(report, fmt.Sprintf("%-8s offered %d at %d/s; answered %d (%d before the ban); ban after %s (banned sources then: %.0f); dropped: %.0f over the rate, %.0f banned; answered a second after the ban: %d; legitimate phone: %s",
			fc.method, f.offered, floodRate, f.answered, f.answeredBeforeBan, f.timeToBan.Round(100*time.Millisecond), f.bannedNow,
			f.limited, f.bannedDrop, f.answeredAfterBan, strings.Join(f.legit, ", ")))
		last = f
	}
	m := metrics(t, n)
	report = append(report, fmt.Sprintf("bans: %.0f", m("outpost_sip_guard_bans_total")))
	if got := m("outpost_sip_guard_bans_total"); int(got) != len(cases) {
		t.Errorf("outpost_sip_guard_bans_total = %.0f, want %d (one per flooder)", got, len(cases))
	}

	if attackFull() {
		// The ban ends sip.flood_ban after it began: the source is answered
		// again then, not before.
		src := cases[len(cases)-1].source
		if since := time.Since(last.banAt); since > ban {
			t.Errorf("the ban's end cannot be timed: checking begins %s after it began, past sip.flood_ban (%s)", since.Round(time.Second), ban)
		}
		var lifted time.Duration
		eventually(t, ban+30*time.Second, src+" answered again after its ban", func(context.Context) error {
			if udpProbe(t, src, n.sipUDP, time.Second) != 200 {
				return fmt.Errorf("not answered")
			}
			lifted = time.Since(last.banAt)
			return nil
		})
		if lifted < ban-time.Second {
			t.Errorf("%s answered %s after its ban began, before sip.flood_ban (%s)", src, lifted, ban)
		}
		report = append(report, fmt.Sprintf("%s answered again %s after its ban began (sip.flood_ban %s)", src, lifted.Round(100*time.Millisecond), ban))
	}
	t.Logf("floods against %s:\n  %s", n.id, strings.Join(report, "\n  "))
	if !strings.Contains(n.log(), "sip source banned") {
		t.Error("the node logged no ban")
	}
}

// runFlood floods n with fc while a phone (alice, 127.0.0.1) registers and
// calls bob twice: once while the flooder is being limited, once while it
// is banned.
func runFlood(t *testing.T, n *node, fc floodCase) floodFigures {
	t.Helper()
	var f floodFigures
	before := metrics(t, n)
	bobPort := freeUDPPort(t)
	bobDone := answerCalls(t, n, "bob", bobPort, 2)

	// 14 s of flood: the ban comes after about 7 s at the default rate.
	const seconds = 14
	start := time.Now()
	flood := startSIPp(t, fc.scenario, n.sipUDP, floodRate*seconds, 60*time.Second,
		"-i", fc.source, "-r", fmt.Sprint(floodRate), "-nr", "-fd", "1", "-l", "5000", "-buff_size", "4194304")

	legit := func(when string) {
		t.Helper()
		reg := runSIPp(t, "register.xml", n.sipUDP, 1, 20*time.Second,
			"-inf", writeUsersCSV(t, [][3]string{{"alice", "pw-alice", "acme.example"}}))
		call := runSIPp(t, "uac-auth.xml", n.sipUDP, 1, 20*time.Second,
			"-inf", writeCallersCSV(t, [][4]string{{"alice", "pw-alice", "acme.example", "1002"}}))
		if reg.exit != 0 || call.exit != 0 {
			t.Errorf("%s flood, %s: the legitimate phone's register exited %d, its call %d\n%s\n%s",
				fc.method, when, reg.exit, call.exit, tail(reg.stdout, 20), tail(call.stdout, 20))
			f.legit = append(f.legit, when+": failed")
			return
		}
		f.legit = append(f.legit, when+": registered and called")
	}
	limited := `outpost_sip_guard_messages_total{verdict="limited"}`
	eventually(t, 20*time.Second, fc.method+" flood over the rate", func(context.Context) error {
		if metrics(t, n)(limited) <= before(limited) {
			return fmt.Errorf("nothing refused for the rate yet")
		}
		return nil
	})
	legit("while limited")

	banAt := waitLogLine(t, n, 30*time.Second, "sip source banned", "source="+fc.source)
	f.timeToBan, f.banAt = banAt.Sub(start), banAt
	f.bannedNow = metrics(t, n)("outpost_sip_guard_banned_sources")
	if code := udpProbe(t, fc.source, n.sipUDP, 2*time.Second); code != 0 {
		t.Errorf("%s flood: the banned source %s was answered %d", fc.method, fc.source, code)
	}
	if code := udpProbe(t, "127.0.0.1", n.sipUDP, 2*time.Second); code != 200 {
		t.Errorf("%s flood: another source got %d to OPTIONS during the ban, want 200", fc.method, code)
	}
	legit("while banned")

	res, err := flood.wait()
	if err != nil {
		t.Fatal(err)
	}
	if code := bobDone(); code != 0 {
		t.Errorf("%s flood: bob's SIPp exited %d: the calls did not reach him", fc.method, code)
	}
	periods := sippPeriods(t, res.stats)
	prev := start
	for _, p := range periods {
		f.answered += p.succeeded
		switch {
		case !p.at.After(banAt):
			f.answeredBeforeBan += p.succeeded
		case prev.After(banAt.Add(time.Second)):
			f.answeredAfterBan += p.succeeded
		}
		prev = p.at
		f.offered = max(f.offered, p.created)
	}
	after := metrics(t, n)
	f.limited = after(`outpost_sip_guard_messages_total{verdict="limited"}`) - before(`outpost_sip_guard_messages_total{verdict="limited"}`)
	f.bannedDrop = after(`outpost_sip_guard_messages_total{verdict="banned"}`) - before(`outpost_sip_guard_messages_total{verdict="banned"}`)

	// The limit: at most the burst and 200/s until the ban.
	if limit := 1000 + 200*int(f.timeToBan.Seconds()+1); f.answeredBeforeBan > limit {
		t.Errorf("%s flood: %d answered before the ban (after %s), over the burst and rate (%d)", fc.method, f.answeredBeforeBan, f.timeToBan, limit)
	}
	if f.answered < 200 {
		// The burst (1,000) is answered unless the machine is starved.
		t.Errorf("%s flood: only %d answered; the burst should be", fc.method, f.answered)
	}
	if f.timeToBan <= 0 || f.timeToBan > 14*time.Second {
		t.Errorf("%s flood: banned after %s, want within the flood (about 7 s: the burst, then 1,000 refused at 300/s)", fc.method, f.timeToBan)
	}
	if f.answeredAfterBan != 0 {
		t.Errorf("%s flood: %d answered after the ban", fc.method, f.answeredAfterBan)
	}
	if f.limited == 0 || f.bannedDrop == 0 {
		t.Errorf("%s flood: the node dropped %.0f over the rate and %.0f banned; want both", fc.method, f.limited, f.bannedDrop)
	}
	return f
}

// answerCalls registers username from port with SIPp and starts SIPp's
// UAS on the same port to answer calls calls; the func waits for it.
func answerCalls(t *testing.T, n *node, username string, port, calls int) func() int {
	t.Helper()
	reg := runSIPp(t, "register.xml", n.sipUDP, 1, 20*time.Second,
		"-inf", writeUsersCSV(t, [][3]string{{username, "pw-" + username, "acme.example"}}), "-p", fmt.Sprint(port))
	if reg.exit != 0 {
		t.Fatalf("register %s: exit %d\n%s", username, reg.exit, reg.stdout)
	}
	done := startUAS(t, n.sipUDP, port, calls, "-sn", "uas")
	waitBound(t, port)
	return done
}

// A flood from many sources, one message each (what a spoofed-source UDP
// flood looks like): 100,000 distinct addresses (127.1.0.0 onward) send an
// OPTIONS each at about 4,000/s. The flood guard tracks at most 65,536
// sources (the ones heard from longest ago are dropped first), the node's
// memory stays bounded, and it answers throughout. Full suite only (about
// 30 s).
func TestAttackSourceSpray(t *testing.T) {
	if !attackFull() {
		t.Skip("slow: runs with OUTPOST_ATTACK_FULL=1 (make attack)")
	}
	n := startNode(t, "spray", nodeOpts{logLevel: "info", env: []string{"OUTPOST_SIP_FLOOD_EXEMPT="}})
	target, err := net.ResolveUDPAddr("udp4", n.sipUDP)
	if err != nil {
		t.Fatal(err)
	}
	pid := n.cmd.Process.Pid
	before, _ := procStatusMiB(pid, "VmRSS")
	const sources, perSecond = 100_000, 4000
	msg := func(src string, i int) []byte {
		return []byte(fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-spray%d\r\nMax-Forwards: 70\r\n"+
			"From: <sip:spray@%s>;tag=s%d\r\nTo: <sip:%s>\r\nCall-ID: spray-%d\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
			n.sipUDP, src, i, src, i, n.sipUDP, i))
	}
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	sent := 0
	for sent < sources {
		<-tick.C
		for range perSecond / 100 {
			ip := net.IPv4(127, byte(1+sent>>16), byte(sent>>8), byte(sent))
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip})
			if err != nil {
				t.Fatalf("bind %s: %v", ip, err)
			}
			_, _ = c.WriteToUDP(msg(c.LocalAddr().String(), sent), target)
			c.Close()
			sent++
		}
		if sent%20_000 == 0 && udpProbe(t, "127.0.0.1", n.sipUDP, 2*time.Second) != 200 {
			t.Fatalf("the node stopped answering after %d sources", sent)
		}
	}
	took := time.Since(start)
	var tracked float64
	eventually(t, 60*time.Second, "the spray handled", func(context.Context) error {
		m := metrics(t, n)
		tracked = m("outpost_sip_guard_sources")
		if seen := m(`outpost_sip_guard_messages_total{verdict="pass"}`); seen < sources {
			return fmt.Errorf("%.0f messages seen of %d", seen, sources)
		}
		return nil
	})
	after, _ := procStatusMiB(pid, "VmRSS")
	if tracked > 65_536 {
		t.Errorf("the flood guard tracks %.0f sources, want at most 65,536", tracked)
	}
	if code := udpProbe(t, "127.0.0.1", n.sipUDP, 2*time.Second); code != 200 {
		t.Errorf("after the spray the node answers OPTIONS %d", code)
	}
	build := "the node built without -race"
	if raceEnabled {
		build = "the node built with -race (several times the memory)"
	}
	t.Logf("%d sources, one OPTIONS each, in %s: the guard tracks %.0f sources; node RSS %.0f MiB before, %.0f MiB after (%s; most of it sipgo's server transactions, kept 32 s each)",
		sources, took.Round(100*time.Millisecond), tracked, before, after, build)
}
