package cloud

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// maxIdempotencyKey bounds an Idempotency-Key header.
const maxIdempotencyKey = 200

// maxListedProblems bounds the problems one refused journal batch lists.
const maxListedProblems = 100

func etag(rev int64) string { return `"r` + strconv.FormatInt(rev, 10) + `"` }

func setRevision(c *gin.Context, rev int64) {
	c.Header(protocol.HeaderRevision, strconv.FormatInt(rev, 10))
}

func (s *Server) postPair(c *gin.Context) {
	body, ok := readBody(c, maxSmallBody)
	if !ok {
		return
	}
	var req protocol.PairRequest
	if err := json.Unmarshal(body, &req); err != nil || strings.TrimSpace(req.Code) == "" {
		refuse(c, "want {\"code\": \"...\", \"name\": \"...\"}", []protocol.Problem{{Path: "code", Message: "missing"}})
		return
	}
	secret, pushKey := randomHex(32), randomHex(32)
	name, err := s.cfg.Store.Pair(c.Request.Context(), req.Code, secret, pushKey, s.now())
	switch {
	case errors.Is(err, ErrPairingRefused):
		s.log.Warn("pairing refused", "name", req.Name, "remote", c.ClientIP(), "error", err)
		fail(c, http.StatusForbidden, "pairing refused: the code is unknown, used or expired; ask for a new one")
		return
	case err != nil:
		fail(c, http.StatusInternalServerError, "pair: %v", err)
		return
	}
	rev, _ := s.cfg.Store.Current()
	s.log.Info("appliance paired", "appliance", name, "name", req.Name, "revision", rev)
	c.JSON(http.StatusOK, protocol.PairResponse{ApplianceID: name, Secret: secret, PushKey: pushKey, Revision: rev})
}

func (s *Server) postHello(c *gin.Context) {
	body, ok := readBody(c, maxSmallBody)
	if !ok {
		return
	}
	var h protocol.Hello
	if err := json.Unmarshal(body, &h); err != nil {
		refuse(c, "bad hello", []protocol.Problem{{Path: "", Message: err.Error()}})
		return
	}
	var problems []protocol.Problem
	if h.PushURL != "" {
		if u, err := url.Parse(h.PushURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			problems = append(problems, protocol.Problem{Path: "push_url",
				Message: fmt.Sprintf("%q: want an absolute http or https URL, e.g. https://10.0.0.5:8080", h.PushURL)})
		}
	}
	if h.Revision < 0 {
		problems = append(problems, protocol.Problem{Path: "revision", Message: "must not be negative"})
	}
	if h.Overrides != nil && *h.Overrides < 0 {
		problems = append(problems, protocol.Problem{Path: "overrides", Message: "must not be negative"})
	}
	if len(problems) > 0 {
		refuse(c, "bad hello", problems)
		return
	}
	name := c.GetString(ctxAppliance)
	now := s.now()
	if err := s.cfg.Store.Hello(c.Request.Context(), name, h, now); err != nil {
		fail(c, http.StatusInternalServerError, "%v", err)
		return
	}
	rev, _ := s.cfg.Store.Current()
	c.JSON(http.StatusOK, protocol.HelloResponse{Revision: rev, Time: now.UTC()})
}

// ifNoneMatch reports whether the If-None-Match header names tag (or *).
func ifNoneMatch(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == tag || t == "*" {
			return true
		}
	}
	return false
}

func (s *Server) getSyncSnapshot(c *gin.Context) {
	rev, doc := s.cfg.Store.Current()
	setRevision(c, rev)
	if doc == nil {
		fail(c, http.StatusNotFound, "no snapshot yet: the cloud has no revision")
		return
	}
	tag := etag(rev)
	c.Header("ETag", tag)
	if ifNoneMatch(c.GetHeader("If-None-Match"), tag) {
		c.Status(http.StatusNotModified)
		return
	}
	c.Data(http.StatusOK, "application/json", doc)
}

// getChanges is the long poll: revisions after since, at once if there
// are any, else as soon as one commits, within wait seconds (204 when none
// does).
func (s *Server) getChanges(c *gin.Context) {
	since, err := strconv.ParseInt(c.Query("since"), 10, 64)
	if err != nil || since < 0 {
		refuse(c, "bad changes request", []protocol.Problem{{Path: "since", Message: "want a revision, an integer >= 0"}})
		return
	}
	wait := time.Duration(0)
	if w := c.Query("wait"); w != "" {
		n, err := strconv.Atoi(w)
		if err != nil || n < 0 {
			refuse(c, "bad changes request", []protocol.Problem{{Path: "wait", Message: "want seconds, an integer >= 0 (at most 60 are used)"}})
			return
		}
		wait = min(time.Duration(n)*time.Second, protocol.MaxWait)
	}
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	ctx := c.Request.Context()
	woken := false
	for {
		rev, changed := s.cfg.Store.Watch()
		setRevision(c, rev)
		switch {
		case since > rev:
			c.AbortWithStatusJSON(http.StatusConflict, protocol.Error{
				Error:   fmt.Sprintf("since %d is ahead of the cloud's revision %d (was the cloud restored?): fetch the snapshot", since, rev),
				Current: rev,
			})
			return
		case since < rev:
			s.answerChanges(c, since)
			return
		case woken || timeout == nil:
			c.Status(http.StatusNoContent)
			return
		}
		if s.held != nil {
			s.held()
		}
		select {
		case <-changed:
			woken = true // a new revision, or the store closing: answer either way
		case <-timeout:
			c.Status(http.StatusNoContent)
			return
		case <-s.quit:
			c.Status(http.StatusNoContent)
			return
		case <-ctx.Done():
			return
		}
	}
}

