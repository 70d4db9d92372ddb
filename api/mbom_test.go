package api

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/mbom"
	"github.com/sentineldf/sentineldf/scan"
)

// succeededScan stores a succeeded scan of org with the summary a worker
// would have written, and returns its id.
func (e *env) succeededScan(org *sentineldf.Org, key string) string {
	e.t.Helper()
	id := e.newScan(key, "data.jsonl")
	e.blobs.put(sentineldf.InputKey(org.ID, id, 0, "data.jsonl"), make([]byte, 10))
	wantStatus(e.t, e.do(req{method: "POST", path: "/v1/scan/async/confirm?job_id=" + id, key: key}), 202)
	e.store.FinishScan(e.t.Context(), org.ID, id, sentineldf.StateSucceeded, sentineldf.Counts{Clean: 1}, "")

	var tree mbom.Tree
	tree.Add(mbom.Leaf{ID: "1", SHA256: strings.Repeat("a", 64), Band: "clean", Risk: 0})
	eng, _ := testEngine()
	sum := scan.Summary{
		Documents: 1, Bytes: 10, Files: 1,
		Inputs:  []scan.Input{{Name: "data.jsonl", Format: "jsonl", Size: 10, SHA256: strings.Repeat("b", 64)}},
		Bands:   mbom.Counts{Clean: 1},
		Engine:  eng.Info(),
		Results: mbom.Results{Name: sentineldf.ResultKey(org.ID, id, sentineldf.ResultsObject), SHA256: strings.Repeat("c", 64)},
		Merkle:  mbom.Merkle{Algorithm: mbom.MerkleAlgorithm, Root: tree.RootHex(), Leaves: 1},
	}
	b, err := json.Marshal(&sum)
	if err != nil {
		e.t.Fatal(err)
	}
	e.blobs.put(sentineldf.ResultKey(org.ID, id, sentineldf.SummaryObject), b)
	return id
}

func TestSignAndVerifyMBOM(t *testing.T) {
	e := newEnv(t)
	org, key := e.org("acme", "pro")
	id := e.succeededScan(org, key)

	w := e.do(req{method: "POST", path: "/v1/mbom", key: key, body: sentineldf.SignMBOMRequest{JobID: id, ApprovedBy: "alice@example.com"}})
	wantStatus(t, w, 201)
	signed := decode[sentineldf.SignMBOMResponse](t, w)
	rec := signed.MBOM
	if rec.ScanID != id || rec.ApprovedBy != "alice@example.com" || rec.KeyID == "" || signed.URL == "" {
		t.Errorf("record = %+v url %q", rec, signed.URL)
	}
	e.blobs.mu.Lock()
	obj := e.blobs.objects[sentineldf.ResultKey(org.ID, id, sentineldf.MBOMObject)]
	e.blobs.mu.Unlock()
	if sum := sha256.Sum256(obj); hex.EncodeToString(sum[:]) != rec.Digest {
		t.Errorf("digest %s does not match the stored envelope", rec.Digest)
	}

	// The org's key: one, public only, its private half sealed at rest.
	w = e.do(req{method: "GET", path: "/v1/mbom/keys", key: key})
	wantStatus(t, w, 200)
	keys := decode[sentineldf.MBOMKeysResponse](t, w).Keys
	if len(keys) != 1 || keys[0].KeyID != rec.KeyID || !strings.Contains(keys[0].PublicPEM, "PUBLIC KEY") {
		t.Fatalf("keys = %+v", keys)
	}
	if strings.Contains(w.Body.String(), "PRIVATE") {
		t.Error("private key in response")
	}
	e.store.mu.Lock()
	sk := e.store.signing[org.ID]
	e.store.mu.Unlock()
	if bytes.Contains(sk.PrivatePEM, []byte("PRIVATE KEY")) {
		t.Error("private key stored in the clear")
	}
	pub, err := mbom.LoadPublicKey([]byte(keys[0].PublicPEM))
	if err != nil {
		t.Fatal(err)
	}
	stmt, err := mbom.Verify(signed.Envelope, pub)
	if err != nil {
		t.Fatalf("envelope does not verify offline: %v", err)
	}
	if stmt.Predicate.Approver != "alice@example.com" || stmt.Predicate.Scanner.Version != "test" {
		t.Errorf("predicate = %+v", stmt.Predicate)
	}

	// Status now links the MBOM.
	w = e.do(req{method: "GET", path: "/v1/scan/status?job_id=" + id, key: key})
	if st := decode[sentineldf.ScanStatus](t, w); st.Results == nil || !strings.Contains(st.Results.MBOMURL, sentineldf.MBOMObject) {
		t.Errorf("status results = %+v", st.Results)
	}
	// Signing again reuses the key.
	w = e.do(req{method: "POST", path: "/v1/mbom", key: key, body: sentineldf.SignMBOMRequest{JobID: id, ApprovedBy: "bob@example.com"}})
	wantStatus(t, w, 201)
	if k := decode[sentineldf.SignMBOMResponse](t, w).MBOM.KeyID; k != rec.KeyID {
		t.Errorf("second signature by key %s, want %s", k, rec.KeyID)
	}

	verify := func(body any) sentineldf.VerifyMBOMResponse {
		w := e.do(req{method: "POST", path: "/v1/mbom/verify", key: key, body: body})
		wantStatus(t, w, 200)
		return decode[sentineldf.VerifyMBOMResponse](t, w)
	}
	if v := verify(sentineldf.VerifyMBOMRequest{Envelope: signed.Envelope}); !v.Valid || v.KeyID != rec.KeyID || v.ScanID != id {
		t.Errorf("verify = %+v", v)
	}
	if v := verify(sentineldf.VerifyMBOMRequest{Envelope: signed.Envelope, PublicKey: keys[0].PublicPEM}); !v.Valid {
		t.Errorf("verify with explicit key = %+v", v)
	}
	// Tampered payload: 200, valid=false, with a reason.
	var env mbom.Envelope
	json.Unmarshal(signed.Envelope, &env)
	payload, _ := base64.StdEncoding.DecodeString(env.Payload)
	env.Payload = base64.StdEncoding.EncodeToString(bytes.Replace(payload, []byte("alice"), []byte("mallory"), 1))
	tampered, _ := json.Marshal(env)
	if v := verify(sentineldf.VerifyMBOMRequest{Envelope: tampered}); v.Valid || v.Reason == "" {
		t.Errorf("tampered verify = %+v", v)
	}
	// Another key: valid=false.
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	otherPEM, _ := mbom.MarshalPublicKey(otherPub)
	if v := verify(sentineldf.VerifyMBOMRequest{Envelope: signed.Envelope, PublicKey: string(otherPEM)}); v.Valid || v.Reason == "" {
		t.Errorf("wrong-key verify = %+v", v)
	}
	// Not an envelope: 400.
	for _, body := range []string{`{"envelope": "nope"}`, `{"envelope": {"a": 1}}`, `{}`, `{"envelope": {"payloadType":"x","payload":"eA=="}, "public_key": "junk"}`} {
		w := e.do(req{method: "POST", path: "/v1/mbom/verify", key: key, body: body})
		wantProblem(t, w, 400, sentineldf.EINVALID, "", "")
	}

	acts := strings.Join(e.store.auditActions(), ",")
	if strings.Count(acts, sentineldf.AuditMBOMSigned) != 2 {
		t.Errorf("audit = %s", acts)
	}
}

