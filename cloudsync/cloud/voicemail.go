package cloud

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// Voicemail: appliances upload the messages left during an outage, the
// audio first (PUT /v1/sync/voicemail/audio/{sha256}, checked against its
// hash) and then the messages (POST /v1/sync/voicemail under an
// Idempotency-Key), each kept once by id. Admins list them (GET
// /v1/admin/voicemail?appliance=NAME) and fetch the audio (GET
// /v1/admin/voicemail/{id}/audio).

// PutVoicemailAudio stores appliance's WAV under its sha256 (checked by
// the caller) and reports whether it was new.
func (s *Store) PutVoicemailAudio(ctx context.Context, appliance, sum string, data []byte, now time.Time) (bool, error) {
	res, err := s.wdb.ExecContext(ctx, `INSERT INTO voicemail_audio (appliance, sha256, data, created_ms) VALUES (?, ?, ?, ?)
		ON CONFLICT (appliance, sha256) DO NOTHING`, appliance, sum, data, now.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("store voicemail audio %s of %s: %w", sum, appliance, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store voicemail audio %s of %s: %w", sum, appliance, err)
	}
	return n == 1, nil
}

// PutVoicemail stores a batch of appliance's messages, each once by id,
// those whose audio it holds; the receipt is remembered under key, and a
// key used before returns the first receipt again (replayed). One
// transaction.
func (s *Store) PutVoicemail(ctx context.Context, appliance, key string, ms []protocol.VoicemailMessage, now time.Time) (
	receipt protocol.VoicemailReceipt, replayed bool, err error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return receipt, false, fmt.Errorf("voicemail of %s: begin: %w", appliance, err)
	}
	defer tx.Rollback()
	if replayed, err := replayedAnswer(ctx, tx, "voicemail", appliance, key, &receipt); replayed || err != nil {
		return receipt, replayed, err
	}
	receipt.Taken = []string{}
	at := now.UnixMilli()
	for _, m := range ms {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM voicemail_audio WHERE appliance = ? AND sha256 = ?`, appliance, m.SHA256).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			receipt.MissingAudio = append(receipt.MissingAudio, m.ID)
			continue
		} else if err != nil {
			return receipt, false, fmt.Errorf("voicemail of %s: message %q: %w", appliance, m.ID, err)
		}
		doc, err := json.Marshal(m)
		if err != nil {
			return receipt, false, fmt.Errorf("voicemail of %s: message %q: %w", appliance, m.ID, err)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO voicemail_messages (appliance, message_id, sha256, message, received_ms)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (appliance, message_id) DO NOTHING`, appliance, m.ID, m.SHA256, string(doc), at)
		if err != nil {
			return receipt, false, fmt.Errorf("voicemail of %s: message %q: %w", appliance, m.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			receipt.Accepted++
		} else {
			receipt.Duplicates++
		}
		receipt.Taken = append(receipt.Taken, m.ID)
	}
	if err := rememberAnswer(ctx, tx, "voicemail", appliance, key, receipt, at); err != nil {
		return receipt, false, err
	}
	if err := tx.Commit(); err != nil {
		return receipt, false, fmt.Errorf("voicemail of %s: commit: %w", appliance, err)
	}
	return receipt, false, nil
}

