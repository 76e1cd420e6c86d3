package main

import (
	"math"
	"strings"
	"testing"
)

func TestSoftMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		name                string
		containerLimit, env string
		ratio               float64
		want                int64
		wantErr             string
	}{
		{name: "the chart's default limit", containerLimit: "268435456", ratio: 0.8, want: 214748364},
		{name: "the whole limit", containerLimit: "1073741824", ratio: 1, want: 1 << 30},
		{name: "no container limit", ratio: 0.8, want: 0},
		{name: "an explicit GOMEMLIMIT wins", containerLimit: "268435456", env: "100MiB", ratio: 0.8, want: 0},
		{name: "not bytes", containerLimit: "256Mi", ratio: 0.8, wantErr: "DLCSYNC_MEMORY_LIMIT=\"256Mi\""},
		{name: "zero", containerLimit: "0", ratio: 0.8, wantErr: "in bytes"},
		{name: "mebibytes, from a divisor", containerLimit: "256", ratio: 0.8, wantErr: "without a divisor"},
		{name: "the largest limit", containerLimit: "9223372036854775807", ratio: 1, want: 1 << 62},
		{name: "ratio zero", containerLimit: "1000", ratio: 0, wantErr: "--memory-limit-ratio 0"},
		{name: "ratio above one, even without a limit", ratio: 1.5, wantErr: "at most 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := softMemoryLimit(tc.containerLimit, tc.env, tc.ratio)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("softMemoryLimit = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

func TestListingMemory(t *testing.T) {
	for _, tc := range []struct {
		flag    string
		goLimit int64
		want    int64
		wantErr bool
	}{
		{"", 200 << 20, 50 << 20, false},
		{"", math.MaxInt64, 1 << 30, false},
		{"64Mi", 200 << 20, 64 << 20, false},
		{"0", 200 << 20, 0, true},
		{"lots", 200 << 20, 0, true},
	} {
		got, err := listingMemory(tc.flag, tc.goLimit)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("listingMemory(%q, %d) = %d, %v; want %d, error %v", tc.flag, tc.goLimit, got, err, tc.want, tc.wantErr)
		}
	}
}
