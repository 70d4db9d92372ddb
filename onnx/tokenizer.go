package onnx

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Tokenizer is a HuggingFace tokenizer read from a tokenizer.json file. It
// supports the WordPiece model (BERT-style) and the Unigram model
// (SentencePiece, e.g. DeBERTa-v2/v3 and so Prompt Guard), with the
// normalizers, pre-tokenizers and post-processors those use; see
// docs/onnx.md for the exact list. It is immutable and safe for concurrent
// use.
//
// Text is split into words on the original text first and each word is
// normalised on its own, so every token carries the byte span of the
// original text it came from.
type Tokenizer struct {
	// MaxLength is the longest input the model takes, special tokens
	// included (truncation.max_length, else 512).
	MaxLength int
	// PadID is the id of the padding token (padding.pad_id, else 0).
	PadID int64
	// Prefix and Suffix are the special tokens the post-processor puts
	// around a single sequence (e.g. [CLS] and [SEP]).
	Prefix, Suffix []int64

	norm  []normStep
	pre   []preStep
	model tokModel
}

// Token is one token id with the byte span [Start, End) of the original
// text it covers. Tokens of one word that cannot be mapped back exactly
// carry the whole word's span.
type Token struct {
	ID         int64
	Start, End int
}

// tokModel turns one normalised, pre-tokenised word into pieces.
type tokModel interface {
	// tokenize returns the ids and, for each, its [start,end) rune range in
	// word (ranges may include prefix runes the pre-tokenizer added).
	tokenize(word []rune, emit func(id int64, start, end int))
}

