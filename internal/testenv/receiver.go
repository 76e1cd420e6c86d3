package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// Receiver is a CloudEvents sink built on the SDK's own HTTP receiver, as an automation
// endpoint would be: it records every event it accepts and can be taken down (answering 503).
type Receiver struct {
	// URL is the sink's address.
	URL string

	mu       sync.Mutex
	events   []cloudevents.Event
	requests int
	down     bool
}

// StartReceiver starts a Receiver on addr ("127.0.0.1:0" for any port), stopped with the test.
func StartReceiver(t testing.TB, addr string) *Receiver {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p, err := cehttp.New(cehttp.WithListener(l))
	if err != nil {
		t.Fatal(err)
	}
	c, err := cloudevents.NewClient(p)
	if err != nil {
		t.Fatal(err)
	}
	r := &Receiver{URL: fmt.Sprintf("http://%s/events", l.Addr())}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.StartReceiver(ctx, func(_ context.Context, ev cloudevents.Event) protocol.Result {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.requests++
			if r.down {
				return cehttp.NewResult(http.StatusServiceUnavailable, "down for maintenance")
			}
			r.events = append(r.events, ev)
			return cehttp.NewResult(http.StatusAccepted, "")
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return r
}

// SetDown makes the receiver refuse (503) or accept events.
func (r *Receiver) SetDown(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = down
}

// Events returns the accepted events, in the order they arrived.
func (r *Receiver) Events() []cloudevents.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]cloudevents.Event(nil), r.events...)
}

// Requests counts every request that reached the receiver, refused ones included.
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// IDs counts the accepted events by id.
func (r *Receiver) IDs() map[string]int {
	out := map[string]int{}
	for _, ev := range r.Events() {
		out[ev.ID()]++
	}
	return out
}
