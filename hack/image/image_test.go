package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

func TestCreationTimeNeverReadsTheClock(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	for _, tc := range []struct {
		flag string
		want int64
	}{
		{"", 1700000000}, // SOURCE_DATE_EPOCH
		{"1600000000", 1600000000},
		{"2024-01-02T03:04:05+02:00", 1704157445},
	} {
		got, err := creationTime(tc.flag)
		if err != nil || got.Unix() != tc.want || got.Location() != time.UTC {
			t.Errorf("creationTime(%q) = %v, %v; want %d UTC", tc.flag, got, err, tc.want)
		}
	}
	if _, err := creationTime("yesterday"); err == nil {
		t.Error("an unparsable --created was accepted")
	}
}

func TestTheLayerDependsOnItsContentsOnly(t *testing.T) {
	mtime := time.Unix(1700000000, 0).UTC()
	a, err := layerTar(rootFS([]byte("binary")), mtime)
	if err != nil {
		t.Fatal(err)
	}
	b, err := layerTar(rootFS([]byte("binary")), mtime)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("two layers of the same files differ")
	}
	tr := tar.NewReader(bytes.NewReader(a))
	seen := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[h.Name] = h
		if !h.ModTime.Equal(mtime) || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: time %v, owner names %q/%q; want the fixed time and numeric owners only", h.Name, h.ModTime, h.Uname, h.Gname)
		}
	}
	if h := seen["manager"]; h == nil || h.Mode != 0o755 || h.Uid != 0 || h.Size != int64(len("binary")) {
		t.Errorf("manager entry %+v", h)
	}
	if h := seen["home/nonroot/"]; h == nil || h.Uid != nonRootUID {
		t.Errorf("home entry %+v, want owned by %d", h, nonRootUID)
	}
	if _, ok := seen["bin/sh"]; ok {
		t.Error("the layer has a shell")
	}
}