type tokenizerJSON struct {
	Truncation *struct {
		MaxLength int `json:"max_length"`
	} `json:"truncation"`
	Padding *struct {
		PadID int64 `json:"pad_id"`
	} `json:"padding"`
	AddedTokens []struct {
		ID      int64  `json:"id"`
		Content string `json:"content"`
	} `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Model         json.RawMessage `json:"model"`
}

// maxTokenizerBytes bounds a tokenizer.json file.
const maxTokenizerBytes = 64 << 20

// ParseTokenizer reads a HuggingFace tokenizer.json.
func ParseTokenizer(data []byte) (*Tokenizer, error) {
	if len(data) > maxTokenizerBytes {
		return nil, fmt.Errorf("tokenizer: file of %d bytes is larger than %d", len(data), maxTokenizerBytes)
	}
	var j tokenizerJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t := &Tokenizer{MaxLength: 512}
	if j.Truncation != nil && j.Truncation.MaxLength > 0 {
		t.MaxLength = j.Truncation.MaxLength
	}
	if j.Padding != nil {
		t.PadID = j.Padding.PadID
	}
	added := map[string]int64{}
	for _, a := range j.AddedTokens {
		added[a.Content] = a.ID
	}
	var err error
	if t.model, err = parseTokModel(j.Model, added); err != nil {
		return nil, fmt.Errorf("tokenizer: model: %w", err)
	}
	if t.norm, err = parseNormalizer(j.Normalizer); err != nil {
		return nil, fmt.Errorf("tokenizer: normalizer: %w", err)
	}
	if t.pre, err = parsePreTokenizer(j.PreTokenizer); err != nil {
		return nil, fmt.Errorf("tokenizer: pre_tokenizer: %w", err)
	}
	if t.Prefix, t.Suffix, err = parsePostProcessor(j.PostProcessor, added); err != nil {
		return nil, fmt.Errorf("tokenizer: post_processor: %w", err)
	}
	if len(t.Prefix)+len(t.Suffix) >= t.MaxLength {
		return nil, fmt.Errorf("tokenizer: max_length %d leaves no room after %d special tokens", t.MaxLength, len(t.Prefix)+len(t.Suffix))
	}
	return t, nil
}

type typed struct {
	Type string `json:"type"`
}

func isNull(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "" || s == "null"
}

// --- models -----------------------------------------------------------------

func parseTokModel(raw json.RawMessage, added map[string]int64) (tokModel, error) {
	if isNull(raw) {
		return nil, errors.New("missing")
	}
	var ty typed
	if err := json.Unmarshal(raw, &ty); err != nil {
		return nil, err
	}
	switch ty.Type {
	case "WordPiece":
		var m struct {
			Vocab    map[string]int64 `json:"vocab"`
			Unk      string           `json:"unk_token"`
			Prefix   *string          `json:"continuing_subword_prefix"`
			MaxChars int              `json:"max_input_chars_per_word"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, err
		}
		wp := &wordPiece{vocab: m.Vocab, prefix: "##", maxChars: m.MaxChars}
		if m.Prefix != nil {
			wp.prefix = *m.Prefix
		}
		if wp.maxChars <= 0 {
			wp.maxChars = 100
		}
		id, ok := m.Vocab[m.Unk]
		if !ok {
			if id, ok = added[m.Unk]; !ok {
				return nil, fmt.Errorf("unk_token %q is not in the vocabulary", m.Unk)
			}
		}
		wp.unk = id
		for k := range m.Vocab {
			wp.maxPiece = max(wp.maxPiece, utf8.RuneCountInString(k))
		}
		return wp, nil
	case "Unigram":
		var m struct {
			Vocab [][2]json.RawMessage `json:"vocab"`
			UnkID *int64               `json:"unk_id"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, err
		}
		u := &unigram{pieces: make(map[string]unigramPiece, len(m.Vocab)), unk: -1}
		minScore := math.Inf(1)
		for i, p := range m.Vocab {
			var s string
			var score float64
			if err := json.Unmarshal(p[0], &s); err != nil {
				return nil, fmt.Errorf("vocab entry %d: %w", i, err)
			}
			if err := json.Unmarshal(p[1], &score); err != nil {
				return nil, fmt.Errorf("vocab entry %d: %w", i, err)
			}
			if _, dup := u.pieces[s]; !dup {
				u.pieces[s] = unigramPiece{id: int64(i), score: score}
			}
			u.maxPiece = max(u.maxPiece, utf8.RuneCountInString(s))
			minScore = min(minScore, score)
		}
		if m.UnkID == nil || *m.UnkID < 0 || *m.UnkID >= int64(len(m.Vocab)) {
			return nil, errors.New("unk_id is missing or out of range")
		}
		u.unk = *m.UnkID
		// As in HuggingFace tokenizers: an unknown character costs 10 more
		// than the rarest piece.
		u.unkScore = minScore - 10
		return u, nil
	}
	return nil, fmt.Errorf("model type %q is not supported (supported: WordPiece, Unigram)", ty.Type)
}

// wordPiece is BERT's greedy longest-match-first subword model.
type wordPiece struct {
	vocab    map[string]int64
	unk      int64
	prefix   string
	maxChars int
	maxPiece int
}

func (w *wordPiece) tokenize(word []rune, emit func(id int64, start, end int)) {
	if len(word) > w.maxChars {
		emit(w.unk, 0, len(word))
		return
	}
	type piece struct {
		id         int64
		start, end int
	}
	var pieces []piece
	var sb strings.Builder
	for start := 0; start < len(word); {
		found := false
		for end := min(len(word), start+w.maxPiece); end > start; end-- {
			sb.Reset()
			if start > 0 {
				sb.WriteString(w.prefix)
			}
			sb.WriteString(string(word[start:end]))
			if id, ok := w.vocab[sb.String()]; ok {
				pieces = append(pieces, piece{id, start, end})
				start = end
				found = true
				break
			}
		}
		if !found {
			// One unknown piece makes the whole word unknown.
			emit(w.unk, 0, len(word))
			return
		}
	}
	for _, p := range pieces {
		emit(p.id, p.start, p.end)
	}
}

type unigramPiece struct {
	id    int64
	score float64
}

// unigram is SentencePiece's unigram model: the segmentation of highest
// total log-probability (Viterbi), unknown characters merged into one unk.
type unigram struct {
	pieces   map[string]unigramPiece
	unk      int64
	unkScore float64
	maxPiece int
}

func (u *unigram) tokenize(word []rune, emit func(id int64, start, end int)) {
	n := len(word)
	best := make([]float64, n+1)
	from := make([]int, n+1)
	ids := make([]int64, n+1)
	for i := 1; i <= n; i++ {
		best[i] = math.Inf(-1)
	}
	var sb strings.Builder
	for end := 1; end <= n; end++ {
		for start := max(0, end-u.maxPiece); start < end; start++ {
			if math.IsInf(best[start], -1) {
				continue
			}
			sb.Reset()
			sb.WriteString(string(word[start:end]))
			if p, ok := u.pieces[sb.String()]; ok {
				if s := best[start] + p.score; s > best[end] {
					best[end], from[end], ids[end] = s, start, p.id
				}
			}
		}
		if s := best[end-1] + u.unkScore; s > best[end] {
			best[end], from[end], ids[end] = s, end-1, u.unk
		}
	}
	type seg struct {
		id         int64
		start, end int
	}
	var segs []seg
	for end := n; end > 0; end = from[end] {
		segs = append(segs, seg{ids[end], from[end], end})
	}
	// Reverse, merging runs of unknown characters.
	var prev *seg
	var out []seg
	for i := len(segs) - 1; i >= 0; i-- {
		s := segs[i]
		if prev != nil && s.id == u.unk && prev.id == u.unk {
			prev.end = s.end
			continue
		}
		out = append(out, s)
		prev = &out[len(out)-1]
	}
	for _, s := range out {
		emit(s.id, s.start, s.end)
	}
}

// --- normalizers ------------------------------------------------------------

// normStep transforms one word.
type normStep func(s string) string

func parseNormalizer(raw json.RawMessage) ([]normStep, error) {
	if isNull(raw) {
		return nil, nil
	}
	var ty typed
	if err := json.Unmarshal(raw, &ty); err != nil {
		return nil, err
	}
	switch ty.Type {
	case "Sequence":
		var s struct {
			Normalizers []json.RawMessage `json:"normalizers"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		var out []normStep
		for _, n := range s.Normalizers {
			steps, err := parseNormalizer(n)
			if err != nil {
				return nil, err
			}
			out = append(out, steps...)
		}
		return out, nil
	case "BertNormalizer":
		var b struct {
			CleanText    *bool `json:"clean_text"`
			StripAccents *bool `json:"strip_accents"`
			Lowercase    *bool `json:"lowercase"`
		}
		if err := json.Unmarshal(raw, &b); err != nil {
			return nil, err
		}
		lower := b.Lowercase == nil || *b.Lowercase
		strip := lower
		if b.StripAccents != nil {
			strip = *b.StripAccents
		}
		var out []normStep
		if b.CleanText == nil || *b.CleanText {
			out = append(out, cleanText)
		}
		if strip {
			out = append(out, stripAccents)
		}
		if lower {
			out = append(out, strings.ToLower)
		}
		return out, nil
	case "Lowercase":
		return []normStep{strings.ToLower}, nil
	case "NFC":
		return []normStep{norm.NFC.String}, nil
	case "NFD":
		return []normStep{norm.NFD.String}, nil
	case "NFKC", "Precompiled":
		// Precompiled holds SentencePiece's compiled normalisation rules,
		// which are NFKC-based: NFKC is the close, documented substitute.
		return []normStep{norm.NFKC.String}, nil
	case "NFKD":
		return []normStep{norm.NFKD.String}, nil
	case "StripAccents":
		return []normStep{stripAccents}, nil
	case "Strip":
		return nil, nil // words carry no surrounding whitespace
	case "Replace":
		var r struct {
			Pattern struct {
				String *string `json:"String"`
				Regex  *string `json:"Regex"`
			} `json:"pattern"`
			Content string `json:"content"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, err
		}
		to := r.Content
		switch {
		case r.Pattern.String != nil:
			from := *r.Pattern.String
			if strings.TrimSpace(from) == "" {
				return nil, nil // whitespace never reaches a word
			}
			return []normStep{func(s string) string { return strings.ReplaceAll(s, from, to) }}, nil
		case r.Pattern.Regex != nil:
			re, err := regexp.Compile(*r.Pattern.Regex)
			if err != nil {
				return nil, fmt.Errorf("Replace: %w", err)
			}
			return []normStep{func(s string) string { return re.ReplaceAllLiteralString(s, to) }}, nil
		}
		return nil, errors.New("Replace has no pattern")
	}
	return nil, fmt.Errorf("normalizer %q is not supported (supported: Sequence, BertNormalizer, Lowercase, NFC, NFD, NFKC, NFKD, Precompiled, StripAccents, Strip, Replace)", ty.Type)
}

// cleanText drops control and format characters, as BERT's normaliser does.
func cleanText(s string) string {
	return strings.Map(func(r rune) rune {
		if r == 0 || r == utf8.RuneError || (unicode.IsControl(r) || unicode.Is(unicode.Cf, r)) && !unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

func stripAccents(s string) string {
	d := norm.NFD.String(s)
	return strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Mn, r) {
			return -1
		}
		return r
	}, d)
}

// --- pre-tokenizers ---------------------------------------------------------

// preStep is one pre-tokenizer.
type preStep struct {
	kind string // "bert", "whitespace", "wsplit", "punct", "digits", "metaspace"
	// metaspace
	replacement string
	prefixFirst bool // add the replacement before the first word
	// digits
	individual bool
}

func parsePreTokenizer(raw json.RawMessage) ([]preStep, error) {
	if isNull(raw) {
		return []preStep{{kind: "wsplit"}}, nil
	}
	var ty typed
	if err := json.Unmarshal(raw, &ty); err != nil {
		return nil, err
	}
	switch ty.Type {
	case "Sequence":
		var s struct {
			Pre []json.RawMessage `json:"pretokenizers"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		var out []preStep
		for _, p := range s.Pre {
			steps, err := parsePreTokenizer(p)
			if err != nil {
				return nil, err
			}
			out = append(out, steps...)
		}
		return out, nil
	case "BertPreTokenizer":
		return []preStep{{kind: "bert"}}, nil
	case "Whitespace":
		return []preStep{{kind: "whitespace"}}, nil
	case "WhitespaceSplit":
		return []preStep{{kind: "wsplit"}}, nil
	case "Punctuation":
		return []preStep{{kind: "punct"}}, nil
	case "Digits":
		var d struct {
			Individual bool `json:"individual_digits"`
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			return nil, err
		}
		return []preStep{{kind: "digits", individual: d.Individual}}, nil
	case "Metaspace":
		var m struct {
			Replacement    string  `json:"replacement"`
			AddPrefixSpace *bool   `json:"add_prefix_space"`
			PrependScheme  *string `json:"prepend_scheme"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, err
		}
		st := preStep{kind: "metaspace", replacement: m.Replacement, prefixFirst: true}
		if st.replacement == "" {
			st.replacement = "▁"
		}
		if m.PrependScheme != nil {
			st.prefixFirst = *m.PrependScheme != "never"
		} else if m.AddPrefixSpace != nil {
			st.prefixFirst = *m.AddPrefixSpace
		}
		return []preStep{st}, nil
	}
	return nil, fmt.Errorf("pre-tokenizer %q is not supported (supported: Sequence, BertPreTokenizer, Whitespace, WhitespaceSplit, Punctuation, Digits, Metaspace)", ty.Type)
}

// word is a piece of the original text: its byte span, and the prefix the
// pre-tokenizer adds (Metaspace's "▁").
type word struct {
	start, end int
	prefix     string
}

// isBertPunct is BERT's notion of punctuation: ASCII symbols and Unicode P*.
func isBertPunct(r rune) bool {
	if r >= 33 && r <= 47 || r >= 58 && r <= 64 || r >= 91 && r <= 96 || r >= 123 && r <= 126 {
		return true
	}
	return unicode.IsPunct(r)
}

// isCJK reports the CJK ideographs BERT splits into single characters.
func isCJK(r rune) bool {
	return r >= 0x4E00 && r <= 0x9FFF || r >= 0x3400 && r <= 0x4DBF || r >= 0x20000 && r <= 0x2A6DF ||
		r >= 0x2A700 && r <= 0x2B73F || r >= 0x2B740 && r <= 0x2B81F || r >= 0x2B820 && r <= 0x2CEAF ||
		r >= 0xF900 && r <= 0xFAFF || r >= 0x2F800 && r <= 0x2FA1F
}

// splitWords splits text[w.start:w.end] by the pre-tokenizer step.
func (p preStep) split(text string, w word, out []word) []word {
	// class returns 0 for a separator (dropped), 1 for a character that
	// stands alone, 2+ for a run-forming class.
	var class func(r rune) int
	switch p.kind {
	case "bert":
		class = func(r rune) int {
			switch {
			case unicode.IsSpace(r):
				return 0
			case isBertPunct(r) || isCJK(r):
				return 1
			}
			return 2
		}
	case "whitespace":
		class = func(r rune) int {
			switch {
			case unicode.IsSpace(r):
				return 0
			case r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
				return 2
			}
			return 3
		}
	case "punct":
		class = func(r rune) int {
			if isBertPunct(r) {
				return 1
			}
			return 2
		}
	case "digits":
		class = func(r rune) int {
			if unicode.IsDigit(r) {
				if p.individual {
					return 1
				}
				return 3
			}
			return 2
		}
	default: // wsplit, metaspace
		class = func(r rune) int {
			if unicode.IsSpace(r) {
				return 0
			}
			return 2
		}
	}
	first := len(out)
	start, cur := -1, -1
	flush := func(end int) {
		if start >= 0 {
			out = append(out, word{start: start, end: end})
			start = -1
		}
	}
	for i, r := range text[w.start:w.end] {
		i += w.start
		c := class(r)
		switch {
		case c == 0:
			flush(i)
		case c == 1:
			flush(i)
			out = append(out, word{start: i, end: i + utf8.RuneLen(r)})
		case c != cur:
			flush(i)
			start = i
		}
		cur = c
	}
	flush(w.end)
	// Pieces of a word keep its prefix on the first piece only.
	if len(out) > first {
		out[first].prefix = w.prefix
	}
	if p.kind == "metaspace" {
		for i := first; i < len(out); i++ {
			if i == 0 && !p.prefixFirst && w.start == 0 {
				continue
			}
			out[i].prefix = p.replacement
		}
	}
	return out
}

// --- post-processors --------------------------------------------------------

func parsePostProcessor(raw json.RawMessage, added map[string]int64) (prefix, suffix []int64, err error) {
	if isNull(raw) {
		return nil, nil, nil
	}
	var ty typed
	if err := json.Unmarshal(raw, &ty); err != nil {
		return nil, nil, err
	}
	switch ty.Type {
	case "BertProcessing", "RobertaProcessing":
		var b struct {
			Sep [2]json.RawMessage `json:"sep"`
			Cls [2]json.RawMessage `json:"cls"`
		}
		if err := json.Unmarshal(raw, &b); err != nil {
			return nil, nil, err
		}
		var cls, sep int64
		if err := json.Unmarshal(b.Cls[1], &cls); err != nil {
			return nil, nil, fmt.Errorf("cls: %w", err)
		}
		if err := json.Unmarshal(b.Sep[1], &sep); err != nil {
			return nil, nil, fmt.Errorf("sep: %w", err)
		}
		return []int64{cls}, []int64{sep}, nil
	case "TemplateProcessing":
		var tp struct {
			Single []struct {
				Special *struct {
					ID string `json:"id"`
				} `json:"SpecialToken"`
				Sequence *struct {
					ID string `json:"id"`
				} `json:"Sequence"`
			} `json:"single"`
			Special map[string]struct {
				IDs []int64 `json:"ids"`
			} `json:"special_tokens"`
		}
		if err := json.Unmarshal(raw, &tp); err != nil {
			return nil, nil, err
		}
		seen := false
		for _, p := range tp.Single {
			switch {
			case p.Sequence != nil:
				if seen {
					return nil, nil, errors.New("template repeats the sequence")
				}
				seen = true
			case p.Special != nil:
				ids := tp.Special[p.Special.ID].IDs
				if ids == nil {
					id, ok := added[p.Special.ID]
					if !ok {
						return nil, nil, fmt.Errorf("special token %q has no id", p.Special.ID)
					}
					ids = []int64{id}
				}
				if seen {
					suffix = append(suffix, ids...)
				} else {
					prefix = append(prefix, ids...)
				}
			}
		}
		if !seen {
			return nil, nil, errors.New("single template has no sequence")
		}
		return prefix, suffix, nil
	case "ByteLevel":
		return nil, nil, nil // offsets trimming only
	}
	return nil, nil, fmt.Errorf("post-processor %q is not supported (supported: TemplateProcessing, BertProcessing, RobertaProcessing)", ty.Type)
}

// --- encoding ---------------------------------------------------------------

// Encode tokenizes text without special tokens. Each token carries the byte
// span of text it covers.
func (t *Tokenizer) Encode(text string) []Token {
	words := []word{{start: 0, end: len(text)}}
	for _, p := range t.pre {
		next := make([]word, 0, len(words))
		for _, w := range words {
			next = p.split(text, w, next)
		}
		words = next
	}
	var out []Token
	for _, w := range words {
		orig := text[w.start:w.end]
		n := orig
		for _, f := range t.norm {
			n = f(n)
		}
		if n == "" {
			continue
		}
		in := []rune(w.prefix + n)
		pre := utf8.RuneCountInString(w.prefix)
		// Map rune positions of the normalised word back to byte offsets
		// of the original when normalisation kept the rune count.
		var offs []int
		if utf8.RuneCountInString(orig) == len(in)-pre {
			for i := range orig {
				offs = append(offs, w.start+i)
			}
			offs = append(offs, w.end)
		}
		t.model.tokenize(in, func(id int64, s, e int) {
			tok := Token{ID: id, Start: w.start, End: w.end}
			if offs != nil {
				tok.Start = offs[max(s-pre, 0)]
				tok.End = offs[max(e-pre, 0)]
				if tok.End <= tok.Start { // a piece of the prefix alone
					tok.Start, tok.End = w.start, min(w.start+1, w.end)
				}
			}
			out = append(out, tok)
		})
	}
	return out
}

// Window is a run of tokens that fits the model, with special tokens added.
type Window struct {
	// IDs are the model's input ids (special tokens included, no padding).
	IDs []int64
	// Start and End are the byte span of the text the window covers.
	Start, End int
}

// Windows encodes text into windows of at most MaxLength ids (maxLen when
// positive and smaller), consecutive windows overlapping by stride tokens.
// Text with no tokens gives no windows.
func (t *Tokenizer) Windows(text string, maxLen, stride int) []Window {
	toks := t.Encode(text)
	if len(toks) == 0 {
		return nil
	}
	if maxLen <= 0 || maxLen > t.MaxLength {
		maxLen = t.MaxLength
	}
	body := max(maxLen-len(t.Prefix)-len(t.Suffix), 1)
	stride = min(max(stride, 0), body/2)
	var out []Window
	for start := 0; ; start += body - stride {
		end := min(start+body, len(toks))
		ids := make([]int64, 0, end-start+len(t.Prefix)+len(t.Suffix))
		ids = append(ids, t.Prefix...)
		for _, tk := range toks[start:end] {
			ids = append(ids, tk.ID)
		}
		ids = append(ids, t.Suffix...)
		out = append(out, Window{IDs: ids, Start: toks[start].Start, End: toks[end-1].End})
		if end == len(toks) {
			return out
		}
	}
}
