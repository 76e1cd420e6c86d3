package dlc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/alibabacloud-go/tea/dara"
)

// DecodeListJobsResponse decodes a ListJobs body with the lenient decoder of the official SDK
// (tea's dara parser): numbers are accepted where the reference says strings and numeric strings
// where it says numbers, null and absent fields leave the zero value, unknown fields are ignored.
// HasTotalCount records whether the body carried a TotalCount at all.
func DecodeListJobsResponse(body []byte) (*ListJobsResponse, error) {
	return decodeListJobs(bytes.NewReader(body), 0)
}

// errTooManyJobs is returned by decodeListJobs for a page larger than the caller asked for.
var errTooManyJobs = errors.New("too many jobs")

// envelope is the part of a ListJobs body that is not the job list, decoded leniently.
type envelope struct {
	TotalCount *int64 `json:"TotalCount"`
	RequestID  string `json:"RequestId"`
}

// decodeListJobs streams one ListJobs body from r. With maxJobs > 0 a Jobs array holding more
// than maxJobs elements is refused as soon as element maxJobs+1 starts, so a hostile page of
// 200,000 tiny jobs costs the allocation of maxJobs jobs, not of 200,000.
//
// The body is walked with encoding/json's token stream and each job is handed to the
// SDK's lenient decoder on its own; only the three envelope fields the API defines are kept, and
// every other value is skipped token by token without being held.
func decodeListJobs(r io.Reader, maxJobs int) (resp *ListJobsResponse, err error) {
	// The lenient decoder is reflection- and unsafe-based; a panic on a hostile body must
	// become an error, never a crashed manager.
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, fmt.Errorf("decoding ListJobs response: %v", r)
		}
	}()
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return nil, err
	}
	var out ListJobsResponse
	env := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, invalidJSON(err)
		}
		key, _ := tok.(string)
		switch key {
		case "Jobs":
			jobs, raw, err := decodeJobs(dec, maxJobs)
			if err != nil {
				return nil, err
			}
			out.Jobs, out.raw = jobs, raw
		case "TotalCount", "RequestId":
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, invalidJSON(err)
			}
			env[key] = raw
		default:
			if err := skipValue(dec); err != nil {
				return nil, err
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("decoding ListJobs response: body is not valid JSON (data after the object)")
	}
	var e envelope
	if err := dara.Convert(env, &e); err != nil {
		return nil, fmt.Errorf("decoding ListJobs response: %w", err)
	}
	if e.TotalCount != nil {
		out.TotalCount, out.HasTotalCount = *e.TotalCount, true
	}
	out.RequestID = e.RequestID
	return &out, nil
}

// decodeJobs decodes the value of the Jobs field: null or an array of jobs, with the JSON of
// each job.
func decodeJobs(dec *json.Decoder, maxJobs int) (jobs []JobItem, raws [][]byte, err error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, invalidJSON(err)
	}
	if tok == nil {
		return nil, nil, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, nil, errors.New("decoding ListJobs response: Jobs is not an array")
	}
	for dec.More() {
		if maxJobs > 0 && len(jobs) >= maxJobs {
			return nil, nil, fmt.Errorf("decoding ListJobs response: the page holds more than the %d jobs asked for: %w", maxJobs, errTooManyJobs)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, invalidJSON(err)
		}
		var job JobItem
		if err := dara.Convert(raw, &job); err != nil {
			return nil, nil, fmt.Errorf("decoding ListJobs response: job %d: %w", len(jobs)+1, err)
		}
		jobs, raws = append(jobs, job), append(raws, raw)
	}
	if err := expectDelim(dec, ']'); err != nil {
		return nil, nil, err
	}
	return jobs, raws, nil
}

// skipValue consumes one JSON value of any depth without keeping it.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return invalidJSON(err)
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				depth++
			default:
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
	}
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return invalidJSON(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		// The token itself is not quoted: error texts never carry body content.
		return fmt.Errorf("decoding ListJobs response: want %q", want)
	}
	return nil
}

// invalidJSON words a syntax or read error; a read error (the size limit, a cut connection) is
// kept in the chain so the client can classify it.
func invalidJSON(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return errors.New("decoding ListJobs response: body is not valid JSON (truncated)")
	}
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return errors.New("decoding ListJobs response: body is not valid JSON")
	}
	return fmt.Errorf("decoding ListJobs response: %w", err)
}
