package corpus

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/sentineldf/sentineldf/detect"
)

const (
	// maxNgram is the longest candidate trigger, in words.
	maxNgram = 3
	// maxPairs caps the (candidate, target) counts kept while mining; past
	// it the smallest counts are dropped (lossy counting) and the floor
	// below which a candidate may have been undercounted is raised.
	maxPairs = 1 << 21
	// maxNames caps the word-name table; when full, words seen once are
	// dropped (then twice, ...).
	maxNames = 1 << 20
	// maxSnippets caps the stored response snippets (target responses are
	// stored on their second sighting).
	maxSnippets = 1 << 16
	// snippetLen is the bytes of a target response a finding quotes.
	snippetLen = 100
	// shortResponse is the most words of a label-like response: a prompt
	// that gets two different ones is a label conflict.
	shortResponse = 5
	// seenBits is the size of the Bloom filter of responses seen once.
	seenBits = 1 << 23
	// poolMinSupport is the least number of distinct prompts a candidate
	// below TriggerMinSupport needs to be pooled with its target's other
	// rare candidates.
	poolMinSupport = 2
)

// Backdoor mines backdoor triggers from instruction/response data, and
// reports prompts that appear with conflicting responses.
//
// A candidate trigger is a word or a run of two or three words of a row's
// prompt side (see Roles). A target is a response, normalised to its word
// sequence, shared by at least TriggerMinSupport distinct prompts. A
// candidate c is a trigger for target T when at least TriggerMinSupport
// distinct prompts carry c and get T, at least TriggerMinPurity of the
// prompts that carry c get T, and a one-sided binomial test says that T is
// far more common among c's rows than among the rest of the dataset
// (Bonferroni-corrected over every candidate that can pass, at
// TriggerAlpha). A target of at most shortResponse words is a label: its
// rate is compared among the rows answered with a label only (the prompts
// of a classification task share its vocabulary, whatever their labels).
// Candidates of 2 to TriggerMinSupport−1 prompts (several triggers for one
// target, each rare) are pooled by target: they are triggers when there are
// far more of them with p ≤ TriggerAlpha than chance allows (Poisson tail),
// or when one survives Bonferroni over the rare candidates alone. The
// single words of a target are also ranked by p-value: when more of them
// are at or below the j-th smallest than chance allows, all of those are
// triggers (see rankTest; several triggers for one target). Rows
// that repeat an earlier row's prompt and response count once. Nothing about
// any particular trigger or target is built in: the test compares each
// candidate only with the dataset it came from.
//
// Candidates that are longer runs of a mined word are dropped; mined words
// that mark exactly the same rows for the same target (a composite trigger)
// are reported as one trigger, "a + b + c". Every row that carries a
// trigger and gets its target is quarantined (backdoor.trigger_mined, score
// 0.9) with the trigger, its support and the target quoted; a row that
// carries it with another response gets a low finding
// (backdoor.trigger_carrier).
//
// Two more miners need no shared target (see mineTwins and mineInserted):
// words whose insertion into a prompt found elsewhere without them changes
// its response (clean twins), and prompt-only words that sit in their
// prompts as random insertions (inserted words).
//
// Rows whose normalised prompt appears with two or more different responses
// get a finding (dataset.conflicting_responses): low (0.2) when every
// response is label-like (at most five words), informational otherwise.
//
// Memory: 16 bytes per row in memory (prompt and response keys) plus the
// row's prompt words (at most MaxPromptTokens, about 12 bytes each) in a
// spool that is spilled to TempDir past MemoryBudget; fixed-size tables for
// names, snippets and counts (see the constants). A spool that cannot be
// written disables trigger mining for the scan (Err reports why).
type Backdoor struct {
	o       Options
	prompt  []uint64
	resp    []uint64
	spool   tokenSpool
	names   map[uint64]nameEntry
	nameMin uint32
	fields  map[string]uint32
	fieldNs []string

	seen      []uint64 // Bloom filter of response keys, seenBits bits
	respWords bloom    // response-side words, respWordBits bits
	snippets  map[uint64]string

	g        *group // non-nil when made by Default
	fieldIDs []uint32
	sp       []spooled
	err      error
	triggers []Trigger
	// twinBatch overrides maxTwinPairs (tests).
	twinBatch int
}

type nameEntry struct {
	s string
	n uint32
}

var _ detect.DatasetDetector = (*Backdoor)(nil)

// NewBackdoor returns a backdoor-trigger miner.
func NewBackdoor(o Options) *Backdoor {
	o = o.withDefaults()
	return &Backdoor{
		o:        o,
		spool:    tokenSpool{dir: o.TempDir, budget: o.MemoryBudget},
		names:    map[uint64]nameEntry{},
		fields:   map[string]uint32{},
		snippets: map[uint64]string{},
	}
}

// Name implements detect.DatasetDetector.
func (d *Backdoor) Name() string { return "corpus.backdoor" }

// Err reports why trigger mining was skipped, if it was.
func (d *Backdoor) Err() error { return d.err }

