package cluster

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestHCLogBridge(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l := newHCLogBridge(base, hclog.Info).Named("raft").With("node-id", "n1")

	l.Debug("hidden below info")
	l.Info("entering leader state", "last-index", 7, "servers", hclog.Fmt("%d voters", 3))
	l.Named("wal").Warn("slow fsync")
	l.SetLevel(hclog.Error)
	l.Warn("hidden below error")
	l.StandardLogger(nil).Print("from a std logger")

	out := buf.String()
	for _, want := range []string{
		`level=INFO msg="entering leader state" raft_logger=raft node_id=n1 last_index=7 servers="3 voters"`,
		`level=WARN msg="slow fsync" raft_logger=raft.wal`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"hidden", "from a std logger"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("log has %q despite the level:\n%s", unwanted, out)
		}
	}
	if !l.IsError() || l.IsWarn() || l.GetLevel() != hclog.Error {
		t.Errorf("level accessors disagree with SetLevel(Error)")
	}
}
