package cloudsync

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"

	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// maxPushBody bounds a push's body ({"revision": N}).
const maxPushBody = 64 << 10

// PushHandler answers the cloud's pushes (POST protocol.PathPushReceiver,
// docs/sync-protocol.md, "Push"): a push that v accepts and whose body
// parses calls wake and gets 202; a bad signature, a stale timestamp, a
// replayed id or malformed headers get 401, a body that does not parse
// 400, and neither calls wake. A push is never applied as data: wake
// should only make the leader's Syncer poll (Syncer.Wake), or forward the
// wake-up to the leader.
func PushHandler(v *protocol.PushVerifier, wake func(protocol.Push), log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "cloudsync", "handler", "push")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			pushAnswer(w, http.StatusMethodNotAllowed, "pushes are POSTed")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPushBody))
		if err != nil {
			pushAnswer(w, http.StatusRequestEntityTooLarge, "push body: "+err.Error())
			return
		}
		id := r.Header.Get(protocol.HeaderPushID)
		if err := v.Verify(id, r.Header.Get(protocol.HeaderPushTimestamp), r.Header.Get(protocol.HeaderPushSignature), body); err != nil {
			log.Warn("push refused", "push_id", id, "remote", r.RemoteAddr, "error", err)
			pushAnswer(w, http.StatusUnauthorized, "push refused: "+err.Error())
			return
		}
		var p protocol.Push
		if err := json.Unmarshal(body, &p); err != nil {
			log.Warn("push refused: body does not parse", "push_id", id, "error", err)
			pushAnswer(w, http.StatusBadRequest, "push body: "+err.Error())
			return
		}
		log.Debug("push received", "push_id", id, "revision", p.Revision)
		wake(p)
		w.WriteHeader(http.StatusAccepted)
	})
}

func pushAnswer(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(protocol.Error{Error: msg})
}
