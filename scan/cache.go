package scan

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sentineldf/sentineldf/detect"
)

// A Cache stores scan results on disk, keyed by detect.Engine.CacheKey, so
// that rescanning unchanged documents costs a lookup instead of a scan.
//
// The cache is a directory of append-only segment files. Each run that adds
// results writes its own segment, named *.open while it is being written and
// renamed to *.seg when closed, so concurrent scans never write to the same
// file. A segment is a header followed by records:
//
//	magic "SDFR" | key [32]byte | payload length uint32 | CRC-32C uint32 | payload
//
// where the CRC covers key and payload and the payload is a binary-encoded
// result. Opening a cache reads every segment once to build an in-memory index
// (key → segment, offset); a record whose header or checksum is bad ends its
// segment, so a torn write from a crash is ignored and never read as a
// result. When more than maxSealedSegments sealed segments exist, opening the
// cache compacts them into one. At most maxOpenSegments files are open.
//
// A Cache is safe for concurrent use by the goroutines of one scan; separate
// processes may share a directory.
type Cache struct {
	dir   string
	segs  []segment
	index map[[32]byte]cacheLoc
	// memLeft is how many more bytes of segments may be held in memory.
	memLeft int64

	mu      sync.Mutex
	w       *os.File
	bw      *bufio.Writer
	wpath   string
	written map[[32]byte]struct{}
	werr    error

	hits, misses atomic.Int64
}

// segment is an indexed segment: its contents when they are held in memory
// (already checksummed while indexing), else the open file to read them from.
type segment struct {
	f   *os.File
	mem []byte
}

type cacheLoc struct {
	off int64
	n   uint32
	crc uint32
	seg uint32
}

const (
	segmentMagic      = "SENTINELDF-CACHE-1\n"
	recordMagic       = "SDFR"
	recordHeader      = 4 + 32 + 4 + 4
	maxCachePayload   = 64 << 20
	maxSealedSegments = 8
	maxOpenSegments   = 32
	// cacheMemBudget bounds the bytes of segments a Cache holds in memory
	// (about 1.5 million results); the rest is read from disk on demand.
	// Indexing reads every segment anyway, and a lookup from memory costs
	// a fraction of a read from disk.
	cacheMemBudget = 128 << 20
	// staleOpen is how old an unsealed segment must be before compaction
	// treats it as abandoned by a crashed scan.
	staleOpen = 24 * time.Hour
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// OpenCache opens (creating if needed) the cache in dir.
func OpenCache(dir string) (*Cache, error) { return openCache(dir, cacheMemBudget) }

// openCache opens the cache in dir, holding at most memBudget bytes of
// segments in memory.
func openCache(dir string, memBudget int64) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	c := &Cache{dir: dir, written: map[[32]byte]struct{}{}, memLeft: memBudget}
	sealed, open, err := c.list()
	if err != nil {
		return nil, err
	}
	if len(sealed) > maxSealedSegments {
		if err := c.compact(sealed, open); err != nil {
			return nil, err
		}
		if sealed, open, err = c.list(); err != nil {
			return nil, err
		}
	}
	c.index = map[[32]byte]cacheLoc{}
	// Newest first, so that the newest segments are indexed when there are
	// too many to keep open.
	names := append(sealed, open...)
	slices.Sort(names)
	slices.Reverse(names)
	for _, name := range names {
		if len(c.segs) >= maxOpenSegments {
			break
		}
		if err := c.load(name); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// list returns the names of the sealed and unsealed segments in the cache.
func (c *Cache) list() (sealed, open []string, err error) {
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("cache: %w", err)
	}
	for _, e := range ents {
		switch {
		case !e.Type().IsRegular():
		case strings.HasSuffix(e.Name(), ".seg"):
			sealed = append(sealed, e.Name())
		case strings.HasSuffix(e.Name(), ".open"):
			open = append(open, e.Name())
		}
	}
	return sealed, open, nil
}

// load indexes one segment and keeps it, in memory while the budget
// allows, else open for reads.
func (c *Cache) load(name string) error {
	f, err := os.Open(filepath.Join(c.dir, name))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // compacted away by another scan
		}
		return fmt.Errorf("cache: %w", err)
	}
	var mem []byte
	var r io.Reader = f
	if fi, err := f.Stat(); err == nil && fi.Size() <= c.memLeft {
		mem = make([]byte, fi.Size())
		n, err := io.ReadFull(f, mem)
		if err != nil && err != io.ErrUnexpectedEOF {
			f.Close()
			return fmt.Errorf("cache: %s: %w", name, err)
		}
		// A segment still being written may have grown or be torn: what
		// was read is indexed, and readSegment stops at a torn record.
		mem = mem[:n]
		r = bytes.NewReader(mem)
	}
	seg := uint32(len(c.segs))
	n := 0
	err = readSegment(r, func(key [32]byte, off int64, payload []byte, crc uint32) {
		if _, ok := c.index[key]; !ok {
			c.index[key] = cacheLoc{off: off, n: uint32(len(payload)), crc: crc, seg: seg}
			n++
		}
	})
	if err != nil {
		f.Close()
		return fmt.Errorf("cache: %s: %w", name, err)
	}
	if n == 0 {
		f.Close()
		return nil
	}
	if mem != nil {
		f.Close()
		c.memLeft -= int64(len(mem))
		c.segs = append(c.segs, segment{mem: mem})
		return nil
	}
	c.segs = append(c.segs, segment{f: f})
	return nil
}

