package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-voice/outpost/appliance/media"
	"github.com/outpost-voice/outpost/appliance/media/internal/ng"
	"github.com/outpost-voice/outpost/appliance/media/internal/rtpload"
)

// residenceCommand asks serve for the residence figures (-residence).
const residenceCommand = "x-outpost-residence"

// ngAnchor is an NG anchor that also asks the relay for its residence
// figures; a relay other than serve -residence (rtpengine) refuses, and
// the row says n/a.
type ngAnchor struct {
	*ng.Anchor
	c *ng.Client
}

func (a ngAnchor) ResetResidence(ctx context.Context) error {
	_, err := a.c.Do(ctx, ng.Dict{"command": residenceCommand, "reset": "yes"})
	return err
}

func (a ngAnchor) Residence(ctx context.Context) (rtpload.Dist, error) {
	d, err := a.c.Do(ctx, ng.Dict{"command": residenceCommand})
	if err != nil {
		return rtpload.Dist{}, err
	}
	return rtpload.Dist{N: uint64(ng.Int(d, "packets")), P50: time.Duration(ng.Int(d, "p50-ns")),
		P99: time.Duration(ng.Int(d, "p99-ns")), Max: time.Duration(ng.Int(d, "max-ns"))}, nil
}

// serve runs an Outpost relay behind the NG commands the load generator
// uses (ping, offer, answer, delete), until ctx ends. It is a test
// harness: the B2BUA drives the relay through the Go API.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ngAddr := fs.String("ng", "127.0.0.1:2230", "UDP address for NG commands")
	ip := fs.String("ip", "127.0.0.1", "relay address (bound and put in SDP)")
	ports := fs.String("ports", "30000-39999", "RTP port range LO-HI")
	workers := fs.Int("workers", 0, "forwarding goroutines (0: the relay's default)")
	residence := fs.Bool("residence", false, "measure each packet's time in the relay (kernel arrival stamp to send), for the x-residence command")
	verbose := fs.Bool("v", false, "debug logs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	addr, err := netip.ParseAddr(*ip)
	if err != nil {
		return fmt.Errorf("-ip: %w", err)
	}
	los, his, _ := strings.Cut(*ports, "-")
	lo, err1 := strconv.Atoi(los)
	hi, err2 := strconv.Atoi(his)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("-ports %q: want LO-HI", *ports)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	h := &ngHandler{calls: map[string]*media.Session{}}
	cfg := media.Config{IP: addr, PortMin: lo, PortMax: hi, Workers: *workers, Logger: log}
	if *residence {
		h.residence = rtpload.NewResidence()
		cfg.Residence = h.residence.Record
	}
	r, err := media.New(cfg)
	if err != nil {
		return err
	}
	defer r.Close()
	h.relay = r

	pc, err := net.ListenPacket("udp", *ngAddr)
	if err != nil {
		return fmt.Errorf("listen NG: %w", err)
	}
	fmt.Fprintf(stdout, "outpost relay on %s ports %d-%d, NG on %s\n", addr, lo, hi, pc.LocalAddr())
	if err := h.serve(ctx, pc); err != nil {
		return err
	}
	st := r.Stats()
	log.Info("relay stopping", "component", "rtpload", "a_to_b", st.AtoB.RTPPackets,
		"b_to_a", st.BtoA.RTPPackets, "dropped", st.Dropped.Total())
	return nil
}

// serve answers NG commands on pc until ctx ends.
func (h *ngHandler) serve(ctx context.Context, pc net.PacketConn) error {
	stop := context.AfterFunc(ctx, func() { _ = pc.Close() })
	defer stop()
	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("read NG: %w", err)
		}
		if reply := h.handle(buf[:n]); reply != nil {
			_, _ = pc.WriteTo(reply, from)
		}
	}
}

type ngHandler struct {
	relay     *media.Relay
	calls     map[string]*media.Session
	residence *rtpload.Residence // nil unless -residence
}

// handle answers one "COOKIE dict" datagram.
func (h *ngHandler) handle(msg []byte) []byte {
	cookie, body, ok := bytes.Cut(msg, []byte(" "))
	if !ok {
		return nil
	}
	reply, err := h.command(body)
	if err != nil {
		reply = ng.Dict{"result": "error", "error-reason": err.Error()}
	}
	out, err := ng.Encode(reply)
	if err != nil {
		return nil
	}
	return append([]byte(string(cookie)+" "), out...)
}

func (h *ngHandler) command(body []byte) (ng.Dict, error) {
	v, _, err := ng.Decode(body)
	if err != nil {
		return nil, err
	}
	d, ok := v.(ng.Dict)
	if !ok {
		return nil, errors.New("message is not a dictionary")
	}
	callID := ng.Str(d, "call-id")
	switch cmd := ng.Str(d, "command"); cmd {
	case "ping":
		return ng.Dict{"result": "pong"}, nil
	case "offer", "answer":
		remote, err := ng.AudioAddr(ng.Str(d, "sdp"))
		if err != nil {
			return nil, err
		}
		s := h.calls[callID]
		if cmd == "offer" && s == nil {
			if s, err = h.relay.Allocate(callID, nil); err != nil {
				return nil, err
			}
			h.calls[callID] = s
		}
		if s == nil {
			return nil, fmt.Errorf("answer for unknown call %q", callID)
		}
		// The offerer is side A: its SDP sets A's remote and the reply
		// carries B's local address, for the answerer; and the reverse.
		from, to := s.A(), s.B()
		if cmd == "answer" {
			from, to = s.B(), s.A()
		}
		from.SetRemote(remote, netip.AddrPort{})
		return ng.Dict{"result": "ok", "sdp": ng.AudioSDP(to.LocalRTP())}, nil
	case "delete":
		if s := h.calls[callID]; s != nil {
			delete(h.calls, callID)
			if err := s.Close(); err != nil {
				return nil, err
			}
		}
		return ng.Dict{"result": "ok", "created": time.Now().Unix()}, nil
	case residenceCommand:
		// Not rtpengine's: the time packets spent in this relay since
		// the last reset ("reset": "yes" starts a new window).
		if h.residence == nil {
			return nil, errors.New("residence not measured: start serve with -residence")
		}
		if ng.Str(d, "reset") == "yes" {
			h.residence.Reset()
		}
		dist := h.residence.Dist()
		return ng.Dict{"result": "ok", "packets": int64(dist.N), "p50-ns": int64(dist.P50),
			"p99-ns": int64(dist.P99), "max-ns": int64(dist.Max)}, nil
	default:
		return nil, fmt.Errorf("command %q not supported", cmd)
	}
}
