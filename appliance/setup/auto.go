package setup

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// SeedDirs are the NoCloud seed directories looked at first, as
// cloud-init does.
var SeedDirs = []string{"/var/lib/cloud/seed/nocloud", "/var/lib/cloud/seed/nocloud-net"}

// Finder looks for unattended settings on the machine.
type Finder struct {
	// Root is the target system; only SeedDirs under it are looked at
	// when Run is nil.
	Root string
	// Run probes devices (blkid, mount, vmtoolsd); nil: no probing.
	Run Runner
	// MountDir is where a seed device is mounted, read-only, for a moment.
	MountDir string
	// Log tells what is looked at.
	Log io.Writer
}

// Find returns the first unattended settings found, in this order: a
// NoCloud seed directory, a block device labelled cidata or CIDATA
// (NoCloud), a CD holding ovf-env.xml, VMware Tools' guestinfo.ovfEnv.
// Nothing found is (nil, nil); a seed whose settings do not parse is an
// error. A NoCloud seed without an `outpost:` mapping and an OVF
// environment without any outpost.* value count as nothing.
func (f Finder) Find(ctx context.Context) (*Input, error) {
	for _, d := range SeedDirs {
		dir := filepath.Join(f.Root, d)
		if !hasSeed(dir) {
			continue
		}
		f.logf("NoCloud seed directory %s", d)
		in, err := ReadNoCloud(dir)
		if err != nil || in.Outpost {
			return in, err
		}
		f.logf("%s: %s; passed over", d, in.Skipped)
	}
	if f.Run == nil {
		return nil, nil
	}
	_, _ = f.Run(ctx, "", "udevadm", "settle", "--timeout=10") // devices probed; best effort
	tried := map[string]bool{}
	for _, label := range []string{"cidata", "CIDATA"} {
		for _, dev := range f.devices(ctx, "LABEL="+label) {
			if tried[dev] {
				continue
			}
			tried[dev] = true
			var in *Input
			err := f.mounted(ctx, dev, func(dir string) error {
				var err error
				in, err = ReadNoCloud(dir)
				return err
			})
			if err != nil || (in != nil && in.Outpost) {
				return in, err
			}
			if in != nil {
				f.logf("%s (label %s): %s; passed over", dev, label, in.Skipped)
			}
		}
	}
	for _, dev := range f.devices(ctx, "TYPE=iso9660") {
		if tried[dev] {
			continue
		}
		var in *Input
		err := f.mounted(ctx, dev, func(dir string) error {
			name := findFold(dir, "ovf-env.xml")
			if name == "" {
				return nil
			}
			fh, err := os.Open(filepath.Join(dir, name))
			if err != nil {
				return fmt.Errorf("OVF environment on %s: %w", dev, err)
			}
			defer fh.Close()
			in, err = ReadOVF(fh, "OVF environment "+dev+":"+name)
			return err
		})
		if err != nil || (in != nil && in.Outpost) {
			return in, err
		}
	}
	if env, err := f.Run(ctx, "", "vmtoolsd", "--cmd", "info-get guestinfo.ovfEnv"); err == nil && strings.Contains(env, "Environment") {
		f.logf("OVF environment from VMware Tools")
		in, err := ReadOVF(strings.NewReader(env), "OVF environment (guestinfo.ovfEnv)")
		if err != nil || in.Outpost {
			return in, err
		}
		f.logf("the OVF environment from VMware Tools: %s; passed over", in.Skipped)
	}
	return nil, nil
}

func (f Finder) logf(format string, args ...any) {
	if f.Log != nil {
		fmt.Fprintf(f.Log, format+"\n", args...)
	}
}

// devices lists the block devices blkid finds for a token such as
// LABEL=cidata (none when it finds none or is missing).
func (f Finder) devices(ctx context.Context, token string) []string {
	out, err := f.Run(ctx, "", "blkid", "-t", token, "-o", "device")
	if err != nil {
		return nil
	}
	var devs []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "/dev/") {
			devs = append(devs, l)
		}
	}
	return devs
}

// mounted mounts dev read-only on MountDir, calls fn and unmounts it.
func (f Finder) mounted(ctx context.Context, dev string, fn func(dir string) error) error {
	if err := os.MkdirAll(f.MountDir, 0o700); err != nil {
		return fmt.Errorf("seed mount point: %w", err)
	}
	if _, err := f.Run(ctx, "", "mount", "-o", "ro", dev, f.MountDir); err != nil {
		f.logf("%s: not mounted (%v); skipped", dev, err)
		return nil
	}
	f.logf("looking at %s", dev)
	err := fn(f.MountDir)
	if _, uerr := f.Run(ctx, "", "umount", f.MountDir); uerr != nil && err == nil {
		err = fmt.Errorf("unmount %s: %w", dev, uerr)
	}
	return err
}

func hasSeed(dir string) bool {
	for _, n := range []string{userDataFile, metaDataFile} {
		if fi, err := os.Stat(filepath.Join(dir, n)); err == nil && fi.Mode().IsRegular() {
			return true
		}
	}
	return false
}

// findFold finds a file in dir whose name is name in any case (an ISO
// 9660 CD may show it upper-cased, with ";1").
func findFold(dir, name string) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, e := range ents {
		n := strings.TrimSuffix(e.Name(), ";1")
		if strings.EqualFold(n, name) && e.Type().IsRegular() {
			return e.Name()
		}
	}
	return ""
}

// Interfaces lists the physical network interfaces in a /sys/class/net
// directory, sorted: those backed by a device, not loopback or virtual
// ones (bridges, veth, docker0).
func Interfaces(sysClassNet string) []string {
	ents, err := os.ReadDir(sysClassNet)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		name := e.Name()
		if name == "lo" {
			continue
		}
		if _, err := os.Stat(filepath.Join(sysClassNet, name, "device")); err != nil {
			continue
		}
		out = append(out, name)
	}
	return out
}
