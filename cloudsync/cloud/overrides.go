package cloud

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// OverrideReport is an appliance's latest report of the emergency SDG
// overrides in force on it, as GET /v1/admin/overrides shows it.
type OverrideReport struct {
	Appliance string `json:"appliance"`
	// Overrides are the report's, each as the appliance sent it
	// (protocol.Override: sdg_id, route, by, at, revision), compacted;
	// empty before the first report.
	Overrides []json.RawMessage `json:"overrides"`
	// ReportedAt is when the cloud took the report; null before the
	// first.
	ReportedAt *time.Time `json:"reported_at"`
	// HelloOverrides is how many overrides the appliance's last hello
	// said were in force; absent when it did not say. Once the
	// appliance has reported, a difference with len(Overrides) means a
	// report is on its way.
	HelloOverrides *int `json:"hello_overrides,omitempty"`
}

// PutOverrides makes overrides (each a compacted JSON object) appliance's
// latest report, under key, received at now, and answers how many it
// holds. A report under the key of the report held stores nothing and
// answers the same, with replayed true: the key is a hash of the
// report's content, so the cloud already holds what it says. Any other
// key replaces the report, whatever came before (a list may go back to
// an earlier one: none, one, none).
func (s *Store) PutOverrides(ctx context.Context, appliance, key string, overrides []json.RawMessage, now time.Time) (
	receipt protocol.OverrideReceipt, replayed bool, err error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return receipt, false, fmt.Errorf("sdg overrides of %s: begin: %w", appliance, err)
	}
	defer tx.Rollback()
	var held string
	var count int
	err = tx.QueryRowContext(ctx, `SELECT key, count FROM override_reports WHERE appliance = ?`, appliance).Scan(&held, &count)
	switch {
	case err == nil && held == key:
		return protocol.OverrideReceipt{Accepted: count}, true, nil
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return receipt, false, fmt.Errorf("sdg overrides of %s: read report: %w", appliance, err)
	}
	var doc bytes.Buffer
	doc.WriteByte('[')
	for i, o := range overrides {
		if i > 0 {
			doc.WriteByte(',')
		}
		doc.Write(o)
	}
	doc.WriteByte(']')
	if _, err := tx.ExecContext(ctx, `INSERT INTO override_reports (appliance, key, overrides, count, reported_ms)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (appliance) DO UPDATE SET key = excluded.key,
			overrides = excluded.overrides, count = excluded.count, reported_ms = excluded.reported_ms`,
		appliance, key, doc.String(), len(overrides), now.UnixMilli()); err != nil {
		return receipt, false, fmt.Errorf("sdg overrides of %s: store report: %w", appliance, err)
	}
	if err := tx.Commit(); err != nil {
		return receipt, false, fmt.Errorf("sdg overrides of %s: commit: %w", appliance, err)
	}
	return protocol.OverrideReceipt{Accepted: len(overrides)}, false, nil
}

// Overrides is appliance's latest override report (no overrides and no
// time before its first); ErrNotFound for a name never paired.
func (s *Store) Overrides(ctx context.Context, appliance string) (OverrideReport, error) {
	rep := OverrideReport{Appliance: appliance, Overrides: []json.RawMessage{}}
	var hello, reported sql.NullInt64
	var doc sql.NullString
	err := s.rdb.QueryRowContext(ctx, `SELECT a.hello_overrides, r.overrides, r.reported_ms
		FROM appliances a LEFT JOIN override_reports r ON r.appliance = a.name WHERE a.name = ?`, appliance).
		Scan(&hello, &doc, &reported)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return rep, fmt.Errorf("sdg overrides of %s: %w", appliance, ErrNotFound)
	case err != nil:
		return rep, fmt.Errorf("sdg overrides of %s: %w", appliance, err)
	}
	if hello.Valid {
		n := int(hello.Int64)
		rep.HelloOverrides = &n
	}
	if doc.Valid {
		if err := json.Unmarshal([]byte(doc.String), &rep.Overrides); err != nil {
			return rep, fmt.Errorf("sdg overrides of %s: stored report: %w", appliance, err)
		}
		t := fromMS(reported.Int64)
		rep.ReportedAt = &t
	}
	return rep, nil
}

// postOverrides takes an appliance's report of the SDG overrides in force
// (docs/sync-protocol.md, "SDG overrides"). A malformed report is refused
// whole (400), and the report held stays.
func (s *Server) postOverrides(c *gin.Context) {
	key, ok := uploadKey(c, "report refused: nothing stored", "required: at most %d characters, the same whenever the report's content is")
	if !ok {
		return
	}
	body, ok := readBody(c, maxOverridesBody)
	if !ok {
		return
	}
	overrides, problems := parseOverrideReport(body)
	if len(problems) > 0 {
		refuse(c, "report refused: nothing stored", problems)
		return
	}
	name := c.GetString(ctxAppliance)
	receipt, replayed, err := s.cfg.Store.PutOverrides(c.Request.Context(), name, key, overrides, s.now())
	if !storedUpload(c, replayed, err) {
		return
	}
	s.log.Info("sdg overrides reported", "appliance", name, "overrides", receipt.Accepted, "replayed", replayed)
	c.JSON(http.StatusOK, receipt)
}

