package api

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/telemetry"
)

// touchInterval is how often a key's last-used time is written at most.
const touchInterval = time.Minute

// touchTimeout bounds one last-used update.
const touchTimeout = 5 * time.Second

// principal is the authenticated caller: an API key of an org.
type principal struct {
	KeyID  string
	OrgID  string
	Scopes []string
	Plan   string
}

// has reports whether the key grants scope (admin grants every scope).
func (p *principal) has(scope string) bool {
	return slices.Contains(p.Scopes, scope) || slices.Contains(p.Scopes, sentineldf.ScopeAdmin)
}

// apiFunc is an authenticated handler. It writes its success response
// itself and returns errors, which become problems.
type apiFunc func(w http.ResponseWriter, r *http.Request, p *principal) error

// cachedKey is the cache entry of a verified key under "apikey:{id}", or
// a revocation tombstone. It never holds the key, only its SHA-256.
type cachedKey struct {
	Digest  string   `json:"digest,omitempty"`
	OrgID   string   `json:"org_id,omitempty"`
	Scopes  []string `json:"scopes,omitempty"`
	Plan    string   `json:"plan,omitempty"`
	Revoked bool     `json:"revoked,omitempty"`
}

func keyCacheKey(keyID string) string   { return "apikey:" + keyID }
func touchCacheKey(keyID string) string { return "apikey:" + keyID + ":touched" }

// auth authenticates a request, applies the rate limits, checks that the
// key has scope ("" for any valid key) and runs h, through the
// idempotency layer for POSTs.
func (s *Server) auth(scope string, h apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		ctx := telemetry.WithOrgID(r.Context(), p.OrgID)
		infoOf(ctx).orgID = p.OrgID
		r = r.WithContext(ctx)
		if err := s.rateLimit(w, r, p); err != nil {
			s.writeError(w, r, err)
			return
		}
		if scope != "" && !p.has(scope) {
			s.writeError(w, r, sentineldf.Errorf(sentineldf.EFORBIDDEN, "this API key lacks the %q scope", scope))
			return
		}
		if r.Method == http.MethodPost {
			s.idempotent(w, r, p, h)
			return
		}
		if err := h(w, r, p); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// presentedKey returns the API key of a request: "Authorization: Bearer
// KEY", or the X-API-Key header.
func presentedKey(r *http.Request) (string, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, key, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(key) == "" {
			return "", sentineldf.Errorf(sentineldf.EUNAUTHORIZED, "the Authorization header must be \"Bearer <API key>\"")
		}
		return strings.TrimSpace(key), nil
	}
	if key := r.Header.Get("X-API-Key"); key != "" {
		return strings.TrimSpace(key), nil
	}
	return "", sentineldf.Errorf(sentineldf.EUNAUTHORIZED, "missing API key: send \"Authorization: Bearer <API key>\"")
}

// authenticate verifies the request's API key: from the cache when a
// verified key is cached under its id (comparing SHA-256 digests in
// constant time), otherwise against the stored bcrypt hash, then caching
// it. Every failure is the same 401, whatever was wrong.
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	key, err := presentedKey(r)
	if err != nil {
		return nil, err
	}
	id, err := sentineldf.ParseAPIKey(key)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	digest := sentineldf.KeyDigest(key)
	unauthorized := sentineldf.Errorf(sentineldf.EUNAUTHORIZED, "invalid or revoked API key")

	b, ok, err := s.cfg.Cache.Get(ctx, keyCacheKey(id))
	if err != nil {
		s.dependencyError(ctx, "cache", err)
		ok = false
	}
	if ok {
		var c cachedKey
		if json.Unmarshal(b, &c) == nil {
			if c.Revoked {
				return nil, unauthorized
			}
			want, derr := hex.DecodeString(c.Digest)
			if derr == nil && len(want) == len(digest) {
				// Only the one verified key is cached under its id, so a
				// digest mismatch is a wrong secret: no bcrypt needed.
				if subtle.ConstantTimeCompare(want, digest[:]) != 1 {
					return nil, unauthorized
				}
				p := &principal{KeyID: id, OrgID: c.OrgID, Scopes: c.Scopes, Plan: c.Plan}
				s.touch(ctx, p)
				return p, nil
			}
		}
		// A damaged entry: verify against the store.
	}

	p, err := s.verifying.do(digest, func() (*principal, error) {
		return s.verify(ctx, id, key, digest)
	})
	if err != nil {
		if sentineldf.ErrorCode(err) == sentineldf.EUNAUTHORIZED {
			return nil, unauthorized
		}
		return nil, err
	}
	s.touch(ctx, p)
	return p, nil
}

