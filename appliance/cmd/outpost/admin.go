package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/outpost-voice/outpost/appliance/web/ui"
)

// stdin is where set-password reads the password (a variable for tests).
var stdin io.Reader = os.Stdin

func admin(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "set-password" {
		return fmt.Errorf("%w: admin needs set-password", errUsage)
	}
	return setPassword(args[1:], stdout)
}

// setPassword sets the node's break-glass web UI admin: the first line of
// standard input is the password; <data_dir>/breakglass.json (0600) gets
// the username and its bcrypt hash. The running node uses it at the next
// sign-in (docs/ui.md).
func setPassword(args []string, stdout io.Writer) error {
	f := newFlags("admin set-password")
	user := f.String("user", "", "the break-glass admin's username")
	if pos, err := f.parse(args); err != nil {
		return err
	} else if len(pos) > 0 || *user == "" {
		return fmt.Errorf("%w: admin set-password needs --user (and the password on standard input)", errUsage)
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	if fi, err := os.Stdin.Stat(); err == nil && stdin == os.Stdin && fi.Mode()&os.ModeCharDevice != 0 {
		fmt.Fprintf(stdout, "break-glass password for %s (at least %d characters; shown as typed), then Enter: ", *user, ui.MinPasswordLength)
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read the password from standard input: %w", err)
	}
	password := strings.TrimRight(line, "\r\n")
	if password == "" {
		return errors.New("no password on standard input: pipe it in, e.g. `printf '%s\\n' \"$PW\" | outpost admin set-password --user NAME`")
	}
	path := filepath.Join(cfg.DataDir, ui.BreakGlassFile)
	if err := ui.WriteBreakGlass(path, *user, password); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "break-glass admin %s set in %s; it signs in to the web UI from now on\n", *user, path)
	return nil
}
