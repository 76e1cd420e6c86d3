package bench

import (
	"sync"
	"time"
)

// Point is one sample of a series: seconds since its phase started, and a value.
type Point struct{ T, V float64 }

// sample records f every interval, from now until the returned function is called, which takes
// a last sample and returns them all. f runs on its own goroutine, one call at a time.
func sample(every time.Duration, f func() float64) (stop func() []Point) {
	start := time.Now()
	var (
		mu     sync.Mutex
		points []Point
	)
	take := func() {
		v := f()
		mu.Lock()
		points = append(points, Point{T: time.Since(start).Seconds(), V: v})
		mu.Unlock()
	}
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		ticker := time.NewTicker(every)
		defer ticker.Stop()
		for {
			take()
			select {
			case <-done:
				return
			case <-ticker.C:
			}
		}
	}()
	return func() []Point {
		close(done)
		<-finished
		take()
		mu.Lock()
		defer mu.Unlock()
		return points
	}
}

// seriesEvery is how often the writes-over-time series are sampled.
const seriesEvery = 250 * time.Millisecond
