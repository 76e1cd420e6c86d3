// Command image builds the dlcsync manager image without a container engine: it compiles the static
// manager for each platform, layers it on an empty base with go-containerregistry, and writes a
// multi-arch OCI index as an OCI image layout (and, with --push, to a registry). The same sources,
// version and --created time give the same index digest. See docs/release.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/spf13/pflag"
)

// versionPackage is where -ldflags stamps the version every binary prints with --version.
const versionPackage = "github.com/dlcsync/dlcsync/internal/version.Version"

// options are the inputs of a build; equal options over the same sources give the same digest.
type options struct {
	out       string
	platforms []string
	version   string
	revision  string
	source    string
	created   time.Time
	pkg       string
	sbomDir   string
	push      string
	binDir    string
	repoRoot  string
}

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	start := time.Now()
	if o.binDir == "" {
		if o.binDir, err = os.MkdirTemp("", "dlcsync-image-"); err != nil {
			return err
		}
		defer func() { _ = os.RemoveAll(o.binDir) }()
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range o.platforms {
		plat, err := v1.ParsePlatform(p)
		if err != nil {
			return fmt.Errorf("platform %q: %w", p, err)
		}
		t := time.Now()
		bin, err := buildBinary(ctx, o, *plat)
		if err != nil {
			return err
		}
		img, err := imageFor(o, *plat, bin)
		if err != nil {
			return fmt.Errorf("image for %s: %w", p, err)
		}
		if o.sbomDir != "" {
			if err := writeSBOM(o, *plat, bin, img); err != nil {
				return fmt.Errorf("SBOM for %s: %w", p, err)
			}
		}
		digest, err := img.Digest()
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "image: %s %s (built in %s)\n", p, digest, time.Since(t).Round(time.Second))
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: plat}})
	}
	idx = mutate.Annotations(idx, ociLabels(o)).(v1.ImageIndex)
	digest, err := writeLayout(o, idx)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "image: index %s written to %s in %s\n", digest, o.out, time.Since(start).Round(time.Second))
	fmt.Println(digest)
	if o.push != "" {
		ref, err := name.ParseReference(o.push)
		if err != nil {
			return fmt.Errorf("--push %q: %w", o.push, err)
		}
		if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
			return fmt.Errorf("pushing %s: %w", ref, err)
		}
		fmt.Fprintf(os.Stderr, "image: pushed %s@%s\n", ref.Context(), digest)
	}
	return nil
}

func parseFlags(args []string) (options, error) {
	fs := pflag.NewFlagSet("image", pflag.ContinueOnError)
	var o options
	var platforms, created string
	fs.StringVar(&o.out, "out", "dist/image", "OCI image layout to write (replaced)")
	fs.StringVar(&platforms, "platforms", "linux/amd64,linux/arm64", "comma-separated platforms of the index")
	fs.StringVar(&o.version, "version", "dev", "version stamped into the binary and the org.opencontainers.image.version label")
	fs.StringVar(&o.revision, "revision", "", "source revision for the org.opencontainers.image.revision label (default: git HEAD)")
	fs.StringVar(&o.source, "source", "https://github.com/dlcsync/dlcsync", "org.opencontainers.image.source label")
	fs.StringVar(&created, "created", "",
		"image creation time and file times, as Unix seconds or RFC 3339 (default: $SOURCE_DATE_EPOCH, else the HEAD commit's time)")
	fs.StringVar(&o.pkg, "package", "./cmd/manager", "Go package of the entrypoint binary")
	fs.StringVar(&o.sbomDir, "sbom-dir", "", "write a CycloneDX JSON SBOM per platform into this folder")
	fs.StringVar(&o.push, "push", "", "also push the index to this reference (registry/repo:tag)")
	fs.StringVar(&o.binDir, "bin-dir", "", "keep the compiled binaries in this folder (default: a temporary folder, removed)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.platforms = strings.Split(platforms, ",")
	// Without git (a source tarball), build from the current folder with --revision and --created.
	root, err := gitOutput("rev-parse", "--show-toplevel")
	if err != nil {
		root = "."
	}
	o.repoRoot = root
	if o.revision == "" {
		if o.revision, err = gitOutput("rev-parse", "HEAD"); err != nil {
			return o, fmt.Errorf("reading the revision: %w", err)
		}
	}
	if o.created, err = creationTime(created); err != nil {
		return o, err
	}
	return o, nil
}

// creationTime reads --created, then SOURCE_DATE_EPOCH, then the HEAD commit's time: never the
// clock, which would change the digest of every build.
func creationTime(flag string) (time.Time, error) {
	v := flag
	if v == "" {
		v = os.Getenv("SOURCE_DATE_EPOCH")
	}
	if v == "" {
		out, err := gitOutput("log", "-1", "--format=%ct")
		if err != nil {
			return time.Time{}, fmt.Errorf("reading the HEAD commit time (set --created or SOURCE_DATE_EPOCH): %w", err)
		}
		v = out
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(secs, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("creation time %q: want Unix seconds or RFC 3339", v)
	}
	return t.UTC(), nil
}

func gitOutput(args ...string) (string, error) {
	out, err := exec.Command("git", args...).Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, exit.Stderr)
		}
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

// buildBinary compiles the static entrypoint for one platform. -trimpath and CGO_ENABLED=0
// make the binary independent of the checkout's path and of the host's C library; the build ID is
// derived from the inputs, so the same toolchain and sources give the same bytes.
func buildBinary(ctx context.Context, o options, p v1.Platform) (string, error) {
	dir := o.binDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, fmt.Sprintf("manager-%s-%s", p.OS, p.Architecture))
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath",
		"-ldflags", fmt.Sprintf("-s -w -X %s=%s", versionPackage, o.version), "-o", bin, o.pkg)
	cmd.Dir = o.repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture, "GOFLAGS=-mod=readonly")
	if p.Variant != "" && p.Architecture == "arm" {
		cmd.Env = append(cmd.Env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building %s for %s/%s: %w", o.pkg, p.OS, p.Architecture, err)
	}
	return bin, nil
}

// ociLabels are the pre-defined OCI annotation keys, used as config labels and index annotations.
func ociLabels(o options) map[string]string {
	return map[string]string{
		"org.opencontainers.image.version":  o.version,
		"org.opencontainers.image.source":   o.source,
		"org.opencontainers.image.revision": o.revision,
		"org.opencontainers.image.created":  o.created.Format(time.RFC3339),
		"org.opencontainers.image.title":    "dlcsync",
		"org.opencontainers.image.licenses": "Apache-2.0",
	}
}

// writeLayout replaces o.out with an OCI layout whose index.json names the index by version.
func writeLayout(o options, idx v1.ImageIndex) (v1.Hash, error) {
	if err := os.RemoveAll(o.out); err != nil {
		return v1.Hash{}, fmt.Errorf("clearing %s: %w", o.out, err)
	}
	p, err := layout.Write(o.out, empty.Index)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("creating the layout %s: %w", o.out, err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": o.version,
	})); err != nil {
		return v1.Hash{}, fmt.Errorf("writing the index to %s: %w", o.out, err)
	}
	return idx.Digest()
}
