package main

import (
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
