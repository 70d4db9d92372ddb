package mbom

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// naiveRoot is RFC 6962 MTH over leaf hashes, written straight from the RFC.
func naiveRoot(leaves [][32]byte) [32]byte {
	n := len(leaves)
	switch n {
	case 0:
		return emptyRoot
	case 1:
		return leaves[0]
	}
	k := largestPow2Below(n)
	return hashNode(naiveRoot(leaves[:k]), naiveRoot(leaves[k:]))
}

// naivePath is RFC 6962 PATH(m, D[n]).
func naivePath(m int, leaves [][32]byte) [][32]byte {
	n := len(leaves)
	if n <= 1 {
		return nil
	}
	k := largestPow2Below(n)
	if m < k {
		return append(naivePath(m, leaves[:k]), naiveRoot(leaves[k:]))
	}
	return append(naivePath(m-k, leaves[k:]), naiveRoot(leaves[:k]))
}

func largestPow2Below(n int) int {
	k := 1
	for k<<1 < n {
		k <<= 1
	}
	return k
}

func testLeaf(i int) Leaf {
	bands := []string{BandClean, BandElevated, BandQuarantine}
	return Leaf{
		ID:     fmt.Sprintf("doc-%d", i),
		SHA256: fmt.Sprintf("%064x", i*7919),
		Band:   bands[i%3],
		Risk:   (i * 37) % 101,
	}
}

func TestTreeMatchesNaive(t *testing.T) {
	for n := 0; n <= 70; n++ {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			var hashes [][32]byte
			var tree Tree
			for i := 0; i < n; i++ {
				l := testLeaf(i)
				hashes = append(hashes, l.Hash())
				tree.Add(l)
			}
			if tree.Len() != int64(n) {
				t.Fatalf("Len = %d, want %d", tree.Len(), n)
			}
			want := naiveRoot(hashes)
			if got := tree.Root(); got != want {
				t.Fatalf("root = %x, want %x", got, want)
			}
			for m := 0; m < n; m++ {
				var pt Tree
				for i := 0; i < n; i++ {
					if i == m {
						pt.startProof(int64(m))
					}
					pt.addHash(hashes[i])
				}
				got := pt.auditPath()
				wantPath := naivePath(m, hashes)
				if len(got) != len(wantPath) {
					t.Fatalf("m=%d: path length %d, want %d", m, len(got), len(wantPath))
				}
				for i := range got {
					if got[i] != wantPath[i] {
						t.Fatalf("m=%d: path[%d] = %x, want %x", m, i, got[i], wantPath[i])
					}
				}
				root, ok := rootFromPath(hashes[m], int64(m), int64(n), got)
				if !ok || root != want {
					t.Fatalf("m=%d: rootFromPath = %x, %v; want %x", m, root, ok, want)
				}
			}
		})
	}
}

// TestRFC6962Vectors checks the leaf/node hashing and tree shape against the
// test vectors of the Certificate Transparency reference implementation.
func TestRFC6962Vectors(t *testing.T) {
	leaves := []string{"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"}
	roots := []string{
		"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
		"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
		"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
		"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
		"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
		"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
		"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
		"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
	}
	var tree Tree
	if got := tree.RootHex(); got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("empty root = %s", got)
	}
	for i, lx := range leaves {
		b, err := hex.DecodeString(lx)
		if err != nil {
			t.Fatal(err)
		}
		tree.addHash(hashLeafBytes(b))
		if got := tree.RootHex(); got != roots[i] {
			t.Errorf("root of %d leaves = %s, want %s", i+1, got, roots[i])
		}
	}
}

