package controllers

import (
	"context"
	"sync"

	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// maxRecordedRequestIDs bounds the jobs whose answer a listing remembers: twice the largest
// maxJobs. A walk that sorts by another field than creation time reads every matching job (up
// to 100,000) to keep maxJobs of them; beyond the bound a job is credited with the last answer
// of the listing instead of its own.
const maxRecordedRequestIDs = 20000

// requestIDs remembers, for one listing, the RequestId of the ListJobs answer that last
// returned each job, so that a snapshot written from the listing can name it (status.requestId)
// for a support ticket. It is filled by the lister it wraps and read by the snapshot writes.
type requestIDs struct {
	mu    sync.Mutex
	byJob map[string]string
	last  string
}

// wrap returns a lister that records the RequestId of every answer of next.
func (r *requestIDs) wrap(next dlc.Lister) dlc.Lister { return &recordingLister{next: next, ids: r} }

func (r *requestIDs) record(resp *dlc.ListJobsResponse) {
	id := snapshot.RequestID(resp.RequestID)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byJob == nil {
		r.byJob = map[string]string{}
	}
	r.last = id
	for i := range resp.Jobs {
		job := resp.Jobs[i].JobID
		if _, known := r.byJob[job]; known || len(r.byJob) < maxRecordedRequestIDs {
			r.byJob[job] = id
		}
	}
}

// of is the RequestId of the answer that returned a job; "" when nothing was recorded.
func (r *requestIDs) of(jobID string) string {
	if r == nil {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if id, ok := r.byJob[jobID]; ok {
		return id
	}
	return r.last
}

type recordingLister struct {
	next dlc.Lister
	ids  *requestIDs
}

func (l *recordingLister) ListJobs(ctx context.Context, req *dlc.ListJobsRequest) (*dlc.ListJobsResponse, error) {
	resp, err := l.next.ListJobs(ctx, req)
	if err == nil && resp != nil {
		l.ids.record(resp)
	}
	return resp, err
}
