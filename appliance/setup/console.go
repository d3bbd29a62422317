package setup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// ErrInputEnded is the console's input ending (end of file) before the
// interview did.
var ErrInputEnded = errors.New("the console's input ended before the setup was complete; nothing was written")

// Console is a line-oriented terminal: lines are read as the admin ends
// them with Enter, secrets without echo when the input is a terminal. It
// gives up a read when its context is done (Ctrl-C), restoring the echo.
type Console struct {
	out   io.Writer
	in    io.Reader
	fd    int // the input terminal's descriptor; -1 when not a terminal
	start sync.Once
	lines chan lineResult
}

type lineResult struct {
	line string
	err  error
}

// NewConsole reads lines from in and writes to out. When in is a terminal
// (an *os.File), secrets are read with its echo off.
func NewConsole(in io.Reader, out io.Writer) *Console {
	c := &Console{out: out, in: in, fd: -1, lines: make(chan lineResult)}
	if f, ok := in.(*os.File); ok && isTerminal(int(f.Fd())) {
		c.fd = int(f.Fd())
	}
	return c
}

// IsTerminal reports whether the console's input is a terminal.
func (c *Console) IsTerminal() bool { return c.fd >= 0 }

func (c *Console) Write(p []byte) (int, error) { return c.out.Write(p) }

// ReadLine returns the next line without its line ending.
func (c *Console) ReadLine(ctx context.Context) (string, error) {
	c.start.Do(func() { go c.readLoop() })
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case r, ok := <-c.lines:
		if !ok {
			return "", ErrInputEnded
		}
		return r.line, r.err
	}
}

// ReadSecret reads a line with the terminal's echo off, then ends the
// line the admin could not see.
func (c *Console) ReadSecret(ctx context.Context) (string, error) {
	if c.fd < 0 {
		return c.ReadLine(ctx)
	}
	restore, err := echoOff(c.fd)
	if err != nil {
		return c.ReadLine(ctx)
	}
	line, err := c.ReadLine(ctx)
	restore()
	fmt.Fprintln(c.out)
	return line, err
}

// readLoop reads lines for ReadLine until the input ends; it outlives a
// cancelled read, which is harmless: the process is about to end.
func (c *Console) readLoop() {
	br := bufio.NewReader(c.in)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			c.lines <- lineResult{line: trimEOL(line)}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				c.lines <- lineResult{err: fmt.Errorf("read the console: %w", err)}
			}
			close(c.lines)
			return
		}
	}
}

func trimEOL(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}
