package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Two real softphones (baresip, headless) register with Outpost and call
// each other: alice dials 1002, bob answers automatically, the call stays up
// a few seconds and alice hangs up. Outpost passes the SDP through, so the
// G.711 tone each phone sends must reach the other directly, both ways.
func TestBaresipCall(t *testing.T) {
	if _, err := exec.LookPath("baresip"); err != nil {
		t.Fatalf("baresip is not installed: run make deps (%v)", err)
	}
	// Debian 12's baresip 1.0.0 (libre 1.1.0) gives up on a 401/407 that
	// carries any challenge other than MD5 ("Register: Function not
	// implemented", ENOSYS), even beside an MD5 one: this is why the
	// default sip.digest_algorithms is [MD5]. The node runs with defaults.
	n := startNode(t, "baresip", nodeOpts{bootstrapSnapshot: writeFile(t, "demo.json", demoSnapshot(t))})
	waitRevision(t, []*node{n}, 1)

	alice := startBaresip(t, n, "alice", "pw-alice", "")
	bob := startBaresip(t, n, "bob", "pw-bob", ";answermode=auto")
	eventually(t, 20*time.Second, "both phones registered", func(ctx context.Context) error {
		st, err := n.status(ctx)
		if err == nil && st.Registrations != 2 {
			err = fmt.Errorf("%d registrations (alice: %v, bob: %v)", st.Registrations,
				alice.eventTypes(), bob.eventTypes())
		}
		return err
	})

	if resp := alice.command(t, "dial", "sip:1002@acme.example"); !resp.OK {
		t.Fatalf("alice dial: %+v", resp)
	}
	for _, p := range []*baresipUA{alice, bob} {
		p.waitEvent(t, 15*time.Second, "CALL_ESTABLISHED")
		p.waitEvent(t, 10*time.Second, "CALL_RTPESTAB")
	}
	// Hold the call so a few seconds of 20 ms G.711 packets flow (~50/s).
	time.Sleep(3 * time.Second)
	if resp := alice.command(t, "hangup", ""); !resp.OK {
		t.Fatalf("alice hangup: %+v", resp)
	}
	for _, p := range []*baresipUA{alice, bob} {
		p.waitEvent(t, 10*time.Second, "CALL_CLOSED")
	}

	// baresip prints its RTP counters (rtp_stats) when the call ends.
	type counts struct{ tx, rx int }
	stats := map[string]counts{}
	for _, p := range []*baresipUA{alice, bob} {
		eventually(t, 10*time.Second, p.user+"'s RTP statistics", func(context.Context) error {
			m := rtpPacketsRE.FindStringSubmatch(p.output())
			if m == nil {
				return errors.New("no 'packets:' line in baresip's output yet")
			}
			tx, _ := strconv.Atoi(m[1])
			rx, _ := strconv.Atoi(m[2])
			stats[p.user] = counts{tx, rx}
			return nil
		})
	}
	t.Logf("RTP packets: alice sent %d received %d; bob sent %d received %d",
		stats["alice"].tx, stats["alice"].rx, stats["bob"].tx, stats["bob"].rx)
	const minPackets = 50
	for who, c := range stats {
		if c.tx < minPackets || c.rx < minPackets {
			t.Errorf("%s: %d RTP packets sent, %d received; want at least %d each way", who, c.tx, c.rx, minPackets)
		}
	}
	// What one phone sent is what the other received (a few packets may be
	// in flight at the hang-up).
	for _, dir := range [][2]string{{"alice", "bob"}, {"bob", "alice"}} {
		sent, got := stats[dir[0]].tx, stats[dir[1]].rx
		if d := sent - got; d < -5 || d > 5 {
			t.Errorf("%s sent %d RTP packets but %s received %d", dir[0], sent, dir[1], got)
		}
	}
	// Each phone's audio stream saw the other's RTP arrive.
	for _, p := range []*baresipUA{alice, bob} {
		if !strings.Contains(p.output(), "incoming rtp for 'audio' established") {
			t.Errorf("%s never received RTP", p.user)
		}
	}

	eventually(t, 10*time.Second, "the call's journal record", func(ctx context.Context) error {
		recs, err := n.client().Journal(ctx, 10)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Caller == "alice" && r.Callee == "bob" && r.Disposition == "answered" && r.Dialled == "1002" &&
				r.Status == 200 && !r.Answer.IsZero() && r.End.After(r.Answer) && r.Node == n.id {
				if d := r.End.Sub(r.Answer); d < 2*time.Second {
					return fmt.Errorf("answered for %s only, want about 3s: %+v", d, r)
				}
				return nil
			}
		}
		return fmt.Errorf("no answered alice->bob record in %+v", recs)
	})
	if st, err := n.status(context.Background()); err != nil || st.ActiveCalls != 0 {
		t.Errorf("after hang-up: %d active calls (%v)", st.ActiveCalls, err)
	}
}

// rtpPacketsRE matches baresip's end-of-call table (config rtp_stats yes):
//
//	audio           Transmit:     Receive:
//	packets:            201          201
var rtpPacketsRE = regexp.MustCompile(`(?m)^packets:\s+(\d+)\s+(\d+)\s*$`)

// baresipUA is one baresip process, driven over ctrl_tcp.
type baresipUA struct {
	user string
	cmd  *exec.Cmd
	done chan struct{}
	conn net.Conn

	mu     sync.Mutex
	out    bytes.Buffer
	events []baresipMsg
	resps  map[string]baresipMsg
	seq    int
}

