package setup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func seed(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func settingsFrom(t *testing.T, in *Input, err error) (Settings, error) {
	t.Helper()
	if err != nil {
		return Settings{}, err
	}
	return in.Settings(Defaults("debian", "eth0"))
}

const fullUserData = `#cloud-config
hostname: ignored-by-fqdn
fqdn: pbx-hq-1.acme.example
users: [default]      # cloud-init's own keys are ignored
outpost:
  admin_password: correct horse battery
  network:
    address: 192.0.2.10/24
    gateway: 192.0.2.1
  dns: [192.0.2.53, 192.0.2.54]
  ntp: ntp1.acme.example, ntp2.acme.example
  site: branch
  node_id: node-7
  dns_domain: survive.acme.example
  cloud_url: https://cloud.outpost.example
  pairing_code: 7KQ2M-ZX9PA-3DT8R
`

func TestNoCloudFull(t *testing.T) {
	dir := seed(t, map[string]string{
		"meta-data": "instance-id: i-1\nlocal-hostname: from-meta\n",
		"user-data": fullUserData,
	})
	in, err := ReadNoCloud(dir)
	s, err := settingsFrom(t, in, err)
	if err != nil {
		t.Fatal(err)
	}
	if !in.Outpost || s.Hostname != "pbx-hq-1.acme.example" || s.DHCP || s.Address.String() != "192.0.2.10/24" ||
		s.Gateway.String() != "192.0.2.1" || len(s.DNS) != 2 || strings.Join(s.NTP, " ") != "ntp1.acme.example ntp2.acme.example" ||
		s.Site != "branch" || s.NodeID != "node-7" || s.DNSDomain != "survive.acme.example" ||
		s.CloudURL != "https://cloud.outpost.example" || s.PairingCode != "7KQ2M-ZX9PA-3DT8R" ||
		s.AdminPassword != "correct horse battery" || s.AdminUser != "admin" || s.Interface != "eth0" {
		t.Errorf("settings %+v", s)
	}
}

func TestNoCloudNetworkConfig(t *testing.T) {
	for name, tc := range map[string]struct {
		nc, ud     string
		addr, gw   string
		dhcp       bool
		iface, dns string
	}{
		"v2 static": {nc: `version: 2
ethernets:
  ens192:
    addresses: [198.51.100.7/24]
    routes: [{to: default, via: 198.51.100.1}]
    nameservers: {addresses: [198.51.100.53], search: [acme.example]}
`, addr: "198.51.100.7/24", gw: "198.51.100.1", iface: "ens192", dns: "198.51.100.53"},
		"v2 wrapped dhcp": {nc: "network:\n  version: 2\n  ethernets:\n    id0:\n      match: {name: \"en*\"}\n      dhcp4: true\n", dhcp: true, iface: "en*"},
		"v1 proxmox": {nc: `version: 1
config:
    - type: physical
      name: eth0
      mac_address: 'bc:24:11:2a:3b:4c'
      subnets:
      - type: static
        address: '203.0.113.20'
        netmask: '255.255.255.0'
        gateway: '203.0.113.1'
      - type: ipv6_slaac
    - type: nameserver
      address:
      - '203.0.113.53'
      search:
      - 'acme.example'
`, addr: "203.0.113.20/24", gw: "203.0.113.1", iface: "bc:24:11:2a:3b:4c", dns: "203.0.113.53"},
		"v2 mac": {nc: "version: 2\nethernets:\n  nic0:\n    match: {macaddress: '00:50:56:AA:BB:CC'}\n    set-name: eth0\n    dhcp4: true\n",
			dhcp: true, iface: "00:50:56:AA:BB:CC"},
		"user-data wins": {nc: "version: 2\nethernets:\n  eth1:\n    dhcp4: true\n",
			ud:   "outpost:\n  network: {address: 192.0.2.10/24, gateway: 192.0.2.1}\n  dns: 192.0.2.53\n",
			addr: "192.0.2.10/24", gw: "192.0.2.1", iface: "eth1", dns: "192.0.2.53"},
	} {
		t.Run(name, func(t *testing.T) {
			ud := "#cloud-config\noutpost:\n  admin_password: correct horse battery\n"
			if tc.ud != "" {
				ud += strings.TrimPrefix(tc.ud, "outpost:\n")
			}
			in, err := ReadNoCloud(seed(t, map[string]string{"user-data": ud, "network-config": tc.nc}))
			s, err := settingsFrom(t, in, err)
			if err != nil {
				t.Fatal(err)
			}
			addr := ""
			if s.Address.IsValid() {
				addr = s.Address.String()
			}
			gw := ""
			if s.Gateway.IsValid() {
				gw = s.Gateway.String()
			}
			if addr != tc.addr || gw != tc.gw || s.DHCP != tc.dhcp || s.Interface != tc.iface || joinAddrs(s.DNS) != tc.dns {
				t.Errorf("got addr %q gw %q dhcp %v iface %q dns %q", addr, gw, s.DHCP, s.Interface, joinAddrs(s.DNS))
			}
		})
	}
}

func TestNoCloudRefusals(t *testing.T) {
	for name, tc := range map[string]struct {
		files map[string]string
		want  []string
	}{
		"bad address": {map[string]string{"user-data": "#cloud-config\noutpost:\n  admin_password: correct horse battery\n  network: {address: 10.0.0.300/24, gateway: 10.0.0.1}\n  dns: [10.0.0.53]\n"},
			[]string{"user-data: outpost.network.address: 10.0.0.300/24 is not an IPv4/IPv6 address with a prefix (like 192.0.2.10/24)", "nothing was written"}},
		"short password": {map[string]string{"user-data": "#cloud-config\noutpost:\n  admin_password: short\n"},
			[]string{"user-data: outpost.admin_password: password too short: at least 12 characters"}},
		"no password": {map[string]string{"user-data": "#cloud-config\noutpost:\n  site: hq\n"},
			[]string{"user-data: outpost.admin_password: missing"}},
		"gateway outside": {map[string]string{"user-data": "#cloud-config\noutpost:\n  admin_password: correct horse battery\n  network: {address: 10.0.0.5/24, gateway: 10.0.1.1}\n  dns: 10.0.0.53\n"},
			[]string{"user-data: outpost.network.gateway: gateway 10.0.1.1 is not in 10.0.0.0/24"}},
		"unknown key": {map[string]string{"user-data": "#cloud-config\noutpost:\n  admin_pasword: correct horse battery\n"},
			[]string{"user-data: outpost.admin_pasword (line 3): unknown key; known: admin_user"}},
		"unknown network key": {map[string]string{"user-data": "#cloud-config\noutpost:\n  network: {dhcp4: true}\n"},
			[]string{"user-data: outpost.network.dhcp4 (line 3): unknown key"}},
		"too many dns": {map[string]string{"user-data": "#cloud-config\noutpost:\n  admin_password: correct horse battery\n  dns: [1.1.1.1, 1.0.0.1, 8.8.8.8, 8.8.4.4]\n"},
			[]string{"user-data: outpost.dns: 4 DNS servers: give at most 3"}},
		"dhcp and address": {map[string]string{"user-data": "#cloud-config\noutpost:\n  admin_password: correct horse battery\n  network: {dhcp: true, address: 192.0.2.10/24, gateway: 192.0.2.1}\n  dns: 192.0.2.53\n"},
			[]string{"user-data: outpost.network.dhcp: DHCP and a static address"}},
		"join without token": {map[string]string{"user-data": "#cloud-config\noutpost:\n  admin_password: correct horse battery\n  join: 10.0.0.1\n"},
			[]string{"user-data: outpost.cluster_token: missing"}},
		"yaml error": {map[string]string{"user-data": "#cloud-config\noutpost: [\n"}, []string{"user-data: "}},
		"bad hostname": {map[string]string{"meta-data": "local-hostname: bad_name\n", "user-data": "#cloud-config\noutpost:\n  admin_password: correct horse battery\n"},
			[]string{"meta-data: local-hostname: \"bad_name\" is not a host name"}},
		"nc two ethernets": {map[string]string{"user-data": "#cloud-config\noutpost:\n  admin_password: correct horse battery\n", "network-config": "version: 2\nethernets:\n  a: {dhcp4: true}\n  b: {dhcp4: true}\n"},
			[]string{"network-config: ethernets: 2 interfaces; one is supported"}},
		"nc bond": {map[string]string{"user-data": "#cloud-config\noutpost:\n  admin_password: correct horse battery\n", "network-config": "version: 2\nbonds:\n  bond0: {}\n"},
			[]string{"network-config: bonds: not supported"}},
		"nc driver match": {map[string]string{"user-data": "#cloud-config\noutpost:\n  admin_password: correct horse battery\n", "network-config": "version: 2\nethernets:\n  a:\n    match: {driver: virtio_net}\n"},
			[]string{"network-config: ethernets.a.match.driver: not supported"}},
		"nc bad address": {map[string]string{"user-data": "#cloud-config\noutpost:\n  admin_password: correct horse battery\n", "network-config": "version: 2\nethernets:\n  eth0:\n    addresses: [192.0.2.999/24]\n    gateway4: 192.0.2.1\n    nameservers: {addresses: [192.0.2.53]}\n"},
			[]string{"network-config: ethernets.eth0.addresses: 192.0.2.999/24 is not an IPv4/IPv6 address"}},
		"nc version 3": {map[string]string{"user-data": "#cloud-config\noutpost: {admin_password: correct horse battery}\n", "network-config": "version: 3\n"}, []string{"only versions 1 and 2"}},
	} {
		t.Run(name, func(t *testing.T) {
			in, err := ReadNoCloud(seed(t, tc.files))
			_, err = settingsFrom(t, in, err)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestNoCloudWithoutOutpost(t *testing.T) {
	for want, files := range map[string]map[string]string{
		"no outpost: mapping": {"meta-data": "instance-id: x\n", "user-data": "#cloud-config\npassword: x\n",
			"network-config": "version: 3\n"}, // someone else's: not even read
		"a script":                          {"user-data": "#!/bin/sh\necho hi\n"},
		"does not start with #cloud-config": {"user-data": "outpost: {}\n"},
		"no user-data":                      {"meta-data": "local-hostname: x\n"},
	} {
		in, err := ReadNoCloud(seed(t, files))
		if err != nil || in.Outpost || !strings.Contains(in.Skipped, want) {
			t.Errorf("%s: in %+v err %v; want a seed without Outpost settings", want, in, err)
		}
	}
}

const ovfEnv = `<?xml version="1.0" encoding="UTF-8"?>
<Environment
     xmlns="http://schemas.dmtf.org/ovf/environment/1"
     xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
     xmlns:oe="http://schemas.dmtf.org/ovf/environment/1"
     xmlns:ve="http://www.vmware.com/schema/ovfenv"
     oe:id="" ve:vCenterId="vm-42">
   <PlatformSection>
      <Kind>VMware ESXi</Kind><Version>8.0.2</Version><Vendor>VMware, Inc.</Vendor><Locale>en</Locale>
   </PlatformSection>
   <PropertySection>
%s
   </PropertySection>
   <ve:EthernetAdapterSection>
      <ve:Adapter ve:mac="00:50:56:aa:bb:cc" ve:network="VM Network" ve:unitNumber="7"/>
   </ve:EthernetAdapterSection>
</Environment>
`

func ovf(props map[string]string) string {
	var b strings.Builder
	for k, v := range props {
		b.WriteString(`      <Property oe:key="` + k + `" oe:value="` + v + `"/>` + "\n")
	}
	return strings.Replace(ovfEnv, "%s", b.String(), 1)
}

func TestOVF(t *testing.T) {
	env := ovf(map[string]string{
		"outpost.hostname": "pbx-esx-1", "outpost.admin_password": "correct horse &amp; battery",
		"outpost.ip": "192.0.2.10/24", "outpost.gateway": "192.0.2.1", "outpost.dns": "192.0.2.53, 192.0.2.54",
		"outpost.ntp": "", "outpost.site": "hq", "outpost.cloud_url": "https://cloud.outpost.example",
		"outpost.pairing_code": "7KQ2M-ZX9PA-3DT8R", "outpost.join": "", "vami.hostname": "ignored",
	})
	in, err := ReadOVF(strings.NewReader(env), "ovf-env.xml")
	s, err := settingsFrom(t, in, err)
	if err != nil {
		t.Fatal(err)
	}
	if !in.Outpost || s.Hostname != "pbx-esx-1" || s.AdminPassword != "correct horse & battery" || s.DHCP ||
		s.Address.String() != "192.0.2.10/24" || joinAddrs(s.DNS) != "192.0.2.53 192.0.2.54" ||
		strings.Join(s.NTP, " ") != strings.Join(DefaultNTP, " ") || s.Joining() || s.PairingCode == "" {
		t.Errorf("settings %+v", s)
	}

	// outpost.ip empty: DHCP.
	in, err = ReadOVF(strings.NewReader(ovf(map[string]string{"outpost.admin_password": "correct horse battery", "outpost.ip": ""})), "ovf-env.xml")
	if s, err := settingsFrom(t, in, err); err != nil || !s.DHCP {
		t.Errorf("empty ip: %+v %v", s, err)
	}
	// No value at all: not for us.
	in, err = ReadOVF(strings.NewReader(ovf(map[string]string{"outpost.ip": "", "outpost.hostname": ""})), "ovf-env.xml")
	if err != nil || in.Outpost {
		t.Errorf("empty environment: %+v %v", in, err)
	}
}

func TestOVFRefusals(t *testing.T) {
	for name, tc := range map[string]struct {
		env  string
		want string
	}{
		"bad ip":         {ovf(map[string]string{"outpost.admin_password": "correct horse battery", "outpost.ip": "10.0.0.300/24", "outpost.gateway": "10.0.0.1", "outpost.dns": "10.0.0.53"}), "ovf-env.xml: outpost.ip: 10.0.0.300/24 is not an IPv4/IPv6 address with a prefix (like 192.0.2.10/24); nothing was written"},
		"short password": {ovf(map[string]string{"outpost.admin_password": "short"}), "outpost.admin_password: password too short: at least 12 characters"},
		"unknown key":    {ovf(map[string]string{"outpost.admin_pasword": "correct horse battery"}), "outpost.admin_pasword: unknown vApp property; known: outpost.admin_password"},
		"gateway no ip":  {ovf(map[string]string{"outpost.admin_password": "correct horse battery", "outpost.gateway": "10.0.0.1"}), "outpost.gateway: given without outpost.ip"},
		"no dns static":  {ovf(map[string]string{"outpost.admin_password": "correct horse battery", "outpost.ip": "10.0.0.5/24", "outpost.gateway": "10.0.0.1"}), "outpost.dns: missing"},
		"no password":    {ovf(map[string]string{"outpost.hostname": "pbx"}), "outpost.admin_password: missing"},
		"bad join":       {ovf(map[string]string{"outpost.admin_password": "correct horse battery", "outpost.join": "10.0.0.1:http", "outpost.cluster_token": "abcd-efgh-ijkl-mnop"}), "outpost.join: "},
		"not xml":        {"hello", "not an OVF environment document"},
	} {
		t.Run(name, func(t *testing.T) {
			in, err := ReadOVF(strings.NewReader(tc.env), "ovf-env.xml")
			_, err = settingsFrom(t, in, err)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v\nwant %q", err, tc.want)
			}
		})
	}
}

func TestFinder(t *testing.T) {
	root := t.TempDir()
	f := Finder{Root: root}
	if in, err := f.Find(context.Background()); in != nil || err != nil {
		t.Fatalf("empty root: %v %v", in, err)
	}
	dir := filepath.Join(root, SeedDirs[0])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "user-data"), []byte(fullUserData), 0o600); err != nil {
		t.Fatal(err)
	}
	in, err := f.Find(context.Background())
	if err != nil || in == nil || !in.Has(FieldPairingCode) {
		t.Fatalf("seed dir: %+v %v", in, err)
	}

	// Devices: a cidata disk without Outpost settings is passed over, the
	// OVF CD is read; blkid, mount and umount go through the runner.
	mount := filepath.Join(t.TempDir(), "seed")
	var ran []string
	run := func(_ context.Context, _, name string, args ...string) (string, error) {
		ran = append(ran, name+" "+strings.Join(args, " "))
		switch {
		case name == "blkid" && args[1] == "LABEL=cidata":
			return "/dev/vdb\n", nil
		case name == "blkid" && args[1] == "TYPE=iso9660":
			return "/dev/vdb\n/dev/sr0\n", nil
		case name == "blkid":
			return "", errors.New("exit status 2")
		case name == "mount" && args[2] == "/dev/vdb":
			return "", os.WriteFile(filepath.Join(mount, "user-data"), []byte("#cloud-config\nhostname: x\n"), 0o600)
		case name == "mount" && args[2] == "/dev/sr0":
			_ = os.Remove(filepath.Join(mount, "user-data"))
			return "", os.WriteFile(filepath.Join(mount, "OVF-ENV.XML;1"), []byte(ovf(map[string]string{"outpost.admin_password": "correct horse battery"})), 0o600)
		}
		return "", nil
	}
	f = Finder{Root: t.TempDir(), Run: run, MountDir: mount}
	in, err = f.Find(context.Background())
	if err != nil || in == nil || !strings.Contains(in.Source, "/dev/sr0") || !in.Has(FieldAdminPassword) {
		t.Fatalf("devices: %+v %v\nran %q", in, err, ran)
	}
	if got := strings.Join(ran, "; "); !strings.Contains(got, "mount -o ro /dev/vdb "+mount+"; umount "+mount) ||
		!strings.Contains(got, "mount -o ro /dev/sr0") || strings.Count(got, "/dev/vdb "+mount) != 1 {
		t.Errorf("ran %s", got)
	}
}

func TestInterfaces(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"lo", "eth0", "ens192", "docker0"} {
		_ = os.MkdirAll(filepath.Join(dir, n), 0o755)
	}
	for _, n := range []string{"eth0", "ens192", "lo"} {
		_ = os.MkdirAll(filepath.Join(dir, n, "device"), 0o755)
	}
	if got := strings.Join(Interfaces(dir), " "); got != "ens192 eth0" {
		t.Errorf("Interfaces = %q", got)
	}
}
