package mbom

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// testKey is a fixed key so that tests are deterministic.
func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

// statementFor builds the statement a scan of inputs producing results would
// sign.
func statementFor(t testing.TB, results []byte, inputs []Input) *Statement {
	t.Helper()
	sum, err := SummarizeResults(bytes.NewReader(results))
	if err != nil {
		t.Fatal(err)
	}
	s := NewStatement(Predicate{
		Scanner: Scanner{Version: "1.2.3"},
		Engine: Engine{
			Engine: "0.1.0", RulesetVersion: "2025.1", RulesetDigest: "sha256:aa", ConfigDigest: "sha256:bb",
			Detectors: []string{"injection", "unicode"},
			Models:    []Model{{Name: "tiny", Digest: "sha256:cc"}},
		},
		Thresholds: Thresholds{Elevated: 50, Quarantine: 70},
		Inputs:     inputs,
		Documents:  sum.Leaves,
		Malformed:  1,
		Merkle:     Merkle{Root: sum.Root, Leaves: sum.Leaves},
		Counts:     sum.Counts,
		Results:    Results{Name: "out/results.jsonl", SHA256: sum.SHA256},
		Approver:   "alice@example.com",
		Timestamp:  "2025-01-02T03:04:05Z",
	})
	return &s
}

func sampleResults(t testing.TB) []byte {
	leaves := []Leaf{
		{ID: "a", SHA256: strings.Repeat("1", 64), Band: BandClean, Risk: 0},
		{ID: "b\nwith newline", SHA256: strings.Repeat("2", 64), Band: BandQuarantine, Risk: 95},
		{ID: "ç ü 😀", SHA256: strings.Repeat("3", 64), Band: BandElevated, Risk: 55},
		{ID: "d", SHA256: strings.Repeat("4", 64), Band: BandClean, Risk: 10},
		{ID: "e", SHA256: strings.Repeat("5", 64), Band: BandClean, Risk: 49},
	}
	return resultsJSONL(t, leaves)
}

