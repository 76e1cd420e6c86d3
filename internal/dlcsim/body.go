package dlcsim

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/dlcsync/dlcsync/internal/dlc"
)

// TotalCount lies (Faults.TotalCount).
const (
	totalZero     = "zero"
	totalOmit     = "omit"
	totalNegative = "negative"
	totalLess     = "less"
	totalMore     = "more"
)

// pageBody is a ListJobs answer, written field by field so that a huge one (Faults.PadMB,
// Faults.TinyJobs) can be streamed in bounded memory.
type pageBody struct {
	jobs      []dlc.JobItem
	total     int64
	omitTotal bool
	omitJobs  bool
	requestID string
	// pad is the length of a "Padding" string sent before Jobs.
	pad int64
	// tiny is a number of {"JobId":"tiny-N"} jobs sent instead of jobs.
	tiny int
}

// lieAboutTotal applies Faults.TotalCount.
func (p *pageBody) lieAboutTotal(mode string, by int64) {
	off := max(by, 1)
	switch mode {
	case totalZero:
		p.total = 0
	case totalOmit:
		p.omitTotal = true
	case totalNegative:
		p.total = -off
	case totalLess:
		p.total -= off
	case totalMore:
		p.total += off
	}
}

func (p *pageBody) streamed() bool { return p.pad > 0 || p.tiny > 0 }

// writeTo writes the body as the gateway does: compact JSON, HTML characters unescaped.
func (p *pageBody) writeTo(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	_ = bw.WriteByte('{')
	if p.pad > 0 {
		_, _ = bw.WriteString(`"Padding":"`)
		chunk := make([]byte, 32<<10)
		for i := range chunk {
			chunk[i] = 'x'
		}
		for left := p.pad; left > 0; {
			n := min(left, int64(len(chunk)))
			if _, err := bw.Write(chunk[:n]); err != nil {
				// The client went away: stop producing.
				return err
			}
			left -= n
		}
		_, _ = bw.WriteString(`",`)
	}
	if !p.omitJobs {
		_, _ = bw.WriteString(`"Jobs":[`)
		for i := range p.jobs {
			if i > 0 {
				_ = bw.WriteByte(',')
			}
			_, _ = bw.Write(marshal(&p.jobs[i]))
		}
		for i := range p.tiny {
			if i > 0 {
				_ = bw.WriteByte(',')
			}
			_, _ = bw.WriteString(`{"JobId":"tiny-`)
			_, _ = bw.WriteString(strconv.Itoa(i))
			if _, err := bw.WriteString(`"}`); err != nil {
				return err
			}
		}
		_, _ = bw.WriteString("],")
	}
	if !p.omitTotal {
		_, _ = bw.WriteString(`"TotalCount":`)
		_, _ = bw.WriteString(strconv.FormatInt(p.total, 10))
		_ = bw.WriteByte(',')
	}
	_, _ = bw.WriteString(`"RequestId":`)
	_, _ = bw.Write(marshal(p.requestID))
	_ = bw.WriteByte('}')
	return bw.Flush()
}

// delayedWriter sends the first after bytes, flushes them to the client, waits delay (or until
// the client gives up), then sends the rest: a slow page (Faults.PageDelay).
type delayedWriter struct {
	w       http.ResponseWriter
	ctx     context.Context
	after   int
	delay   time.Duration
	written int
	waited  bool
}

func (d *delayedWriter) Write(b []byte) (int, error) {
	if d.delay <= 0 || d.waited {
		return d.w.Write(b)
	}
	n := 0
	if head := d.after - d.written; head > 0 {
		k, err := d.w.Write(b[:min(head, len(b))])
		n, d.written = k, d.written+k
		if err != nil || k == len(b) {
			return n, err
		}
	}
	d.waited = true
	http.NewResponseController(d.w).Flush() //nolint:errcheck // a writer that cannot flush still delays
	select {
	case <-time.After(d.delay):
	case <-d.ctx.Done():
		return n, d.ctx.Err()
	}
	k, err := d.w.Write(b[n:])
	return n + k, err
}

// liveDurations sets the Duration of every running job of a page to its running time at now.
// The jobs are copies of the store's, but Duration is a pointer: a new one is set.
func liveDurations(jobs []dlc.JobItem, now time.Time) {
	for i := range jobs {
		j := &jobs[i]
		if dlc.IsTerminal(j.Status) || j.GmtRunningTime == "" {
			continue
		}
		if start, err := time.Parse(dlc.TimeLayout, j.GmtRunningTime); err == nil && !now.Before(start) {
			d := int64(now.Sub(start) / time.Second)
			j.Duration = &d
		}
	}
}
