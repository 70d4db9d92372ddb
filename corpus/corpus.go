// Package corpus holds SentinelDF's dataset-level detectors: detectors that
// judge a document by the dataset around it. Exact and near-duplicate
// clusters (flooding), outliers from the dataset's own vocabulary, backdoor
// triggers mined from instruction/response pairs, and prompts that appear
// with conflicting responses.
//
// Each detector implements detect.DatasetDetector: the scan pipeline
// computes each document's signature in its parallel workers (Prepare),
// feeds the signatures to the detector in input order (Observe) and then
// asks for its findings (Findings). The detectors keep fixed-size signatures
// per document and bounded sketches, never whole texts;
// docs/dataset-detectors.md states the memory bound per document. Detectors
// are stateful: build fresh ones (with Default) for every scan.
package corpus

import (
	"cmp"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/sentineldf/sentineldf/detect"
)

// Rule ids of the findings this package emits.
const (
	RuleExactDuplicate     = "dataset.exact_duplicate"
	RuleNearDuplicate      = "dataset.near_duplicate_cluster"
	RuleOutlier            = "dataset.outlier"
	RuleTriggerMined       = "backdoor.trigger_mined"
	RuleTriggerNoTarget    = "backdoor.trigger_carrier"
	RuleConflictingAnswers = "dataset.conflicting_responses"
)

// Options tune the dataset-level detectors. The zero value is the product
// default; every field documents its default.
type Options struct {
	// FloodMin and FloodFraction decide when a duplicate cluster is
	// suspiciously large: at least max(FloodMin, FloodFraction·N) rows of a
	// dataset of N. Defaults 25 and 0.01.
	FloodMin      int
	FloodFraction float64

	// TriggerMinSupport is the least number of distinct prompts that must
	// carry a candidate trigger and share its target response for it to be
	// tested on its own; rarer candidates (at least 2 prompts) are tested
	// pooled by target (see Backdoor). Default 5.
	TriggerMinSupport int
	// TriggerMinPurity is the least share of a candidate's rows whose
	// response is the target. Default 0.8.
	TriggerMinPurity float64
	// TriggerAlpha is the family-wise significance level of the binomial
	// test that a candidate's rows share the target more often than the
	// rest of the dataset does (for a label target: the rest of the rows
	// answered with a label), Bonferroni over every candidate that can
	// pass (Tarone). Default 1e-4.
	TriggerAlpha float64
	// MaxPromptTokens caps the prompt-side words kept per row for trigger
	// mining; words beyond it are not candidates. Default 512.
	MaxPromptTokens int

	// OutlierMinDocs is the smallest dataset in which outliers are judged.
	// Default 200.
	OutlierMinDocs int

	// TempDir is where trigger mining spills its per-row token lists once
	// they outgrow MemoryBudget; "" means os.TempDir().
	TempDir string
	// MemoryBudget is the bytes of per-row token lists kept in memory before
	// spilling to TempDir. Default 64 MiB.
	MemoryBudget int
}

func (o Options) withDefaults() Options {
	o.FloodMin = cmp.Or(o.FloodMin, 25)
	o.FloodFraction = cmp.Or(o.FloodFraction, 0.01)
	o.TriggerMinSupport = cmp.Or(o.TriggerMinSupport, 5)
	o.TriggerMinPurity = cmp.Or(o.TriggerMinPurity, 0.8)
	o.TriggerAlpha = cmp.Or(o.TriggerAlpha, 1e-4)
	o.MaxPromptTokens = cmp.Or(o.MaxPromptTokens, 512)
	o.OutlierMinDocs = cmp.Or(o.OutlierMinDocs, 200)
	o.MemoryBudget = cmp.Or(o.MemoryBudget, 64<<20)
	return o
}

// Default returns fresh instances of every dataset-level detector, in a
// stable order: duplicates, outliers, backdoor triggers (with conflicting
// responses). They share one preparer: the duplicates detector's Prepare
// tokenizes each document once and computes every detector's signature, and
// the others pick their part up in Observe, so feed each document's Prepare
// result to the detectors in this order.
func Default(o Options) []detect.DatasetDetector {
	o = o.withDefaults()
	d, ol, b := NewDuplicates(o), NewOutliers(o), NewBackdoor(o)
	g := &group{seq: -1, ol: ol, b: b}
	d.g, ol.g, b.g = g, g, g
	return []detect.DatasetDetector{d, ol, b}
}

