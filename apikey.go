package sentineldf

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"time"
)

// API key scopes.
const (
	ScopeScanWrite = "scan:write"
	ScopeScanRead  = "scan:read"
	ScopeMBOMSign  = "mbom:sign"
	ScopeUsageRead = "usage:read"
	ScopeKeysAdmin = "keys:admin"
	// ScopeAdmin is the operator's scope: it manages orgs and the job
	// queue, and implies every other scope.
	ScopeAdmin = "admin"
)

// DefaultScopes are given to an org's first key and to keys created without
// explicit scopes (all but admin).
var DefaultScopes = []string{ScopeScanWrite, ScopeScanRead, ScopeMBOMSign, ScopeUsageRead, ScopeKeysAdmin}

// AllScopes lists every scope.
var AllScopes = []string{ScopeScanWrite, ScopeScanRead, ScopeMBOMSign, ScopeUsageRead, ScopeKeysAdmin, ScopeAdmin}

// APIKeyPrefix starts every API key.
const APIKeyPrefix = "sdf_live_"

// An API key is APIKeyPrefix + KeyID + "_" + secret. The KeyID is public (it
// is shown in listings and used to find the stored hash); the secret is
// shown once, and only its bcrypt hash is stored.
const (
	keyIDLen  = 16 // base32 characters (80 bits)
	secretLen = 32 // base32 characters (160 bits)
)

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// APIKey is a stored API key: never the secret, only its hash.
type APIKey struct {
	// ID is the public key id, unique across all orgs.
	ID     string   `json:"id"`
	OrgID  string   `json:"org_id"`
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
	// Hash is the bcrypt hash of the whole key. It never leaves the server.
	Hash       []byte     `json:"-"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// HasScope reports whether the key grants scope (admin grants all).
func (k *APIKey) HasScope(scope string) bool {
	return slices.Contains(k.Scopes, scope) || slices.Contains(k.Scopes, ScopeAdmin)
}

// Revoked reports whether the key was revoked.
func (k *APIKey) Revoked() bool { return k.RevokedAt != nil }

// NewAPIKey returns a fresh random key id and the full secret key string.
func NewAPIKey() (id, key string) {
	id = randomToken(keyIDLen)
	return id, APIKeyPrefix + id + "_" + randomToken(secretLen)
}

// ParseAPIKey returns the key id of a well-formed key, or an EUNAUTHORIZED
// error. It does not check the secret.
func ParseAPIKey(key string) (id string, err error) {
	rest, ok := strings.CutPrefix(key, APIKeyPrefix)
	if !ok || len(rest) != keyIDLen+1+secretLen || rest[keyIDLen] != '_' {
		return "", Errorf(EUNAUTHORIZED, "malformed API key")
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if i == keyIDLen {
			continue
		}
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return "", Errorf(EUNAUTHORIZED, "malformed API key")
		}
	}
	return rest[:keyIDLen], nil
}

// KeyDigest is the SHA-256 of a full key, the identity under which a
// verified key is cached (so a cache never holds the key itself).
func KeyDigest(key string) [32]byte { return sha256.Sum256([]byte(key)) }

// ValidateScopes checks that every scope is known and returns them sorted
// and deduplicated; an empty list means DefaultScopes.
func ValidateScopes(scopes []string) ([]string, error) {
	if len(scopes) == 0 {
		return slices.Clone(DefaultScopes), nil
	}
	out := slices.Clone(scopes)
	for _, s := range out {
		if !slices.Contains(AllScopes, s) {
			return nil, FieldError("scopes", "unknown scope %q", s)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// NewID returns a random identifier with a type prefix ("org", "scan"…),
// e.g. "scan_3kq…". IDs are unguessable (100 bits).
func NewID(prefix string) string { return prefix + "_" + randomToken(20) }

func randomToken(n int) string {
	b := make([]byte, (n*5+7)/8)
	rand.Read(b)
	return b32.EncodeToString(b)[:n]
}

// ConstantTimeEqual compares two secrets in time independent of where they
// differ.
func ConstantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// CallbackSecret derives an org's callback signing secret from the server
// secret, so every API and worker process agrees on it without storing it.
func CallbackSecret(serverSecret []byte, orgID string) []byte {
	m := hmac.New(sha256.New, serverSecret)
	m.Write([]byte("sentineldf callback secret\x00" + orgID))
	return m.Sum(nil)
}

// SignCallback returns the SignatureHeader value for body sent at unix time t.
func SignCallback(secret []byte, t int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(t, 10) + "."))
	m.Write(body)
	return "t=" + strconv.FormatInt(t, 10) + ",v1=" + hex.EncodeToString(m.Sum(nil))
}
