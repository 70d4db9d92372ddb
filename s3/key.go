package s3

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sentineldf/sentineldf"
)

// Key limits. They are the same as localfs's, so that a key valid on one
// backend is valid on the other and objects can move between them.
const (
	// MaxKeyBytes caps an object key (S3's limit).
	MaxKeyBytes = 1024
	// maxSegmentBytes caps one slash-separated segment: the NAME_MAX of
	// common filesystems, which file-backed S3 servers (versitygw's posix
	// backend) and localfs map keys onto.
	maxSegmentBytes = 255
)

// validateKey reports whether key is a safe object key: 1 to MaxKeyBytes
// bytes of valid UTF-8, slash-separated non-empty segments that are not "."
// or "..", and no backslash or control character. S3 itself accepts more,
// but such keys mean different objects on different backends (or escape a
// directory on file-backed ones), so every backend rejects them.
func validateKey(key string) error {
	switch {
	case key == "":
		return sentineldf.FieldError("key", "must not be empty")
	case len(key) > MaxKeyBytes:
		return sentineldf.FieldError("key", "is %d bytes; the limit is %d", len(key), MaxKeyBytes)
	case !utf8.ValidString(key):
		return sentineldf.FieldError("key", "is not valid UTF-8")
	}
	for _, r := range key {
		if r == '\\' {
			return sentineldf.FieldError("key", "must not contain a backslash")
		}
		if unicode.IsControl(r) {
			return sentineldf.FieldError("key", "must not contain control characters")
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return sentineldf.FieldError("key", "must be slash-separated non-empty segments (no leading, trailing or doubled slash)")
		case seg == "." || seg == "..":
			return sentineldf.FieldError("key", "must not contain a %q segment", seg)
		case len(seg) > maxSegmentBytes:
			return sentineldf.FieldError("key", "has a segment of %d bytes; the limit is %d", len(seg), maxSegmentBytes)
		}
	}
	return nil
}
