package dlc

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/alibabacloud-go/tea/dara"
	"github.com/klauspost/compress/s2"
)

// A listing is written only once it is known complete and consistent, so every job of it
// is held until then: decoded, about 4.7 KiB each as dlcsim generates them (10,000 jobs: the
// largest part of a manager's peak during a first sync; 100,000: more than the chart's default
// memory limit). Held as the job's JSON, compressed with a dictionary made of the first jobs of
// the walk (every job has the same field names, many of the same values), the compressed data is
// about 0.35 KiB and, with the Held that keeps the fields a walk decides with, a job costs about
// 0.6 KiB (BenchmarkHeldListing10000: 6 MiB for 10,000 jobs, 47 MiB decoded). Decoding it again
// when it is written costs what the first decoding did (tens of microseconds).

// ErrUnpack is the error of Held.Job for a packed job whose data does not decode again, or is
// another job's. Neither can happen (the header and the data come from the same bytes, decoded
// once already); it is a problem of that one job, never of the listing.
var ErrUnpack = errors.New("the job's data held since the listing cannot be restored")

// packedJob is the compressed JSON of one job as the API sent it.
type packedJob struct {
	dict *s2.Dict
	data []byte
}

// packer compresses the jobs of one listing, one at a time: every walk of a ListAll, and every
// ListAll of a ListChanges, so that one dictionary serves them all.
type packer struct {
	// mem is charged for the dictionary, which lives as long as the last job packed with it.
	mem  *Reservation
	dict *s2.Dict
	// scratch is the encoder's output buffer: s2 sizes its output for the worst case (more than
	// the input), so each job keeps an exact copy.
	scratch []byte
}

// packDictBytes is how much of the first page's JSON makes the dictionary.
const packDictBytes = 16 << 10

// dictTableBytes is the table an s2 dictionary makes at its first Encode (s2.Dict's fastTable,
// 1<<14 uint16), held as long as the dictionary.
const dictTableBytes = 1 << 14 * 2

// learn makes the dictionary from the first jobs of a page, once per listing, and charges it to
// the listing's reservation. At most packDictBytes are copied, whatever size the jobs are: the
// dictionary lives as long as the last packed job, and a huge first job must not stay in memory
// that long.
func (p *packer) learn(raw [][]byte) error {
	if p.dict != nil {
		return nil
	}
	sample := make([]byte, 0, packDictBytes+16)
	for _, r := range raw {
		sample = append(sample, r[:min(len(r), packDictBytes-len(sample))]...)
	}
	if len(sample) < s2.MinDictSize {
		return nil
	}
	if err := p.mem.take(int64(len(sample)) + dictTableBytes); err != nil {
		return err
	}
	p.dict = s2.MakeDict(sample, nil)
	return nil
}

// pack holds the job with its JSON compressed; Held.Job restores the rest.
func (p *packer) pack(job *JobItem, raw []byte) Held {
	if n := s2.MaxEncodedLen(len(raw)); cap(p.scratch) < n {
		p.scratch = make([]byte, n)
	}
	var encoded []byte
	if p.dict != nil {
		encoded = p.dict.Encode(p.scratch[:cap(p.scratch)], raw)
	} else {
		encoded = s2.Encode(p.scratch[:cap(p.scratch)], raw)
	}
	held := headerOf(job)
	held.packed = &packedJob{dict: p.dict, data: bytes.Clone(encoded)}
	return held
}

// unpack decodes the job again from the JSON the API sent, by the decoder that read it the first
// time, so it comes back exactly as it was read. id is the ID the listing held it under.
func (p *packedJob) unpack(id string) (out JobItem, err error) {
	var raw []byte
	if p.dict != nil {
		raw, err = p.dict.Decode(nil, p.data)
	} else {
		raw, err = s2.Decode(nil, p.data)
	}
	// Every failure is ErrUnpack itself: the decoder's own error text would quote the
	// job's data, and the caller names the job (the skipped list prefixes each error with its ID).
	if err != nil {
		return JobItem{}, ErrUnpack
	}
	// As in decodeListJobs, a panic of the reflection-based decoder is an error.
	defer func() {
		if r := recover(); r != nil {
			out, err = JobItem{}, ErrUnpack
		}
	}()
	// As a json.RawMessage, as decodeJobs passes it (a []byte would be taken as base64).
	if err := dara.Convert(json.RawMessage(raw), &out); err != nil {
		return JobItem{}, ErrUnpack
	}
	if out.JobID != id {
		// The snapshot's name comes from the header's ID; data of another job must
		// never be written under it.
		return JobItem{}, ErrUnpack
	}
	return out, nil
}
