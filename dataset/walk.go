package dataset

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// extFormats maps lower-case extensions to formats.
var extFormats = map[string]Format{
	".jsonl":    FormatJSONL,
	".ndjson":   FormatJSONL,
	".json":     FormatJSON,
	".csv":      FormatCSV,
	".tsv":      FormatTSV,
	".parquet":  FormatParquet,
	".txt":      FormatText,
	".text":     FormatText,
	".md":       FormatText,
	".markdown": FormatText,
	".html":     FormatText,
	".htm":      FormatText,
}

// DetectFormat returns the format and compression ("", "gzip" or "zstd")
// that a file name implies, case-insensitively. The format is "" when the
// extension is unknown.
func DetectFormat(name string) (Format, string) {
	lower := strings.ToLower(path.Base(filepath.ToSlash(name)))
	comp := ""
	switch {
	case strings.HasSuffix(lower, ".gz"):
		comp, lower = CompressionGzip, strings.TrimSuffix(lower, ".gz")
	case strings.HasSuffix(lower, ".zst"):
		comp, lower = CompressionZstd, strings.TrimSuffix(lower, ".zst")
	}
	return extFormats[path.Ext(lower)], comp
}

// Walk expands files and directories (recursively) into Files, sorted
// lexically by path within each argument, arguments in order. include and
// exclude are globs (path.Match syntax plus "**" for any number of
// directories) matched against File.Rel; a glob without "/" is also matched
// against the base name. A file must match an include (when any is given)
// and no exclude.
//
// Files of unknown extension inside directories are skipped; a file named
// explicitly is kept with Format "" when its extension is unknown, and Open
// rejects it unless Options.Format forces a format. Symbolic links to files
// are followed; symbolic links to directories are not.
func Walk(paths []string, include, exclude []string) ([]File, error) {
	for _, g := range append(append([]string(nil), include...), exclude...) {
		if err := checkGlob(g); err != nil {
			return nil, err
		}
	}
	keep := func(rel string) bool {
		if len(include) > 0 && !matchAny(include, rel) {
			return false
		}
		return !matchAny(exclude, rel)
	}
	var files []File
	for _, arg := range paths {
		st, err := os.Stat(arg)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", arg, err)
		}
		if !st.IsDir() {
			if !st.Mode().IsRegular() {
				return nil, fmt.Errorf("input %s: not a regular file", arg)
			}
			rel := filepath.Base(arg)
			if !keep(rel) {
				continue
			}
			format, comp := DetectFormat(arg)
			files = append(files, File{Path: arg, Rel: rel, Size: st.Size(), Format: format, Compression: comp})
			continue
		}
		var found []File
		err = filepath.WalkDir(arg, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("walk %s: %w", p, err)
			}
			if d.IsDir() {
				return nil
			}
			format, comp := DetectFormat(p)
			if format == "" {
				return nil
			}
			info, err := os.Stat(p) // follows symbolic links to files
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && d.Type()&fs.ModeSymlink != 0 {
					return nil // a dangling link
				}
				return fmt.Errorf("walk %s: %w", p, err)
			}
			if !info.Mode().IsRegular() {
				return nil
			}
			rel, err := filepath.Rel(arg, p)
			if err != nil {
				return fmt.Errorf("walk %s: %w", p, err)
			}
			rel = filepath.ToSlash(rel)
			if keep(rel) {
				found = append(found, File{Path: p, Rel: rel, Size: info.Size(), Format: format, Compression: comp})
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		sort.Slice(found, func(i, j int) bool { return found[i].Path < found[j].Path })
		files = append(files, found...)
	}
	return files, nil
}

func checkGlob(g string) error {
	for _, seg := range strings.Split(g, "/") {
		if seg == "**" {
			continue
		}
		if _, err := path.Match(seg, ""); err != nil {
			return fmt.Errorf("bad glob %q: %w", g, err)
		}
	}
	return nil
}

func matchAny(globs []string, rel string) bool {
	for _, g := range globs {
		if Match(g, rel) {
			return true
		}
	}
	return false
}

// Match reports whether the slash-separated path rel matches glob: path.Match
// syntax per segment, "**" for any number of segments (zero included), and a
// glob without "/" matches the base name at any depth.
func Match(glob, rel string) bool {
	if !strings.Contains(glob, "/") {
		if ok, _ := path.Match(glob, path.Base(rel)); ok {
			return true
		}
	}
	return matchSegs(strings.Split(glob, "/"), strings.Split(rel, "/"))
}

func matchSegs(g, p []string) bool {
	for len(g) > 0 {
		if g[0] == "**" {
			for len(g) > 0 && g[0] == "**" {
				g = g[1:]
			}
			if len(g) == 0 {
				return true
			}
			for i := range p {
				if matchSegs(g, p[i:]) {
					return true
				}
			}
			return false
		}
		if len(p) == 0 {
			return false
		}
		if ok, _ := path.Match(g[0], p[0]); !ok {
			return false
		}
		g, p = g[1:], p[1:]
	}
	return len(p) == 0
}
