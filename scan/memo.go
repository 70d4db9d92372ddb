package scan

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/sentineldf/sentineldf/dataset"
	"github.com/sentineldf/sentineldf/detect"
)

// A memo is the outcome of a whole scan kept in a cache directory (next to
// the per-document results of Cache), so that scanning exactly the same
// files again with the same engine, readers and dataset detectors replays
// it instead of reading, parsing and judging every document: the per-
// document cache still has to parse each record and hash its text, and the
// dataset-level detectors have to see every document again, which bounds
// what it can save.
//
// A memo file is named by a hint: the SHA-256 of the scan's configuration
// (engine Info, dataset options, dataset detectors, the running
// executable's identity) and each input's name, size and modification
// time, so a scan whose hint has no memo costs nothing extra. A hint that
// has one is only a candidate: the memo is replayed only when every input's
// SHA-256 and size are those the memo was made from. An input is hashed
// again unless its stat identity (device, inode, size, modification and
// change times: fileID) is the one the memo recorded and older than the
// memo by racyWindow. The file is
//
//	memoMagic | hint [32] | uvarint inputs, then per input: uvarint size, sha256 [32],
//	  byte 1 and uvarint dev, ino, size, mtime, ctime (fileID) | byte 0
//	records: 'd' id source result | 'm' path uvarint(line) reason
//	'e' | sha256 [32] of everything before it
//
// (strings are uvarint-length-prefixed, results in the codec.go encoding),
// written to a temporary file and renamed when the scan succeeds. It is
// checked whole before anything is replayed, so a torn or damaged memo is a
// miss, never a wrong result.
const (
	memoMagic  = "SENTINELDF-MEMO-2\n"
	memoSuffix = ".memo"
	// maxMemos is how many memos a cache directory keeps (the most recently
	// written); older ones are removed.
	maxMemos = 16
)

// CacheIdentifier is implemented by dataset detectors whose findings a scan
// with Config.CacheDir may replay from an earlier scan of the same data.
// CacheIdentity must change whenever anything but the documents and the
// code could change the detector's findings (its options, typically). A
// scan with a dataset detector that does not implement it is never
// replayed (the per-document cache still applies).
type CacheIdentifier interface {
	CacheIdentity() string
}

// memoHint returns the hint naming the memo of a scan of files with eng and
// cfg, or ok false when the scan cannot be memoised.
func memoHint(eng *detect.Engine, cfg Config, dds []detect.DatasetDetector, files []dataset.File) (hint [32]byte, ok bool) {
	exe, ok := executableID()
	if !ok {
		return hint, false
	}
	h := sha256.New()
	enc := json.NewEncoder(h)
	names := make([]string, len(dds))
	for i, d := range dds {
		ci, ok := d.(CacheIdentifier)
		if !ok {
			return hint, false
		}
		names[i] = d.Name() + "\x00" + ci.CacheIdentity()
	}
	type stat struct {
		Path, Name, Rel, Format, Compression string
		Size, ModTime                        int64
	}
	stats := make([]stat, len(files))
	for i, f := range files {
		fi, err := os.Stat(f.Path)
		if err != nil || !fi.Mode().IsRegular() {
			return hint, false
		}
		stats[i] = stat{f.Path, f.DisplayName(), f.Rel, string(f.Format), f.Compression, fi.Size(), fi.ModTime().UnixNano()}
	}
	err := enc.Encode(struct {
		Magic    string
		Exe      string
		Engine   detect.Info
		Dataset  dataset.Options
		Detector []string
		Inputs   []stat
	}{memoMagic, exe, eng.Info(), cfg.Dataset, names, stats})
	if err != nil {
		return hint, false
	}
	h.Sum(hint[:0])
	return hint, true
}

// executableID identifies the code running: dataset detectors and readers
// have no version of their own, so a memo is only reused by the same build.
func executableID() (string, bool) {
	exe, err := os.Executable()
	if err != nil {
		return "", false
	}
	fi, err := os.Stat(exe)
	if err != nil {
		return "", false
	}
	id := fmt.Sprintf("%s|%d|%d", exe, fi.Size(), fi.ModTime().UnixNano())
	if bi, ok := debug.ReadBuildInfo(); ok {
		id += "|" + bi.Main.Path + "@" + bi.Main.Version
		for _, s := range bi.Settings {
			if strings.HasPrefix(s.Key, "vcs.") {
				id += "|" + s.Key + "=" + s.Value
			}
		}
	}
	return id, true
}

func memoPath(dir string, hint [32]byte) string {
	return filepath.Join(dir, hex.EncodeToString(hint[:])+memoSuffix)
}