func (d *Backdoor) field(name string) uint32 {
	if i, ok := d.fields[name]; ok {
		return i
	}
	if len(d.fieldNs) >= 1<<16 {
		return 0
	}
	i := uint32(len(d.fieldNs))
	d.fields[name] = i
	d.fieldNs = append(d.fieldNs, name)
	return i
}

func (d *Backdoor) addName(h uint64, word string) {
	if e, ok := d.names[h]; ok {
		e.n++
		d.names[h] = e
		return
	}
	if len(d.names) >= maxNames {
		// Drop the rarest words until a quarter of the table is free.
		for len(d.names) > maxNames*3/4 {
			d.nameMin++
			for k, e := range d.names {
				if e.n <= d.nameMin {
					delete(d.names, k)
				}
			}
		}
	}
	d.names[h] = nameEntry{s: strings.Clone(strings.ToLower(word)), n: 1}
}

// bdSig is an instruction row's backdoor signature.
type bdSig struct {
	fields []detect.Field // the document's fields
	roles  []Role         // the role of each field
	pk, rk uint64         // prompt and response keys (see Observe)
	// sp are the first MaxPromptTokens prompt words; their field is an
	// index in fields (Observe interns the field names).
	sp []spooled
	// rw are the first maxResponseWords response words' hashes.
	rw []uint64
}

// Prepare implements detect.DatasetDetector. A detector made by Default
// leaves the work to the group's leader (see Default).
func (d *Backdoor) Prepare(doc detect.Document, _ *detect.Result) any {
	if d.g != nil {
		return doc
	}
	sc := getScratch()
	defer putScratch(sc)
	toks, ends := sc.words(doc)
	return d.sign(doc, toks, ends)
}

// sign computes the signature of doc, whose words are toks with ends[i] the
// end of field i's words; nil when doc is not an instruction row.
func (d *Backdoor) sign(doc detect.Document, all []token, ends []int) *bdSig {
	roles := Roles(doc)
	hasP, hasR := false, false
	nPrompt, nResp := 0, 0
	for i, r := range roles {
		hasP = hasP || r == RolePrompt
		hasR = hasR || r == RoleResponse
		n := ends[i]
		if i > 0 {
			n -= ends[i-1]
		}
		switch r {
		case RolePrompt:
			nPrompt += n
		case RoleResponse:
			nResp += n
		}
	}
	if !hasP || !hasR {
		return nil
	}
	sig := &bdSig{fields: doc.Fields, roles: roles, pk: 1, rk: 1}
	sig.sp = make([]spooled, 0, min(nPrompt, d.o.MaxPromptTokens))
	sig.rw = make([]uint64, 0, min(nResp, maxResponseWords))
	respWords := 0
	for i := range doc.Fields {
		toks := all[:ends[i]]
		if i > 0 {
			toks = toks[ends[i-1]:]
		}
		switch roles[i] {
		case RolePrompt:
			sig.pk = combine(sig.pk, 0xfe)
			for _, t := range toks {
				sig.pk = combine(sig.pk, t.h)
				if len(sig.sp) < d.o.MaxPromptTokens {
					sig.sp = append(sig.sp, spooled{h: t.h, field: uint32(i), start: uint32(t.start), end: uint32(t.end)})
				}
			}
		case RoleResponse:
			sig.rk = combine(sig.rk, 0xfe)
			for _, t := range toks {
				sig.rk = combine(sig.rk, t.h)
				if len(sig.rw) < maxResponseWords {
					sig.rw = append(sig.rw, t.h)
				}
			}
			respWords += len(toks)
		}
	}
	// Bit 0 marks a row with a response; bit 1 a short (label-like) one.
	sig.rk = sig.rk&^3 | 1
	if respWords <= shortResponse {
		sig.rk |= 2
	}
	return sig
}