// verify checks a key against the store and its bcrypt hash and caches
// the verification.
func (s *Server) verify(ctx context.Context, id, key string, digest [32]byte) (*principal, error) {
	unauthorized := sentineldf.Errorf(sentineldf.EUNAUTHORIZED, "invalid or revoked API key")
	k, err := s.cfg.Store.LookupAPIKey(ctx, id)
	if err != nil {
		if sentineldf.ErrorCode(err) == sentineldf.ENOTFOUND {
			return nil, unauthorized
		}
		return nil, err
	}
	if k.Revoked() || k.ID != id {
		return nil, unauthorized
	}
	// A key's hash never changes, so once this process has checked a
	// presented key against it, the key's digest is remembered and later
	// verifications (each time the shared cache entry expires) cost a store
	// lookup, which still sees revocations, instead of bcrypt.
	if d, ok := s.bcryptOK.Load(id); !ok || subtle.ConstantTimeCompare(d.([]byte), digest[:]) != 1 {
		if bcrypt.CompareHashAndPassword(k.Hash, []byte(key)) != nil {
			return nil, unauthorized
		}
		s.rememberVerified(id, digest)
	}
	org, err := s.cfg.Store.Org(ctx, k.OrgID)
	if err != nil {
		return nil, err
	}
	p := &principal{KeyID: id, OrgID: k.OrgID, Scopes: slices.Clone(k.Scopes), Plan: org.Plan}
	entry, _ := json.Marshal(cachedKey{Digest: hex.EncodeToString(digest[:]), OrgID: p.OrgID, Scopes: p.Scopes, Plan: p.Plan})
	// SetNX, not Set: a revocation tombstone written since the lookup
	// above must win over this (then stale) verification.
	if _, err := s.cfg.Cache.SetNX(ctx, keyCacheKey(id), entry, s.cfg.KeyCacheTTL); err != nil {
		s.dependencyError(ctx, "cache", err)
	}
	return p, nil
}

// flight runs one call per key at a time; concurrent callers with the same
// key share its result (a minimal singleflight).
type flight[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*flightCall[V]
}

type flightCall[V any] struct {
	done chan struct{}
	v    V
	err  error
}

// do runs fn for key unless a call for key is running, in which case it
// waits for that call and returns its result.
func (f *flight[K, V]) do(key K, fn func() (V, error)) (V, error) {
	f.mu.Lock()
	if c, ok := f.calls[key]; ok {
		f.mu.Unlock()
		<-c.done
		return c.v, c.err
	}
	if f.calls == nil {
		f.calls = make(map[K]*flightCall[V])
	}
	c := &flightCall[V]{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.calls, key)
		f.mu.Unlock()
		close(c.done)
	}()
	c.v, c.err = fn()
	return c.v, c.err
}

// forgetKey makes a revoked key fail at once. It overwrites the key's
// cache entry with a tombstone rather than deleting it, so that a request
// verified against the store just before the revocation cannot cache the
// key again afterwards (caching uses SetNX); the tombstone outlives such
// a verification.
func (s *Server) forgetKey(ctx context.Context, keyID string) error {
	tomb, _ := json.Marshal(cachedKey{Revoked: true})
	if err := s.cfg.Cache.Set(ctx, keyCacheKey(keyID), tomb, 2*s.cfg.KeyCacheTTL); err != nil {
		// Fall back to a delete; if that fails too the revocation takes
		// effect when the entry expires, so report it.
		if derr := s.cfg.Cache.Delete(ctx, keyCacheKey(keyID)); derr != nil {
			return errors.Join(err, derr)
		}
	}
	return nil
}

// touch records the key's last use at most once per touchInterval, in the
// background: its errors are logged, never returned.
func (s *Server) touch(ctx context.Context, p *principal) {
	// A process-local note spares the shared cache a round trip on most
	// requests; the SetNX marker below elects one writer across processes.
	now := time.Now()
	if last, ok := s.touched.Load(p.KeyID); ok && now.Sub(last.(time.Time)) < touchInterval {
		return
	}
	s.touched.Store(p.KeyID, now)
	won, err := s.cfg.Cache.SetNX(ctx, touchCacheKey(p.KeyID), []byte{'1'}, touchInterval)
	if err != nil {
		s.dependencyError(ctx, "cache", err)
		return
	}
	if !won {
		return
	}
	at := s.now()
	bctx := context.WithoutCancel(ctx)
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		tctx, cancel := context.WithTimeout(bctx, touchTimeout)
		defer cancel()
		if err := s.cfg.Store.TouchAPIKey(tctx, p.OrgID, p.KeyID, at); err != nil {
			s.log.WarnContext(tctx, "update key last-used time", "key_id", p.KeyID, "error", err.Error())
		}
	}()
}

// dependencyError counts a survived failure of an optional dependency
// and logs it.
func (s *Server) dependencyError(ctx context.Context, dep string, err error) {
	s.metrics.DependencyErrors.WithLabelValues(dep).Inc()
	s.log.WarnContext(ctx, "dependency failed", "dependency", dep, "error", err.Error())
}

// hashKey returns the bcrypt hash of a new API key.
func (s *Server) hashKey(key string) ([]byte, error) {
	return bcrypt.GenerateFromPassword([]byte(key), s.cfg.BcryptCost)
}

// maxRemembered bounds the digests remembered by rememberVerified.
const maxRemembered = 100_000

// rememberVerified notes that the key with id and digest passed bcrypt.
func (s *Server) rememberVerified(id string, digest [32]byte) {
	if s.bcryptN.Add(1) > maxRemembered {
		s.bcryptOK.Clear()
		s.bcryptN.Store(1)
	}
	s.bcryptOK.Store(id, append([]byte(nil), digest[:]...))
}
