package mbom

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// DigestReader returns the number of bytes in r and their hex SHA-256.
func DigestReader(r io.Reader) (size int64, sum string, err error) {
	h := sha256.New()
	size, err = io.Copy(h, r)
	if err != nil {
		return size, "", fmt.Errorf("digest: %w", err)
	}
	return size, hex.EncodeToString(h.Sum(nil)), nil
}

// FileDigest returns the Input record of the file at name: the name
// (slash-separated, as given), size and SHA-256.
func FileDigest(name string) (Input, error) {
	f, err := os.Open(name)
	if err != nil {
		return Input{}, fmt.Errorf("digest: %w", err)
	}
	defer f.Close()
	size, sum, err := DigestReader(f)
	if err != nil {
		return Input{}, fmt.Errorf("digest %s: %w", name, err)
	}
	return Input{Name: filepath.ToSlash(name), Size: size, SHA256: sum}, nil
}

// datasetFiles expands paths into regular files: a directory is walked
// recursively in lexical order; symlinks to regular files are followed.
func datasetFiles(paths []string) ([]string, error) {
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("dataset: %w", err)
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(name string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch {
			case d.Type().IsRegular():
				files = append(files, name)
			case d.Type()&fs.ModeSymlink != 0:
				if fi, err := os.Stat(name); err == nil && fi.Mode().IsRegular() {
					files = append(files, name)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("dataset: walk %s: %w", p, err)
		}
	}
	return files, nil
}

// commonSuffix counts the trailing path components a and b share.
func commonSuffix(a, b []string) int {
	n := 0
	for n < len(a) && n < len(b) && a[len(a)-1-n] == b[len(b)-1-n] {
		n++
	}
	return n
}

func splitPath(p string) []string {
	return strings.Split(strings.TrimPrefix(path.Clean(p), "/"), "/")
}

// VerifyDataset checks that the files at paths are exactly the inputs the
// statement signed. Each path is a file or a directory (walked recursively,
// in sorted order). A file is matched to the signed input whose recorded name
// shares the most trailing path components with it (so the exact name as
// given to the scan wins, and a base name is enough when the dataset was
// moved); ties go to the input with the same content. Every file must match
// an input by size and SHA-256 and every input must be found. All problems
// are reported in one error wrapping ErrInvalid; a path that cannot be read
// gives an error that does not.
func VerifyDataset(s *Statement, paths []string) error {
	files, err := datasetFiles(paths)
	if err != nil {
		return err
	}
	inputs := s.Predicate.Inputs
	names := make([][]string, len(inputs))
	for i, in := range inputs {
		names[i] = splitPath(in.Name)
	}
	claimed := make([]bool, len(inputs))
	var probs []string
	for _, f := range files {
		got, err := FileDigest(f)
		if err != nil {
			return fmt.Errorf("dataset: %w", err)
		}
		fparts := splitPath(filepath.ToSlash(f))
		best, bestScore, bestSame := -1, 0, false
		for i := range inputs {
			if claimed[i] {
				continue
			}
			score := commonSuffix(fparts, names[i])
			if score == 0 {
				continue
			}
			same := inputs[i].Size == got.Size && inputs[i].SHA256 == got.SHA256
			if score > bestScore || (score == bestScore && same && !bestSame) {
				best, bestScore, bestSame = i, score, same
			}
		}
		if best < 0 {
			probs = append(probs, fmt.Sprintf("%s: not an input of the MBOM", f))
			continue
		}
		claimed[best] = true
		in := inputs[best]
		switch {
		case in.Size != got.Size:
			probs = append(probs, fmt.Sprintf("%s: size %d, signed input %s has %d", f, got.Size, in.Name, in.Size))
		case in.SHA256 != got.SHA256:
			probs = append(probs, fmt.Sprintf("%s: sha256 %s, signed input %s has %s", f, got.SHA256, in.Name, in.SHA256))
		}
	}
	for i, in := range inputs {
		if !claimed[i] {
			probs = append(probs, fmt.Sprintf("input %s (%d bytes, sha256 %s) not found", in.Name, in.Size, in.SHA256))
		}
	}
	if len(probs) > 0 {
		noun := "problems"
		if len(probs) == 1 {
			noun = "problem"
		}
		return invalidf("dataset does not match the MBOM (%d %s):\n  %s", len(probs), noun, strings.Join(probs, "\n  "))
	}
	return nil
}
