package localfs

import (
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sentineldf/sentineldf"
)

// Key limits.
const (
	// MaxKeyBytes caps an object key (S3's limit).
	MaxKeyBytes = 1024
	// maxSegmentBytes caps one slash-separated segment: the NAME_MAX of
	// common filesystems, so a valid key is always a valid path.
	maxSegmentBytes = 255
)

// validateKey reports whether key is a safe object key: 1 to MaxKeyBytes
// bytes of valid UTF-8, slash-separated non-empty segments that are not "."
// or "..", and no backslash or control character. A valid key is a local
// relative path, so joining it under the objects directory cannot escape
// it; os.Root enforces the same at open time (symbolic links included).
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
	// Defence in depth: the rules above imply this.
	if !filepath.IsLocal(filepath.FromSlash(key)) {
		return sentineldf.FieldError("key", "is not a local path")
	}
	return nil
}