// baresipMsg is an event or a command response from ctrl_tcp.
type baresipMsg struct {
	Event    bool   `json:"event"`
	Type     string `json:"type"`
	Param    string `json:"param"`
	Response bool   `json:"response"`
	OK       bool   `json:"ok"`
	Data     string `json:"data"`
	Token    string `json:"token"`
}

// startBaresip runs baresip for user@acme.example with its own config
// directory, registering through n's SIP UDP listener, and connects to its
// ctrl_tcp port. accountParams are extra account parameters.
func startBaresip(t *testing.T, n *node, user, password, accountParams string) *baresipUA {
	t.Helper()
	dir := t.TempDir()
	sipPort := freeSIPPort(t)
	ctrlAddr := freeTCPAddr(t)
	config := fmt.Sprintf(`poll_method		epoll
sip_listen		127.0.0.1:%d
net_interface		127.0.0.1
call_local_timeout	30
audio_source		ausine,440
ausrc_srate		48000
ausrc_channels		2
audio_player		aubridge,%[2]s-speaker
audio_alert		aubridge,%[2]s-ringer
rtp_stats		yes
statmode_default	off
module_path		/usr/lib/baresip/modules
module			g711.so
module			ausine.so
module			aubridge.so
module_tmp		account.so
module_app		menu.so
module_app		ctrl_tcp.so
ctrl_tcp_listen		%s
`, sipPort, user, ctrlAddr)
	account := fmt.Sprintf("<sip:%s@acme.example>;auth_pass=%s;outbound=\"sip:%s;transport=udp\";regint=60;audio_codecs=pcmu%s\n",
		user, password, n.sipUDP, accountParams)
	for name, data := range map[string]string{"config": config, "accounts": account, "contacts": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	p := &baresipUA{user: user, done: make(chan struct{}), resps: map[string]baresipMsg{}}
	p.cmd = exec.Command("baresip", "-f", dir)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = (*lockedWriter)(p), (*lockedWriter)(p)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start baresip for %s: %v", user, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.conn != nil {
			p.conn.Close()
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- baresip %s output ---\n%s", user, tail(p.output(), 6000))
		}
	})

	eventually(t, 10*time.Second, user+"'s baresip ctrl_tcp listening", func(ctx context.Context) error {
		select {
		case <-p.done:
			t.Fatalf("baresip for %s exited at start: %v\n%s", user, p.cmd.ProcessState, p.output())
		default:
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", ctrlAddr)
		if err == nil {
			p.conn = c
		}
		return err
	})
	go p.read()
	return p
}

// lockedWriter collects a baresip process's output.
type lockedWriter baresipUA

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.Write(b)
}

func (p *baresipUA) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// read decodes ctrl_tcp's netstrings ("<len>:<json>,") until the
// connection closes.
func (p *baresipUA) read() {
	r := bufio.NewReader(p.conn)
	for {
		lenStr, err := r.ReadString(':')
		if err != nil {
			return
		}
		size, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(lenStr, ":")))
		if err != nil || size < 0 || size > 1<<20 {
			return
		}
		buf := make([]byte, size+1)
		if _, err := io.ReadFull(r, buf); err != nil || buf[size] != ',' {
			return
		}
		var m baresipMsg
		if err := json.Unmarshal(buf[:size], &m); err != nil {
			continue
		}
		p.mu.Lock()
		if m.Response {
			p.resps[m.Token] = m
		} else if m.Event {
			p.events = append(p.events, m)
		}
		p.mu.Unlock()
	}
}

// command sends a ctrl_tcp command and waits for its response.
func (p *baresipUA) command(t *testing.T, command, params string) baresipMsg {
	t.Helper()
	p.mu.Lock()
	p.seq++
	token := strconv.Itoa(p.seq)
	p.mu.Unlock()
	body, err := json.Marshal(map[string]string{"command": command, "params": params, "token": token})
	if err != nil {
		t.Fatal(err)
	}
	_ = p.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(p.conn, "%d:%s,", len(body), body); err != nil {
		t.Fatalf("%s: send %s: %v", p.user, command, err)
	}
	var resp baresipMsg
	eventually(t, 10*time.Second, fmt.Sprintf("%s: response to %s", p.user, command), func(context.Context) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		r, ok := p.resps[token]
		if !ok {
			return errors.New("no response yet")
		}
		resp = r
		return nil
	})
	return resp
}

// waitEvent waits until ctrl_tcp has reported an event of type typ.
func (p *baresipUA) waitEvent(t *testing.T, within time.Duration, typ string) baresipMsg {
	t.Helper()
	var ev baresipMsg
	eventually(t, within, p.user+": event "+typ, func(context.Context) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, e := range p.events {
			if e.Type == typ {
				ev = e
				return nil
			}
		}
		return fmt.Errorf("events so far %v", p.eventTypesLocked())
	})
	return ev
}

func (p *baresipUA) eventTypes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.eventTypesLocked()
}

func (p *baresipUA) eventTypesLocked() []string {
	var types []string
	for _, e := range p.events {
		types = append(types, e.Type)
	}
	return types
}

// freeSIPPort finds a loopback port baresip can take for SIP: it binds UDP
// and TCP on the port and SIP/TLS on the port after it.
func freeSIPPort(t testing.TB) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		port := freeUDPPort(t)
		var closers []io.Closer
		ok := true
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			closers = append(closers, l)
		} else {
			ok = false
		}
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1)); err == nil {
			closers = append(closers, l)
		} else {
			ok = false
		}
		for _, c := range closers {
			c.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatal("no free loopback port for baresip's SIP listeners")
	return 0
}

func freeTCPAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