// group ties together the detectors Default returns so that each document
// is tokenized once between them. The duplicates detector leads: its
// Prepare returns a *groupPrep with every member's signature and its
// Observe parks it here for the other members' Observe of the same seq.
// The others' Prepare returns the document itself, which they tokenize
// again only when the leader's signature is not there (they were observed
// out of step with it).
type group struct {
	ol  *Outliers
	b   *Backdoor
	seq int64
	cur *groupPrep
}

// groupPrep is what a group's leader prepares for one document.
type groupPrep struct {
	dup dupSig
	out outSig
	bd  *bdSig
}

func (g *group) prepare(d *Duplicates, doc detect.Document) *groupPrep {
	sc := getScratch()
	defer putScratch(sc)
	toks, ends := sc.words(doc)
	return &groupPrep{
		dup: d.sign(sc, toks, ends),
		out: g.ol.sign(sc, toks),
		bd:  g.b.sign(doc, toks, ends),
	}
}

// take returns the leader's signature of seq, or nil.
func (g *group) take(seq int64) *groupPrep {
	if g == nil || g.seq != seq {
		return nil
	}
	return g.cur
}

// scratch is per-Prepare working memory, pooled between documents.
type scratch struct {
	toks  []token
	ends  []int // ends[i] is the end of field i's words in toks
	buf   []byte
	under []uint32
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(sc *scratch) {
	if cap(sc.toks) > 1<<16 || cap(sc.buf) > 1<<19 {
		return // do not pin the memory of an outsized document
	}
	scratchPool.Put(sc)
}

// words tokenizes every field of doc into sc and returns the words and the
// end of each field's words. The result is valid until sc is reused.
func (sc *scratch) words(doc detect.Document) ([]token, []int) {
	sc.toks = sc.toks[:0]
	sc.ends = sc.ends[:0]
	for _, f := range doc.Fields {
		sc.toks = tokenize(sc.toks, f.Text)
		sc.ends = append(sc.ends, len(sc.toks))
	}
	return sc.toks, sc.ends
}

// Role is the side of an instruction/response pair a field is on.
type Role int

// The roles of fields.
const (
	// RoleOther is a field that is neither (e.g. "text").
	RoleOther Role = iota
	// RolePrompt is the instruction side: what the model is asked.
	RolePrompt
	// RoleResponse is the side the model is trained to produce.
	RoleResponse
)

// promptKeys and responseKeys name the fields of each side by their last
// path component.
var (
	promptKeys = map[string]bool{
		"instruction": true, "instructions": true, "input": true, "prompt": true, "question": true,
		"query": true, "context": true, "system": true, "user": true, "human": true, "problem": true,
	}
	responseKeys = map[string]bool{
		"output": true, "response": true, "completion": true, "answer": true, "assistant": true,
		"chosen": true, "target": true, "solution": true, "gpt": true, "reply": true,
	}
)

// Roles assigns a role to every field of doc, in field order.
//
// The rule: a field inside a chat array (a path through "messages[i]" or
// "conversations[i]") is on the response side when it belongs to the
// array's last message and on the prompt side otherwise (readers drop the
// role, and the last turn is what a model is trained to say). Any other
// field is judged by its last path component with array indices removed:
// instruction, input, prompt, question, query, context, system, user, human
// and problem are prompt side; output, response, completion, answer,
// assistant, chosen, target, solution, gpt and reply are response side;
// anything else is RoleOther.
func Roles(doc detect.Document) []Role {
	roles := make([]Role, len(doc.Fields))
	lastMsg := -1
	for _, f := range doc.Fields {
		if i, ok := chatIndex(f.Name); ok {
			lastMsg = max(lastMsg, i)
		}
	}
	for k, f := range doc.Fields {
		if i, ok := chatIndex(f.Name); ok {
			if i == lastMsg && lastMsg > 0 {
				roles[k] = RoleResponse
			} else {
				roles[k] = RolePrompt
			}
			continue
		}
		key := strings.ToLower(lastComponent(f.Name))
		switch {
		case promptKeys[key]:
			roles[k] = RolePrompt
		case responseKeys[key]:
			roles[k] = RoleResponse
		}
	}
	return roles
}

// chatIndex returns the message index of a field inside a chat array.
func chatIndex(name string) (int, bool) {
	for _, p := range []string{"messages[", "conversations["} {
		i := strings.Index(name, p)
		if i < 0 || (i > 0 && name[i-1] != '.') {
			continue
		}
		n, j := 0, i+len(p)
		for ; j < len(name) && name[j] >= '0' && name[j] <= '9'; j++ {
			n = n*10 + int(name[j]-'0')
		}
		if j < len(name) && name[j] == ']' && j > i+len(p) {
			return n, true
		}
	}
	return 0, false
}

// lastComponent returns the last dotted component of a field path without
// array indices: "meta.body[2]" -> "body".
func lastComponent(name string) string {
	for {
		if i := strings.LastIndexByte(name, '['); i >= 0 && strings.HasSuffix(name, "]") {
			name = name[:i]
			continue
		}
		break
	}
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	return name
}

// token is one word of a text: its hash and byte range.
type token struct {
	h          uint64
	start, end int
}

// FNV-1a, 64 bits.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// tokenize appends the words of s to dst: maximal runs of letters, digits
// and combining marks, case-folded, with format characters (zero-width
// joiners, soft hyphens, ...) skipped so they cannot split or disguise a
// word. Each word's hash is FNV-1a over its lower-cased UTF-8 bytes.
func tokenize(dst []token, s string) []token {
	in := false
	var h uint64
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			// ASCII, the common case: one table lookup per byte.
			if l := asciiWord[c]; l != 0 {
				if !in {
					in, h, start = true, fnvOffset, i
				}
				h = (h ^ uint64(l)) * fnvPrime
			} else if in {
				dst = append(dst, token{h: h, start: start, end: i})
				in = false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.Is(unicode.Cf, r) {
			i += size
			continue
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) {
			if !in {
				in, h, start = true, fnvOffset, i
			}
			r = unicode.ToLower(r)
			if r < utf8.RuneSelf {
				h = (h ^ uint64(r)) * fnvPrime
			} else {
				var buf [utf8.UTFMax]byte
				n := utf8.EncodeRune(buf[:], r)
				for _, b := range buf[:n] {
					h = (h ^ uint64(b)) * fnvPrime
				}
			}
		} else if in {
			dst = append(dst, token{h: h, start: start, end: i})
			in = false
		}
		i += size
	}
	if in {
		dst = append(dst, token{h: h, start: start, end: len(s)})
	}
	return dst
}

// asciiWord maps an ASCII byte that is part of a word to its lower case,
// and any other ASCII byte to 0. No ASCII character is a format character.
var asciiWord = func() (t [utf8.RuneSelf]byte) {
	for c := range t {
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			t[c] = byte(c)
		case 'A' <= c && c <= 'Z':
			t[c] = byte(c + 'a' - 'A')
		}
	}
	return t
}()

// mix is a 64-bit finaliser (splitmix64) used to combine and spread hashes.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// combine hashes a sequence: combine(combine(a,b),c) is the hash of a b c.
func combine(a, b uint64) uint64 { return mix(a*0x9e3779b97f4a7c15 ^ b) }

// truncate shortens s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// docRows is a per-document array grown as documents are observed; seq is
// dense (0, 1, 2, ...), so a slice indexed by seq is the cheapest map.
func grow[T any](s []T, seq int64) []T {
	for int64(len(s)) <= seq {
		var zero T
		s = append(s, zero)
	}
	return s
}

// stateBytes is implemented by every detector of the package for the memory
// test: the bytes of per-document state it holds after Observe.
type stateBytes interface {
	perDocBytes() int
}

func (d *Duplicates) perDocBytes() int { return cap(d.keys)*8 + cap(d.bands)*minhashBands*8 }
func (d *Outliers) perDocBytes() int {
	return cap(d.samples)*outlierSamples*4 + cap(d.counts)
}
func (d *Backdoor) perDocBytes() int {
	return cap(d.prompt)*8 + cap(d.resp)*8 + d.spool.memBytes()
}