func TestSignMBOMRefusals(t *testing.T) {
	e := newEnv(t)
	_, key := e.org("acme", "pro")
	pending := e.newScan(key, "a")
	tests := []struct {
		name   string
		body   sentineldf.SignMBOMRequest
		status int
		code   string
		field  string
	}{
		{"not succeeded", sentineldf.SignMBOMRequest{JobID: pending, ApprovedBy: "a@example.com"}, 409, sentineldf.ECONFLICT, ""},
		{"missing scan", sentineldf.SignMBOMRequest{JobID: "scan_nope", ApprovedBy: "a@example.com"}, 404, sentineldf.ENOTFOUND, ""},
		{"no job", sentineldf.SignMBOMRequest{ApprovedBy: "a@example.com"}, 400, sentineldf.EINVALID, "job_id"},
		{"no approver", sentineldf.SignMBOMRequest{JobID: pending}, 400, sentineldf.EINVALID, "approved_by"},
		{"not an address", sentineldf.SignMBOMRequest{JobID: pending, ApprovedBy: "alice"}, 400, sentineldf.EINVALID, "approved_by"},
		{"display name", sentineldf.SignMBOMRequest{JobID: pending, ApprovedBy: "Alice <a@example.com>"}, 400, sentineldf.EINVALID, "approved_by"},
		{"too long", sentineldf.SignMBOMRequest{JobID: pending, ApprovedBy: strings.Repeat("a", 250) + "@example.com"}, 400, sentineldf.EINVALID, "approved_by"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantProblem(t, e.do(req{method: "POST", path: "/v1/mbom", key: key, body: tt.body}), tt.status, tt.code, tt.field, "")
		})
	}
}

func TestSigningKeyConcurrentFirstUse(t *testing.T) {
	e := newEnv(t)
	org, _ := e.org("acme", "pro")
	var wg sync.WaitGroup
	ids := make([]string, 4)
	for i := range ids {
		wg.Go(func() {
			sk, _, err := e.srv.orgSigningKey(t.Context(), org.ID)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = sk.KeyID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Errorf("key ids %v disagree", ids)
		}
	}
}

func TestSealedKeyBoundToOrgAndSecret(t *testing.T) {
	e := newEnv(t)
	sealed, err := e.srv.sealKey("org_a", "kid", []byte("pem"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := e.srv.openKey("org_a", "kid", sealed); err != nil || string(got) != "pem" {
		t.Fatalf("open = %q, %v", got, err)
	}
	if _, err := e.srv.openKey("org_b", "kid", sealed); err == nil {
		t.Error("a key sealed for org_a opened as org_b's")
	}
	if _, err := e.srv.openKey("org_a", "other", sealed); err == nil {
		t.Error("a key opened under another key id")
	}
	other := newEnv(t, func(c *Config) { c.Secret = []byte("another secret, 32 bytes long!!!") })
	if _, err := other.srv.openKey("org_a", "kid", sealed); err == nil {
		t.Error("a key opened under another server secret")
	}
}
