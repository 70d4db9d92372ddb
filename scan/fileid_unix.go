//go:build linux || darwin

package scan

import (
	"os"
	"syscall"
)

// statID returns path's fileID, or ok false when stat fails or the file is
// not a regular file.
func statID(path string) (fileID, bool) {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return fileID{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	mtime, ctime := statTimes(st)
	return fileID{dev: uint64(st.Dev), ino: st.Ino, size: st.Size, mtime: mtime, ctime: ctime}, true
}
