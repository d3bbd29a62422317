//go:build !linux

package ivr

// send writes one packet on the connected socket.
func (ep *Endpoint) send(b []byte) error {
	_, err := ep.conn.Write(b)
	return err
}
