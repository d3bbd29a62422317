package ng

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"time"
)

// Client sends NG commands to one server over UDP, one at a time.
type Client struct {
	conn *net.UDPConn
}

// Dial connects to an NG server at addr (host:port).
func Dial(addr string) (*Client, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("resolve NG address %s: %w", addr, err)
	}
	c, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		return nil, fmt.Errorf("dial NG %s: %w", addr, err)
	}
	return &Client{conn: c}, nil
}

// Close closes the client's socket.
func (c *Client) Close() error { return c.conn.Close() }

// Do sends msg (its "command" set by the caller) and returns the reply. A
// reply whose result is not "ok" or "pong" is an error. Lost datagrams are
// retried up to three times.
func (c *Client) Do(ctx context.Context, msg Dict) (Dict, error) {
	body, err := Encode(msg)
	if err != nil {
		return nil, err
	}
	var cb [8]byte
	if _, err := rand.Read(cb[:]); err != nil {
		return nil, fmt.Errorf("NG cookie: %w", err)
	}
	cookie := hex.EncodeToString(cb[:])
	req := append([]byte(cookie+" "), body...)
	buf := make([]byte, 65536)
	for try := 0; try < 3; try++ {
		if _, err := c.conn.Write(req); err != nil {
			return nil, fmt.Errorf("send NG %v: %w", msg["command"], err)
		}
		deadline := time.Now().Add(2 * time.Second)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		if err := c.conn.SetReadDeadline(deadline); err != nil {
			return nil, fmt.Errorf("NG deadline: %w", err)
		}
		for {
			n, err := c.conn.Read(buf)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break // resend
			}
			if err != nil {
				return nil, fmt.Errorf("read NG reply: %w", err)
			}
			ck, rest, ok := bytes.Cut(buf[:n], []byte(" "))
			if !ok || string(ck) != cookie {
				continue // a late reply to an earlier try
			}
			v, _, err := Decode(rest)
			if err != nil {
				return nil, fmt.Errorf("decode NG reply: %w", err)
			}
			d, ok := v.(Dict)
			if !ok {
				return nil, fmt.Errorf("NG reply is %T, want a dictionary", v)
			}
			if r := Str(d, "result"); r != "ok" && r != "pong" {
				return d, fmt.Errorf("NG %v: result %q: %s", msg["command"], r, Str(d, "error-reason"))
			}
			return d, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("NG %v: %w", msg["command"], err)
		}
	}
	return nil, fmt.Errorf("NG %v: no reply after 3 tries", msg["command"])
}
