package dlc

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
)

// allocatedDuring returns the bytes allocated on the heap while f ran.
func allocatedDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

const allocationBound = 40 << 20

// A 4 MB page of 200,000 tiny jobs is refused after PageSize of them: decoding every one would
// allocate more than 350 MiB of JobItems.
func TestAPageWithMoreJobsThanAskedIsRefusedBeforeDecodingThem(t *testing.T) {
	var body strings.Builder
	body.WriteString(`{"TotalCount":200000,"RequestId":"r","Jobs":[`)
	for i := range 200000 {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"JobId":"j%d"}`, i)
	}
	body.WriteString(`]}`)
	page := body.String()
	api := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(page)) })
	c, _ := newTestClient(t, api, RetryPolicy{MaxAttempts: 1})
	var err error
	allocated := allocatedDuring(func() {
		_, err = c.ListJobs(context.Background(), &ListJobsRequest{PageSize: Ptr[int32](100)})
	})
	if KindOf(err) != KindBadResponse || !strings.Contains(err.Error(), "more than the 100 jobs asked for") {
		t.Fatalf("err %v; want a BadResponse naming the page size", err)
	}
	if strings.Contains(err.Error(), `"j`) {
		t.Fatalf("the error quotes the body: %v", err)
	}
	if allocated > allocationBound {
		t.Fatalf("refusing the page allocated %d MiB, want < %d MiB", allocated>>20, allocationBound>>20)
	}
	t.Logf("allocated %d KiB for a %d KiB page", allocated>>10, len(page)>>10)
}

// A 200 MB body is cut at the size limit while it is read, with or without a Content-Length.
func TestABodyLargerThanTheLimitIsCutWhileReading(t *testing.T) {
	chunk := []byte(strings.Repeat("x", 64<<10))
	const size = 200 << 20
	for _, declared := range []bool{false, true} {
		t.Run(fmt.Sprintf("content-length=%v", declared), func(t *testing.T) {
			var served int64
			api := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if declared {
					w.Header().Set("Content-Length", fmt.Sprint(size+len(`{"RequestId":"`)+2))
				}
				_, _ = w.Write([]byte(`{"RequestId":"`))
				for served < size {
					n, err := w.Write(chunk)
					served += int64(n)
					if err != nil {
						return
					}
				}
				_, _ = w.Write([]byte(`"}`))
			})
			c, _ := newTestClient(t, api, RetryPolicy{MaxAttempts: 1})
			var err error
			allocated := allocatedDuring(func() {
				_, err = c.ListJobs(context.Background(), &ListJobsRequest{})
			})
			if KindOf(err) != KindBadResponse || !strings.Contains(err.Error(), "exceeds the limit of 8388608 bytes") {
				t.Fatalf("err %v; want a BadResponse naming the limit", err)
			}
			if strings.Contains(err.Error(), "xxxx") {
				t.Fatalf("the error quotes the body: %.200s", err)
			}
			if allocated > allocationBound {
				t.Fatalf("reading the body allocated %d MiB, want < %d MiB", allocated>>20, allocationBound>>20)
			}
			t.Logf("allocated %d KiB, server wrote %d MiB before the client hung up", allocated>>10, served>>20)
		})
	}
}

func TestMaxBodyBytesIsConfigurable(t *testing.T) {
	small := `{"Jobs":[{"JobId":"dlc1"}],"TotalCount":1,"RequestId":"REQ-OK"}`
	api := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(small)) })
	srv := newTestServer(t, api)
	for _, tc := range []struct {
		limit int64
		ok    bool
	}{{int64(len(small)), true}, {int64(len(small)) - 1, false}} {
		c, err := NewClient(Config{RegionID: "cn-hangzhou", Endpoint: srv, MaxBodyBytes: tc.limit, Retry: RetryPolicy{MaxAttempts: 1},
			Static: &StaticCredentials{AccessKeyID: "testid", AccessKeySecret: "testsecret-very-secret"}})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.ListJobs(context.Background(), &ListJobsRequest{})
		if tc.ok && (err != nil || resp.TotalCount != 1 || !resp.HasTotalCount || resp.Jobs[0].JobID != "dlc1") {
			t.Fatalf("limit %d = body size: %v %+v", tc.limit, err, resp)
		}
		if !tc.ok && (KindOf(err) != KindBadResponse || !retryable(err) ||
			!strings.Contains(err.Error(), fmt.Sprintf("exceeds the limit of %d bytes", tc.limit))) {
			t.Fatalf("limit %d < body size: %v", tc.limit, err)
		}
	}
}
