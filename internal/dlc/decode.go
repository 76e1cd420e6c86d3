package dlc

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/alibabacloud-go/tea/dara"
)

// DecodeListJobsResponse decodes a ListJobs body with the lenient decoder of the official SDK
// (tea's dara parser): numbers are accepted where the reference says strings and numeric strings
// where it says numbers, null and absent fields leave the zero value, unknown fields are ignored.
func DecodeListJobsResponse(body []byte) (resp *ListJobsResponse, err error) {
	if !json.Valid(body) {
		return nil, errors.New("decoding ListJobs response: body is not valid JSON")
	}
	// Note: the lenient decoder is reflection- and unsafe-based; a panic on a hostile body must
	// become an error, never a crashed manager.
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, fmt.Errorf("decoding ListJobs response: %v", r)
		}
	}()
	var out ListJobsResponse
	if err := dara.Convert(json.RawMessage(body), &out); err != nil {
		return nil, fmt.Errorf("decoding ListJobs response: %w", err)
	}
	return &out, nil
}
