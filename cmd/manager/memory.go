package main

import (
	"runtime/debug"
	"sync"
	"time"
)

// Note: a large sync is a burst (every job of a page walk held at once, then thousands of
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
	// Note: a moment later, when the sync that called this has returned and its listing is
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