func TestSignVerifyRoundTrip(t *testing.T) {
	key := testKey(1)
	s := statementFor(t, sampleResults(t), []Input{{Name: "data/train.jsonl", Size: 10, SHA256: strings.Repeat("f", 64)}})
	env, err := Sign(*s, key)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(env, []byte("}\n")) {
		t.Errorf("envelope does not end with a newline")
	}
	env2, err := Sign(*s, key)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(env, env2) {
		t.Error("signing the same statement twice gave different bytes")
	}
	got, err := Verify(env, key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("statement round trip:\n got %+v\nwant %+v", got, s)
	}
	if got.Subject[0].Name != "out/results.jsonl" || got.Subject[1].Name != "data/train.jsonl" {
		t.Errorf("subjects = %+v", got.Subject)
	}
	dec, err := Decode(env)
	if err != nil || !reflect.DeepEqual(dec, s) {
		t.Fatalf("Decode = %+v, %v", dec, err)
	}

	var raw map[string]any
	if err := json.Unmarshal(env, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["payloadType"] != PayloadType {
		t.Errorf("payloadType = %v", raw["payloadType"])
	}
	kid, _ := KeyID(key.Public().(ed25519.PublicKey))
	sigs := raw["signatures"].([]any)
	if len(sigs) != 1 || sigs[0].(map[string]any)["keyid"] != kid {
		t.Errorf("signatures = %v, want keyid %s", sigs, kid)
	}
}

func TestPAE(t *testing.T) {
	// Example from the DSSE specification.
	got := string(PAE("http://example.com/HelloWorld", []byte("hello world")))
	want := "DSSEv1 29 http://example.com/HelloWorld 11 hello world"
	if got != want {
		t.Fatalf("PAE = %q, want %q", got, want)
	}
}

// editEnvelope decodes env, lets f change it, and re-encodes it.
func editEnvelope(t *testing.T, env []byte, f func(e *Envelope)) []byte {
	t.Helper()
	var e Envelope
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	f(&e)
	out, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func flipBase64(t *testing.T, s string, i int) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	b[i%len(b)] ^= 0x01
	return base64.StdEncoding.EncodeToString(b)
}

func TestVerifyRejects(t *testing.T) {
	key := testKey(1)
	pub := key.Public().(ed25519.PublicKey)
	s := statementFor(t, sampleResults(t), nil)
	env, err := Sign(*s, key)
	if err != nil {
		t.Fatal(err)
	}
	// A statement that fails checkStatement, validly signed.
	resign := func(mutate func(st *Statement)) []byte {
		st := *s
		st.Subject = append([]Subject(nil), s.Subject...)
		mutate(&st)
		payload, _ := json.Marshal(st)
		sig := ed25519.Sign(key, PAE(PayloadType, payload))
		kid, _ := KeyID(pub)
		out, _ := json.Marshal(Envelope{PayloadType: PayloadType, Payload: base64.StdEncoding.EncodeToString(payload),
			Signatures: []Signature{{KeyID: kid, Sig: base64.StdEncoding.EncodeToString(sig)}}})
		return out
	}
	tests := []struct {
		name string
		env  []byte
		pub  ed25519.PublicKey
		want string
	}{
		{"payload byte flipped", editEnvelope(t, env, func(e *Envelope) { e.Payload = flipBase64(t, e.Payload, 100) }), pub, "does not verify"},
		{"signature byte flipped", editEnvelope(t, env, func(e *Envelope) { e.Signatures[0].Sig = flipBase64(t, e.Signatures[0].Sig, 7) }), pub, "does not verify"},
		{"wrong key", env, testKey(2).Public().(ed25519.PublicKey), "signed by another key"},
		{"wrong key, keyid removed", editEnvelope(t, env, func(e *Envelope) { e.Signatures[0].KeyID = "" }), testKey(2).Public().(ed25519.PublicKey), "does not verify"},
		{"payload type", editEnvelope(t, env, func(e *Envelope) { e.PayloadType = "text/plain" }), pub, "payload type"},
		{"no signatures", editEnvelope(t, env, func(e *Envelope) { e.Signatures = nil }), pub, "no signatures"},
		{"not base64", editEnvelope(t, env, func(e *Envelope) { e.Payload = "!!!" }), pub, "not base64"},
		{"not json", []byte("hello"), pub, "not a DSSE"},
		{"statement type", resign(func(st *Statement) { st.Type = "https://in-toto.io/Statement/v0.1" }), pub, "statement type"},
		{"predicate type", resign(func(st *Statement) { st.PredicateType = "x" }), pub, "predicate type"},
		{"subject mismatch", resign(func(st *Statement) { st.Subject[0] = Subject{Name: "other", Digest: map[string]string{"sha256": "00"}} }), pub, "subject 0"},
		{"counts mismatch", resign(func(st *Statement) { st.Predicate.Counts.Clean++ }), pub, "band counts"},
		{"bad timestamp", resign(func(st *Statement) { st.Predicate.Timestamp = "yesterday" }), pub, "timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(tt.env, tt.pub)
			if err == nil {
				t.Fatal("verified")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestVerifyAcceptsOneGoodSignatureAmongOthers(t *testing.T) {
	s := statementFor(t, sampleResults(t), nil)
	env, err := Sign(*s, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := Sign(*s, testKey(2))
	var o Envelope
	json.Unmarshal(other, &o)
	env = editEnvelope(t, env, func(e *Envelope) { e.Signatures = append(o.Signatures, e.Signatures...) })
	for _, seed := range []byte{1, 2} {
		if _, err := Verify(env, testKey(seed).Public().(ed25519.PublicKey)); err != nil {
			t.Errorf("key %d: %v", seed, err)
		}
	}
	if _, err := Verify(env, testKey(3).Public().(ed25519.PublicKey)); err == nil {
		t.Error("key 3 verified")
	}
}

func TestVerifyResults(t *testing.T) {
	data := sampleResults(t)
	s := statementFor(t, data, nil)
	if err := VerifyResults(s, bytes.NewReader(data)); err != nil {
		t.Fatalf("untouched results: %v", err)
	}
	tests := []struct {
		name string
		data []byte
		want []string
	}{
		{"risk changed", bytes.Replace(data, []byte(`"risk":95`), []byte(`"risk":15`), 1), []string{"sha256", "merkle root"}},
		{"band changed", bytes.Replace(data, []byte(`"band":"quarantine"`), []byte(`"band":"clean"     `), 1), []string{"sha256", "merkle root", "band counts"}},
		{"evidence changed only", bytes.Replace(data, []byte("ignore"), []byte("IGNORE"), 1), []string{"sha256"}},
		{"line dropped", data[bytes.IndexByte(data, '\n')+1:], []string{"4 results, signed 5"}},
		{"lines swapped", swapFirstLines(data), []string{"merkle root"}},
		{"malformed line", append(append([]byte{}, data...), "{not json\n"...), []string{"line 6"}},
		{"missing field", append(append([]byte{}, data...), `{"id":"x","band":"clean","risk":1}`+"\n"...), []string{"missing sha256"}},
		{"unknown band", append(append([]byte{}, data...), `{"id":"x","sha256":"","band":"meh","risk":1}`+"\n"...), []string{"unknown band"}},
		{"numeric id", append(append([]byte{}, data...), `{"id":7,"sha256":"","band":"clean","risk":1}`+"\n"...), []string{"line 6"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyResults(s, bytes.NewReader(tt.data))
			if err == nil {
				t.Fatal("tampered results verified")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v does not wrap ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func swapFirstLines(data []byte) []byte {
	lines := bytes.SplitAfter(data, []byte("\n"))
	lines[0], lines[1] = lines[1], lines[0]
	return bytes.Join(lines, nil)
}

func TestResultsLongLinesAndNoFinalNewline(t *testing.T) {
	long := Leaf{ID: strings.Repeat("x", 200_000), SHA256: "s", Band: BandClean, Risk: 1}
	data := resultsJSONL(t, []Leaf{testLeaf(0), long, testLeaf(2)})
	data = bytes.TrimSuffix(data, []byte("\n"))
	sum, err := SummarizeResults(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var tree Tree
	for _, l := range []Leaf{testLeaf(0), long, testLeaf(2)} {
		tree.Add(l)
	}
	if sum.Leaves != 3 || sum.Root != tree.RootHex() {
		t.Fatalf("summary = %+v, want root %s", sum, tree.RootHex())
	}
	p, err := Prove(bytes.NewReader(data), long.ID)
	if err != nil || p.Index != 1 {
		t.Fatalf("Prove = %+v, %v", p, err)
	}
}

// writeFiles creates files under dir and returns their Input records named
// relative to dir.
func writeFiles(t *testing.T, dir string, files map[string]string) []Input {
	t.Helper()
	var inputs []Input
	for _, name := range slices.Sorted(maps.Keys(files)) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(files[name]), 0o644); err != nil {
			t.Fatal(err)
		}
		in, err := FileDigest(p)
		if err != nil {
			t.Fatal(err)
		}
		in.Name = name
		inputs = append(inputs, in)
	}
	return inputs
}

func TestVerifyDataset(t *testing.T) {
	files := map[string]string{
		"data/train.jsonl":     `{"text":"hello"}` + "\n",
		"data/sub/eval.csv":    "text\nhi\n",
		"data/other/eval.csv":  "text\nbye\n",
		"data/notes/readme.md": "# notes\n",
	}
	setup := func(t *testing.T) (string, *Statement) {
		root := t.TempDir()
		inputs := writeFiles(t, root, files)
		return root, statementFor(t, sampleResults(t), inputs)
	}
	t.Run("directory", func(t *testing.T) {
		root, s := setup(t)
		if err := VerifyDataset(s, []string{filepath.Join(root, "data")}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("files as given to the scan", func(t *testing.T) {
		root, s := setup(t)
		t.Chdir(root)
		if err := VerifyDataset(s, []string{"data/train.jsonl", "data/sub/eval.csv", "data/other/eval.csv", "./data/notes"}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("moved and renamed directory", func(t *testing.T) {
		root, s := setup(t)
		moved := filepath.Join(root, "elsewhere", "copy")
		if err := os.MkdirAll(filepath.Dir(moved), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(root, "data"), moved); err != nil {
			t.Fatal(err)
		}
		if err := VerifyDataset(s, []string{moved}); err != nil {
			t.Fatal(err)
		}
	})
	tests := []struct {
		name   string
		modify func(t *testing.T, root string)
		want   []string
	}{
		{"byte flipped", func(t *testing.T, root string) {
			writeFiles(t, root, map[string]string{"data/train.jsonl": `{"text":"jello"}` + "\n"})
		}, []string{"train.jsonl: sha256", "1 problem):"}},
		{"byte appended", func(t *testing.T, root string) {
			writeFiles(t, root, map[string]string{"data/sub/eval.csv": "text\nhi\n\n"})
		}, []string{"sub/eval.csv: size 9, signed input data/sub/eval.csv has 8"}},
		{"file removed", func(t *testing.T, root string) {
			os.Remove(filepath.Join(root, "data", "other", "eval.csv"))
		}, []string{"input data/other/eval.csv", "not found"}},
		{"file added", func(t *testing.T, root string) {
			writeFiles(t, root, map[string]string{"data/poison.jsonl": "{}\n"})
		}, []string{"poison.jsonl: not an input"}},
		{"two problems", func(t *testing.T, root string) {
			writeFiles(t, root, map[string]string{"data/poison.jsonl": "{}\n", "data/train.jsonl": "x"})
		}, []string{"2 problems", "poison.jsonl", "train.jsonl: size"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, s := setup(t)
			tt.modify(t, root)
			err := VerifyDataset(s, []string{filepath.Join(root, "data")})
			if err == nil {
				t.Fatal("modified dataset verified")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v does not wrap ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	t.Run("missing path is an input error", func(t *testing.T) {
		root, s := setup(t)
		err := VerifyDataset(s, []string{filepath.Join(root, "nope")})
		if err == nil || errors.Is(err, ErrInvalid) {
			t.Fatalf("err = %v, want a non-ErrInvalid error", err)
		}
	})
}

func TestKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	pub, err := GenerateKeyPair(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{PrivateKeyFile: 0o600, PublicKeyFile: 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s mode = %v, want %v", name, fi.Mode().Perm(), mode)
		}
	}
	privPEM, _ := os.ReadFile(filepath.Join(dir, PrivateKeyFile))
	pubPEM, _ := os.ReadFile(filepath.Join(dir, PublicKeyFile))
	priv, err := LoadPrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	pub2, err := LoadPublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(pub2) || !pub.Equal(priv.Public()) {
		t.Fatal("loaded keys do not match the generated pair")
	}
	if !bytes.Contains(privPEM, []byte("BEGIN PRIVATE KEY")) || !bytes.Contains(pubPEM, []byte("BEGIN PUBLIC KEY")) {
		t.Error("unexpected PEM block types")
	}

	if _, err := GenerateKeyPair(dir, false); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("overwrite without force: %v", err)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, PrivateKeyFile)); !bytes.Equal(again, privPEM) {
		t.Fatal("refused overwrite still changed the key")
	}
	pub3, err := GenerateKeyPair(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if pub3.Equal(pub) {
		t.Fatal("forced generation kept the old key")
	}
	if fi, _ := os.Stat(filepath.Join(dir, PrivateKeyFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("forced private key mode = %v", fi.Mode().Perm())
	}

	bad := []struct {
		name string
		load func([]byte) error
		in   []byte
		want string
	}{
		{"public from private", func(b []byte) error { _, err := LoadPublicKey(b); return err }, privPEM, "is this the private key"},
		{"private from public", func(b []byte) error { _, err := LoadPrivateKey(b); return err }, pubPEM, "want \"PRIVATE KEY\""},
		{"garbage public", func(b []byte) error { _, err := LoadPublicKey(b); return err }, []byte("nope"), "no PEM"},
		{"garbage private", func(b []byte) error { _, err := LoadPrivateKey(b); return err }, []byte("nope"), "no PEM"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.load(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	key := testKey(1)
	pub := key.Public().(ed25519.PublicKey)
	data := resultsJSONL(f, []Leaf{testLeaf(0), testLeaf(1)})
	s := statementFor(f, data, []Input{{Name: "a", Size: 1, SHA256: "00"}})
	env, err := Sign(*s, key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(env)
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"","sig":"AAAA"}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, env []byte) {
		st, err := Verify(env, pub)
		if err == nil && st == nil {
			t.Fatal("nil statement without error")
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("verification failure not wrapping ErrInvalid: %v", err)
		}
		Decode(env)
	})
}

func FuzzResults(f *testing.F) {
	f.Add(sampleResults(f))
	f.Add([]byte("\n\n{\"id\":\"x\",\"sha256\":\"\",\"band\":\"clean\",\"risk\":1}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sum, err := SummarizeResults(bytes.NewReader(data))
		if err != nil {
			return
		}
		if sum.Leaves != sum.Counts.Total() {
			t.Fatalf("leaves %d != counts %d", sum.Leaves, sum.Counts.Total())
		}
		if sum.Leaves > 0 {
			p, err := ProveIndex(bytes.NewReader(data), sum.Leaves-1)
			if err != nil {
				t.Fatal(err)
			}
			if p.Root != sum.Root {
				t.Fatalf("proof root %s != summary root %s", p.Root, sum.Root)
			}
		}
	})
}
