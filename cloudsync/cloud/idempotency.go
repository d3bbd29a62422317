package cloud

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// Idempotency keys: an appliance's upload (a journal batch, a voicemail
// batch) carries an Idempotency-Key; the cloud remembers its answer
// under the key, in the upload's transaction, and answers a key used
// before with that first answer (replayed) until PruneIdempotencyKeys
// forgets it.

// replayedAnswer reads the answer remembered under appliance's key into
// answer, and says whether there was one. what names the upload in
// errors.
func replayedAnswer(ctx context.Context, tx *sql.Tx, what, appliance, key string, answer any) (bool, error) {
	var stored string
	err := tx.QueryRowContext(ctx, `SELECT response FROM idempotency_keys WHERE appliance = ? AND key = ?`,
		appliance, key).Scan(&stored)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%s of %s: read key: %w", what, appliance, err)
	}
	if err := json.Unmarshal([]byte(stored), answer); err != nil {
		return false, fmt.Errorf("%s of %s: stored answer for key %q: %w", what, appliance, key, err)
	}
	return true, nil
}

// rememberAnswer remembers answer under appliance's key, created at atMS
// (Unix milliseconds).
func rememberAnswer(ctx context.Context, tx *sql.Tx, what, appliance, key string, answer any, atMS int64) error {
	doc, err := json.Marshal(answer)
	if err != nil {
		return fmt.Errorf("%s of %s: %w", what, appliance, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO idempotency_keys (appliance, key, response, created_ms) VALUES (?, ?, ?, ?)`,
		appliance, key, string(doc), atMS); err != nil {
		return fmt.Errorf("%s of %s: remember key: %w", what, appliance, err)
	}
	return nil
}

// batchKeyRule is what a batch's Idempotency-Key must be (uploadKey).
const batchKeyRule = "required: a unique key per batch, at most %d characters, the same when the batch is retried"

// uploadKey is the request's Idempotency-Key. A missing or too long one
// is refused (400, titled refusal; rule, with the longest length, says
// what the key must be) and ok is false.
func uploadKey(c *gin.Context, refusal, rule string) (key string, ok bool) {
	key = c.GetHeader(protocol.HeaderIdempotencyKey)
	if key == "" || len(key) > maxIdempotencyKey {
		refuse(c, refusal, []protocol.Problem{{Path: protocol.HeaderIdempotencyKey, Message: fmt.Sprintf(rule, maxIdempotencyKey)}})
		return "", false
	}
	return key, true
}

// storedUpload answers an upload the store could not keep (500) and
// marks one it answered before (Idempotent-Replayed): ok says whether the
// handler goes on to answer the receipt.
func storedUpload(c *gin.Context, replayed bool, err error) (ok bool) {
	if err != nil {
		fail(c, http.StatusInternalServerError, "%v", err)
		return false
	}
	if replayed {
		c.Header(protocol.HeaderIdempotentReplayed, "true")
	}
	return true
}
