// Command confusables generates detect/confusables_table.go, the table of
// Unicode lookalike characters that detect.Normalizer folds to ASCII.
//
// It reads a confusables.txt file in the format of Unicode's UTS #39 data
// (source ; target code points ; type # comment) and keeps, for every
// character that NFKC leaves unchanged and that is not a mark, format,
// control, space or decimal digit, the lower-cased prototype when that
// prototype is printable ASCII. Upper-case sources whose prototype is "l"
// (I-like glyphs: Greek Ι, Cyrillic І, Ӏ) fold to "i", since normalised text
// is lower case. Lower-case sources without an ASCII prototype are not
// folded through their upper case (Cyrillic в stays в: it looks like a
// small-capital B, not like b). Characters whose prototype is two
// apostrophes (“ ” ″ ...) fold to a double quote.
//
// Usage (from the detect directory, see the go:generate line in normalize.go):
//
//	go run ./gen/confusables -in gen/confusables/testdata/confusables.txt -out confusables_table.go
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"go/format"
	"io"
	"log"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// lowLimit is the size of the directly indexed part of the table.
const lowLimit = 0x800

func main() {
	in := flag.String("in", "gen/confusables/testdata/confusables.txt", "confusables.txt to read")
	out := flag.String("out", "confusables_table.go", "Go file to write")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		log.Fatal(err)
	}
}

// run generates the table from the file in and writes it to out.
func run(in, out string) error {
	f, err := os.Open(in)
	if err != nil {
		return fmt.Errorf("open confusables: %w", err)
	}
	defer f.Close()
	protos, header, err := parse(f)
	if err != nil {
		return fmt.Errorf("parse %s: %w", in, err)
	}
	folds := buildFolds(protos)
	src, err := render(folds, header)
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, src, 0o644); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// parse reads source → prototype mappings and the version lines of the
// file's header.
func parse(r io.Reader) (map[rune]string, []string, error) {
	protos := map[rune]string{}
	var header []string
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimPrefix(sc.Text(), "\ufeff")
		if strings.HasPrefix(text, "#") {
			h := strings.TrimSpace(strings.TrimPrefix(text, "#"))
			if strings.HasPrefix(h, "Version:") || strings.HasPrefix(h, "Date:") || strings.HasPrefix(h, "Source:") ||
				strings.HasPrefix(h, "github.com/") || strings.HasPrefix(h, "as embedded") {
				header = append(header, h)
			}
			continue
		}
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		fields := strings.Split(text, ";")
		if len(fields) < 3 {
			return nil, nil, fmt.Errorf("line %d: want 3 fields, got %d", line, len(fields))
		}
		if strings.TrimSpace(fields[2]) != "MA" {
			continue
		}
		src, err := parseCodePoints(fields[0])
		if err != nil || len(src) != 1 {
			return nil, nil, fmt.Errorf("line %d: bad source %q", line, fields[0])
		}
		dst, err := parseCodePoints(fields[1])
		if err != nil || len(dst) == 0 {
			return nil, nil, fmt.Errorf("line %d: bad target %q", line, fields[1])
		}
		protos[src[0]] = string(dst)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read: %w", err)
	}
	return protos, header, nil
}

// parseCodePoints parses space-separated hexadecimal code points.
func parseCodePoints(s string) ([]rune, error) {
	var rs []rune
	for _, f := range strings.Fields(s) {
		v, err := strconv.ParseUint(f, 16, 32)
		if err != nil || v > unicode.MaxRune {
			return nil, fmt.Errorf("bad code point %q", f)
		}
		rs = append(rs, rune(v))
	}
	return rs, nil
}

// buildFolds computes the fold of every character that has one.
func buildFolds(protos map[rune]string) map[rune]string {
	folds := map[rune]string{}
	for r := rune(0x80); r <= unicode.MaxRune; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue
		}
		if unicode.In(r, unicode.M, unicode.Cf, unicode.Cc, unicode.Co, unicode.Cs, unicode.Z, unicode.Nd) || unicode.IsSpace(r) {
			continue
		}
		if norm.NFKC.String(string(r)) != string(r) {
			// The normaliser applies NFKC first: r never reaches the table.
			continue
		}
		if f, ok := fold(r, protos); ok {
			folds[r] = f
		}
	}
	return folds
}

// fold returns the ASCII form r folds to, if any.
func fold(r rune, protos map[rune]string) (string, bool) {
	if p, ok := asciiProto(r, protos); ok {
		if (unicode.IsUpper(r) || unicode.IsTitle(r)) && p == "l" {
			return "i", true
		}
		return p, true
	}
	if l := unicode.ToLower(r); l != r {
		if p, ok := asciiProto(l, protos); ok {
			return p, true
		}
	}
	return "", false
}

// asciiProto returns r's lower-cased prototype when it is printable ASCII.
func asciiProto(r rune, protos map[rune]string) (string, bool) {
	p, ok := protos[r]
	if !ok {
		return "", false
	}
	for i := 0; i < len(p); i++ {
		if p[i] <= ' ' || p[i] >= 0x7f {
			return "", false
		}
	}
	if p == "''" {
		// UTS #39 spells the double quote's prototype as two apostrophes;
		// rules read better with the real thing.
		return `"`, true
	}
	return strings.ToLower(p), true
}

// render writes the table as Go source.
func render(folds map[rune]string, header []string) ([]byte, error) {
	keys := make([]rune, 0, len(folds))
	strs := map[string]int{"": 0}
	list := []string{""}
	for r, f := range folds {
		keys = append(keys, r)
		if _, ok := strs[f]; !ok {
			strs[f] = 0
			list = append(list, f)
		}
	}
	slices.Sort(keys)
	slices.Sort(list[1:])
	for i, s := range list {
		strs[s] = i
	}
	var b bytes.Buffer
	b.WriteString("// Code generated by go run ./gen/confusables; DO NOT EDIT.\n\n")
	b.WriteString("package detect\n\n")
	b.WriteString("// The confusable-folding table: Unicode UTS #39 confusables.txt (MA) mappings\n")
	b.WriteString("// whose lower-cased prototype is printable ASCII. Data: Copyright © 1991-2020\n")
	b.WriteString("// Unicode, Inc., distributed under the Unicode License (data files).\n")
	for _, h := range header {
		b.WriteString("// " + h + "\n")
	}
	fmt.Fprintf(&b, "//\n// %d characters fold.\n\n", len(keys))
	b.WriteString("// confusableStrs are the folded forms; index 0 means none.\n")
	b.WriteString("var confusableStrs = [...]string{\n")
	for _, s := range list {
		fmt.Fprintf(&b, "\t%q,\n", s)
	}
	b.WriteString("}\n\n")
	fmt.Fprintf(&b, "// confusableLow indexes confusableStrs by rune for runes below %#x.\n", lowLimit)
	fmt.Fprintf(&b, "var confusableLow = [%#x]uint16{\n", lowLimit)
	for _, r := range keys {
		if r < lowLimit {
			fmt.Fprintf(&b, "\t%#04x: %d, // %c\n", r, strs[folds[r]], r)
		}
	}
	b.WriteString("}\n\n")
	b.WriteString("// confusableHigh maps runes from 0x800 up, sorted by rune.\n")
	b.WriteString("var confusableHigh = [...]confusable{\n")
	for _, r := range keys {
		if r >= lowLimit {
			fmt.Fprintf(&b, "\t{%#04x, %d}, // %c\n", r, strs[folds[r]], r)
		}
	}
	b.WriteString("}\n")
	src, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("format table: %w", err)
	}
	return src, nil
}
