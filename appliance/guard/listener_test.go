package guard

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// echoServer serves g.Listen(ln) like sipgo would: one reader per
// connection, each message's bytes echoed back. It returns the address and
// a channel of each connection's end (the error its reader got).
func echoServer(t *testing.T, g *Guard) (string, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gl := g.Listen(ln)
	t.Cleanup(func() { gl.Close() })
	ends := make(chan error, 100)
	go func() {
		for {
			c, err := gl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							ends <- werr
							return
						}
					}
					if err != nil {
						ends <- err
						return
					}
				}
			}()
		}
	}()
	return gl.Addr().String(), ends
}

// dialFrom connects from a loopback source address.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin reports whether the server closes c within d (a read sees
// the end, after whatever was echoed).
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
}

// echoes reports whether msg comes back on c.
func echoes(c net.Conn, msg string) bool {
	if _, err := c.Write([]byte(msg)); err != nil {
		return false
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	return err == nil && string(buf) == msg
}

func TestListenCapsConnections(t *testing.T) {
	g := New(Config{MaxConns: 5, MaxConnsPerSource: 3})
	addr, _ := echoServer(t, g)
	var held []net.Conn
	for range 3 {
		c := dialFrom(t, "127.0.0.2", addr)
		if !echoes(c, optionsMsg) {
			t.Fatal("a connection within the caps is not served")
		}
		held = append(held, c)
	}
	if c := dialFrom(t, "127.0.0.2", addr); !closedWithin(c, 5*time.Second) {
		t.Fatal("a 4th connection from one source was served (cap 3 per source)")
	}
	for range 2 {
		if c := dialFrom(t, "127.0.0.3", addr); !echoes(c, optionsMsg) {
			t.Fatal("another source's connection was refused below the total cap")
		}
	}
	if c := dialFrom(t, "127.0.0.4", addr); !closedWithin(c, 5*time.Second) {
		t.Fatal("a 6th connection was served (cap 5 in all)")
	}
	// Closing one frees a place.
	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for g.OpenConns() > 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if c := dialFrom(t, "127.0.0.4", addr); !echoes(c, optionsMsg) {
		t.Fatal("no place after a connection closed")
	}
}

func TestListenAllowedSourcesSkipPerSourceCap(t *testing.T) {
	allow := &Allowlist{}
	allow.Set(nil, []netip.Addr{addr("127.0.0.5")})
	g := New(Config{MaxConnsPerSource: 1, Limiter: LimiterConfig{Allow: allow}})
	addr, _ := echoServer(t, g)
	for range 3 {
		if c := dialFrom(t, "127.0.0.5", addr); !echoes(c, optionsMsg) {
			t.Fatal("an allowed source was held to the per-source cap")
		}
	}
}

func TestListenTimeouts(t *testing.T) {
	g := New(Config{MessageTimeout: 300 * time.Millisecond, IdleTimeout: 600 * time.Millisecond})
	addr, _ := echoServer(t, g)

	silent := dialFrom(t, "127.0.0.2", addr)
	keepalive := dialFrom(t, "127.0.0.2", addr)
	slow := dialFrom(t, "127.0.0.2", addr)
	idle := dialFrom(t, "127.0.0.2", addr)
	busy := dialFrom(t, "127.0.0.2", addr)
	begin := time.Now()
	if !echoes(idle, optionsMsg) || !echoes(busy, optionsMsg) {
		t.Fatal("a message was not served")
	}
	// A slowloris: a header line every 100 ms, never the end.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = slow.Write([]byte("OPTIONS sip:n SIP/2.0\r\n"))
		_, _ = keepalive.Write([]byte("\r\n\r\n"))
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			_, _ = slow.Write([]byte("X-Slow: 1\r\n"))
			_, _ = keepalive.Write([]byte("\r\n\r\n")) // keep-alives are no message
			_, _ = busy.Write([]byte(optionsMsg))
		}
	}()
	for name, c := range map[string]net.Conn{"silent": silent, "keep-alives only": keepalive, "slow message": slow} {
		if !closedWithin(c, 5*time.Second) {
			t.Errorf("%s: not closed", name)
		}
	}
	if !closedWithin(idle, 5*time.Second) {
		t.Error("idle: not closed")
	}
	if d := time.Since(begin); d < 600*time.Millisecond {
		t.Errorf("idle closed after %s, before its idle timeout", d)
	}
	if echoes(busy, optionsMsg) == false {
		t.Error("a connection sending a message every 100 ms was closed")
	}
	close(stop)
	wg.Wait()
}

