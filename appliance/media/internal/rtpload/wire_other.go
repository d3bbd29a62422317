//go:build !linux

package rtpload

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/ipv4"
)

const oobSize = 128

var errLinuxOnly = errors.New("the load generator needs Linux (IP_PKTINFO, SO_TIMESTAMPNS, recvmmsg)")

func endpointIP(k int) netip.Addr { return netip.Addr{} }

func endpointIndex([4]byte, int) int { return -1 }

func listenShared() (*net.UDPConn, *ipv4.PacketConn, error) { return nil, nil, errLinuxOnly }

func sourceOOB(netip.Addr) []byte { return nil }

func parseOOB([]byte) (time.Time, [4]byte, bool) { return time.Now(), [4]byte{}, false }

const dontWait = 0

func pause(d time.Duration) { time.Sleep(d) }