// readSegment calls fn for every intact record of a segment, in order, and
// stops quietly at the first damaged one. payload is valid only during fn.
func readSegment(f io.Reader, fn func(key [32]byte, off int64, payload []byte, crc uint32)) error {
	br := bufio.NewReaderSize(f, 256<<10)
	head := make([]byte, len(segmentMagic))
	if _, err := io.ReadFull(br, head); err != nil || string(head) != segmentMagic {
		return nil // empty, torn or foreign: nothing to use
	}
	off := int64(len(segmentMagic))
	var hdr [recordHeader]byte
	var payload []byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return nil
		}
		if string(hdr[:4]) != recordMagic {
			return nil
		}
		var key [32]byte
		copy(key[:], hdr[4:36])
		n := binary.LittleEndian.Uint32(hdr[36:40])
		crc := binary.LittleEndian.Uint32(hdr[40:44])
		if n > maxCachePayload {
			return nil
		}
		payload = slices.Grow(payload[:0], int(n))[:n]
		if _, err := io.ReadFull(br, payload); err != nil {
			return nil
		}
		if recordCRC(key, payload) != crc {
			return nil
		}
		fn(key, off+recordHeader, payload, crc)
		off += recordHeader + int64(n)
	}
}

func recordCRC(key [32]byte, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(key[:], crcTable), crcTable, payload)
}

// compact merges the sealed segments (and unsealed ones abandoned long ago)
// into one new sealed segment and removes them.
func (c *Cache) compact(sealed, open []string) error {
	var olds []string
	for _, name := range sealed {
		olds = append(olds, name)
	}
	for _, name := range open {
		if fi, err := os.Stat(filepath.Join(c.dir, name)); err == nil && time.Since(fi.ModTime()) > staleOpen {
			olds = append(olds, name)
		}
	}
	slices.Sort(olds)
	slices.Reverse(olds)
	path, tmp, err := c.create("compact")
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(tmp, 256<<10)
	seen := map[[32]byte]struct{}{}
	var werr error
	for _, name := range olds {
		f, err := os.Open(filepath.Join(c.dir, name))
		if err != nil {
			continue
		}
		err = readSegment(f, func(key [32]byte, _ int64, payload []byte, crc uint32) {
			if _, ok := seen[key]; ok || werr != nil {
				return
			}
			seen[key] = struct{}{}
			werr = writeRecord(bw, key, payload, crc)
		})
		f.Close()
		if err == nil {
			err = werr
		}
		if err != nil {
			tmp.Close()
			os.Remove(path)
			return fmt.Errorf("cache: compact: %w", err)
		}
	}
	if err := errors.Join(bw.Flush(), tmp.Sync(), tmp.Close()); err != nil {
		os.Remove(path)
		return fmt.Errorf("cache: compact: %w", err)
	}
	if err := os.Rename(path, strings.TrimSuffix(path, ".open")+".seg"); err != nil {
		os.Remove(path)
		return fmt.Errorf("cache: compact: %w", err)
	}
	for _, name := range olds {
		// Another scan may have removed it already; that is fine.
		os.Remove(filepath.Join(c.dir, name))
	}
	return nil
}

