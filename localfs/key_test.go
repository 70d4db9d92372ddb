package localfs

import (
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sentineldf/sentineldf"
)

func TestValidateKey(t *testing.T) {
	for _, tt := range []struct {
		key string
		ok  bool
	}{
		{"a", true},
		{"org/scan/input/0/data.jsonl", true},
		{"org/scan/input/0/données 日本語.jsonl", true},
		{".hidden/..dots/file.", true},
		{strings.Repeat("a", 255), true},
		{strings.Repeat("a/", 511) + "b", true}, // 1023 bytes
		{"", false},
		{"/abs", false},
		{"trailing/", false},
		{"a//b", false},
		{".", false},
		{"..", false},
		{"../x", false},
		{"a/..", false},
		{"a/../../b", false},
		{"a/./b", false},
		{`a\b`, false},
		{"a\x00b", false},
		{"a\tb", false},
		{"a\u0085b", false}, // C1 control
		{"\xff", false},
		{strings.Repeat("a", 256), false},
		{strings.Repeat("a/", 512) + "b", false}, // 1025 bytes
	} {
		err := validateKey(tt.key)
		if (err == nil) != tt.ok {
			t.Errorf("validateKey(%.40q) = %v, want ok=%v", tt.key, err, tt.ok)
		}
		if err != nil && sentineldf.ErrorCode(err) != sentineldf.EINVALID {
			t.Errorf("validateKey(%.40q) code %s, want %s", tt.key, sentineldf.ErrorCode(err), sentineldf.EINVALID)
		}
	}
}

// FuzzValidateKey checks that every accepted key is a clean local path that
// stays under the objects directory.
func FuzzValidateKey(f *testing.F) {
	for _, s := range []string{"a", "org/scan/x.jsonl", "../x", "a/../../b", "/abs", `a\b`, "a//b", "é/ü", "a/.", ".a/b.", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if validateKey(key) != nil {
			return
		}
		if !utf8.ValidString(key) || len(key) > MaxKeyBytes {
			t.Fatalf("accepted %q: invalid UTF-8 or too long", key)
		}
		if strings.ContainsAny(key, "\\\x00") {
			t.Fatalf("accepted %q: backslash or NUL", key)
		}
		p := filepath.Join("/root", objectPath(key))
		if !strings.HasPrefix(p, "/root/objects/") {
			t.Fatalf("accepted %q: it resolves to %s", key, p)
		}
		if filepath.ToSlash(p) != "/root/objects/"+key {
			t.Fatalf("accepted %q: it is not clean (resolves to %s)", key, p)
		}
		for seg := range strings.SplitSeq(key, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("accepted %q: segment %q", key, seg)
			}
		}
	})
}
