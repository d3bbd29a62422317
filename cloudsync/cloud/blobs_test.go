package cloud

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/outpost-voice/outpost/account"
	"github.com/outpost-voice/outpost/cloudsync/protocol"
)

// testWAV is a small WAV file (a RIFF WAVE header and a few bytes of
// audio) and its id, the hex SHA-256 of its bytes.
func testWAV(audio string) (data []byte, id string) {
	data = append([]byte("RIFF\x24\x00\x00\x00WAVEfmt "), audio...)
	sum := sha256.Sum256(data)
	return data, hex.EncodeToString(sum[:])
}

func TestBlobUploadAndFetch(t *testing.T) {
	h := newHarness(t, Options{})
	c := h.pair("b1")
	data, id := testWAV("hello")

	resp, body := h.admin(http.MethodPut, "/v1/admin/blobs/"+id, data)
	wantStatus(t, "upload", resp, body, http.StatusCreated)
	var info BlobInfo
	decode(t, body, &info)
	if info != (BlobInfo{ID: id, SHA256: id, Size: len(data)}) {
		t.Errorf("upload answered %+v", info)
	}
	resp, body = h.admin(http.MethodPut, "/v1/admin/blobs/"+id, data)
	wantStatus(t, "upload again", resp, body, http.StatusOK)

	resp, body = h.sync(c, http.MethodGet, protocol.PathBlobs+id, nil, nil)
	wantStatus(t, "appliance fetch", resp, body, http.StatusOK)
	if !bytes.Equal(body, data) || resp.Header.Get("Content-Type") != "audio/wav" || resp.Header.Get("ETag") != `"`+id+`"` {
		t.Errorf("fetch answered %q (%s, ETag %s), want the blob as audio/wav", body, resp.Header.Get("Content-Type"), resp.Header.Get("ETag"))
	}
	resp, body = h.admin(http.MethodGet, "/v1/admin/blobs/"+id, nil)
	wantStatus(t, "admin fetch", resp, body, http.StatusOK)
	if !bytes.Equal(body, data) {
		t.Errorf("admin fetch answered %q", body)
	}

	// It survives a restart of the store.
	path := h.store.Path()
	if err := h.store.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := Open(path, Options{Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got, err := st.Blob(t.Context(), id); err != nil || !bytes.Equal(got, data) {
		t.Errorf("after reopening: %q, %v", got, err)
	}
}

func TestBlobUploadRefused(t *testing.T) {
	h := newHarness(t, Options{})
	data, id := testWAV("hello")
	other, otherID := testWAV("other")
	notWAV := []byte("ID3\x03 an mp3")
	notWAVSum := sha256.Sum256(notWAV)
	big := append(bytes.Clone(data), make([]byte, protocol.MaxBlobBytes)...)
	for _, tc := range []struct {
		name    string
		id      string
		body    []byte
		status  int
		problem string
	}{
		{"body of another hash", id, other, http.StatusBadRequest, "the body's SHA-256 is " + otherID},
		{"id not a hash", "greeting-v2", data, http.StatusBadRequest, "is not a SHA-256"},
		{"id upper case", strings.ToUpper(id), data, http.StatusBadRequest, "is not a SHA-256"},
		{"empty body", id, nil, http.StatusBadRequest, "empty"},
		{"not a WAV", hex.EncodeToString(notWAVSum[:]), notWAV, http.StatusBadRequest, "not a WAV file"},
		{"too large", id, big, http.StatusRequestEntityTooLarge, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := h.admin(http.MethodPut, "/v1/admin/blobs/"+tc.id, tc.body)
			wantStatus(t, "upload", resp, body, tc.status)
			e := errorBody(t, body)
			if tc.problem != "" && (len(e.Problems) != 1 || !strings.Contains(e.Problems[0].Message, tc.problem)) {
				t.Errorf("problems %+v, want one saying %q", e.Problems, tc.problem)
			}
		})
	}
	if _, err := h.store.Blob(t.Context(), id); err == nil {
		t.Error("a refused upload was stored")
	}
}

func TestBlobFetchRefused(t *testing.T) {
	h := newHarness(t, Options{})
	c := h.pair("b1")
	data, id := testWAV("hello")
	resp, body := h.admin(http.MethodPut, "/v1/admin/blobs/"+id, data)
	wantStatus(t, "upload", resp, body, http.StatusCreated)
	_, unknown := testWAV("never uploaded")

	resp, body = h.sync(c, http.MethodGet, protocol.PathBlobs+unknown, nil, nil)
	wantStatus(t, "unknown blob", resp, body, http.StatusNotFound)
	errorBody(t, body)
	resp, body = h.sync(c, http.MethodGet, protocol.PathBlobs+"greeting-v2", nil, nil)
	wantStatus(t, "an id outpost-cloud never makes", resp, body, http.StatusNotFound)
	resp, body = h.admin(http.MethodGet, "/v1/admin/blobs/"+unknown, nil)
	wantStatus(t, "unknown blob, admin", resp, body, http.StatusNotFound)

	resp, body = h.do(http.MethodGet, protocol.PathBlobs+id, nil, nil)
	wantStatus(t, "no credentials", resp, body, http.StatusUnauthorized)
	wrong := c
	wrong.Secret = "not-the-secret"
	resp, body = h.sync(wrong, http.MethodGet, protocol.PathBlobs+id, nil, nil)
	wantStatus(t, "wrong secret", resp, body, http.StatusUnauthorized)
	resp, body = h.do(http.MethodPut, "/v1/admin/blobs/"+id, data, c.header())
	wantStatus(t, "upload with an appliance's credentials", resp, body, http.StatusUnauthorized)
	resp, body = h.do(http.MethodGet, "/v1/admin/blobs/"+id, nil, nil)
	wantStatus(t, "admin fetch without a token", resp, body, http.StatusUnauthorized)
}

// Prompts are edited one by one like the other collections, and reach
// appliances as ops.
func TestPromptObjects(t *testing.T) {
	h := newHarness(t, Options{})
	c := h.pair("b1")
	s := smallAccount(t, 3)
	rev := h.putSnapshot(s)
	_, id := testWAV("menu")
	p := account.Prompt{Name: "main-menu", Blob: id, SHA256: id}
	resp, body := h.admin(http.MethodPut, "/v1/admin/prompts/main-menu", p)
	wantStatus(t, "put prompt", resp, body, http.StatusOK)
	resp, body = h.admin(http.MethodPut, "/v1/admin/prompts/goodbye", account.Prompt{Blob: id, SHA256: "nope"})
	wantStatus(t, "put a bad prompt", resp, body, http.StatusBadRequest)
	if e := errorBody(t, body); len(e.Problems) != 1 || e.Problems[0].Path != "prompts[1].sha256" {
		t.Errorf("problems %+v, want prompts[1].sha256", e.Problems)
	}

	resp, body = h.sync(c, http.MethodGet, protocol.PathChanges+"?since="+strconv.FormatInt(rev, 10)+"&wait=0", nil, nil)
	wantStatus(t, "changes", resp, body, http.StatusOK)
	var ch protocol.Changes
	decode(t, body, &ch)
	if len(ch.Revisions) != 1 || len(ch.Revisions[0].Ops) != 1 {
		t.Fatalf("changes %s, want one revision with one op", body)
	}
	if op := ch.Revisions[0].Ops[0]; op.Op != protocol.OpPut || op.Kind != "prompts" || op.ID != "main-menu" {
		t.Errorf("op %+v, want a put of prompts/main-menu", op)
	}
	// A prompt name with '/' between its parts.
	resp, body = h.admin(http.MethodPut, "/v1/admin/prompts/holiday/closed", account.Prompt{Blob: id, SHA256: id})
	wantStatus(t, "put a prompt named with a slash", resp, body, http.StatusOK)
	resp, body = h.admin(http.MethodGet, "/v1/admin/prompts/holiday/closed", nil)
	wantStatus(t, "get it", resp, body, http.StatusOK)
	var got account.Prompt
	decode(t, body, &got)
	if got != (account.Prompt{Name: "holiday/closed", Blob: id, SHA256: id}) {
		t.Errorf("prompt holiday/closed = %+v", got)
	}
	resp, body = h.admin(http.MethodDelete, "/v1/admin/prompts/holiday/closed", nil)
	wantStatus(t, "delete it", resp, body, http.StatusOK)
	resp, body = h.admin(http.MethodGet, "/v1/admin/prompts/holiday/closed", nil)
	wantStatus(t, "get it once deleted", resp, body, http.StatusNotFound)

	resp, body = h.admin(http.MethodDelete, "/v1/admin/prompts/main-menu", nil)
	wantStatus(t, "delete prompt", resp, body, http.StatusOK)
	resp, body = h.admin(http.MethodGet, "/v1/admin/snapshot", nil)
	wantStatus(t, "snapshot", resp, body, http.StatusOK)
	if bytes.Contains(body, []byte(`"prompts"`)) {
		t.Errorf("snapshot after deleting the last prompt ends %s, want no prompts (the list is omitted when empty)", body[max(0, len(body)-80):])
	}
}
