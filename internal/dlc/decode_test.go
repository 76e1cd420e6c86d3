package dlc

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeMapsEveryJobItemFieldOfTheReference(t *testing.T) {
	raw, err := os.ReadFile("testdata/full_response.json")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := DecodeListJobsResponse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if resp.TotalCount != 1 || resp.RequestID != "473469C7-AA6F-4DC5-B3DB-A3DC0DE3C83E" || len(resp.Jobs) != 1 {
		t.Fatalf("envelope: %+v", resp)
	}
	// Every field of the example (all 62 JobItem fields, nested objects included) must survive a
	// decode/encode round trip: a field without a typed home would be dropped.
	var want struct{ Jobs []map[string]any }
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	if n := len(want.Jobs[0]); n != 62 {
		t.Fatalf("the example has %d JobItem fields, the reference lists 62", n)
	}
	encoded, err := json.Marshal(resp.Jobs[0])
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(encoded, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want.Jobs[0]) {
		for k, v := range want.Jobs[0] {
			if !reflect.DeepEqual(got[k], v) {
				t.Errorf("field %s: decoded and re-encoded as %v, want %v", k, got[k], v)
			}
		}
	}

	j := resp.Jobs[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"JobId", j.JobID, "dlc-20210126170216-mtl37ge7gkvdz"},
		{"Priority", *j.Priority, int32(1)},
		{"Duration", *j.Duration, int64(243)},
		{"RequestCPU", *j.RequestCPU, int64(1)},
		{"RequestGPU is a string", j.RequestGPU, "1"},
		{"NodeCount is a string", j.NodeCount, "1"},
		{"RestartTimes is a string", j.RestartTimes, "1"},
		{"GmtSuccessedTime", j.GmtSuccessedTime, "2025-04-16T07:28:20Z"},
		{"UseOversoldResource", *j.UseOversoldResource, false},
		{"JobSpecs[0].ResourceConfig.GPUType", j.JobSpecs[0].ResourceConfig.GPUType, "Tesla-V100-16G"},
		{"SpotDiscountLimit", *j.JobSpecs[0].SpotSpec.SpotDiscountLimit, 0.8},
		{"ElasticSpotSpecs[0].SpotPriceLimit", *j.JobSpecs[0].ElasticSpotSpecs[0].SpotPriceLimit, 12.5},
		{"ExtraPodSpec init container env", j.JobSpecs[0].ExtraPodSpec.InitContainers[0].Env[0].Value, "V"},
		{"Pods[0].HistoryPods[0].PodIps", j.Pods[0].HistoryPods[0].PodIPs[0].IP, "10.0.1.2"},
		{"ElasticSpec.EDPMaxParallelism", *j.ElasticSpec.EDPMaxParallelism, int32(2)},
		{"Settings.Tags", j.Settings.Tags["team"], "vision"},
		{"Settings.ModelConfig.ModelTemplate.Provider", j.Settings.ModelConfig.ModelTemplate.Provider, "p"},
		{"CredentialConfig token", j.CredentialConfig.CredentialConfigItems[0].Roles[0].AssumeUserInfo.SecurityToken, "tok"},
		{"UserVpc.ExtendedCidrs", j.UserVpc.ExtendedCidrs[0], "10.2.0.0/16"},
		{"supportedProfilingTypes", j.SupportedProfilingTypes, "sysom"},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestDecodeIsLenientLikeTheSDK(t *testing.T) {
	body := `{"TotalCount":"2","RequestId":"r","Unknown":{"x":[1]},"Jobs":[
		{"JobId":"a","Priority":"4","Duration":"243","RequestCPU":"8","RequestGPU":2,"NodeCount":1,"RestartTimes":0,
		 "UseOversoldResource":"true","GmtFailedTime":null,"NewField2027":"ignored"}]}`
	resp, err := DecodeListJobsResponse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	j := resp.Jobs[0]
	if resp.TotalCount != 2 || *j.Priority != 4 || *j.Duration != 243 || *j.RequestCPU != 8 ||
		j.RequestGPU != "2" || j.NodeCount != "1" || j.RestartTimes != "0" || !*j.UseOversoldResource || j.GmtFailedTime != "" {
		t.Fatalf("lenient decode: %+v", j)
	}
}

func TestDecodeTreatsAbsentOrNullJobsAsNone(t *testing.T) {
	for _, body := range []string{`{"TotalCount":0,"RequestId":"r"}`, `{"TotalCount":0,"Jobs":null}`, `{"TotalCount":0,"Jobs":[]}`} {
		resp, err := DecodeListJobsResponse([]byte(body))
		if err != nil || len(resp.Jobs) != 0 {
			t.Errorf("%s: %v, %+v", body, err, resp)
		}
	}
}

func TestDecodeRecordsWhetherTotalCountWasSent(t *testing.T) {
	for body, want := range map[string]bool{
		`{"TotalCount":0,"Jobs":[]}`: true, `{"TotalCount":"3"}`: true,
		`{"Jobs":[]}`: false, `{"TotalCount":null}`: false, `{"totalcount":5}`: false,
	} {
		resp, err := DecodeListJobsResponse([]byte(body))
		if err != nil || resp.HasTotalCount != want {
			t.Errorf("%s: err %v, HasTotalCount %v, want %v", body, err, resp != nil && resp.HasTotalCount, want)
		}
	}
}

func TestDecodeRefusesAPageLongerThanAskedAndSkipsUnknownValues(t *testing.T) {
	body := `{"Extra":{"deep":[[{"a":1}],"s"]},"TotalCount":3,"Jobs":[{"JobId":"a"},{"JobId":"b"},{"JobId":"c"}],"Tail":[1]}`
	if _, err := decodeListJobs(strings.NewReader(body), 2); !errors.Is(err, errTooManyJobs) {
		t.Fatalf("3 jobs with a limit of 2: %v", err)
	}
	resp, err := decodeListJobs(strings.NewReader(body), 3)
	if err != nil || len(resp.Jobs) != 3 || resp.Jobs[2].JobID != "c" || resp.TotalCount != 3 {
		t.Fatalf("3 jobs with a limit of 3: %v %+v", err, resp)
	}
	if _, err := decodeListJobs(strings.NewReader(body+` {}`), 3); err == nil {
		t.Fatal("data after the object was accepted")
	}
}

func TestDecodeRejectsWhatIsNotAListJobsBody(t *testing.T) {
	for _, body := range []string{``, `{"TotalCount":`, `<html>502</html>`, `[1,2]`, `{"TotalCount":"many"}`, `{"Jobs":{"JobId":"a"}}`} {
		if _, err := DecodeListJobsResponse([]byte(body)); err == nil {
			t.Errorf("%q decoded without error", body)
		}
	}
}

func FuzzDecodeListJobsResponse(f *testing.F) {
	if raw, err := os.ReadFile("testdata/full_response.json"); err == nil {
		f.Add(raw)
	}
	for _, seed := range []string{`{"TotalCount":"2","Jobs":[{"JobId":1,"Priority":"x"}]}`, `{"Jobs":[null]}`, `{}`, `[]`, `"x"`,
		`{"Jobs":[{"Settings":{"AdvancedSettings":[1]}}]}`, `{"TotalCount":1e309}`, `{"Jobs":[{"Pods":[{"HistoryPods":[{"HistoryPods":[{}]}]}]}]}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		resp, err := DecodeListJobsResponse(body)
		if err != nil {
			return
		}
		if resp == nil {
			t.Fatal("nil response without error")
		}
		if _, err := json.Marshal(resp); err != nil {
			t.Fatalf("a decoded response does not encode: %v", err)
		}
	})
}
