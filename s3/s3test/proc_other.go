//go:build !linux

package s3test

import "os/exec"

// setDeathSignal does nothing where the kernel cannot kill a child with
// its parent; t.Cleanup still stops the gateway.
func setDeathSignal(*exec.Cmd) {}
