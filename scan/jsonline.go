package scan

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/sentineldf/sentineldf/detect"
)

// appendLine appends l as a line of the results file, with its newline:
// byte for byte what encoding/json's Encoder (SetEscapeHTML(false)) writes
// for a Line, without reflection — results encoding was the largest
// single cost of writing results (TestAppendLineMatchesJSON, FuzzAppendLine).
// ok is false for a score that JSON cannot hold (NaN, ±Inf), where the
// caller falls back to encoding/json and its error.
func appendLine(b []byte, l *Line) (_ []byte, ok bool) {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, l.ID)
	b = append(b, `,"source":`...)
	b = appendJSONString(b, l.Source)
	b = append(b, `,"sha256":`...)
	b = appendJSONString(b, l.SHA256)
	b = append(b, `,"risk":`...)
	b = strconv.AppendInt(b, int64(l.Risk), 10)
	b = append(b, `,"score":`...)
	if b, ok = appendJSONFloat(b, l.Score); !ok {
		return b, false
	}
	b = append(b, `,"band":`...)
	b = appendJSONString(b, string(l.Band))
	b = append(b, `,"quarantined":`...)
	b = strconv.AppendBool(b, l.Quarantined)
	b = append(b, `,"findings":`...)
	if l.Findings == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range l.Findings {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = appendFinding(b, &l.Findings[i]); !ok {
				return b, false
			}
		}
		b = append(b, ']')
	}
	return append(b, "}\n"...), true
}

func appendFinding(b []byte, f *detect.Finding) (_ []byte, ok bool) {
	b = append(b, `{"detector":`...)
	b = appendJSONString(b, f.Detector)
	b = append(b, `,"rule":`...)
	b = appendJSONString(b, f.Rule)
	b = append(b, `,"category":`...)
	b = appendJSONString(b, string(f.Category))
	b = append(b, `,"severity":`...)
	b = appendJSONString(b, string(f.Severity))
	b = append(b, `,"score":`...)
	if b, ok = appendJSONFloat(b, f.Score); !ok {
		return b, false
	}
	b = append(b, `,"message":`...)
	b = appendJSONString(b, f.Message)
	b = append(b, `,"field":`...)
	b = appendJSONString(b, f.Field)
	b = append(b, `,"span":[`...)
	b = strconv.AppendInt(b, int64(f.Span[0]), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(f.Span[1]), 10)
	b = append(b, `],"evidence":`...)
	b = appendJSONString(b, f.Evidence)
	return append(b, '}'), true
}

// appendJSONFloat is encoding/json's float64 encoding (ES6 number format).
func appendJSONFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, false
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9, as encoding/json does.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

const hexDigits = "0123456789abcdef"

// appendJSONString is encoding/json's string encoding without HTML
// escaping: control characters escaped (\b \f \n \r \t short), invalid
// UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
