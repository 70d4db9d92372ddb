package api

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"strings"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/mbom"
	"github.com/sentineldf/sentineldf/scan"
)

// MaxApproverLen is the longest approved_by address.
const MaxApproverLen = 254

// maxSummaryBytes caps the summary object read to sign an MBOM.
const maxSummaryBytes = 64 << 20

// sealedKeyVersion prefixes a sealed private key (version, nonce, ciphertext).
const sealedKeyVersion = 1

// signMBOM is POST /v1/mbom: sign a succeeded scan's MBOM with the org's
// key (created on first use), store the envelope next to the results and
// record it.
func (s *Server) signMBOM(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req sentineldf.SignMBOMRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.JobID == "" {
		return sentineldf.FieldError("job_id", "is required")
	}
	if err := validateApprover(req.ApprovedBy); err != nil {
		return err
	}
	ctx := r.Context()
	sc, err := s.cfg.Store.Scan(ctx, p.OrgID, req.JobID)
	if err != nil {
		return fmt.Errorf("read scan: %w", err)
	}
	if sc.State != sentineldf.StateSucceeded {
		return sentineldf.Errorf(sentineldf.ECONFLICT, "scan %s is %s; only a succeeded scan has an MBOM", sc.ID, sc.State)
	}
	sum, err := s.readSummary(ctx, sc)
	if err != nil {
		return err
	}
	sk, priv, err := s.orgSigningKey(ctx, p.OrgID)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	stmt := mbom.NewStatement(sum.Predicate(s.cfg.Version, req.ApprovedBy, mbom.Timestamp(now)))
	env, err := mbom.Sign(stmt, priv)
	if err != nil {
		return fmt.Errorf("sign MBOM: %w", err)
	}
	key := sentineldf.ResultKey(p.OrgID, sc.ID, sentineldf.MBOMObject)
	if err := s.cfg.Blobs.Put(ctx, key, bytes.NewReader(env), int64(len(env))); err != nil {
		return fmt.Errorf("store MBOM: %w", err)
	}
	digest := sha256.Sum256(env)
	rec := &sentineldf.MBOMRecord{
		ID: sentineldf.NewID("mbom"), OrgID: p.OrgID, ScanID: sc.ID, ApprovedBy: req.ApprovedBy,
		KeyID: sk.KeyID, Digest: hex.EncodeToString(digest[:]), ObjectKey: key, CreatedAt: now,
	}
	ev := sentineldf.AuditEvent{
		OrgID: p.OrgID, Action: sentineldf.AuditMBOMSigned, Actor: p.KeyID, Target: sc.ID,
		Details:   map[string]string{"mbom_id": rec.ID, "key_id": sk.KeyID, "digest": rec.Digest, "approved_by": req.ApprovedBy},
		RequestID: infoOf(ctx).id, At: now,
	}
	if err := s.cfg.Store.CreateMBOM(ctx, rec, ev); err != nil {
		return fmt.Errorf("record MBOM: %w", err)
	}
	get, err := s.cfg.Blobs.PresignGet(ctx, key, sentineldf.DefaultPresignTTL)
	if err != nil {
		return fmt.Errorf("presign MBOM: %w", err)
	}
	s.writeJSON(w, r, http.StatusCreated, sentineldf.SignMBOMResponse{MBOM: rec, Envelope: env, URL: get.URL})
	return nil
}

// validateApprover checks approved_by: a bare e-mail address of at most
// MaxApproverLen bytes.
func validateApprover(a string) error {
	if a == "" {
		return sentineldf.FieldError("approved_by", "is required")
	}
	if len(a) > MaxApproverLen {
		return sentineldf.FieldError("approved_by", "must be at most %d bytes", MaxApproverLen)
	}
	addr, err := mail.ParseAddress(a)
	if err != nil || addr.Address != a || addr.Name != "" || !strings.Contains(a[strings.LastIndexByte(a, '@')+1:], ".") {
		return sentineldf.FieldError("approved_by", "must be an e-mail address such as alice@example.com")
	}
	return nil
}