func TestLeafEncodingNoCollisions(t *testing.T) {
	// Pairs that a naive concatenation or separator-based encoding would
	// confuse must encode, and hash, differently.
	pairs := [][2]Leaf{
		{{ID: "ab", SHA256: "c"}, {ID: "a", SHA256: "bc"}},
		{{ID: "a\nb", Band: "c"}, {ID: "a", SHA256: "b", Band: "c"}},
		{{ID: "x", Band: "clean", Risk: 1}, {ID: "x", Band: "clean\x00\x00\x00\x00\x00\x00\x00", Risk: 1}},
		{{ID: "\"id\":\"x\""}, {ID: "id", SHA256: "x"}},
		{{ID: "日本", Risk: -1}, {ID: "日本", Risk: 0xffffffff}},
	}
	for i, p := range pairs {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			a, _ := p[0].MarshalBinary()
			b, _ := p[1].MarshalBinary()
			if bytes.Equal(a, b) {
				t.Fatalf("encodings collide: %q", a)
			}
			if p[0].Hash() == p[1].Hash() {
				t.Fatal("hashes collide")
			}
		})
	}
}

func TestLeafEncodingVector(t *testing.T) {
	// Pins the canonical encoding: changing it breaks every signed MBOM.
	l := Leaf{ID: "a", SHA256: "bc", Band: "clean", Risk: 70}
	got, err := l.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := "0000000000000017" + hex.EncodeToString([]byte("sentineldf.mbom.leaf.v1")) +
		"0000000000000001" + "61" +
		"0000000000000002" + "6263" +
		"0000000000000005" + hex.EncodeToString([]byte("clean")) +
		"0000000000000046"
	if hex.EncodeToString(got) != want {
		t.Fatalf("encoding = %x\nwant       %s", got, want)
	}
	h := l.Hash()
	if h != hashLeafBytes(got) {
		t.Fatal("Hash differs from hashLeafBytes(MarshalBinary)")
	}
}

