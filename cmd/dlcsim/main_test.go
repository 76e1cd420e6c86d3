package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLoadIdentitiesFromAYAMLFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ids.yaml")
	data := `
- accessKeyId: alice-key
  accessKeySecret: alice-secret
  userId: "1"
  username: alice
- accessKeyId: STS.key
  accessKeySecret: sts-secret
  securityToken: CAIS-token
  userId: "2"
  admin: true
  allowListJobs: false
`
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	ids, err := loadIdentities(path, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 || ids[0].Username != "alice" || ids[1].SecurityToken != "CAIS-token" || !ids[1].Admin ||
		ids[1].AllowListJobs == nil || *ids[1].AllowListJobs {
		t.Fatalf("identities: %+v", ids)
	}
	if err := os.WriteFile(path, []byte("- accessKeyId: no-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadIdentities(path, "", "", ""); err == nil {
		t.Fatal("an identity without a secret was accepted")
	}
	single, err := loadIdentities("", "k", "s", "9")
	if err != nil || len(single) != 1 || !single[0].Admin || single[0].UserID != "9" {
		t.Fatalf("flags: %+v %v", single, err)
	}
	if _, err := loadIdentities("", "k", "", ""); err == nil {
		t.Fatal("--access-key-id without a secret was accepted")
	}
}

func TestFaultsFlagTakesTheControlAPIJSONInlineOrFromAFile(t *testing.T) {
	f, err := parseFaults(`{"totalCount":"omit","oversizePage":5,"shuffleTies":true,"pageDelay":"2s","hang":true,"padMB":200,"tinyJobs":200000,"liveDuration":true}`)
	if err != nil || f.TotalCount != "omit" || f.OversizePage != 5 || !f.ShuffleTies || time.Duration(f.PageDelay) != 2*time.Second ||
		!f.Hang || f.PadMB != 200 || f.TinyJobs != 200000 || !f.LiveDuration {
		t.Fatalf("inline: %+v %v", f, err)
	}
	path := filepath.Join(t.TempDir(), "faults.json")
	if err := os.WriteFile(path, []byte(`{"totalCount":"more","totalCountBy":3}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if f, err := parseFaults("@" + path); err != nil || f.TotalCount != "more" || f.TotalCountBy != 3 {
		t.Fatalf("from a file: %+v %v", f, err)
	}
	for _, bad := range []string{`{"noSuchFault":1}`, `{"totalCount":"sometimes"}`, `{"tinyJobs":-1}`, "@/no/such/file"} {
		if _, err := parseFaults(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