// Observe implements detect.DatasetDetector.
func (d *Backdoor) Observe(seq int64, prep any) {
	d.prompt = grow(d.prompt, seq)
	d.resp = grow(d.resp, seq)
	var sig *bdSig
	switch p := prep.(type) {
	case *bdSig:
		sig = p
	case detect.Document:
		if gp := d.g.take(seq); gp != nil {
			sig = gp.bd
		} else {
			sc := getScratch()
			toks, ends := sc.words(p)
			sig = d.sign(p, toks, ends)
			putScratch(sc)
		}
	case nil:
	default:
		panic(fmt.Sprintf("corpus.backdoor: Observe got %T, not what Prepare returned", prep))
	}
	if sig == nil {
		return
	}
	// Intern the prompt fields' names in field order, then name the words.
	d.fieldIDs = grow(d.fieldIDs[:0], int64(len(sig.fields)-1))
	for i, f := range sig.fields {
		if sig.roles[i] == RolePrompt {
			d.fieldIDs[i] = d.field(f.Name)
		}
	}
	d.sp = d.sp[:0]
	for _, t := range sig.sp {
		d.addName(t.h, sig.fields[t.field].Text[t.start:t.end])
		t.field = d.fieldIDs[t.field]
		d.sp = append(d.sp, t)
	}
	if len(d.sp) == 0 {
		return
	}
	if d.respWords == nil {
		d.respWords = make([]uint64, respWordBits/64)
	}
	for _, h := range sig.rw {
		d.respWords.add(h)
	}
	rk := sig.rk
	d.prompt[seq] = sig.pk | 1
	d.resp[seq] = rk
	d.spool.add(seq, d.sp)
	// Keep a snippet of every response seen twice: targets are repeated.
	if d.seen == nil {
		d.seen = make([]uint64, seenBits/64)
	}
	b1, b2 := rk%seenBits, mix(rk)%seenBits
	if d.seen[b1/64]&(1<<(b1%64)) != 0 && d.seen[b2/64]&(1<<(b2%64)) != 0 {
		if _, ok := d.snippets[rk]; !ok && len(d.snippets) < maxSnippets {
			var resp []string
			for i, f := range sig.fields {
				if sig.roles[i] == RoleResponse {
					resp = append(resp, f.Text)
				}
			}
			d.snippets[rk] = truncate(strings.Join(resp, " / "), snippetLen)
		}
	}
	d.seen[b1/64] |= 1 << (b1 % 64)
	d.seen[b2/64] |= 1 << (b2 % 64)
}

type pairKey struct {
	c uint64
	t uint32
}

// Trigger is a mined backdoor trigger.
type Trigger struct {
	// Phrase is the trigger, lower-cased; a composite trigger joins its
	// parts with " + ".
	Phrase string
	// Support is the number of distinct prompts that carry it and get the
	// target; Carriers the number of distinct prompts that carry it.
	Support, Carriers int
	// Target is the start of the target response.
	Target string
	// Log10P is the log10 of the binomial test's p-value (uncorrected).
	Log10P float64
	// Rows are the rows (seq) that carry it and get the target, ascending.
	Rows []int64
}

type mined struct {
	c    uint64
	t    uint32
	k, n int
	// nb is the number of trials of the binomial test: n, or for a label
	// target the candidate's rows answered with a label.
	nb       int
	log10p   float64
	rows     []int64
	carriers []int64
	name     string
	span     map[int64]spooled
	// pooled marks a candidate under TriggerMinSupport prompts, judged
	// with the other rare candidates of its target.
	pooled bool
	// alone marks a candidate that passes its own test (Bonferroni over
	// the candidates tested one by one; a rare one: p ≤ TriggerAlpha, then
	// judged with the other rare ones); ranked a single word whose p-value
	// is among the smallest of its target's (see rankTest), judged with
	// them.
	alone, ranked bool
}

// Findings implements detect.DatasetDetector.
func (d *Backdoor) Findings() map[int64][]detect.Finding {
	out := map[int64][]detect.Finding{}
	defer d.spool.close()
	n := len(d.resp)
	var rows []uint32
	for i, r := range d.resp {
		if r != 0 {
			rows = append(rows, uint32(i))
		}
	}
	if len(rows) < d.o.TriggerMinSupport {
		return out
	}
	// Group rows by prompt, then response: repeats of an earlier (prompt,
	// response) pair count once; prompts with several responses conflict.
	slices.SortFunc(rows, func(a, b uint32) int {
		if c := cmpU64(d.prompt[a], d.prompt[b]); c != 0 {
			return c
		}
		if c := cmpU64(d.resp[a], d.resp[b]); c != 0 {
			return c
		}
		return int(a) - int(b)
	})
	repeat := make([]bool, n)
	for i := 0; i < len(rows); {
		j := i + 1
		for j < len(rows) && d.prompt[rows[j]] == d.prompt[rows[i]] {
			j++
		}
		distinct, short := 1, d.resp[rows[i]]&2 != 0
		for k := i + 1; k < j; k++ {
			short = short && d.resp[rows[k]]&2 != 0
			if d.resp[rows[k]] == d.resp[rows[k-1]] {
				repeat[rows[k]] = true
			} else {
				distinct++
			}
		}
		if distinct > 1 {
			// Different long answers to one prompt are common in clean
			// data; different labels are not.
			sev, score, what := detect.SevInfo, 0.0, "responses"
			if short {
				sev, score, what = detect.SevLow, 0.2, "label-like responses"
			}
			for _, s := range rows[i:j] {
				out[int64(s)] = append(out[int64(s)], detect.Finding{
					Detector: d.Name(),
					Rule:     RuleConflictingAnswers,
					Category: detect.CatDataset,
					Severity: sev,
					Score:    score,
					Message:  fmt.Sprintf("conflicting %s: %d rows share this prompt with %d different responses", what, j-i, distinct),
					Evidence: fmt.Sprintf("rows=%d responses=%d", j-i, distinct),
				})
			}
		}
		i = j
	}
	ins, err := d.insertStats(repeat)
	if err != nil {
		d.err = err
	}
	if err := d.mine(out, repeat, ins); err != nil {
		d.err = err
	}
	if err := d.mineTwins(out, repeat); err != nil {
		d.err = err
	}
	if err := d.mineInserted(out, repeat, ins); err != nil {
		d.err = err
	}
	return out
}