func TestListenRateAndBan(t *testing.T) {
	g := New(Config{Limiter: LimiterConfig{Rate: 1, Burst: 5, BanAfter: 3, BanFor: time.Hour}})
	addr, _ := echoServer(t, g)
	c := dialFrom(t, "127.0.0.2", addr) // one token
	for i := range 4 {
		if !echoes(c, optionsMsg) {
			t.Fatalf("message %d within the burst was not served", i+1)
		}
	}
	// The next message is over the rate: the connection ends.
	_, _ = c.Write([]byte(optionsMsg + optionsMsg))
	if !closedWithin(c, 5*time.Second) {
		t.Fatal("a connection over its rate was not closed")
	}
	// More connections (each a message over the rate) ban the source.
	for range 4 {
		_ = closedWithin(dialFrom(t, "127.0.0.2", addr), 5*time.Second)
	}
	if !g.Limiter().Banned(addr127(2)) {
		t.Fatalf("not banned: %+v", g.Limiter().Stats())
	}
	if c := dialFrom(t, "127.0.0.2", addr); !closedWithin(c, 5*time.Second) {
		t.Fatal("a banned source's connection was served")
	}
	if c := dialFrom(t, "127.0.0.3", addr); !echoes(c, optionsMsg) {
		t.Fatal("another source was refused")
	}
}

func addr127(last byte) netip.Addr { return netip.AddrFrom4([4]byte{127, 0, 0, last}) }

// flakyListener fails its first Accepts with EMFILE.
type flakyListener struct {
	net.Listener
	fails int
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails > 0 {
		l.fails--
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

func TestListenRetriesPassingAcceptErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gl := New(Config{}).Listen(&flakyListener{Listener: ln, fails: 3})
	defer gl.Close()
	done := make(chan error, 1)
	go func() {
		c, err := gl.Accept()
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := <-done; err != nil {
		t.Fatalf("Accept after EMFILE = %v, want the connection", err)
	}
	gl.Close()
	if _, err := gl.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept on a closed listener = %v, want net.ErrClosed", err)
	}
}

func TestReadFilterUDP(t *testing.T) {
	g := New(Config{Limiter: LimiterConfig{Rate: 1, Burst: 2, BanAfter: 1, BanFor: time.Hour}})
	var passedOn int
	f := g.ReadFilter(func(_ sip.TransportReadProps, data []byte) ([]byte, error) { passedOn++; return data, nil })
	udp := sip.TransportReadProps{Transport: "UDP", RemoteAddr: &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5060}}
	kept := 0
	for range 10 {
		out, err := f(udp, []byte(optionsMsg))
		if err != nil {
			t.Fatalf("the filter returned %v: sipgo would stop the UDP listener", err)
		}
		if len(out) > 0 {
			kept++
		}
	}
	if kept != 2 || passedOn != 2 {
		t.Fatalf("kept %d of 10 datagrams (%d passed on), want the burst of 2", kept, passedOn)
	}
	if !g.Limiter().Banned(addr("192.0.2.1")) {
		t.Fatal("not banned")
	}
	// Streams are counted by their connections, not here.
	tcp := sip.TransportReadProps{Transport: "TCP", RemoteAddr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5060}}
	if out, _ := f(tcp, []byte(optionsMsg)); len(out) == 0 {
		t.Fatal("a TCP read was dropped by the filter")
	}
}