// memoInput is an input file as a memo records it.
type memoInput struct {
	size int64
	sum  [32]byte
	// id is the file's stat identity while it was scanned, when it could
	// be taken and did not change during the scan (hasID).
	id    fileID
	hasID bool
}

// memoWriter writes a memo while a scan emits its results.
type memoWriter struct {
	dir  string
	hint [32]byte
	f    *os.File
	bw   *bufio.Writer
	h    hash.Hash
	buf  []byte
	res  []byte
	err  error
}

func newMemoWriter(dir string, hint [32]byte) (*memoWriter, error) {
	var rnd [6]byte
	rand.Read(rnd[:])
	f, err := os.OpenFile(filepath.Join(dir, "memo-"+hex.EncodeToString(rnd[:])+".tmp"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return &memoWriter{dir: dir, hint: hint, f: f, bw: bufio.NewWriterSize(f, 256<<10), h: sha256.New()}, nil
}

// write appends to the records. They go to a temporary file first: the
// header needs the inputs' hashes, known only at the end of the scan, and
// commit writes header and records to the memo.
func (m *memoWriter) write(b []byte) {
	if m.err != nil {
		return
	}
	if _, err := m.bw.Write(b); err != nil {
		m.err = err
	}
}

func (m *memoWriter) doc(id, src string, r *detect.Result) {
	b := append(m.buf[:0], 'd')
	b = appendString(b, id)
	b = appendString(b, src)
	m.res = appendResult(m.res[:0], r)
	b = binary.AppendUvarint(b, uint64(len(m.res)))
	b = append(b, m.res...)
	m.buf = b
	m.write(b)
}

func (m *memoWriter) malformed(e *dataset.MalformedError) {
	b := append(m.buf[:0], 'm')
	b = appendString(b, e.Source.Path)
	b = binary.AppendUvarint(b, uint64(max(e.Source.Line, 0)))
	b = appendString(b, e.Reason)
	m.buf = b
	m.write(b)
}

// commit writes the final memo from the header and the records written so
// far, and keeps at most maxMemos memos in the directory. Failing to write
// a memo only costs speed; the error is returned for the record.
func (m *memoWriter) commit(inputs []memoInput) error {
	defer m.discard()
	if m.err != nil {
		return m.err
	}
	if err := m.bw.Flush(); err != nil {
		return err
	}
	path := memoPath(m.dir, m.hint)
	tmp := path + ".tmp-" + filepath.Base(m.f.Name())
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			out.Close()
			os.Remove(tmp)
		}
	}()
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(out, h), 256<<10)
	hdr := append([]byte(memoMagic), m.hint[:]...)
	hdr = binary.AppendUvarint(hdr, uint64(len(inputs)))
	for _, in := range inputs {
		hdr = binary.AppendUvarint(hdr, uint64(in.size))
		hdr = append(hdr, in.sum[:]...)
		if !in.hasID {
			hdr = append(hdr, 0)
			continue
		}
		hdr = append(hdr, 1)
		for _, v := range []uint64{in.id.dev, in.id.ino, uint64(in.id.size), uint64(in.id.mtime), uint64(in.id.ctime)} {
			hdr = binary.AppendUvarint(hdr, v)
		}
	}
	w.Write(hdr)
	if _, err := m.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := io.Copy(w, m.f); err != nil {
		return err
	}
	w.WriteByte('e')
	if err := w.Flush(); err != nil {
		return err
	}
	if _, err := out.Write(h.Sum(nil)); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	pruneMemos(m.dir)
	return nil
}

// discard removes the records' temporary file.
func (m *memoWriter) discard() {
	if m.f != nil {
		m.f.Close()
		os.Remove(m.f.Name())
		m.f = nil
	}
}

// pruneMemos removes all but the maxMemos most recently written memos, and
// temporary files that crashed scans left behind.
func pruneMemos(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type memo struct {
		name string
		mod  int64
	}
	var ms []memo
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "memo-") && strings.HasSuffix(e.Name(), ".tmp") || strings.Contains(e.Name(), memoSuffix+".tmp-") {
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleOpen {
				os.Remove(filepath.Join(dir, e.Name()))
			}
			continue
		}
		if !strings.HasSuffix(e.Name(), memoSuffix) {
			continue
		}
		if fi, err := e.Info(); err == nil {
			ms = append(ms, memo{e.Name(), fi.ModTime().UnixNano()})
		}
	}
	if len(ms) <= maxMemos {
		return
	}
	slices.SortFunc(ms, func(a, b memo) int { return int(min(max(b.mod-a.mod, -1), 1)) })
	for _, m := range ms[maxMemos:] {
		os.Remove(filepath.Join(dir, m.name))
	}
}