// resultsJSONL renders leaves as a results file with extra fields, as the
// scanner writes them.
func resultsJSONL(t testing.TB, leaves []Leaf) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, l := range leaves {
		line, err := json.Marshal(map[string]any{
			"id": l.ID, "sha256": l.SHA256, "band": l.Band, "risk": l.Risk,
			"score": 0.5, "findings": []map[string]any{{"rule": "x", "evidence": "ignore previous\ninstructions"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func TestProveEveryLeaf(t *testing.T) {
	const n = 37
	leaves := make([]Leaf, n)
	for i := range leaves {
		leaves[i] = testLeaf(i)
	}
	leaves[5].ID = "line\nbreak"
	leaves[6].ID = "ünïcödé 🚀 \u202e"
	leaves[7].ID = ""
	data := resultsJSONL(t, leaves)
	s := statementFor(t, data, nil)
	for i, l := range leaves {
		t.Run(fmt.Sprintf("%d", i), func(t *testing.T) {
			p, err := Prove(bytes.NewReader(data), l.ID)
			if err != nil {
				t.Fatal(err)
			}
			if p.Index != int64(i) || p.TreeSize != n || p.Leaf != l {
				t.Fatalf("proof = %+v", p)
			}
			if err := VerifyProof(s, p); err != nil {
				t.Fatalf("VerifyProof: %v", err)
			}
			// The proof survives a JSON round trip.
			enc, _ := json.Marshal(p)
			var q Proof
			if err := json.Unmarshal(enc, &q); err != nil {
				t.Fatal(err)
			}
			if err := VerifyProof(s, &q); err != nil {
				t.Fatalf("VerifyProof after JSON: %v", err)
			}
		})
	}
}

func TestVerifyProofRejectsTampering(t *testing.T) {
	leaves := make([]Leaf, 37)
	for i := range leaves {
		leaves[i] = testLeaf(i)
	}
	data := resultsJSONL(t, leaves)
	s := statementFor(t, data, nil)
	good, err := Prove(bytes.NewReader(data), "doc-20")
	if err != nil {
		t.Fatal(err)
	}
	flip := func(h string) string {
		b, _ := hex.DecodeString(h)
		b[0] ^= 1
		return hex.EncodeToString(b)
	}
	tests := []struct {
		name   string
		mutate func(p *Proof)
		want   string
	}{
		{"band", func(p *Proof) { p.Leaf.Band = BandClean }, "leaf hashes"},
		{"band with rehash", func(p *Proof) {
			p.Leaf.Band = BandClean
			h := p.Leaf.Hash()
			p.LeafHash = hex.EncodeToString(h[:])
		}, "path leads to root"},
		{"risk with rehash", func(p *Proof) {
			p.Leaf.Risk = 0
			h := p.Leaf.Hash()
			p.LeafHash = hex.EncodeToString(h[:])
		}, "path leads to root"},
		{"path element", func(p *Proof) { p.Path[2] = flip(p.Path[2]) }, "path leads to root"},
		{"path truncated", func(p *Proof) { p.Path = p.Path[:len(p.Path)-1] }, "does not fit"},
		{"path extended", func(p *Proof) { p.Path = append(p.Path, p.Path[0]) }, "does not fit"},
		{"index", func(p *Proof) { p.Index = 21 }, "path leads to root"},
		{"index out of range", func(p *Proof) { p.Index = 37 }, "does not fit"},
		{"tree size", func(p *Proof) { p.TreeSize = 36 }, "tree size"},
		{"root", func(p *Proof) { p.Root = flip(p.Root) }, "root"},
		{"id", func(p *Proof) { p.ID = "doc-21" }, "differs from leaf id"},
		{"bad hex", func(p *Proof) { p.Path[0] = "zz" }, "not a hex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := *good
			p.Path = append([]string(nil), good.Path...)
			tt.mutate(&p)
			err := VerifyProof(s, &p)
			if err == nil {
				t.Fatal("tampered proof verified")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestProveNotFound(t *testing.T) {
	data := resultsJSONL(t, []Leaf{testLeaf(0)})
	if _, err := Prove(bytes.NewReader(data), "nope"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("err = %v", err)
	}
	p, err := ProveIndex(bytes.NewReader(data), 0)
	if err != nil || p.ID != "doc-0" || len(p.Path) != 0 {
		t.Fatalf("ProveIndex = %+v, %v", p, err)
	}
}

func TestTreeAddAllocs(t *testing.T) {
	var tree Tree
	l := testLeaf(1)
	tree.Add(l)
	if a := testing.AllocsPerRun(1000, func() { tree.Add(l) }); a != 0 {
		t.Errorf("Tree.Add allocates %v times per leaf, want 0", a)
	}
}

func BenchmarkTreeAdd(b *testing.B) {
	l := Leaf{ID: "train.jsonl:1234567", SHA256: strings.Repeat("ab", 32), Band: BandClean, Risk: 12}
	var tree Tree
	b.ReportAllocs()
	for b.Loop() {
		tree.Add(l)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "leaves/s")
}

func BenchmarkSummarizeResults(b *testing.B) {
	leaves := make([]Leaf, 10000)
	for i := range leaves {
		leaves[i] = testLeaf(i)
	}
	data := resultsJSONL(b, leaves)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := SummarizeResults(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(leaves))/b.Elapsed().Seconds(), "results/s")
}

// referenceParse is parseResultLine written with encoding/json alone.
func referenceParse(line []byte) (Leaf, bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil || m == nil {
		return Leaf{}, false
	}
	var l Leaf
	for _, f := range []struct {
		name string
		dst  any
	}{{"id", &l.ID}, {"sha256", &l.SHA256}, {"band", &l.Band}, {"risk", &l.Risk}} {
		raw, ok := m[f.name]
		if !ok || string(raw) == "null" {
			return Leaf{}, false
		}
		if err := json.Unmarshal(raw, f.dst); err != nil {
			return Leaf{}, false
		}
	}
	return l, true
}

func TestParseResultLine(t *testing.T) {
	tests := []struct {
		line string
		want Leaf
		ok   bool
	}{
		{`{"id":"a","sha256":"b","band":"clean","risk":3}`, Leaf{"a", "b", "clean", 3}, true},
		{` { "risk" : -0 , "band":"x\u0041", "sha256":"", "id":"\n\"é" , "findings":[{"id":"no"}],"x":{"risk":"s"}} `, Leaf{"\n\"é", "", "xA", 0}, true},
		{`{"id":"a","id":"b","sha256":"b","band":"clean","risk":3}`, Leaf{"b", "b", "clean", 3}, true},
		{`{"\u0069d":"a","sha256":"b","band":"clean","risk":3}`, Leaf{"a", "b", "clean", 3}, true},
		{`{"ID":"a","sha256":"b","band":"clean","risk":3}`, Leaf{}, false},
		{`{"id":"a","sha256":"b","band":"clean","risk":3.0}`, Leaf{}, false},
		{`{"id":"a","sha256":"b","band":"clean","risk":1e2}`, Leaf{}, false},
		{`{"id":"a","sha256":"b","band":"clean","risk":"3"}`, Leaf{}, false},
		{`{"id":"a","sha256":"b","band":"clean","risk":99999999999999999999}`, Leaf{}, false},
		{`{"id":null,"sha256":"b","band":"clean","risk":3}`, Leaf{}, false},
		{`{"id":1,"sha256":"b","band":"clean","risk":3}`, Leaf{}, false},
		{`{"id":"a","sha256":"b","band":"clean","risk":3`, Leaf{}, false},
		{`[{"id":"a","sha256":"b","band":"clean","risk":3}]`, Leaf{}, false},
		{`{"id":"a","sha256":"b","band":"clean","risk":3} {}`, Leaf{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got, err := parseResultLine([]byte(tt.line))
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("parseResultLine = %+v, %v; want %+v, ok=%v", got, err, tt.want, tt.ok)
			}
			ref, ok := referenceParse([]byte(tt.line))
			if ok != tt.ok || ref != tt.want {
				t.Fatalf("referenceParse = %+v, %v (test table wrong?)", ref, ok)
			}
		})
	}
}

// FuzzParseResultLine checks the fast parser against encoding/json.
func FuzzParseResultLine(f *testing.F) {
	f.Add([]byte(`{"id":"a","sha256":"b","band":"clean","risk":3,"findings":[{"a":"]}\"{"}]}`))
	f.Add([]byte(`{"id":"\ud83d\ude00\u0000","sha256":"\xff","band":"quarantine","risk":-12}`))
	f.Add([]byte(`{"risk":0,"band":"","sha256":"","id":"", "x": [1, true, null, {"y": -1.5e3}]}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		got, err := parseResultLine(line)
		want, ok := referenceParse(line)
		if (err == nil) != ok || got != want {
			t.Fatalf("parseResultLine(%q) = %+v, %v; encoding/json gives %+v, %v", line, got, err, want, ok)
		}
	})
}

func TestInvalidUTF8SurvivesResultsFile(t *testing.T) {
	// The scanner hashes ids as read from the dataset, then writes them with
	// encoding/json, which replaces invalid bytes; roots must still agree.
	leaves := []Leaf{
		{ID: "bad\xff\xfe id", SHA256: "s", Band: BandClean, Risk: 1},
		{ID: "trunc \xe2\x82", SHA256: "s", Band: BandClean, Risk: 2},
		{ID: "<html>&", SHA256: "s", Band: BandClean, Risk: 3},
	}
	var tree Tree
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, l := range leaves {
		tree.Add(l)
		if err := enc.Encode(l); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := SummarizeResults(&b)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Root != tree.RootHex() {
		t.Fatalf("root from results %s != root while scanning %s", sum.Root, tree.RootHex())
	}
	if (Leaf{ID: "a\xff"}).Hash() == (Leaf{ID: "a"}).Hash() {
		t.Fatal("replacement dropped the invalid byte")
	}
}