// readSummary reads the summary the worker wrote for a succeeded scan.
func (s *Server) readSummary(ctx context.Context, sc *sentineldf.Scan) (*scan.Summary, error) {
	key := sentineldf.ResultKey(sc.OrgID, sc.ID, sentineldf.SummaryObject)
	rc, err := s.cfg.Blobs.Get(ctx, key)
	if err != nil {
		// A succeeded scan always has a summary: its absence is ours.
		return nil, fmt.Errorf("open summary of scan %s: %w", sc.ID, internal(err))
	}
	defer rc.Close()
	var sum scan.Summary
	if err := json.NewDecoder(io.LimitReader(rc, maxSummaryBytes)).Decode(&sum); err != nil {
		return nil, fmt.Errorf("decode summary of scan %s: %w", sc.ID, err)
	}
	return &sum, nil
}

// internal hides a domain error's code (so that, say, a missing object we
// needed is a 500, not the client's 404) while keeping it as the cause.
func internal(err error) error {
	return errors.New(err.Error())
}

// orgSigningKey returns the org's signing key, creating it on first use.
// Two concurrent first uses agree: the loser of PutSigningKey rereads.
func (s *Server) orgSigningKey(ctx context.Context, orgID string) (*sentineldf.SigningKey, ed25519.PrivateKey, error) {
	sk, err := s.cfg.Store.SigningKey(ctx, orgID)
	if sentineldf.ErrorCode(err) == sentineldf.ENOTFOUND {
		sk, err = s.newSigningKey(ctx, orgID)
		if sentineldf.ErrorCode(err) == sentineldf.ECONFLICT {
			sk, err = s.cfg.Store.SigningKey(ctx, orgID)
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("signing key: %w", internalIfNotFound(err))
	}
	pemBytes, err := s.openKey(orgID, sk.KeyID, sk.PrivatePEM)
	if err != nil {
		return nil, nil, fmt.Errorf("open signing key of org %s: %w", orgID, err)
	}
	priv, err := mbom.LoadPrivateKey(pemBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("load signing key of org %s: %w", orgID, err)
	}
	id, err := mbom.KeyID(priv.Public().(ed25519.PublicKey))
	if err != nil || id != sk.KeyID {
		return nil, nil, fmt.Errorf("signing key of org %s does not match its key id %s", orgID, sk.KeyID)
	}
	return sk, priv, nil
}

func internalIfNotFound(err error) error {
	if sentineldf.ErrorCode(err) == sentineldf.ENOTFOUND {
		return internal(err)
	}
	return err
}

// newSigningKey generates and stores an org's signing key, its private
// half sealed under the server secret.
func (s *Server) newSigningKey(ctx context.Context, orgID string) (*sentineldf.SigningKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	keyID, err := mbom.KeyID(pub)
	if err != nil {
		return nil, fmt.Errorf("signing key id: %w", err)
	}
	pubPEM, err := mbom.MarshalPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	privPEM, err := mbom.MarshalPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	sealed, err := s.sealKey(orgID, keyID, privPEM)
	if err != nil {
		return nil, err
	}
	sk := &sentineldf.SigningKey{OrgID: orgID, KeyID: keyID, PublicPEM: string(pubPEM), PrivatePEM: sealed, CreatedAt: s.now().UTC()}
	if err := s.cfg.Store.PutSigningKey(ctx, sk); err != nil {
		return nil, fmt.Errorf("store signing key: %w", err)
	}
	return sk, nil
}

// keyAEAD returns the AES-256-GCM that seals orgID's signing key, under a
// key derived from the server secret and the org id.
func (s *Server) keyAEAD(orgID string) (cipher.AEAD, error) {
	m := hmac.New(sha256.New, s.signKey)
	m.Write([]byte(orgID))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("signing key cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("signing key cipher: %w", err)
	}
	return aead, nil
}

// keyAAD binds a sealed key to its org and key id, so that it cannot be
// moved to another org's record.
func keyAAD(orgID, keyID string) []byte {
	return []byte("sentineldf signing key\x00" + orgID + "\x00" + keyID)
}

// sealKey encrypts a private key PEM: version byte, nonce, ciphertext.
func (s *Server) sealKey(orgID, keyID string, pemBytes []byte) ([]byte, error) {
	aead, err := s.keyAEAD(orgID)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(pemBytes)+aead.Overhead())
	out[0] = sealedKeyVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("seal signing key: %w", err)
	}
	return aead.Seal(out, out[1:], pemBytes, keyAAD(orgID, keyID)), nil
}