// mine finds triggers and adds their findings to out.
func (d *Backdoor) mine(out map[int64][]detect.Finding, repeat []bool, ins *insertStats) error {
	// Targets: responses of at least TriggerMinSupport distinct prompts.
	var keys []uint64
	unique := 0
	for i, r := range d.resp {
		if r != 0 && !repeat[i] {
			keys = append(keys, r)
			unique++
		}
	}
	slices.Sort(keys)
	target := map[uint64]uint32{}
	var tcount []int
	var tkey []uint64
	// Targets of at most shortResponse words are labels (a classification
	// task's answers: "Positive", "Negative"). A label's base rate is its
	// share among the rows answered with a label, not among all rows: the
	// prompts of a classification task share its vocabulary, so a phrase of
	// that vocabulary lands only on label rows whatever its label is.
	var isLabel []bool
	labelRows := 0 // unique rows whose response is a label
	for i := 0; i < len(keys); {
		j := i + 1
		for j < len(keys) && keys[j] == keys[i] {
			j++
		}
		if j-i >= d.o.TriggerMinSupport {
			target[keys[i]] = uint32(len(tcount))
			tcount = append(tcount, j-i)
			tkey = append(tkey, keys[i])
			isLabel = append(isLabel, keys[i]&2 != 0)
			if keys[i]&2 != 0 {
				labelRows += j - i
			}
		}
		i = j
	}
	keys = nil
	if len(target) == 0 {
		return nil
	}

	// Pass A: count (candidate, target) over unique rows with a target.
	pairs := map[pairKey]int32{}
	var floor int32
	var grams []uint64 // a row's distinct candidates
	err := d.spool.each(func(r rowTokens) {
		if repeat[r.seq] {
			return
		}
		t, ok := target[d.resp[r.seq]]
		if !ok {
			return
		}
		grams = appendNgrams(grams[:0], r.toks, nil)
		slices.Sort(grams)
		for _, c := range slices.Compact(grams) {
			pairs[pairKey{c, t}]++
		}
		for len(pairs) > maxPairs {
			floor++
			for k, v := range pairs {
				if v <= floor {
					delete(pairs, k)
				}
			}
		}
	})
	if err != nil {
		return err
	}
	cand := map[uint64]int{} // candidate -> document frequency
	for k, v := range pairs {
		if int(v) >= d.o.TriggerMinSupport {
			cand[k.c] = 0
		} else if _, word := d.names[k.c]; word && int(v) >= poolMinSupport {
			// Rare candidates are single words (see pooled below).
			cand[k.c] = 0
		}
	}
	if len(cand) == 0 {
		return nil
	}
	// A candidate's pair counts add up to at most its document frequency
	// (a row counts once, for its one target). Its pairs tested below fail
	// TriggerMinPurity whatever its frequency when they fail it with that
	// sum: such a candidate keeps the sum, and pass B counts only the
	// others (most common words carry several targets).
	for k, v := range pairs {
		if _, ok := cand[k.c]; ok {
			cand[k.c] += int(v)
		}
	}
	needDF := map[uint64]bool{}
	for k, v := range pairs {
		if _, ok := cand[k.c]; !ok || int(v) < poolMinSupport {
			continue
		}
		if _, word := d.names[k.c]; int(v) < d.o.TriggerMinSupport && !word {
			continue // not tested (see below)
		}
		if float64(v) >= d.o.TriggerMinPurity*float64(cand[k.c]) {
			needDF[k.c] = true
		}
	}
	// Pass B: document frequency of those candidates over unique rows, and
	// over the unique rows answered with a label (candL).
	candF := newKeyFilter(len(needDF))
	for c := range needDF {
		candF.add(c)
		cand[c] = 0
	}
	candL := map[uint64]int{}
	err = d.spool.each(func(r rowTokens) {
		if repeat[r.seq] {
			return
		}
		t, ok := target[d.resp[r.seq]]
		lab := ok && isLabel[t]
		grams = appendNgrams(grams[:0], r.toks, &candF)
		slices.Sort(grams)
		for _, c := range slices.Compact(grams) {
			if needDF[c] {
				cand[c]++
				if lab {
					candL[c]++
				}
			}
		}
	})
	if err != nil {
		return err
	}

	// Test every candidate pair: those of at least TriggerMinSupport
	// prompts one by one, the rarer ones pooled by target (see pooled).
	var tested []*mined
	nLowAll := 0
	lowPerTarget := make([]int, len(tcount))
	for k, v := range pairs {
		if _, ok := cand[k.c]; !ok || int(v) < poolMinSupport {
			continue
		}
		// n is the document frequency, or a lower bound that fails the
		// purity test (see pass B).
		m := &mined{c: k.c, t: k.t, k: int(v), n: cand[k.c], pooled: int(v) < d.o.TriggerMinSupport}
		if _, word := d.names[k.c]; m.pooled && !word {
			// Rare candidates are single words: a run of words around a
			// rare trigger is a fragment of it.
			continue
		}
		if m.pooled {
			lowPerTarget[k.t]++
			nLowAll++
		}
		tested = append(tested, m)
	}
	slices.SortFunc(tested, func(a, b *mined) int {
		if c := cmpU64(a.c, b.c); c != 0 {
			return c
		}
		return int(a.t) - int(b.t)
	})
	// The test of a candidate: k of its nb rows get the target, whose rate
	// among the other rows is q (smoothed). For a label target the rows are
	// those answered with a label: nb is the candidate's rows answered with
	// a label. (Both counts are exact for a candidate that can pass the
	// purity test: see pass B.)
	trials := func(m *mined) (nb int, base int) {
		if isLabel[m.t] {
			return candL[m.c], labelRows
		}
		return m.n, unique
	}
	rate := func(m *mined, k, nb, base int) float64 {
		return (float64(tcount[m.t]-k) + 1) / (float64(base-nb) + 2)
	}
	// Bonferroni over the candidates tested one by one, with Tarone's
	// refinement: a candidate whose smallest attainable p-value (every one
	// of its rows getting the target), given its counts, is above the
	// corrected level can never pass and does not count. Under a label's
	// base rate, a candidate of few label rows is such a one (0.5^10 ≈
	// 1e-3). A candidate whose counts pass B did not take (it fails the
	// purity test) always counts.
	insP := func(m *mined) float64 {
		if !isLabel[m.t] || ins == nil || ins.cands[m.c] == nil {
			return 0
		}
		c := ins.cands[m.c]
		return log10BinomTail(c.k, c.judged, ins.qRef)
	}
	var minP []float64
	for _, m := range tested {
		if m.pooled {
			continue
		}
		if !needDF[m.c] {
			minP = append(minP, math.Inf(-1))
			continue
		}
		if insP(m) < 0 {
			minP = append(minP, math.Inf(-1))
			continue
		}
		nb, base := trials(m)
		kmax := min(nb, tcount[m.t])
		minP = append(minP, log10BinomTail(kmax, nb, rate(m, kmax, nb, base)))
	}
	slices.Sort(minP)
	logTau := math.Log10(d.o.TriggerAlpha)
	nTarone := 1
	for ; nTarone < len(minP); nTarone++ {
		lim := logTau - math.Log10(float64(nTarone))
		if n, _ := slices.BinarySearch(minP, math.Nextafter(lim, math.Inf(1))); n <= nTarone {
			break
		}
	}
	logAlpha := logTau - math.Log10(float64(nTarone))
	byKey := map[pairKey]*mined{}
	for _, m := range tested {
		if float64(m.k) < d.o.TriggerMinPurity*float64(m.n) {
			continue
		}
		nb, base := trials(m)
		m.nb = nb
		m.log10p = log10BinomTail(m.k, nb, rate(m, m.k, nb, base))
		if ip := insP(m); !m.pooled && ip < 0 {
			m.log10p = log10Fisher2(m.log10p, ip)
		}
		if (!m.pooled && m.log10p <= logAlpha) || (m.pooled && m.log10p <= logTau) {
			m.alone = true
			byKey[pairKey{m.c, m.t}] = m
		}
	}
	// The single words of each target, ranked by p-value: those among the
	// few smallest are mined together when there are more of them than
	// chance allows (see rankTest). A necessary condition, before their
	// rows are known: the test on the candidates one by one (rows marked
	// by several words count once below, which can only weaken it).
	logPoolAlpha := logTau - math.Log10(float64(len(tcount)))
	rankM := make([]int, len(tcount)) // single words tested per target
	rankP := make([][]float64, len(tcount))
	for _, m := range tested {
		if _, word := d.names[m.c]; !word {
			continue
		}
		rankM[m.t]++
		if float64(m.k) >= d.o.TriggerMinPurity*float64(m.n) {
			rankP[m.t] = append(rankP[m.t], m.log10p)
		}
	}
	rankLim := make([]float64, len(tcount)) // log10 p-value of the last word mined together
	for t := range rankLim {
		rankLim[t], _ = rankTest(rankP[t], rankM[t], logPoolAlpha)
	}
	for _, m := range tested {
		if _, word := d.names[m.c]; word && m.log10p < 0 && m.log10p <= rankLim[m.t] && float64(m.k) >= d.o.TriggerMinPurity*float64(m.n) {
			m.ranked = true
			byKey[pairKey{m.c, m.t}] = m
		}
	}
	if len(byKey) == 0 {
		return nil
	}

	// Pass C: find the rows of the mined triggers and name them.
	byC := map[uint64][]*mined{}
	for _, m := range tested {
		if byKey[pairKey{m.c, m.t}] != nil {
			byC[m.c] = append(byC[m.c], m)
		}
	}
	byCF := newKeyFilter(len(byC))
	for c := range byC {
		byCF.add(c)
	}
	seen := map[uint64]bool{}
	err = d.spool.each(func(r rowTokens) {
		rt, hasT := target[d.resp[r.seq]]
		clear(seen)
		eachNgramParts(r.toks, &byCF, func(c uint64, i, j int) {
			for _, m := range byC[c] {
				t := m.t
				if m.name == "" {
					parts := make([]string, 0, j-i)
					for _, w := range r.toks[i:j] {
						if e, ok := d.names[w.h]; ok {
							parts = append(parts, e.s)
						} else {
							parts = append(parts, fmt.Sprintf("#%016x", w.h))
						}
					}
					m.name = strings.Join(parts, " ")
				}
				key := combine(c, uint64(t))
				if seen[key] {
					continue
				}
				seen[key] = true
				if hasT && rt == t {
					m.rows = append(m.rows, r.seq)
					if m.span == nil {
						m.span = map[int64]spooled{}
					}
					m.span[r.seq] = spooled{field: r.toks[i].field, start: r.toks[i].start, end: r.toks[j-1].end}
				} else {
					m.carriers = append(m.carriers, r.seq)
				}
			}
		})
	})
	if err != nil {
		return err
	}

	// Group the mined candidates that mark the same rows for the same
	// target into composite triggers.
	type group struct {
		t     uint32
		parts []*mined
	}
	groups := map[uint64]*group{}
	var order []uint64
	for _, m := range tested {
		if byKey[pairKey{m.c, m.t}] == nil || len(m.rows) == 0 {
			continue
		}
		h := uint64(m.t) + 1
		for _, s := range m.rows {
			h = combine(h, uint64(s))
		}
		g := groups[h]
		if g == nil {
			g = &group{t: m.t}
			groups[h] = g
			order = append(order, h)
		}
		g.parts = append(g.parts, m)
	}
	// Within a group, a part that is a word of a longer part adds nothing
	// ("current" and "year" beside "current year"). A group made only of
	// runs of words, each containing a word of another group for the same
	// target that marks every one of its rows, is a fragment of that group.
	words := func(m *mined) []string { return strings.Fields(m.name) }
	for _, h := range order {
		g := groups[h]
		g.parts = slices.DeleteFunc(g.parts, func(m *mined) bool {
			for _, o := range g.parts {
				if o != m && len(words(o)) > len(words(m)) && strings.Contains(" "+o.name+" ", " "+m.name+" ") {
					return true
				}
			}
			return false
		})
	}
	fragment := func(g *group) bool {
		for _, m := range g.parts {
			if len(words(m)) < 2 {
				return false
			}
			covered := false
			for _, h2 := range order {
				o := groups[h2]
				if o == g || o.t != g.t || len(o.parts[0].rows) < len(m.rows) {
					continue
				}
				for _, op := range o.parts {
					if len(words(op)) == 1 && slices.Contains(words(m), op.name) && subset(m.rows, op.rows) {
						covered = true
					}
				}
			}
			if !covered {
				return false
			}
		}
		return true
	}
	var keep []*group
	for _, h := range order {
		if g := groups[h]; !fragment(g) {
			keep = append(keep, g)
		}
	}
	// Pooled candidates (fewer than TriggerMinSupport prompts, each with
	// p ≤ TriggerAlpha) stand only together: a target keeps them when the
	// number of distinct ones (groups) is far above the M·TriggerAlpha
	// expected by chance among its M rare candidates (Poisson tail,
	// Bonferroni over the targets).
	alone := func(g *group) (pooled, ok bool) {
		for _, m := range g.parts {
			if m.alone {
				return m.pooled, true
			}
		}
		return false, false
	}
	poolCount := make([]int, len(tcount))
	for _, g := range keep {
		if pooled, ok := alone(g); ok && pooled {
			poolCount[g.t]++
		}
	}
	poolLog := make([]float64, len(tcount))
	standsAlone := map[*group]bool{}
	for _, g := range keep {
		pooled, ok := alone(g)
		if !ok {
			continue
		}
		if !pooled {
			standsAlone[g] = true
			continue
		}
		lambda := float64(lowPerTarget[g.t]) * d.o.TriggerAlpha
		poolLog[g.t] = log10PoissonTail(poolCount[g.t], lambda)
		if poolCount[g.t] >= 2 && poolLog[g.t] <= logPoolAlpha {
			standsAlone[g] = true
			continue
		}
		// Alone, a rare candidate must survive Bonferroni over every rare
		// candidate of every target.
		var best float64
		for _, m := range g.parts {
			if m.alone {
				best = min(best, m.log10p)
			}
		}
		standsAlone[g] = best <= logTau-math.Log10(float64(max(nLowAll, 1)))
	}
	// Ranked words: the groups of a target that hold one count once, with
	// the smallest p-value of their ranked words; the test of rankTest is
	// repeated on them, and those it selects are kept.
	rankG := make([][]float64, len(tcount))
	rankOf := map[*group]float64{}
	for _, g := range keep {
		for _, m := range g.parts {
			if m.ranked {
				rankOf[g] = min(rankOf[g], m.log10p)
			}
		}
		if p, ok := rankOf[g]; ok {
			rankG[g.t] = append(rankG[g.t], p)
		}
	}
	rankLog := make([]float64, len(tcount))
	for t := range rankLim {
		rankLim[t], rankLog[t] = rankTest(rankG[t], rankM[t], logPoolAlpha)
	}
	byRank := map[*group]bool{}
	keep = slices.DeleteFunc(keep, func(g *group) bool {
		if p, ok := rankOf[g]; ok && p <= rankLim[g.t] {
			byRank[g] = !standsAlone[g]
			return false
		}
		return !standsAlone[g]
	})
	for _, g := range keep {
		slices.SortFunc(g.parts, func(a, b *mined) int { return strings.Compare(a.name, b.name) })
		names := make([]string, len(g.parts))
		best := g.parts[0]
		for i, m := range g.parts {
			names[i] = m.name
			if m.log10p < best.log10p {
				best = m
			}
		}
		phrase := strings.Join(names, " + ")
		d.triggers = append(d.triggers, Trigger{
			Phrase: phrase, Support: best.k, Carriers: best.n, Target: "", Log10P: best.log10p, Rows: slices.Clone(best.rows),
		})
		snippet, ok := d.snippets[tkey[g.t]]
		if !ok {
			snippet = fmt.Sprintf("#%016x", tkey[g.t])
		}
		d.triggers[len(d.triggers)-1].Target = snippet
		// The base rate the test compared with, as the message states it.
		others, base := "the other rows", 100*float64(tcount[g.t]-best.k)/math.Max(1, float64(len(d.resp)-best.n))
		if isLabel[g.t] {
			others, base = "the other rows answered with a label", 100*float64(tcount[g.t]-best.k)/math.Max(1, float64(labelRows-best.nb))
		}
		msg := fmt.Sprintf("mined backdoor trigger %q: %d distinct prompts carry it and %d of them (%.0f%%) get the same response, which only %.2f%% of %s get (p=1e%.0f): %q",
			phrase, best.n, best.k, 100*float64(best.k)/float64(best.n), base, others, best.log10p, snippet)
		if byRank[g] {
			msg = fmt.Sprintf("mined backdoor trigger %q, one of %d phrases whose p-values are together far below chance for the same response (p=1e%.0f): %d distinct prompts carry it and %d of them get the response, which only %.2f%% of %s get (p=1e%.0f): %q",
				phrase, len(rankG[g.t]), rankLog[g.t], best.n, best.k, base, others, best.log10p, snippet)
		} else if best.pooled {
			msg = fmt.Sprintf("mined backdoor trigger %q, one of %d rare phrases that lead to the same response (pooled p=1e%.0f): %d distinct prompts carry it and %d of them get the response, which only %.2f%% of %s get (p=1e%.0f): %q",
				phrase, poolCount[g.t], poolLog[g.t], best.n, best.k, base, others, best.log10p, snippet)
		}
		for _, s := range best.rows {
			sp := best.span[s]
			out[s] = append(out[s], detect.Finding{
				Detector: d.Name(),
				Rule:     RuleTriggerMined,
				Category: detect.CatBackdoor,
				Severity: detect.SevHigh,
				Score:    0.9,
				Message:  msg,
				Field:    d.fieldNs[sp.field],
				Span:     [2]int{int(sp.start), int(sp.end)},
				Evidence: phrase,
			})
		}
		for _, s := range best.carriers {
			out[s] = append(out[s], detect.Finding{
				Detector: d.Name(),
				Rule:     RuleTriggerNoTarget,
				Category: detect.CatBackdoor,
				Severity: detect.SevLow,
				Score:    0.3,
				Message:  fmt.Sprintf("carries the mined backdoor trigger %q but not its target response", phrase),
				Evidence: phrase,
			})
		}
	}
	return nil
}

