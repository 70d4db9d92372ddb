// Package localfs is a sentineldf.BlobStore on a local directory, for
// `sentineldf serve`. Objects live in files under Dir/objects; presigned
// URLs are HMAC-signed and served by the API process itself through
// (*Store).Handler.
package localfs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sentineldf/sentineldf"
)

// MinSecretBytes is the minimum length of Config.Secret.
const MinSecretBytes = 32

// Directory layout under Config.Dir. Temporary files live beside objects,
// not among them, so no key can name a partial upload, and they are on the
// same filesystem, so the final rename is atomic.
const (
	objectsDir = "objects"
	tmpDir     = "tmp"
	tmpSuffix  = ".part"
	// staleTmpAge is how old a temporary file must be for New to delete it
	// as the leftover of a crashed write.
	staleTmpAge = 24 * time.Hour
)

// Config configures a Store.
type Config struct {
	// Dir is the root directory; it is created when missing.
	Dir string
	// Secret keys the HMAC-SHA256 of presigned URLs; at least
	// MinSecretBytes bytes. It must be the same in every process that
	// presigns or serves URLs for Dir, and stay secret.
	Secret []byte
	// BaseURL returns the API's base URL, such as "http://127.0.0.1:8080";
	// it is a function because the address is known only once the server
	// listens.
	BaseURL func() string
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// MaxObjectBytes caps one object (0: sentineldf.MaxUploadBytes).
	MaxObjectBytes int64
	// Logger receives internal errors of Handler (nil: discarded). It never
	// receives secrets or signatures.
	Logger *slog.Logger
}

// Store is a sentineldf.BlobStore on a directory. It is safe for concurrent
// use, also by several processes sharing the directory.
type Store struct {
	root    *os.Root
	secret  []byte
	baseURL func() string
	now     func() time.Time
	max     int64
	log     *slog.Logger
}

var _ sentineldf.BlobStore = (*Store)(nil)

// New opens (creating when missing) a store on cfg.Dir.
func New(cfg Config) (*Store, error) {
	switch {
	case cfg.Dir == "":
		return nil, sentineldf.FieldError("dir", "is required")
	case len(cfg.Secret) < MinSecretBytes:
		return nil, sentineldf.FieldError("secret", "must be at least %d bytes", MinSecretBytes)
	case cfg.BaseURL == nil:
		return nil, sentineldf.FieldError("base_url", "is required")
	case cfg.MaxObjectBytes < 0:
		return nil, sentineldf.FieldError("max_object_bytes", "must not be negative")
	}
	s := &Store{
		secret:  append([]byte(nil), cfg.Secret...),
		baseURL: cfg.BaseURL,
		now:     cfg.Now,
		max:     cfg.MaxObjectBytes,
		log:     cfg.Logger,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.max == 0 {
		s.max = sentineldf.MaxUploadBytes
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create blob directory: %w", err)
	}
	root, err := os.OpenRoot(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("open blob directory: %w", err)
	}
	for _, d := range []string{objectsDir, tmpDir} {
		if err := root.Mkdir(d, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			root.Close()
			return nil, fmt.Errorf("create blob directory %s: %w", d, err)
		}
	}
	s.root = root
	s.removeStaleTemps()
	return s, nil
}

// Close releases the directory. The Store must not be used afterwards.
func (s *Store) Close() error {
	if err := s.root.Close(); err != nil {
		return fmt.Errorf("close blob directory: %w", err)
	}
	return nil
}

// removeStaleTemps deletes temporary files left by writes that crashed.
// Young ones may belong to a write in progress in another process.
func (s *Store) removeStaleTemps() {
	d, err := s.root.Open(tmpDir)
	if err != nil {
		return
	}
	defer d.Close()
	entries, err := d.ReadDir(-1)
	if err != nil {
		return
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || !strings.HasSuffix(e.Name(), tmpSuffix) {
			continue
		}
		if s.now().Sub(info.ModTime()) > staleTmpAge {
			_ = s.root.Remove(filepath.Join(tmpDir, e.Name()))
		}
	}
}

// objectPath is the root-relative path of key's file; key must be valid.
func objectPath(key string) string { return filepath.FromSlash(objectsDir + "/" + key) }

// Ping checks the directory is writable.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, name, err := s.createTemp()
	if err != nil {
		return fmt.Errorf("ping blob directory: %w", err)
	}
	_, werr := f.Write([]byte("ping"))
	cerr := f.Close()
	rerr := s.root.Remove(name)
	if err := errors.Join(werr, cerr, rerr); err != nil {
		return fmt.Errorf("ping blob directory: %w", err)
	}
	return nil
}

