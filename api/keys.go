package api

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"

	"github.com/sentineldf/sentineldf"
)

// OperatorOrgName is the name of the operator org EnsureOperator creates.
const OperatorOrgName = "operator"

// operatorPlan is the operator org's plan, when configured.
const operatorPlan = "enterprise"

// actorOf is the audit actor of ctx: the calling key, or "system".
func actorOf(ctx context.Context) string {
	if p, ok := ctx.Value(principalKey{}).(*principal); ok {
		return p.KeyID
	}
	return "system"
}

type principalKey struct{}

// CreateOrg creates an org on plan with its first API key and returns the
// org and the key, which is shown only this once. An operator org's key
// has every scope, admin included; any other org's first key has
// sentineldf.DefaultScopes. It is the admin endpoint's work, and
// `sentineldf admin create-org` calls it directly.
func (s *Server) CreateOrg(ctx context.Context, name, plan string, operator bool) (*sentineldf.Org, string, error) {
	if err := sentineldf.ValidateOrgName(name); err != nil {
		return nil, "", err
	}
	if _, err := s.cfg.Plans.Get(plan); err != nil {
		return nil, "", err
	}
	now := s.now().UTC()
	org := &sentineldf.Org{ID: sentineldf.NewID("org"), Name: name, Plan: plan, CreatedAt: now, Operator: operator}
	scopes := slices.Clone(sentineldf.DefaultScopes)
	if operator {
		scopes = slices.Clone(sentineldf.AllScopes)
	}
	slices.Sort(scopes)
	keyID, secret := sentineldf.NewAPIKey()
	hash, err := s.hashKey(secret)
	if err != nil {
		return nil, "", fmt.Errorf("hash API key: %w", err)
	}
	key := &sentineldf.APIKey{ID: keyID, OrgID: org.ID, Name: "initial", Scopes: scopes, Hash: hash, CreatedAt: now}
	ev := sentineldf.AuditEvent{
		OrgID: org.ID, Action: sentineldf.AuditOrgCreated, Actor: actorOf(ctx), Target: org.ID,
		Details: map[string]string{"name": name, "plan": plan, "key_id": keyID}, At: now,
	}
	if operator {
		ev.Details["operator"] = "true"
	}
	if err := s.cfg.Store.CreateOrg(ctx, org, key, ev); err != nil {
		return nil, "", fmt.Errorf("create org: %w", err)
	}
	return org, secret, nil
}

// EnsureOperator creates the operator org with an admin key on the
// service's first start. It returns the key and created=true when it made
// the org, and "", false when the org exists (also when another process
// created it concurrently).
func (s *Server) EnsureOperator(ctx context.Context) (key string, created bool, err error) {
	_, err = s.cfg.Store.OperatorOrg(ctx)
	if err == nil {
		return "", false, nil
	}
	if sentineldf.ErrorCode(err) != sentineldf.ENOTFOUND {
		return "", false, fmt.Errorf("find operator org: %w", err)
	}
	plan := operatorPlan
	if _, ok := s.cfg.Plans[plan]; !ok {
		return "", false, fmt.Errorf("operator org: plan %q is not configured", plan)
	}
	_, key, err = s.CreateOrg(ctx, OperatorOrgName, plan, true)
	if err != nil {
		if sentineldf.ErrorCode(err) == sentineldf.ECONFLICT {
			return "", false, nil
		}
		return "", false, err
	}
	return key, true, nil
}

// createOrg is POST /v1/admin/orgs.
func (s *Server) createOrg(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req sentineldf.CreateOrgRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Plan == "" {
		req.Plan = "free"
	}
	org, key, err := s.CreateOrg(withPrincipal(r.Context(), p), req.Name, req.Plan, false)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusCreated, sentineldf.CreateOrgResponse{Org: org, APIKey: key})
	return nil
}