// memoReader replays a memo.
type memoReader struct {
	f      *os.File
	br     *bufio.Reader
	inputs []memoInput
	buf    []byte
	// written is the memo file's modification time (see fileID.trusted).
	written time.Time
}

var errMemo = errors.New("damaged memo")

// openMemo opens the memo for hint and checks it whole; ok is false when
// there is none or it is damaged.
func openMemo(dir string, hint [32]byte) (*memoReader, bool) {
	f, err := os.Open(memoPath(dir, hint))
	if err != nil {
		return nil, false
	}
	fi, err := f.Stat()
	if err != nil || fi.Size() < int64(len(memoMagic)+32+1+32) {
		f.Close()
		return nil, false
	}
	body := fi.Size() - 32
	h := sha256.New()
	if _, err := io.CopyN(h, f, body); err != nil {
		f.Close()
		return nil, false
	}
	var want [32]byte
	if _, err := io.ReadFull(f, want[:]); err != nil || !bytes.Equal(h.Sum(nil), want[:]) {
		f.Close()
		return nil, false
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, false
	}
	m := &memoReader{f: f, br: bufio.NewReaderSize(io.LimitReader(f, body), 256<<10), written: fi.ModTime()}
	head := make([]byte, len(memoMagic)+32)
	if _, err := io.ReadFull(m.br, head); err != nil || string(head[:len(memoMagic)]) != memoMagic || !bytes.Equal(head[len(memoMagic):], hint[:]) {
		f.Close()
		return nil, false
	}
	n, err := binary.ReadUvarint(m.br)
	if err != nil || n > 1<<20 {
		f.Close()
		return nil, false
	}
	for range n {
		size, err := binary.ReadUvarint(m.br)
		var in memoInput
		if err == nil {
			_, err = io.ReadFull(m.br, in.sum[:])
		}
		var flag byte
		if err == nil {
			flag, err = m.br.ReadByte()
		}
		if err == nil && flag == 1 {
			var v [5]uint64
			for k := range v {
				if v[k], err = binary.ReadUvarint(m.br); err != nil {
					break
				}
			}
			in.id = fileID{dev: v[0], ino: v[1], size: int64(v[2]), mtime: int64(v[3]), ctime: int64(v[4])}
			in.hasID = true
		} else if err == nil && flag != 0 {
			err = errMemo
		}
		if err != nil {
			f.Close()
			return nil, false
		}
		in.size = int64(size)
		m.inputs = append(m.inputs, in)
	}
	return m, true
}

func (m *memoReader) bytes() ([]byte, error) {
	n, err := binary.ReadUvarint(m.br)
	if err != nil || n > 1<<31 {
		return nil, errMemo
	}
	m.buf = slices.Grow(m.buf[:0], int(n))[:n]
	if _, err := io.ReadFull(m.br, m.buf); err != nil {
		return nil, errMemo
	}
	return m.buf, nil
}

// next returns the next record: a document (me nil) or a malformed record;
// io.EOF after the last.
func (m *memoReader) next() (id, src string, r detect.Result, me *dataset.MalformedError, err error) {
	tag, err := m.br.ReadByte()
	if err != nil {
		return "", "", r, nil, errMemo
	}
	switch tag {
	case 'e':
		return "", "", r, nil, io.EOF
	case 'd':
		var b []byte
		if b, err = m.bytes(); err != nil {
			return
		}
		id = string(b)
		if b, err = m.bytes(); err != nil {
			return
		}
		src = string(b)
		if b, err = m.bytes(); err != nil {
			return
		}
		if r, err = decodeResult(b); err != nil {
			err = errMemo
		}
		return id, src, r, nil, err
	case 'm':
		var b []byte
		if b, err = m.bytes(); err != nil {
			return
		}
		me = &dataset.MalformedError{Source: dataset.Source{Path: string(b)}}
		line, err := binary.ReadUvarint(m.br)
		if err != nil {
			return "", "", r, nil, errMemo
		}
		me.Source.Line = int(line)
		if b, err = m.bytes(); err != nil {
			return "", "", r, nil, err
		}
		me.Reason = string(b)
		return "", "", r, me, nil
	default:
		return "", "", r, nil, errMemo
	}
}

func (m *memoReader) close() { m.f.Close() }

// hashFile returns the size and SHA-256 of the file at path as stored.
// hashInput is hashFile; a variable for tests.
var hashInput = hashFile

func hashFile(path string) (memoInput, error) {
	var in memoInput
	f, err := os.Open(path)
	if err != nil {
		return in, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return in, err
	}
	in.size = n
	h.Sum(in.sum[:0])
	return in, nil
}
