package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// platforms are the platforms the template names.
var platforms = []string{"linux_amd64", "linux_arm64", "darwin_amd64", "darwin_arm64", "windows_amd64"}

// fakeRelease lays out one small fake binary per platform, as make release-plugin lays out the
// real ones, and the completion script to include.
func fakeRelease(t *testing.T) (dirs []string, include string) {
	t.Helper()
	root := t.TempDir()
	for _, p := range platforms {
		dir := filepath.Join(root, "plugin", p)
		name := binaryName
		if strings.HasPrefix(p, "windows") {
			name += ".exe"
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte("binary for "+p), 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	include = filepath.Join(root, "kubectl_complete-dlcsync")
	if err := os.WriteFile(include, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dirs, include
}

// manifest is what the test reads of a krew Plugin.
type manifest struct {
	Spec struct {
		Version   string `json:"version"`
		Platforms []struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			URI    string `json:"uri"`
			SHA256 string `json:"sha256"`
			Bin    string `json:"bin"`
		} `json:"platforms"`
	} `json:"spec"`
}

// TestManifestNamesEachArchiveWithItsChecksumAndValidates renders the real template over fake
// archives through krew's own validator, and checks each platform's uri and sha256 against the
// files written.
func TestManifestNamesEachArchiveWithItsChecksumAndValidates(t *testing.T) {
	dirs, include := fakeRelease(t)
	out := t.TempDir()
	o := options{tag: "v1.2.3", template: filepath.Join("..", "..", "plugins", "dlcsync.yaml"), out: out,
		includes: []string{include}, epoch: 1700000000, validate: runKrewValidator}
	written, err := o.run(dirs)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if filepath.Base(written) != "dlcsync.yaml" {
		t.Errorf("manifest written to %s, want dlcsync.yaml (krew reads the plugin's name from it)", written)
	}
	data, err := os.ReadFile(written)
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatalf("decoding the manifest: %v", err)
	}
	if m.Spec.Version != "v1.2.3" || len(m.Spec.Platforms) != len(platforms) {
		t.Fatalf("version %q with %d platforms, want v1.2.3 with %d:\n%s", m.Spec.Version, len(m.Spec.Platforms), len(platforms), data)
	}
	for _, p := range m.Spec.Platforms {
		platform := p.Selector.MatchLabels["os"] + "_" + p.Selector.MatchLabels["arch"]
		want := "https://github.com/dlcsync/dlcsync/releases/download/v1.2.3/kubectl-dlcsync_v1.2.3_" + platform + ".tar.gz"
		if p.URI != want {
			t.Errorf("%s: uri %s, want %s", platform, p.URI, want)
		}
		archive, err := os.ReadFile(filepath.Join(out, path.Base(p.URI)))
		if err != nil {
			t.Errorf("%s: the uri names no archive written: %v", platform, err)
			continue
		}
		sum := sha256.Sum256(archive)
		if p.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: sha256 %s, the archive's is %x", platform, p.SHA256, sum)
		}
		names := archiveEntries(t, archive)
		if len(names) != 2 || names[0] != p.Bin || names[1] != "kubectl_complete-dlcsync" {
			t.Errorf("%s: archive holds %v, want the manifest's bin %s and the completion script", platform, names, p.Bin)
		}
	}
}

// archiveEntries lists a tar.gz's names in order and checks what makes it reproducible.
func archiveEntries(t *testing.T, data []byte) []string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if !zr.ModTime.IsZero() || zr.Name != "" {
		t.Errorf("gzip header carries a time %v or name %q", zr.ModTime, zr.Name)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(time.Unix(1700000000, 0)) || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || h.Mode != 0o755 {
			t.Errorf("%s: mtime %v, owner %d:%d (%q:%q), mode %o; want SOURCE_DATE_EPOCH, 0:0, 0755", h.Name, h.ModTime,
				h.Uid, h.Gid, h.Uname, h.Gname, h.Mode)
		}
		names = append(names, h.Name)
	}
}

func TestArchivesAreReproducible(t *testing.T) {
	dirs, include := fakeRelease(t)
	var first []byte
	for range 2 {
		out := t.TempDir()
		o := options{tag: "v1.2.3", out: out, includes: []string{include}, epoch: 1700000000}
		name, _, err := o.pack(dirs[0])
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if first != nil && !bytes.Equal(first, data) {
			t.Error("the same files packed twice differ")
		}
		first = data
		// Another file time must not change the archive: touch the binary.
		if err := os.Chtimes(filepath.Join(dirs[0], binaryName), time.Now(), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
}

// The validator is krew's, and it runs: a manifest it refuses fails the release.
func TestKrewValidatorRefusesWhatKrewRefuses(t *testing.T) {
	dirs, include := fakeRelease(t)
	o := options{tag: "latest", template: filepath.Join("..", "..", "plugins", "dlcsync.yaml"), out: t.TempDir(),
		includes: []string{include}, validate: runKrewValidator}
	_, err := o.run(dirs)
	if err == nil || !strings.Contains(err.Error(), "validation") {
		t.Fatalf("a manifest with version %q validated: %v", o.tag, err)
	}
	// And a template that names an archive not built is refused before anything is validated.
	o.tag = "v1.2.3"
	if _, err := o.run(dirs[:4]); err == nil || !strings.Contains(err.Error(), "which was not built") {
		t.Fatalf("a missing platform went unnoticed: %v", err)
	}
}