// open opens key's file for reading; ENOTFOUND when it is not a regular
// file.
func (s *Store) open(ctx context.Context, key string) (*os.File, fs.FileInfo, error) {
	if err := validateKey(key); err != nil {
		return nil, nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	f, err := s.root.Open(objectPath(key))
	if err != nil {
		if isNotExist(err) {
			return nil, nil, sentineldf.NotFound("object")
		}
		return nil, nil, fmt.Errorf("open object: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("stat object: %w", err)
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, nil, sentineldf.NotFound("object")
	}
	return f, info, nil
}

// Get opens an object.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	f, _, err := s.open(ctx, key)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// GetRange opens length bytes of an object from offset (length < 0: to the
// end). A range past the end is cut at the end; an offset past the end is
// EINVALID.
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, sentineldf.FieldError("offset", "must not be negative")
	}
	f, info, err := s.open(ctx, key)
	if err != nil {
		return nil, err
	}
	size := info.Size()
	if offset > size {
		f.Close()
		return nil, sentineldf.FieldError("offset", "%d is past the end of the object (%d bytes)", offset, size)
	}
	if length < 0 || length > size-offset {
		length = size - offset
	}
	return readCloser{io.NewSectionReader(f, offset, length), f}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// Stat returns an object's size.
func (s *Store) Stat(ctx context.Context, key string) (sentineldf.BlobInfo, error) {
	if err := validateKey(key); err != nil {
		return sentineldf.BlobInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return sentineldf.BlobInfo{}, err
	}
	info, err := s.root.Stat(objectPath(key))
	if err != nil {
		if isNotExist(err) {
			return sentineldf.BlobInfo{}, sentineldf.NotFound("object")
		}
		return sentineldf.BlobInfo{}, fmt.Errorf("stat object: %w", err)
	}
	if !info.Mode().IsRegular() {
		return sentineldf.BlobInfo{}, sentineldf.NotFound("object")
	}
	return sentineldf.BlobInfo{Key: key, Size: info.Size()}, nil
}

// Put stores r under key, atomically replacing any object there. When size
// is not -1, r must yield exactly size bytes; an object over the store's
// limit is ETOOLARGE. Nothing is stored when Put fails.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := validateKey(key); err != nil {
		return err
	}
	switch {
	case size < -1:
		return sentineldf.FieldError("size", "must be -1 (unknown) or at least 0")
	case size > s.max:
		return sentineldf.Errorf(sentineldf.ETOOLARGE, "object of %d bytes exceeds the limit of %d bytes", size, s.max)
	}
	limit := size
	if size < 0 {
		limit = s.max
	}
	return s.write(ctx, key, ctxReader{ctx, r}, limit, func(n int64, _ []byte) error {
		switch {
		case size < 0 && n > limit:
			return sentineldf.Errorf(sentineldf.ETOOLARGE, "object exceeds the limit of %d bytes", limit)
		case size >= 0 && n > size:
			return sentineldf.FieldError("size", "declared %d bytes, but the reader has more", size)
		case size >= 0 && n < size:
			return sentineldf.FieldError("size", "declared %d bytes, but the reader has %d", size, n)
		}
		return nil
	})
}

// write streams at most limit+1 bytes of r into a temporary file, hashing
// them, calls check with the count and SHA-256 and, when it returns nil,
// makes the file key's object. The temporary file is removed on any
// failure.
func (s *Store) write(ctx context.Context, key string, r io.Reader, limit int64, check func(n int64, sum []byte) error) (err error) {
	f, tmp, err := s.createTemp()
	if err != nil {
		return fmt.Errorf("put object: %w", err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			_ = s.root.Remove(tmp)
		}
	}()
	h := newHasher()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, limit+1))
	if err != nil {
		return fmt.Errorf("put object: copy: %w", err)
	}
	if err := check(n, h.Sum(nil)); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("put object: sync: %w", err)
	}
	if err := f.Close(); err != nil {
		f = nil
		return fmt.Errorf("put object: close: %w", err)
	}
	f = nil
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.commit(tmp, key)
}

// createTemp creates a new temporary file in tmpDir.
func (s *Store) createTemp() (*os.File, string, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	name := filepath.Join(tmpDir, hex.EncodeToString(b[:])+tmpSuffix)
	f, err := s.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("create temporary file: %w", err)
	}
	return f, name, nil
}

// commit renames the temporary file tmp to key's object and syncs the
// directory, so the object survives a crash once commit returns.
func (s *Store) commit(tmp, key string) error {
	dst := objectPath(key)
	dir := filepath.Dir(dst)
	// A concurrent Delete may remove the (then empty) parent directory
	// between MkdirAll and Rename: try again.
	var err error
	for range 3 {
		if err = s.root.MkdirAll(dir, 0o700); err != nil {
			break
		}
		if err = s.root.Rename(tmp, dst); err == nil || !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		if isConflict(err) {
			return sentineldf.Errorf(sentineldf.ECONFLICT, "key %q conflicts with an existing object or prefix", key)
		}
		return fmt.Errorf("put object: rename: %w", err)
	}
	if d, err := s.root.Open(dir); err == nil {
		serr := d.Sync()
		d.Close()
		if serr != nil {
			return fmt.Errorf("put object: sync directory: %w", serr)
		}
	}
	return nil
}

// Delete removes an object and then its parent directories that became
// empty. Deleting a missing object is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := validateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p := objectPath(key)
	info, err := s.root.Lstat(p)
	if err != nil {
		if isNotExist(err) {
			return nil
		}
		return fmt.Errorf("delete object: %w", err)
	}
	if info.IsDir() {
		return nil // a prefix, not an object
	}
	if err := s.root.Remove(p); err != nil && !isNotExist(err) {
		return fmt.Errorf("delete object: %w", err)
	}
	// Remove fails on a non-empty directory, which ends the walk.
	for dir := path.Dir(key); dir != "."; dir = path.Dir(dir) {
		if s.root.Remove(objectPath(dir)) != nil {
			break
		}
	}
	return nil
}

func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

func isConflict(err error) bool {
	return errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) ||
		errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY)
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
