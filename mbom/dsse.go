package mbom

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Envelope is a DSSE envelope.
type Envelope struct {
	PayloadType string      `json:"payloadType"`
	Payload     string      `json:"payload"`
	Signatures  []Signature `json:"signatures"`
}

// Signature is one DSSE signature.
type Signature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

// PAE is the DSSE pre-authentication encoding of a payload:
// "DSSEv1" SP len(type) SP type SP len(body) SP body, lengths in ASCII decimal.
func PAE(payloadType string, body []byte) []byte {
	b := make([]byte, 0, 32+len(payloadType)+len(body))
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, ' ')
	return append(b, body...)
}

// KeyID is the DSSE key id of pub: the lowercase hex SHA-256 of its PKIX DER
// encoding.
func KeyID(pub ed25519.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("key id: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// Sign encodes s and signs it with key, returning the DSSE envelope as
// indented JSON with a trailing newline. Ed25519 is deterministic, so the
// same statement and key always give the same bytes.
func Sign(s Statement, key ed25519.PrivateKey) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("sign: bad ed25519 private key length %d", len(key))
	}
	if err := checkStatement(&s); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	payload, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("sign: encode statement: %w", err)
	}
	keyID, err := KeyID(key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	sig := ed25519.Sign(key, PAE(PayloadType, payload))
	env := Envelope{
		PayloadType: PayloadType,
		Payload:     base64.StdEncoding.EncodeToString(payload),
		Signatures:  []Signature{{KeyID: keyID, Sig: base64.StdEncoding.EncodeToString(sig)}},
	}
	out, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("sign: encode envelope: %w", err)
	}
	return append(out, '\n'), nil
}

// decodeBase64 accepts standard or URL-safe base64, padded or not, as DSSE
// verifiers should.
func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("not base64")
}

// parseEnvelope decodes the envelope and its payload, unverified.
func parseEnvelope(envelope []byte) (*Envelope, []byte, error) {
	var env Envelope
	if err := json.Unmarshal(envelope, &env); err != nil {
		return nil, nil, invalidf("envelope is not a DSSE JSON envelope: %v", err)
	}
	if env.PayloadType != PayloadType {
		return nil, nil, invalidf("payload type is %q, want %q", env.PayloadType, PayloadType)
	}
	payload, err := decodeBase64(env.Payload)
	if err != nil {
		return nil, nil, invalidf("payload: %v", err)
	}
	return &env, payload, nil
}

// parseStatement decodes and checks an in-toto statement.
func parseStatement(payload []byte) (*Statement, error) {
	var s Statement
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&s); err != nil {
		return nil, invalidf("statement is not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, invalidf("statement: trailing data after JSON")
	}
	if err := checkStatement(&s); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return &s, nil
}

// checkStatement checks the statement's types and that its subjects and
// predicate agree.
func checkStatement(s *Statement) error {
	if s.Type != StatementType {
		return fmt.Errorf("statement type is %q, want %q", s.Type, StatementType)
	}
	if s.PredicateType != PredicateType {
		return fmt.Errorf("predicate type is %q, want %q", s.PredicateType, PredicateType)
	}
	p := &s.Predicate
	if p.Merkle.Algorithm != MerkleAlgorithm {
		return fmt.Errorf("merkle algorithm is %q, want %q", p.Merkle.Algorithm, MerkleAlgorithm)
	}
	if _, err := parseHash(p.Merkle.Root); err != nil {
		return fmt.Errorf("merkle root: %w", err)
	}
	if p.Merkle.Leaves < 0 || p.Documents < 0 || p.Malformed < 0 {
		return fmt.Errorf("negative count")
	}
	if p.Documents != p.Merkle.Leaves {
		return fmt.Errorf("documents (%d) != merkle leaves (%d)", p.Documents, p.Merkle.Leaves)
	}
	if t := p.Counts.Total(); t != p.Documents {
		return fmt.Errorf("band counts add up to %d, want documents = %d", t, p.Documents)
	}
	if _, err := time.Parse(time.RFC3339, p.Timestamp); err != nil {
		return fmt.Errorf("timestamp %q is not RFC 3339", p.Timestamp)
	}
	if len(s.Subject) != 1+len(p.Inputs) {
		return fmt.Errorf("%d subjects, want results + %d inputs", len(s.Subject), len(p.Inputs))
	}
	want := NewStatement(*p).Subject
	for i, sub := range s.Subject {
		if sub.Name != want[i].Name || len(sub.Digest) != 1 || sub.Digest["sha256"] != want[i].Digest["sha256"] {
			return fmt.Errorf("subject %d (%q) does not match the predicate", i, sub.Name)
		}
	}
	return nil
}

// Decode returns the statement in an envelope WITHOUT checking any
// signature. Use it only to display an MBOM; use Verify to trust one.
func Decode(envelope []byte) (*Statement, error) {
	_, payload, err := parseEnvelope(envelope)
	if err != nil {
		return nil, err
	}
	return parseStatement(payload)
}

// Verify checks that envelope is a DSSE envelope of an MBOM statement signed
// by pub, and returns the statement. A signature counts when its keyid is
// pub's key id (or empty) and it verifies over the PAE of the payload.
// Failures wrap ErrInvalid.
func Verify(envelope []byte, pub ed25519.PublicKey) (*Statement, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("verify: bad ed25519 public key length %d", len(pub))
	}
	keyID, err := KeyID(pub)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	env, payload, err := parseEnvelope(envelope)
	if err != nil {
		return nil, err
	}
	if len(env.Signatures) == 0 {
		return nil, invalidf("envelope has no signatures")
	}
	msg := PAE(env.PayloadType, payload)
	candidates := 0
	ok := false
	for _, s := range env.Signatures {
		if s.KeyID != "" && s.KeyID != keyID {
			continue
		}
		candidates++
		sig, err := decodeBase64(s.Sig)
		if err != nil || len(sig) != ed25519.SignatureSize {
			continue
		}
		if ed25519.Verify(pub, msg, sig) {
			ok = true
			break
		}
	}
	switch {
	case candidates == 0:
		return nil, invalidf("signature: signed by another key (want keyid %s)", keyID)
	case !ok:
		return nil, invalidf("signature: does not verify with key %s (payload or signature altered, or wrong key)", keyID)
	}
	return parseStatement(payload)
}

// parseHash decodes a lowercase hex SHA-256.
func parseHash(s string) ([32]byte, error) {
	var h [32]byte
	if len(s) != 64 {
		return h, fmt.Errorf("%q is not a hex SHA-256", s)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("%q is not a hex SHA-256", s)
	}
	return h, nil
}