// Voicemail is every message appliance uploaded, each once, in the order
// the cloud first received them.
func (s *Store) Voicemail(ctx context.Context, appliance string) ([]protocol.VoicemailMessage, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT message FROM voicemail_messages WHERE appliance = ? ORDER BY seq`, appliance)
	if err != nil {
		return nil, fmt.Errorf("read voicemail of %s: %w", appliance, err)
	}
	defer rows.Close()
	out := []protocol.VoicemailMessage{}
	for rows.Next() {
		var doc string
		var m protocol.VoicemailMessage
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("read voicemail of %s: %w", appliance, err)
		}
		if err := json.Unmarshal([]byte(doc), &m); err != nil {
			return nil, fmt.Errorf("read voicemail of %s: %w", appliance, err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read voicemail of %s: %w", appliance, err)
	}
	return out, nil
}

// VoicemailAudio is the WAV of message id (of appliance, or of any when
// appliance is ""); an error wrapping ErrNotFound when there is none.
func (s *Store) VoicemailAudio(ctx context.Context, appliance, id string) ([]byte, error) {
	var data []byte
	err := s.rdb.QueryRowContext(ctx, `SELECT a.data FROM voicemail_messages m
		JOIN voicemail_audio a ON a.appliance = m.appliance AND a.sha256 = m.sha256
		WHERE m.message_id = ?1 AND (?2 = '' OR m.appliance = ?2) ORDER BY m.seq LIMIT 1`, id, appliance).Scan(&data)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("voicemail %q: %w", id, ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("read voicemail audio %q: %w", id, err)
	}
	return data, nil
}

// voicemailAudioUpload checks an appliance's PUT
// /v1/sync/voicemail/audio/{sha256}.
var voicemailAudioUpload = wavUpload{refusal: "voicemail audio refused", param: "sha256", noun: "audio",
	limit: protocol.MaxVoicemailAudioBytes}

// putVoicemailAudio stores the WAV the path names by its sha256: 201 when
// new, 200 when held already.
func (s *Server) putVoicemailAudio(c *gin.Context) {
	id, body, ok := voicemailAudioUpload.read(c)
	if !ok {
		return
	}
	name := c.GetString(ctxAppliance)
	created, err := s.cfg.Store.PutVoicemailAudio(c.Request.Context(), name, id, body, s.now())
	if err != nil {
		fail(c, http.StatusInternalServerError, "%v", err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		s.log.Info("voicemail audio stored", "appliance", name, "sha256", id, "size", len(body))
	}
	c.JSON(status, protocol.VoicemailAudioReceipt{SHA256: id, Size: len(body)})
}

// postVoicemail stores a batch of messages, all well-formed or none.
func (s *Server) postVoicemail(c *gin.Context) {
	key, ok := uploadKey(c, "batch refused: nothing stored", batchKeyRule)
	if !ok {
		return
	}
	body, ok := readBody(c, maxVoicemailBody)
	if !ok {
		return
	}
	var batch struct {
		Messages *[]protocol.VoicemailMessage `json:"messages"`
	}
	if err := json.Unmarshal(body, &batch); err != nil || batch.Messages == nil {
		msg := "want {\"messages\": [...]}"
		if err != nil {
			msg += ": " + err.Error()
		}
		refuse(c, "batch refused: nothing stored", []protocol.Problem{{Path: "messages", Message: msg}})
		return
	}
	ms := *batch.Messages
	if len(ms) > protocol.MaxVoicemailBatch {
		refuse(c, "batch refused: nothing stored", []protocol.Problem{{Path: "messages",
			Message: fmt.Sprintf("%d messages: at most %d a batch", len(ms), protocol.MaxVoicemailBatch)}})
		return
	}
	var problems []protocol.Problem
	for i, m := range ms {
		if err := m.Check(); err != nil && len(problems) < maxListedProblems {
			problems = append(problems, protocol.Problem{Path: fmt.Sprintf("messages[%d]", i), Message: err.Error()})
		}
	}
	if len(problems) > 0 {
		refuse(c, "batch refused: nothing stored", problems)
		return
	}
	name := c.GetString(ctxAppliance)
	receipt, replayed, err := s.cfg.Store.PutVoicemail(c.Request.Context(), name, key, ms, s.now())
	if !storedUpload(c, replayed, err) {
		return
	}
	s.log.Info("voicemail batch", "appliance", name, "messages", len(ms), "accepted", receipt.Accepted,
		"duplicates", receipt.Duplicates, "missing_audio", len(receipt.MissingAudio), "replayed", replayed)
	c.JSON(http.StatusOK, receipt)
}

// getVoicemail lists an appliance's messages.
func (s *Server) getVoicemail(c *gin.Context) {
	name := c.Query("appliance")
	if name == "" {
		fail(c, http.StatusBadRequest, "missing ?appliance=NAME")
		return
	}
	if !s.paired(c, name) {
		return
	}
	ms, err := s.cfg.Store.Voicemail(c.Request.Context(), name)
	if err != nil {
		fail(c, http.StatusInternalServerError, "%v", err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"messages": ms})
}

// getVoicemailAudio answers a message's WAV.
func (s *Server) getVoicemailAudio(c *gin.Context) {
	id := c.Param("id")
	data, err := s.cfg.Store.VoicemailAudio(c.Request.Context(), c.Query("appliance"), id)
	switch {
	case errors.Is(err, ErrNotFound):
		fail(c, http.StatusNotFound, "no voicemail message %q", id)
		return
	case err != nil:
		fail(c, http.StatusInternalServerError, "%v", err)
		return
	}
	c.Data(http.StatusOK, "audio/wav", data)
}
