package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's user: distroless's "nonroot", so that runAsNonRoot pods and tools that look the
// user up by name behave as with the distroless base the Dockerfile used to name.
const (
	nonRootUID = 65532
	entrypoint = "/manager"
)

// rootFSEntry is one file or folder of the single layer.
type rootFSEntry struct {
	name string
	mode int64
	dir  bool
	data []byte
}

// rootFS is everything the image holds: the binary, the user database for 65532 and an empty /tmp.
// No CA bundle. The manager embeds Mozilla's roots (golang.org/x/crypto/x509roots/fallback,
// imported by cmd/manager), which Go uses exactly when the system has none, as here; a bundle file
// would be a second copy to keep current, and SSL_CERT_FILE still replaces both (docs/release.md).
func rootFS(binary []byte) []rootFSEntry {
	return []rootFSEntry{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\n" +
			"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/nonroot/", mode: 0o700, dir: true},
		{name: "tmp/", mode: 0o1777, dir: true},
		{name: entrypoint[1:], mode: 0o755, data: binary},
	}
}

// layerTar writes the entries with fixed owners and times, so that the layer's digest depends on
// the contents alone.
func layerTar(entries []rootFSEntry, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: mtime, Format: tar.FormatPAX, Typeflag: tar.TypeReg,
			Size: int64(len(e.data))}
		if e.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if e.name == "home/nonroot/" {
			h.Uid, h.Gid = nonRootUID, nonRootUID
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("tar header %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("tar %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// imageFor layers the binary on an empty base and sets the config: entrypoint, non-root user,
// OCI labels, the platform and the fixed creation time. There is no shell and no package manager.
func imageFor(o options, p v1.Platform, binPath string) (v1.Image, error) {
	binary, err := os.ReadFile(binPath)
	if err != nil {
		return nil, err
	}
	tarData, err := layerTar(rootFS(binary), o.created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarData)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	base, err = mutate.ConfigFile(base, &v1.ConfigFile{
		Architecture: p.Architecture, OS: p.OS, Variant: p.Variant,
		Created: v1.Time{Time: o.created},
		Config: v1.Config{
			Entrypoint: []string{entrypoint},
			User:       fmt.Sprintf("%d:%d", nonRootUID, nonRootUID),
			WorkingDir: "/",
			Labels:     ociLabels(o),
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	return mutate.Append(base, mutate.Addendum{Layer: layer, MediaType: types.OCILayer, History: v1.History{
		Created:   v1.Time{Time: o.created},
		CreatedBy: fmt.Sprintf("hack/image: go build -trimpath %s (%s)", o.pkg, o.version),
		Comment:   "static manager binary, user database for 65532, /tmp",
	}})
}
