package scan

import "time"

// fileID is what stat says of a file: device, inode, size, and the
// modification and change times in nanoseconds. When none of them changed
// since a memo was written, the file's content has not either — a write
// updates the change time, which unlike the modification time no user can
// set back — so a replay may take the SHA-256 the memo recorded instead of
// reading the file again (git's index and Bazel's digest cache rely on the
// same test). The MBOM still records that SHA-256, and anyone verifying it
// hashes the data they hold.
type fileID struct {
	dev, ino           uint64
	size, mtime, ctime int64
}

// racyWindow is how recent a file's times may be, relative to the memo
// that recorded them, for its fileID still to be trusted: on file systems
// with coarse timestamps a write in the same tick as the hashing would
// leave the times unchanged (git's "racy clean" problem). Such a file is
// hashed. A variable for tests.
var racyWindow = 2 * time.Second

// trusted reports whether id, stat now, may stand for the content the memo
// written at memoTime recorded with the same id.
func (id fileID) trusted(recorded fileID, memoTime time.Time) bool {
	limit := memoTime.Add(-racyWindow).UnixNano()
	return id == recorded && id.mtime < limit && id.ctime < limit
}
