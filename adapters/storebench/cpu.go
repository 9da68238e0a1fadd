package storebench

import (
	"syscall"
	"time"
)

// ProcessCPU is the process's user and system time so far: benchmarks
// report CPU per operation from two readings, since on shared cores the
// wall time also counts other work's.
func ProcessCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