// openKey decrypts a key sealed by sealKey.
func (s *Server) openKey(orgID, keyID string, sealed []byte) ([]byte, error) {
	aead, err := s.keyAEAD(orgID)
	if err != nil {
		return nil, err
	}
	if len(sealed) < 1+aead.NonceSize()+aead.Overhead() || sealed[0] != sealedKeyVersion {
		return nil, errors.New("sealed signing key is malformed")
	}
	nonce, ct := sealed[1:1+aead.NonceSize()], sealed[1+aead.NonceSize():]
	pemBytes, err := aead.Open(nil, nonce, ct, keyAAD(orgID, keyID))
	if err != nil {
		return nil, errors.New("sealed signing key does not open with this server secret")
	}
	return pemBytes, nil
}

// verifyMBOM is POST /v1/mbom/verify. A well-formed envelope that does not
// verify is a 200 with valid=false and the reason; only a body that is not
// an envelope is a 400.
func (s *Server) verifyMBOM(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req sentineldf.VerifyMBOMRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	env := bytes.TrimSpace(req.Envelope)
	if len(env) == 0 || bytes.Equal(env, []byte("null")) {
		return sentineldf.FieldError("envelope", "is required")
	}
	var e mbom.Envelope
	if env[0] != '{' || json.Unmarshal(env, &e) != nil || e.PayloadType == "" || e.Payload == "" {
		return sentineldf.FieldError("envelope", "is not a DSSE envelope (an object with payloadType, payload and signatures)")
	}
	ctx := r.Context()
	var pub ed25519.PublicKey
	if req.PublicKey != "" {
		k, err := mbom.LoadPublicKey([]byte(req.PublicKey))
		if err != nil {
			return sentineldf.FieldError("public_key", "is not an Ed25519 public key in PEM (PKIX)")
		}
		pub = k
	} else {
		sk, err := s.cfg.Store.SigningKey(ctx, p.OrgID)
		if sentineldf.ErrorCode(err) == sentineldf.ENOTFOUND {
			s.writeJSON(w, r, http.StatusOK, sentineldf.VerifyMBOMResponse{Valid: false, Reason: "the org has no signing key yet; pass public_key"})
			return nil
		}
		if err != nil {
			return fmt.Errorf("read signing key: %w", err)
		}
		if pub, err = mbom.LoadPublicKey([]byte(sk.PublicPEM)); err != nil {
			return fmt.Errorf("load org public key: %w", err)
		}
	}
	keyID, err := mbom.KeyID(pub)
	if err != nil {
		return fmt.Errorf("key id: %w", err)
	}
	resp := sentineldf.VerifyMBOMResponse{KeyID: keyID}
	stmt, err := mbom.Verify(env, pub)
	switch {
	case err == nil:
		resp.Valid = true
		resp.ScanID = scanIDOf(stmt, p.OrgID)
	case errors.Is(err, mbom.ErrInvalid):
		resp.Reason = err.Error()
	default:
		return fmt.Errorf("verify MBOM: %w", err)
	}
	s.writeJSON(w, r, http.StatusOK, resp)
	return nil
}

// scanIDOf returns the scan id of a verified statement when its results
// name is an object key of the caller's org ("{org}/{scan}/…"), else "".
func scanIDOf(stmt *mbom.Statement, orgID string) string {
	parts := strings.SplitN(stmt.Predicate.Results.Name, "/", 3)
	if len(parts) == 3 && parts[0] == orgID && strings.HasPrefix(parts[1], "scan_") {
		return parts[1]
	}
	return ""
}

// mbomKeys is GET /v1/mbom/keys: the org's public signing keys.
func (s *Server) mbomKeys(w http.ResponseWriter, r *http.Request, p *principal) error {
	keys := []*sentineldf.SigningKey{}
	sk, err := s.cfg.Store.SigningKey(r.Context(), p.OrgID)
	switch {
	case err == nil:
		keys = append(keys, &sentineldf.SigningKey{OrgID: sk.OrgID, KeyID: sk.KeyID, PublicPEM: sk.PublicPEM, CreatedAt: sk.CreatedAt})
	case sentineldf.ErrorCode(err) != sentineldf.ENOTFOUND:
		return fmt.Errorf("read signing key: %w", err)
	}
	s.writeJSON(w, r, http.StatusOK, sentineldf.MBOMKeysResponse{Keys: keys})
	return nil
}