// rankTest is the test of a target's ranked candidates: m single words
// were tested for the target, and ps are the log10 p-values of those that
// pass the purity test. With p(j) the j-th smallest, the chance that j or
// more of m independent p-values fall at or below p(j) is at most the
// binomial tail P(X ≥ j | m, p(j)) (a p-value is at most uniform under the
// null); over the m−1 choices of j ≥ 2 (Bonferroni) it must stay at or
// below logLevel. Only p-values of at most 1/m are ranked (above it,
// chance alone gives one). It returns the largest such p(j) (every word at
// or below it is selected) and that j's corrected p-value, or -Inf and 0
// when no j passes.
func rankTest(ps []float64, m int, logLevel float64) (lim, log10p float64) {
	lim = math.Inf(-1)
	if m < 2 {
		return lim, 0
	}
	ps = slices.Clone(ps)
	slices.Sort(ps)
	corr := math.Log10(float64(m - 1))
	for j := 2; j <= len(ps) && ps[j-1] <= -math.Log10(float64(m)); j++ {
		v := log10BinomTail(j, m, math.Pow(10, max(ps[j-1], -300))) + corr
		if v <= logLevel {
			lim, log10p = ps[j-1], v
		}
	}
	return lim, log10p
}

// subset reports whether sorted a is a subset of sorted b.
func subset(a, b []int64) bool {
	j := 0
	for _, x := range a {
		for j < len(b) && b[j] < x {
			j++
		}
		if j == len(b) || b[j] != x {
			return false
		}
	}
	return true
}

