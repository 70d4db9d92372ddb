//go:build !unix

package scan

import "time"

// cpuTime is unknown here; benchmarks then report no MB/cpu-s.
func cpuTime() time.Duration { return 0 }