// parseOverrideReport checks a report: {"overrides": [...]}, at most
// protocol.MaxOverrides, each an object with a non-empty string sdg_id
// (one per SDG), a route (an object with a non-empty string type, fields
// of account.Route's types), a non-empty string by, an RFC 3339 at and a
// revision >= 0; other fields are kept. It returns the overrides,
// compacted, or every problem (up to maxListedProblems).
func parseOverrideReport(body []byte) ([]json.RawMessage, []protocol.Problem) {
	var rep struct {
		Overrides *[]json.RawMessage `json:"overrides"`
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		return nil, []protocol.Problem{{Path: "", Message: "want {\"overrides\": [...]}: " + err.Error()}}
	}
	if rep.Overrides == nil {
		return nil, []protocol.Problem{{Path: "overrides", Message: "missing: want an array of the SDG overrides in force, [] when none"}}
	}
	raws := *rep.Overrides
	if len(raws) > protocol.MaxOverrides {
		return nil, []protocol.Problem{{Path: "overrides",
			Message: fmt.Sprintf("%d overrides: at most %d a report", len(raws), protocol.MaxOverrides)}}
	}
	var problems []protocol.Problem
	bad := 0
	add := func(path, msg string) {
		if bad++; bad <= maxListedProblems {
			problems = append(problems, protocol.Problem{Path: path, Message: msg})
		}
	}
	seen := map[string]int{}
	out := make([]json.RawMessage, 0, len(raws))
	for i, raw := range raws {
		path := fmt.Sprintf("overrides[%d]", i)
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil || obj == nil {
			add(path, "not a JSON object")
			continue
		}
		before := bad
		id, msg := stringField(obj, "sdg_id")
		if msg == "" {
			if j, dup := seen[id]; dup {
				msg = fmt.Sprintf("%q is also overrides[%d]: one override per SDG", id, j)
			}
			seen[id] = i
		}
		if msg != "" {
			add(path+".sdg_id", msg)
		}
		if p, msg := checkRoute(obj["route"]); msg != "" {
			add(path+".route"+p, msg)
		}
		if _, msg := stringField(obj, "by"); msg != "" {
			add(path+".by", msg)
		}
		if msg := checkTime(obj["at"]); msg != "" {
			add(path+".at", msg)
		}
		if msg := checkRevision(obj["revision"]); msg != "" {
			add(path+".revision", msg)
		}
		if bad > before {
			continue
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			add(path, err.Error())
			continue
		}
		out = append(out, buf.Bytes())
	}
	if bad > maxListedProblems {
		problems = append(problems, protocol.Problem{Path: "overrides",
			Message: fmt.Sprintf("and %d more problems", bad-maxListedProblems)})
	}
	return out, problems
}

// stringField is obj's non-empty string name, or what is wrong with it.
func stringField(obj map[string]json.RawMessage, name string) (string, string) {
	raw, ok := obj[name]
	if !ok {
		return "", "missing"
	}
	var v string
	if json.Unmarshal(raw, &v) != nil {
		return "", "not a string"
	}
	if strings.TrimSpace(v) == "" {
		return "", "empty"
	}
	return v, ""
}

// checkRoute says what is wrong with an override's route, and where under
// it: it must be an object with a non-empty string type whose fields have
// account.Route's types. Its references are not checked: the snapshot
// they were made against may be gone.
func checkRoute(raw json.RawMessage) (string, string) {
	if raw == nil {
		return "", "missing"
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil || obj == nil {
		return "", `not a route: want an object such as {"type": "user", "id": "u-carol"}`
	}
	if _, msg := stringField(obj, "type"); msg != "" {
		return ".type", msg
	}
	var r account.Route
	if err := json.Unmarshal(raw, &r); err != nil {
		return "", "not a route: " + err.Error()
	}
	return "", ""
}

// checkTime says what is wrong with an override's at.
func checkTime(raw json.RawMessage) string {
	if raw == nil {
		return "missing"
	}
	var t time.Time
	if json.Unmarshal(raw, &t) != nil || t.IsZero() {
		return `want an RFC 3339 time, e.g. "2026-11-23T09:00:00.123Z"`
	}
	return ""
}

// checkRevision says what is wrong with an override's revision.
func checkRevision(raw json.RawMessage) string {
	if raw == nil {
		return "missing"
	}
	var n int64
	if json.Unmarshal(raw, &n) != nil || n < 0 {
		return "want the configuration revision the override was made on, an integer >= 0"
	}
	return ""
}

// getOverrides shows an appliance's latest override report:
// ?appliance=NAME.
func (s *Server) getOverrides(c *gin.Context) {
	name := c.Query("appliance")
	if name == "" {
		refuse(c, "bad overrides query", []protocol.Problem{{Path: "appliance", Message: "missing: want ?appliance=NAME"}})
		return
	}
	rep, err := s.cfg.Store.Overrides(c.Request.Context(), name)
	switch {
	case errors.Is(err, ErrNotFound):
		fail(c, http.StatusNotFound, "no appliance %q has paired", name)
		return
	case err != nil:
		fail(c, http.StatusInternalServerError, "%v", err)
		return
	}
	c.JSON(http.StatusOK, rep)
}