// withPrincipal returns ctx carrying the caller (for audit actors).
func withPrincipal(ctx context.Context, p *principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// createKey is POST /v1/auth/keys. A key's scopes are a subset of the
// caller's; only an admin key can create an admin key.
func (s *Server) createKey(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req sentineldf.CreateKeyRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Name == "" {
		req.Name = "key"
	}
	if err := validateKeyName(req.Name); err != nil {
		return err
	}
	scopes, err := sentineldf.ValidateScopes(req.Scopes)
	if err != nil {
		return err
	}
	for _, sc := range scopes {
		if !p.has(sc) {
			return sentineldf.Errorf(sentineldf.EFORBIDDEN, "a key cannot grant the %q scope its creator lacks", sc)
		}
	}
	ctx := r.Context()
	now := s.now().UTC()
	keyID, secret := sentineldf.NewAPIKey()
	hash, err := s.hashKey(secret)
	if err != nil {
		return fmt.Errorf("hash API key: %w", err)
	}
	key := &sentineldf.APIKey{ID: keyID, OrgID: p.OrgID, Name: req.Name, Scopes: scopes, Hash: hash, CreatedAt: now}
	ev := sentineldf.AuditEvent{
		OrgID: p.OrgID, Action: sentineldf.AuditKeyCreated, Actor: p.KeyID, Target: keyID,
		Details: map[string]string{"name": req.Name}, RequestID: infoOf(ctx).id, At: now,
	}
	if err := s.cfg.Store.CreateAPIKey(ctx, key, ev); err != nil {
		return fmt.Errorf("create API key: %w", err)
	}
	s.writeJSON(w, r, http.StatusCreated, sentineldf.CreateKeyResponse{Key: key, APIKey: secret})
	return nil
}

// validateKeyName checks a key's name: 1–100 bytes, no control characters.
func validateKeyName(name string) error {
	if err := sentineldf.ValidateOrgName(name); err != nil {
		return sentineldf.FieldError("name", "must be 1 to 100 bytes without control characters")
	}
	return nil
}

// listKeys is GET /v1/auth/keys.
func (s *Server) listKeys(w http.ResponseWriter, r *http.Request, p *principal) error {
	keys, err := s.cfg.Store.APIKeys(r.Context(), p.OrgID)
	if err != nil {
		return fmt.Errorf("list API keys: %w", err)
	}
	if keys == nil {
		keys = []*sentineldf.APIKey{}
	}
	s.writeJSON(w, r, http.StatusOK, sentineldf.KeysResponse{Keys: keys})
	return nil
}

// revokeKey is DELETE /v1/auth/keys/{id}. The key stops working at once:
// its cached verification is replaced by a tombstone.
func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	id := r.PathValue("id")
	ev := sentineldf.AuditEvent{
		OrgID: p.OrgID, Action: sentineldf.AuditKeyRevoked, Actor: p.KeyID, Target: id,
		RequestID: infoOf(ctx).id, At: s.now().UTC(),
	}
	key, err := s.cfg.Store.RevokeAPIKey(ctx, p.OrgID, id, ev)
	if err != nil {
		return fmt.Errorf("revoke API key: %w", err)
	}
	if err := s.forgetKey(ctx, id); err != nil {
		// The key is revoked in the store; a cached verification may
		// still admit it until it expires. Say so rather than pretend.
		return &sentineldf.Error{Code: sentineldf.EUNAVAILABLE, Message: "the key is revoked, but the key cache could not be updated; it may be accepted for up to " + s.cfg.KeyCacheTTL.String(), Err: err}
	}
	s.writeJSON(w, r, http.StatusOK, struct {
		Key *sentineldf.APIKey `json:"key"`
	}{key})
	return nil
}

// whoAmI is GET /v1/auth/whoami.
func (s *Server) whoAmI(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	org, err := s.cfg.Store.Org(ctx, p.OrgID)
	if err != nil {
		return fmt.Errorf("read org: %w", err)
	}
	key, err := s.cfg.Store.LookupAPIKey(ctx, p.KeyID)
	if err != nil {
		return fmt.Errorf("read API key: %w", err)
	}
	if key.OrgID != p.OrgID {
		return sentineldf.NotFound("key")
	}
	s.writeJSON(w, r, http.StatusOK, sentineldf.WhoAmIResponse{Org: org, Key: key})
	return nil
}

// CallbackSecretResponse is GET /v1/auth/callback-secret: the hex key of
// the HMAC-SHA256 that signs the org's callbacks.
type CallbackSecretResponse struct {
	Secret string `json:"secret"`
}

// callbackSecret is GET /v1/auth/callback-secret.
func (s *Server) callbackSecret(w http.ResponseWriter, r *http.Request, p *principal) error {
	secret := sentineldf.CallbackSecret(s.cfg.Secret, p.OrgID)
	s.writeJSON(w, r, http.StatusOK, CallbackSecretResponse{Secret: hex.EncodeToString(secret)})
	return nil
}
