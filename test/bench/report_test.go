package bench

import (
	"strings"
	"testing"
	"time"
)

func TestChecksHoldTheRunToTheTargets(t *testing.T) {
	quiet := Phase{APICalls: 2}
	size := SizeResult{Jobs: 10000, Active: 100, Runs: 1, BaselineRuns: 1,
		Raw:        []time.Duration{100 * time.Second},
		Initial:    []Phase{{Duration: 104 * time.Second, APICalls: 100, Writes: 20001}},
		Steady:     []Phase{quiet, quiet, quiet},
		SteadyFull: []Phase{{APICalls: 100}},
		Churn:      []Phase{{SnapshotWrites: 200, Changed: 100, Writes: 301, Events: 100}},
		Memory:     &Memory{RSSBytes: 150 << 20, PeakRSSBytes: 120 << 20},
	}
	r := &Report{Options: Options{Syncs: 3, Active: 0.01}, Sizes: []SizeResult{size}}
	for _, c := range r.Checks() {
		if !c.Met {
			t.Errorf("%s: not met with %s", c.Target, c.Got)
		}
	}
	// 0.96 of the limit is enough; 0.91 is not. One write in a quiet sync fails.
	r.Sizes[0].Initial[0].Duration = 110 * time.Second
	r.Sizes[0].Steady[1].Writes = 1
	failed := 0
	for _, c := range r.Checks() {
		if !c.Met {
			failed++
		}
	}
	if failed != 2 {
		t.Fatalf("%d targets missed, want 2: %+v", failed, r.Checks())
	}
	md := r.Markdown()
	for _, want := range []string{"| 1. Limit: bare client", "**2 calls**", "| Target | Measured | Met |", "**no**"} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}
