package main

import (
	"fmt"
	"math"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// memoryLimitEnv names the variable holding the container's memory limit in bytes; the chart and
// the kustomize manifests fill it from limits.memory through the downward API.
const memoryLimitEnv = "DLCSYNC_MEMORY_LIMIT"

// defaultMemoryLimitRatio is the part of the container's memory limit given to the Go runtime as
// its soft limit. The rest is for what the runtime does not count but the container's
// limit does: the binary's own mapped pages (about 43 MiB resident, make bench; the kernel can
// reclaim those under pressure, at the price of reading them again) and memory outside the Go
// heap. With a soft limit equal to the container's, the runtime lets its heap use room those
// take (at 95,000 cached snapshots the resident set was 326 MiB under GOMEMLIMIT 300 MiB).
const defaultMemoryLimitRatio = 0.8

// minContainerLimit is the least container limit accepted: below it the value is almost certainly
// not in bytes (a downward API divisor such as 1Mi turns 256Mi into "256"), and a soft limit
// of a few hundred bytes would make the runtime collect without pause.
const minContainerLimit = 32 << 20

// softMemoryLimit is the Go runtime's soft memory limit for a container limit (the value of
// memoryLimitEnv) and ratio, or 0 when none is to be set: no container limit, or GOMEMLIMIT set
// explicitly (the runtime applied that one already; an operator's setting wins).
func softMemoryLimit(containerLimit, goMemLimit string, ratio float64) (int64, error) {
	if !(ratio > 0 && ratio <= 1) {
		return 0, fmt.Errorf("--memory-limit-ratio %v: must be more than 0 and at most 1", ratio)
	}
	if containerLimit == "" || goMemLimit != "" {
		return 0, nil
	}
	limit, err := strconv.ParseInt(containerLimit, 10, 64)
	if err != nil || limit < minContainerLimit {
		return 0, fmt.Errorf("%s=%q: want the container's memory limit in bytes (at least %d), as the downward API gives it "+
			"without a divisor", memoryLimitEnv, containerLimit, minContainerLimit)
	}
	// Without a limit, the downward API gives the node's allocatable memory; that is
	// still the most this container may use. The product stays far below 2^63 for any real
	// limit; math.MaxInt64 is the runtime's "no limit".
	return int64(min(float64(limit)*ratio, math.MaxInt64/2)), nil
}

// A large sync is a burst (every job of a page walk held at once, then thousands of
// writes), after which the manager idles with only its cache live, a fraction of the peak. The Go
// runtime keeps the peak's pages mapped for a long time, so without help the resident set stays
// at the peak: at 10,000 jobs about 200 MiB for 30 MiB of live heap (make bench). Returning freed
// memory once after such a burst keeps the manager's footprint at what it needs.

// bigSyncJobs is the listing size from which a sync counts as a burst.
const bigSyncJobs = 2000

// memoryReleaseEvery bounds how often the manager returns memory (each costs one full GC).
const memoryReleaseEvery = 5 * time.Minute

var memoryRelease struct {
	sync.Mutex
	last    time.Time
	running bool
}

// afterBigSync returns the memory freed by a sync that listed many jobs to the OS, in the
// background and at most once per memoryReleaseEvery. It is the reconciler's AfterSync hook: a
// policy of this binary, not of the reconciler (tests and the in-process benchmark run without).
func afterBigSync(listedJobs int) {
	if listedJobs < bigSyncJobs {
		return
	}
	memoryRelease.Lock()
	defer memoryRelease.Unlock()
	if memoryRelease.running || time.Since(memoryRelease.last) < memoryReleaseEvery {
		return
	}
	memoryRelease.running, memoryRelease.last = true, time.Now()
	// A moment later, when the sync that called this has returned and its listing is
	// garbage, and the cache has taken in the watch events of its writes.
	time.AfterFunc(releaseDelay, func() {
		debug.FreeOSMemory()
		memoryRelease.Lock()
		memoryRelease.running = false
		memoryRelease.Unlock()
	})
}

// releaseDelay is the wait between a big sync's end and the memory release.
const releaseDelay = 2 * time.Second

// defaultListingMemoryRatio is the part of the Go memory limit that job listings may hold at once
// by default. A quarter, because the garbage collector lets the heap grow to about twice
// what is live before it collects (GOGC=100); with 40%, a listing at the budget took the
// manager's resident set to 235 MiB of the chart's 256 MiB (test/memory). The rest is the cache,
// the page each sync reads (up to 8 MiB and its decoding) and the writes.
const defaultListingMemoryRatio = 0.25

// defaultListingMemory is the listing budget of a manager without a memory limit.
const defaultListingMemory = 1 << 30

// listingMemory is the --listing-memory budget in bytes: the flag's quantity, or by default a part
// of goLimit (the runtime's memory limit, math.MaxInt64 for none).
func listingMemory(flagValue string, goLimit int64) (int64, error) {
	if flagValue != "" {
		q, err := resource.ParseQuantity(flagValue)
		if err != nil || q.Value() <= 0 {
			return 0, fmt.Errorf("--listing-memory %q: want a positive quantity such as 100Mi", flagValue)
		}
		return q.Value(), nil
	}
	if goLimit <= 0 || goLimit == math.MaxInt64 {
		return defaultListingMemory, nil
	}
	return int64(float64(goLimit) * defaultListingMemoryRatio), nil
}
