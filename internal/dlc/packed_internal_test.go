package dlc

import (
	"bytes"
	"errors"
	"runtime"
	"testing"
)

// The dictionary keeps a copy of at most packDictBytes of the first page, however large its
// jobs: it lives as long as the last packed job of the listing, and a hostile first job of
// megabytes must not live that long (nor be copied whole to make it).
func TestTheDictionaryCopiesNoMoreThanItsSample(t *testing.T) {
	huge := append(append([]byte(`{"JobId":"dlc-huge","DisplayName":"`), bytes.Repeat([]byte("x"), 4<<20)...), `"}`...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	p := &packer{}
	if err := p.learn([][]byte{huge, []byte(`{"JobId":"dlc-2"}`)}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if p.dict == nil {
		t.Fatal("no dictionary made")
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("learning from a 4 MiB job allocated %d bytes", n)
	}
	if n := len(p.dict.Bytes()); n > packDictBytes+16 {
		t.Errorf("the dictionary holds %d bytes", n)
	}
	// And a job packed with it comes back whole.
	packed := p.pack(&JobItem{JobID: "dlc-huge"}, huge)
	got, err := packed.Job()
	if err != nil || len(got.DisplayName) != 4<<20 {
		t.Errorf("unpacked %d bytes of DisplayName, %v", len(got.DisplayName), err)
	}
}

// A packed job whose data is another job's (a header and its JSON paired wrongly) does not
// unpack: its snapshot's name comes from the header, and another job's data must never be
// written under it.
func TestAPackedJobWhoseDataIsAnotherJobsDoesNotUnpack(t *testing.T) {
	p := &packer{}
	raw := []byte(`{"JobId":"dlc-b","DisplayName":"b"}`)
	if err := p.learn([][]byte{raw}); err != nil {
		t.Fatal(err)
	}
	packed := p.pack(&JobItem{JobID: "dlc-a"}, raw)
	if _, err := packed.Job(); !errors.Is(err, ErrUnpack) {
		t.Errorf("the job of dlc-a holding dlc-b's data: %v", err)
	}
}