func (s *Server) answerChanges(c *gin.Context, since int64) {
	ch, err := s.cfg.Store.Changes(c.Request.Context(), since)
	switch {
	case errors.Is(err, ErrGone):
		setRevision(c, ch.To)
		c.AbortWithStatusJSON(http.StatusGone, protocol.Error{
			Error:   fmt.Sprintf("the changes after %d are no longer kept: fetch the snapshot (%v)", since, err),
			Current: ch.To,
		})
		return
	case err != nil:
		fail(c, http.StatusInternalServerError, "%v", err)
		return
	}
	setRevision(c, ch.To)
	c.JSON(http.StatusOK, ch)
}

func (s *Server) postAck(c *gin.Context) {
	body, ok := readBody(c, maxSmallBody)
	if !ok {
		return
	}
	var a protocol.Ack
	if err := json.Unmarshal(body, &a); err != nil {
		refuse(c, "bad ack", []protocol.Problem{{Path: "", Message: err.Error()}})
		return
	}
	var problems []protocol.Problem
	if a.Status != protocol.AckApplied && a.Status != protocol.AckRejected {
		problems = append(problems, protocol.Problem{Path: "status",
			Message: fmt.Sprintf("%q: want %q or %q", a.Status, protocol.AckApplied, protocol.AckRejected)})
	}
	if a.Revision < 0 {
		problems = append(problems, protocol.Problem{Path: "revision", Message: "must not be negative"})
	}
	if len(problems) > 0 {
		refuse(c, "bad ack", problems)
		return
	}
	name := c.GetString(ctxAppliance)
	if err := s.cfg.Store.Ack(c.Request.Context(), name, a, s.now()); err != nil {
		fail(c, http.StatusInternalServerError, "%v", err)
		return
	}
	if a.Status == protocol.AckRejected {
		s.log.Warn("revision rejected by appliance", "appliance", name, "revision", a.Revision,
			"node_id", a.NodeID, "problems", len(a.Problems))
	} else {
		s.log.Debug("revision applied by appliance", "appliance", name, "revision", a.Revision, "node_id", a.NodeID)
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) postJournal(c *gin.Context) {
	key, ok := uploadKey(c, "batch refused: nothing stored", batchKeyRule)
	if !ok {
		return
	}
	body, ok := readBody(c, maxJournalBody)
	if !ok {
		return
	}
	records, problems := parseJournalBatch(body)
	if len(problems) > 0 {
		refuse(c, "batch refused: nothing stored", problems)
		return
	}
	name := c.GetString(ctxAppliance)
	receipt, replayed, err := s.cfg.Store.PutJournal(c.Request.Context(), name, key, records, s.now())
	if !storedUpload(c, replayed, err) {
		return
	}
	s.log.Info("journal batch", "appliance", name, "records", len(records), "accepted", receipt.Accepted,
		"duplicates", receipt.Duplicates, "replayed", replayed)
	c.JSON(http.StatusOK, receipt)
}

// parseJournalBatch checks a batch: at most protocol.MaxJournalBatch
// records, each a JSON object with a non-empty string "id". It returns the
// records, compacted, or every problem (up to maxListedProblems).
func parseJournalBatch(body []byte) ([]JournalRecord, []protocol.Problem) {
	var batch struct {
		Records *[]json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(body, &batch); err != nil {
		return nil, []protocol.Problem{{Path: "", Message: "want {\"records\": [...]}: " + err.Error()}}
	}
	if batch.Records == nil {
		return nil, []protocol.Problem{{Path: "records", Message: "missing: want an array of call records"}}
	}
	raws := *batch.Records
	if len(raws) > protocol.MaxJournalBatch {
		return nil, []protocol.Problem{{Path: "records",
			Message: fmt.Sprintf("%d records: at most %d a batch", len(raws), protocol.MaxJournalBatch)}}
	}
	var problems []protocol.Problem
	bad := 0
	records := make([]JournalRecord, 0, len(raws))
	for i, raw := range raws {
		path := fmt.Sprintf("records[%d]", i)
		var obj map[string]json.RawMessage
		var id string
		var msg string
		switch {
		case json.Unmarshal(raw, &obj) != nil || obj == nil:
			msg = "not a JSON object"
		case obj["id"] == nil:
			path, msg = path+".id", "missing"
		case json.Unmarshal(obj["id"], &id) != nil:
			path, msg = path+".id", "not a string"
		case id == "":
			path, msg = path+".id", "empty"
		}
		if msg != "" {
			if bad++; bad <= maxListedProblems {
				problems = append(problems, protocol.Problem{Path: path, Message: msg})
			}
			continue
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			if bad++; bad <= maxListedProblems {
				problems = append(problems, protocol.Problem{Path: path, Message: err.Error()})
			}
			continue
		}
		records = append(records, JournalRecord{ID: id, JSON: buf.Bytes()})
	}
	if bad > maxListedProblems {
		problems = append(problems, protocol.Problem{Path: "records",
			Message: fmt.Sprintf("and %d more malformed records", bad-maxListedProblems)})
	}
	return records, problems
}