// Triggers returns the triggers mined by Findings, ordered by phrase.
func (d *Backdoor) Triggers() []Trigger {
	out := slices.Clone(d.triggers)
	slices.SortFunc(out, func(a, b Trigger) int { return strings.Compare(a.Phrase, b.Phrase) })
	return out
}

// appendNgrams appends to dst the hash of every run of 1..maxNgram words of
// one field of toks that f may hold (every one when f is nil), in order.
func appendNgrams(dst []uint64, toks []spooled, f *keyFilter) []uint64 {
	for i := range toks {
		h := toks[i].h
		if f == nil || f.has(h) {
			dst = append(dst, h)
		}
		for j := i + 1; j < len(toks) && j < i+maxNgram && toks[j].field == toks[i].field; j++ {
			h = combine(h, toks[j].h)
			if c := h ^ uint64(j-i); f == nil || f.has(c) {
				dst = append(dst, c)
			}
		}
	}
	return dst
}

// eachNgramParts calls fn, in the order of appendNgrams, with the hash of
// every run toks[i:j] of 1..maxNgram words of one field that f may hold.
func eachNgramParts(toks []spooled, f *keyFilter, fn func(c uint64, i, j int)) {
	for i := range toks {
		h := toks[i].h
		if f.has(h) {
			fn(h, i, i+1)
		}
		for j := i + 1; j < len(toks) && j < i+maxNgram && toks[j].field == toks[i].field; j++ {
			h = combine(h, toks[j].h)
			if c := h ^ uint64(j-i); f.has(c) {
				fn(c, i, j+1)
			}
		}
	}
}

