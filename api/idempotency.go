package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/sentineldf/sentineldf"
)

// Idempotency.
const (
	// IdempotencyHeader names the optional idempotency key of a POST.
	IdempotencyHeader = "Idempotency-Key"
	// ReplayedHeader marks a response replayed from an earlier request.
	ReplayedHeader = "Idempotent-Replayed"
	// MaxIdempotencyKeyLen is the longest accepted Idempotency-Key.
	MaxIdempotencyKeyLen = 255
	// IdempotencyTTL is how long a response is kept for replay.
	IdempotencyTTL = 24 * time.Hour
	// maxReplayBytes caps a response kept for replay; a larger one is
	// served but not kept (a retry runs again).
	maxReplayBytes = 16 << 20
	// idemPollMin and idemPollMax bound the backoff of a duplicate
	// waiting for the first request to finish.
	idemPollMin = 5 * time.Millisecond
	idemPollMax = 200 * time.Millisecond
)

// Idempotency record states.
const (
	idemPending = "pending"
	idemDone    = "done"
)

// idemRecord is the cache entry of an idempotency key: the SHA-256 of the
// request body and, once done, the response.
type idemRecord struct {
	BodySHA256  string `json:"body_sha256"`
	State       string `json:"state"`
	Status      int    `json:"status,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Body        []byte `json:"body,omitempty"`
}

// validIdempotencyKey reports whether k is 1 to 255 printable ASCII
// characters.
func validIdempotencyKey(k string) bool {
	if k == "" || len(k) > MaxIdempotencyKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// idempotent runs a POST handler under its Idempotency-Key, when it has
// one. The first request with a key claims it (SetNX of a pending record)
// and runs; its response is kept and replayed to later requests with the
// same key and body, and a request with the same key and another body is
// refused (422). A duplicate that arrives while the first still runs
// waits for it, so concurrent duplicates run once. Responses that say
// "try again" (429, 5xx) are not kept: the key is released for a retry.
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, p *principal, h apiFunc) {
	key, ok := r.Header[http.CanonicalHeaderKey(IdempotencyHeader)]
	if !ok {
		if err := h(w, r, p); err != nil {
			s.writeError(w, r, err)
		}
		return
	}
	if len(key) != 1 || !validIdempotencyKey(key[0]) {
		s.writeError(w, r, sentineldf.FieldError(IdempotencyHeader, "must be one header of 1 to %d printable ASCII characters", MaxIdempotencyKeyLen))
		return
	}
	body, err := readBody(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	bodySum := sha256.Sum256(body)
	bodyHash := hex.EncodeToString(bodySum[:])
	id := sha256.Sum256([]byte(r.Method + "\x00" + r.URL.Path + "?" + r.URL.RawQuery + "\x00" + key[0]))
	ck := "org:" + p.OrgID + ":idem:" + hex.EncodeToString(id[:])
	pending, _ := json.Marshal(idemRecord{BodySHA256: bodyHash, State: idemPending})
	// A pending record outlives the request that wrote it by a margin, so
	// a crashed process does not block its key for long.
	pendingTTL := s.cfg.RequestTimeout + time.Minute

	ctx := r.Context()
	wait := idemPollMin
	for {
		won, err := s.cfg.Cache.SetNX(ctx, ck, pending, pendingTTL)
		if err != nil {
			s.dependencyError(ctx, "cache", err)
			s.writeError(w, r, &sentineldf.Error{Code: sentineldf.EUNAVAILABLE, Message: "idempotency store unavailable; retry later", Err: err})
			return
		}
		if won {
			s.runAndKeep(w, r, p, h, ck, bodyHash)
			return
		}
		b, ok, err := s.cfg.Cache.Get(ctx, ck)
		if err != nil {
			s.dependencyError(ctx, "cache", err)
			s.writeError(w, r, &sentineldf.Error{Code: sentineldf.EUNAVAILABLE, Message: "idempotency store unavailable; retry later", Err: err})
			return
		}
		if ok {
			var rec idemRecord
			if err := json.Unmarshal(b, &rec); err != nil {
				s.writeError(w, r, err)
				return
			}
			if rec.BodySHA256 != bodyHash {
				s.writeError(w, r, sentineldf.Errorf(sentineldf.EIDEMPOTENCY, "this Idempotency-Key was used with another request body"))
				return
			}
			if rec.State == idemDone {
				replay(w, &rec)
				return
			}
		}
		// Pending (or released a moment ago): wait, then look again.
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			w.Header().Set("Retry-After", "1")
			s.writeError(w, r, sentineldf.Errorf(sentineldf.ECONFLICT, "a request with this Idempotency-Key is still in progress; retry later"))
			return
		case <-t.C:
		}
		wait = min(wait*2, idemPollMax)
	}
}

// runAndKeep runs h for the request that claimed the idempotency key ck,
// keeps its response for replay (or releases the key) and sends it.
func (s *Server) runAndKeep(w http.ResponseWriter, r *http.Request, p *principal, h apiFunc, ck, bodyHash string) {
	// Keeping or releasing the key must happen even when the request's
	// context has ended (a timeout is what released keys are for).
	ctx := context.WithoutCancel(r.Context())
	done := false
	defer func() {
		if !done {
			// h panicked: release the key so that a retry can run.
			s.cfg.Cache.Delete(ctx, ck)
		}
	}()
	cw := &captureWriter{header: http.Header{}}
	if err := h(cw, r, p); err != nil {
		s.writeError(cw, r, err)
	}
	done = true
	status := cw.status()
	if status == http.StatusTooManyRequests || status >= 500 || cw.body.Len() > maxReplayBytes {
		if err := s.cfg.Cache.Delete(ctx, ck); err != nil {
			s.dependencyError(ctx, "cache", err)
		}
	} else {
		rec, _ := json.Marshal(idemRecord{
			BodySHA256: bodyHash, State: idemDone, Status: status,
			ContentType: cw.header.Get("Content-Type"), Body: cw.body.Bytes(),
		})
		if err := s.cfg.Cache.Set(ctx, ck, rec, IdempotencyTTL); err != nil {
			s.dependencyError(ctx, "cache", err)
			s.cfg.Cache.Delete(ctx, ck)
		}
	}
	dst := w.Header()
	for k, v := range cw.header {
		dst[k] = v
	}
	w.WriteHeader(status)
	w.Write(cw.body.Bytes())
}

// replay sends a kept response.
func replay(w http.ResponseWriter, rec *idemRecord) {
	h := w.Header()
	if rec.ContentType != "" {
		h.Set("Content-Type", rec.ContentType)
	}
	h.Set("Content-Length", strconv.Itoa(len(rec.Body)))
	h.Set(ReplayedHeader, "true")
	w.WriteHeader(rec.Status)
	w.Write(rec.Body)
}

// captureWriter buffers a response.
type captureWriter struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (c *captureWriter) Header() http.Header { return c.header }

func (c *captureWriter) WriteHeader(code int) {
	if c.code == 0 {
		c.code = code
	}
}

func (c *captureWriter) Write(b []byte) (int, error) {
	if c.code == 0 {
		c.code = http.StatusOK
	}
	return c.body.Write(b)
}

func (c *captureWriter) status() int {
	if c.code == 0 {
		return http.StatusOK
	}
	return c.code
}
