package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A message left for carol while the cloud is out is uploaded once the
// WAN heals: the cloud holds it once, its audio the very bytes the node
// recorded (by sha256), and the node's voicemail directory no longer
// holds the file.
func TestCloudVoicemailUpload(t *testing.T) {
	cloud := startCloud(t, demoSnapshot(t))
	link := startWAN(t, cloud.addr)
	creds := pairCluster(t, cloud, "vm-site")
	n := startNode(t, "vmcloud", nodeOpts{
		cloudCredentials: creds,
		cloud: fmt.Sprintf("cloud:\n  url: %s\n  probe_interval: 200ms\n  outage_after: 1s\n  recover_after: 1s\n",
			link.url()),
	})
	nodes := []*node{n}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rev, err := cloud.revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitAllAt(t, nodes, rev, 30*time.Second)
	waitAllMode(t, nodes, "normal", 10*time.Second)

	link.cut()
	waitAllMode(t, nodes, "survivability", 20*time.Second)
	callers := writeCallersCSV(t, [][4]string{{"alice", "pw-alice", "acme.example", "1003"}})
	if res := runSIPp(t, scenarioPath(t, "uac-voicemail.xml"), n.sipUDP, 1, 40*time.Second, "-inf", callers); res.exit != 0 {
		t.Fatalf("leaving a message: sipp exit %d\n%s\n%s", res.exit, res.stdout, n.log())
	}
	dir := filepath.Join(n.dir, "data", "voicemail")
	var file string
	var audio []byte
	eventually(t, 10*time.Second, "the message's audio on the node", func(context.Context) error {
		files, err := filepath.Glob(filepath.Join(dir, "*.wav"))
		if err != nil || len(files) != 1 {
			return fmt.Errorf("voicemail files %v (%v), want one", files, err)
		}
		file = files[0]
		audio, err = os.ReadFile(file)
		return err
	})
	sum := sha256.Sum256(audio)
	hash := hex.EncodeToString(sum[:])
	if filepath.Base(file) != hash+".wav" {
		t.Fatalf("the file %s is not named by its sha256 %s", file, hash)
	}

	link.heal()
	waitAllMode(t, nodes, "normal", 30*time.Second)
	var id string
	eventually(t, 30*time.Second, "the message in the cloud", func(ctx context.Context) error {
		body, err := cloud.admin(ctx, http.MethodGet, "/v1/admin/voicemail?appliance=vm-site", nil)
		if err != nil {
			return err
		}
		var list struct {
			Messages []struct {
				ID      string `json:"id"`
				Mailbox string `json:"mailbox"`
				SHA256  string `json:"sha256"`
			} `json:"messages"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			return err
		}
		if len(list.Messages) != 1 || list.Messages[0].SHA256 != hash || list.Messages[0].Mailbox != "u-carol" {
			return fmt.Errorf("the cloud holds %s, want carol's message once", body)
		}
		id = list.Messages[0].ID
		return nil
	})
	got, err := cloud.admin(ctx, http.MethodGet, "/v1/admin/voicemail/"+id+"/audio", nil)
	if err != nil {
		t.Fatal(err)
	}
	if gotSum := sha256.Sum256(got); !bytes.Equal(gotSum[:], sum[:]) {
		t.Fatalf("the cloud's audio (%d bytes) is not the node's (%d bytes)", len(got), len(audio))
	}
	eventually(t, 10*time.Second, "the node's copy freed", func(context.Context) error {
		if _, err := os.Stat(file); !os.IsNotExist(err) {
			return fmt.Errorf("%s still there (%v)", file, err)
		}
		return nil
	})
	if !strings.Contains(n.log(), `msg="voicemail batch uploaded"`) {
		t.Errorf("no voicemail batch upload in the node's log")
	}
}