// create makes a new unsealed segment and writes its header.
func (c *Cache) create(kind string) (string, *os.File, error) {
	var rnd [6]byte
	rand.Read(rnd[:])
	name := fmt.Sprintf("%020d-%s-%s.open", time.Now().UnixNano(), kind, hex.EncodeToString(rnd[:]))
	path := filepath.Join(c.dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", nil, fmt.Errorf("cache: %w", err)
	}
	if _, err := f.WriteString(segmentMagic); err != nil {
		f.Close()
		os.Remove(path)
		return "", nil, fmt.Errorf("cache: %w", err)
	}
	return path, f, nil
}

func writeRecord(w io.Writer, key [32]byte, payload []byte, crc uint32) error {
	var hdr [recordHeader]byte
	copy(hdr[:4], recordMagic)
	copy(hdr[4:36], key[:])
	binary.LittleEndian.PutUint32(hdr[36:40], uint32(len(payload)))
	binary.LittleEndian.PutUint32(hdr[40:44], crc)
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// Len is the number of results the cache held when it was opened.
func (c *Cache) Len() int { return len(c.index) }

// Hits is the number of successful lookups so far.
func (c *Cache) Hits() int64 { return c.hits.Load() }

// Get returns the cached result for key. A damaged record is a miss.
func (c *Cache) Get(key [32]byte) (detect.Result, bool) {
	loc, ok := c.index[key]
	if !ok {
		c.misses.Add(1)
		return detect.Result{}, false
	}
	var buf []byte
	if seg := c.segs[loc.seg]; seg.mem != nil {
		// Checksummed when the segment was indexed.
		buf = seg.mem[loc.off : loc.off+int64(loc.n)]
	} else {
		buf = make([]byte, loc.n)
		if _, err := seg.f.ReadAt(buf, loc.off); err != nil || recordCRC(key, buf) != loc.crc {
			c.misses.Add(1)
			return detect.Result{}, false
		}
	}
	r, err := decodeResult(buf)
	if err != nil {
		c.misses.Add(1)
		return detect.Result{}, false
	}
	c.hits.Add(1)
	return r, true
}

// Put stores the result for key, unless the cache already has one. An error
// writing the cache is returned once and disables further writes.
func (c *Cache) Put(key [32]byte, r *detect.Result) error {
	if _, ok := c.index[key]; ok {
		return nil
	}
	payload := appendResult(make([]byte, 0, 64), r)
	crc := recordCRC(key, payload)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.werr != nil {
		return nil
	}
	if _, ok := c.written[key]; ok {
		return nil
	}
	if c.w == nil {
		path, f, err := c.create("scan")
		if err != nil {
			c.werr = err
			return err
		}
		c.wpath, c.w, c.bw = path, f, bufio.NewWriterSize(f, 256<<10)
	}
	if err := writeRecord(c.bw, key, payload, crc); err != nil {
		c.werr = fmt.Errorf("cache: %w", err)
		return c.werr
	}
	c.written[key] = struct{}{}
	return nil
}

// Close seals the segment this cache wrote, if any, and closes its files.
func (c *Cache) Close() error {
	var errs []error
	c.mu.Lock()
	if c.w != nil {
		err := errors.Join(c.bw.Flush(), c.w.Sync(), c.w.Close())
		if err == nil && c.werr == nil {
			err = os.Rename(c.wpath, strings.TrimSuffix(c.wpath, ".open")+".seg")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("cache: %w", err))
		}
		c.w = nil
	}
	c.mu.Unlock()
	for _, seg := range c.segs {
		if seg.f != nil {
			seg.f.Close()
		}
	}
	c.segs = nil
	return errors.Join(errs...)
}
