package scan

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"

	"github.com/sentineldf/sentineldf/detect"
)

// The binary encoding of a detect.Result, used by the cache and the
// two-phase spool. It is compact (a clean result is 45 bytes) and cheap to
// decode, and it round-trips every field exactly, the score's bits included.
//
//	version byte (codecVersion)
//	sha256  32 bytes (raw; zero bytes when the result has no valid hex digest)
//	risk    uvarint
//	score   8 bytes, IEEE-754 bits, little endian
//	band    string
//	n       uvarint, then n findings:
//	  detector, rule, category, severity: string
//	  score: 8 bytes
//	  message, field: string
//	  span: 2 varints
//	  evidence: string
//
// where string is a uvarint length followed by the bytes.
const codecVersion = 1

var errCodec = errors.New("corrupt encoded result")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendFloat(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

// appendResult appends the encoding of r to b.
func appendResult(b []byte, r *detect.Result) []byte {
	b = append(b, codecVersion)
	var sum [32]byte
	if len(r.SHA256) == 64 {
		if _, err := hex.Decode(sum[:], []byte(r.SHA256)); err != nil {
			sum = [32]byte{}
		}
	}
	b = append(b, sum[:]...)
	b = binary.AppendUvarint(b, uint64(max(r.Risk, 0)))
	b = appendFloat(b, r.Score)
	b = appendString(b, string(r.Band))
	b = binary.AppendUvarint(b, uint64(len(r.Findings)))
	for i := range r.Findings {
		f := &r.Findings[i]
		b = appendString(b, f.Detector)
		b = appendString(b, f.Rule)
		b = appendString(b, string(f.Category))
		b = appendString(b, string(f.Severity))
		b = appendFloat(b, f.Score)
		b = appendString(b, f.Message)
		b = appendString(b, f.Field)
		b = binary.AppendVarint(b, int64(f.Span[0]))
		b = binary.AppendVarint(b, int64(f.Span[1]))
		b = appendString(b, f.Evidence)
	}
	return b
}

// decoder reads the encoding written by appendResult. The first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCodec
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) float() float64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// decodeResult decodes a result encoded by appendResult. The whole of b must
// be one result.
func decodeResult(b []byte) (detect.Result, error) {
	var r detect.Result
	if len(b) < 1+32 || b[0] != codecVersion {
		return r, errCodec
	}
	var sum [32]byte
	copy(sum[:], b[1:33])
	if sum != ([32]byte{}) {
		r.SHA256 = hex.EncodeToString(sum[:])
	}
	d := decoder{b: b[33:]}
	risk := d.uvarint()
	if risk > 100 {
		d.fail()
	}
	r.Risk = int(risk)
	r.Score = d.float()
	r.Band = detect.Band(d.string())
	n := d.uvarint()
	// Every finding takes at least 25 bytes; refuse counts the rest of b
	// cannot hold so a corrupt count cannot allocate without bound.
	if n > uint64(len(d.b)/25) {
		d.fail()
		n = 0
	}
	r.Findings = make([]detect.Finding, n)
	for i := range r.Findings {
		f := &r.Findings[i]
		f.Detector = d.string()
		f.Rule = d.string()
		f.Category = detect.Category(d.string())
		f.Severity = detect.Severity(d.string())
		f.Score = d.float()
		f.Message = d.string()
		f.Field = d.string()
		f.Span[0] = int(d.varint())
		f.Span[1] = int(d.varint())
		f.Evidence = d.string()
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	if d.err != nil {
		return detect.Result{}, d.err
	}
	return r, nil
}

// NewLine returns the results line of a document with identity id, found
// at source, whose final result is r.
func NewLine(id, source string, r *detect.Result) Line {
	return Line{
		ID: id, Source: source, SHA256: r.SHA256, Risk: r.Risk, Score: r.Score,
		Band: r.Band, Quarantined: r.Quarantined(), Findings: r.Findings,
	}
}

// MarshalLine encodes l exactly as a line of the results file, without the
// trailing newline.
func MarshalLine(l *Line) ([]byte, error) {
	if b, ok := appendLine(nil, l); ok {
		return b[:len(b)-1], nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(l); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