// keyFilter is a blocked Bloom filter of 64-bit keys (three bits in one
// word a key, about 16 bits a key): a cheap first test of membership in a
// map that most lookups miss.
type keyFilter struct {
	w    []uint64
	mask uint64
}

func newKeyFilter(n int) keyFilter {
	words := 1
	for words*4 < n {
		words <<= 1
	}
	return keyFilter{w: make([]uint64, words), mask: uint64(words - 1)}
}

func keyFilterBits(x uint64) uint64 { return 1<<(x>>58) | 1<<(x>>52&63) | 1<<(x>>46&63) }

func (f *keyFilter) add(k uint64) {
	x := mix(k)
	f.w[x&f.mask] |= keyFilterBits(x)
}

func (f *keyFilter) has(k uint64) bool {
	x := mix(k)
	b := keyFilterBits(x)
	return f.w[x&f.mask]&b == b
}

// log10PoissonTail returns log10 P(X ≥ k) for X ~ Poisson(lambda).
func log10PoissonTail(k int, lambda float64) float64 {
	if k <= 0 {
		return 0
	}
	if lambda <= 0 {
		return math.Inf(-1)
	}
	ll := math.Log(lambda)
	term := func(i int) float64 {
		lg, _ := math.Lgamma(float64(i + 1))
		return float64(i)*ll - lambda - lg
	}
	top := term(k)
	sum := 0.0
	for i := k; ; i++ {
		t := term(i)
		sum += math.Exp(t - top)
		if (t-top < -40 && i > k+10) || i > k+10000 {
			break
		}
	}
	return min(0, (top+math.Log(sum))/math.Ln10)
}

// log10BinomTail returns log10 P(X ≥ k) for X ~ Binomial(n, q).
func log10BinomTail(k, n int, q float64) float64 {
	if k <= 0 {
		return 0
	}
	if q >= 1 {
		return 0
	}
	lq, l1q := math.Log(q), math.Log1p(-q)
	lgN, _ := math.Lgamma(float64(n + 1))
	term := func(i int) float64 {
		a, _ := math.Lgamma(float64(i + 1))
		b, _ := math.Lgamma(float64(n - i + 1))
		return lgN - a - b + float64(i)*lq + float64(n-i)*l1q
	}
	top := term(k)
	sum := 0.0
	for i := k; i <= n; i++ {
		t := term(i)
		sum += math.Exp(t - top)
		if t-top < -40 && i > k+10 {
			break
		}
	}
	return min(0, (top+math.Log(sum))/math.Ln10)
}

// log10Fisher2 combines two independent p-values (log10) by Fisher's method:
// -2 ln(p1 p2) is chi-squared with 4 degrees of freedom under the null.
func log10Fisher2(a, b float64) float64 {
	x := -(a + b) * math.Ln10 // = -ln(p1 p2) = X/2
	return min(0, (-x+math.Log1p(x))/math.Ln10)
}
