// Command krew-release packs the kubectl-dlcsync binaries of a release into one reproducible
// archive per platform and writes the krew Plugin manifest for them: the template
// plugins/dlcsync.yaml rendered with each archive's uri and sha256, then checked by krew's own
// validator (the one the krew-index repository runs on every plugin). `make release-plugin` runs
// it; see docs/release.md.
//
//	go run ./hack/krew-release --tag v1.2.3 --template plugins/dlcsync.yaml --out dist \
//	    --include plugins/kubectl_complete-dlcsync dist/plugin/linux_amd64 dist/plugin/darwin_arm64 ...
//
// Each directory argument is named <os>_<arch> and holds that platform's binary.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/spf13/pflag"
)

// krewValidator is krew's manifest validator at the version whose rules the manifest must meet.
// Run, not imported: its validation package is internal to krew, and krew's go.mod would
// pull k8s.io/client-go v11.0.0+incompatible into this module's build list.
const krewValidator = "sigs.k8s.io/krew/cmd/validate-krew-manifest@v0.4.3"

// binaryName is the plugin's executable in each archive (with .exe on windows).
const binaryName = "kubectl-dlcsync"

type options struct {
	tag      string
	template string
	out      string
	includes []string
	epoch    int64
	// validator runs krew's validator over the written manifest (tests may replace it).
	validate func(manifest string) error
}

func main() {
	o := options{validate: runKrewValidator}
	f := pflag.NewFlagSet("krew-release", pflag.ExitOnError)
	f.StringVar(&o.tag, "tag", "", "The release tag, vX.Y.Z: the manifest's spec.version and part of each archive's name")
	f.StringVar(&o.template, "template", "plugins/dlcsync.yaml", "The krew manifest template (krew-release-bot syntax)")
	f.StringVar(&o.out, "out", "dist", "Where the archives and the manifest (<plugin>.yaml) are written")
	f.StringSliceVar(&o.includes, "include", nil, "Files every archive holds beside the binary (LICENSE, the completion script)")
	epoch := os.Getenv("SOURCE_DATE_EPOCH")
	f.Int64Var(&o.epoch, "source-date-epoch", 0, "The time of every file in the archives, in Unix seconds (default $SOURCE_DATE_EPOCH)")
	_ = f.Parse(os.Args[1:])
	if !f.Changed("source-date-epoch") && epoch != "" {
		v, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, "krew-release: SOURCE_DATE_EPOCH:", err)
			os.Exit(1)
		}
		o.epoch = v
	}
	manifest, err := o.run(f.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "krew-release:", err)
		os.Exit(1)
	}
	fmt.Println(manifest)
}

// run writes one archive per platform directory, then the manifest, and returns the manifest's path.
func (o *options) run(platformDirs []string) (string, error) {
	if o.tag == "" || len(platformDirs) == 0 {
		return "", errors.New("usage: krew-release --tag vX.Y.Z [flags] <os>_<arch> [<os>_<arch> ...]")
	}
	archives := map[string]string{} // file name -> sha256
	for _, dir := range platformDirs {
		name, sum, err := o.pack(dir)
		if err != nil {
			return "", err
		}
		archives[name] = sum
	}
	manifest, err := o.render(archives)
	if err != nil {
		return "", err
	}
	if err := o.validate(manifest); err != nil {
		return "", fmt.Errorf("validating %s: %w", manifest, err)
	}
	return manifest, nil
}

// archiveName is the archive of one platform, e.g. kubectl-dlcsync_v1.2.3_linux_amd64.tar.gz.
func archiveName(tag, platform string) string {
	return fmt.Sprintf("%s_%s_%s.tar.gz", binaryName, tag, platform)
}

// pack writes the archive of one platform directory and returns its name and sha256.
func (o *options) pack(dir string) (string, string, error) {
	platform := filepath.Base(filepath.Clean(dir))
	goos, _, ok := strings.Cut(platform, "_")
	if !ok {
		return "", "", fmt.Errorf("%s: want a directory named <os>_<arch>", dir)
	}
	bin := binaryName
	if goos == "windows" {
		bin += ".exe"
	}
	files := map[string]string{bin: filepath.Join(dir, bin)} // name in the archive -> path
	for _, inc := range o.includes {
		files[filepath.Base(inc)] = inc
	}
	data, err := tarGz(files, time.Unix(o.epoch, 0))
	if err != nil {
		return "", "", fmt.Errorf("packing %s: %w", dir, err)
	}
	name := archiveName(o.tag, platform)
	if err := os.WriteFile(filepath.Join(o.out, name), data, 0o644); err != nil {
		return "", "", fmt.Errorf("writing %s: %w", name, err)
	}
	sum := sha256.Sum256(data)
	return name, hex.EncodeToString(sum[:]), nil
}

// tarGz is a reproducible tar.gz of the files: names sorted, every time mtime, owner and group 0
// without names, modes 0755 for executables and 0644 for the rest, no gzip name or time. The
// same files and mtime give the same bytes.
func tarGz(files map[string]string, mtime time.Time) ([]byte, error) {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, name := range names {
		data, err := os.ReadFile(files[name])
		if err != nil {
			return nil, err
		}
		info, err := os.Stat(files[name])
		if err != nil {
			return nil, err
		}
		mode := int64(0o644)
		if info.Mode()&0o111 != 0 || strings.HasSuffix(name, ".exe") {
			mode = 0o755
		}
		hdr := &tar.Header{Name: name, Mode: mode, Size: int64(len(data)), ModTime: mtime, Typeflag: tar.TypeReg,
			Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// render fills the template as krew-release-bot would, from the archives on disk instead of the
// published ones: {{ .TagName }} is the tag, and {{addURIAndSha "URL" .TagName}} writes the uri
// (URL with the tag filled in) and the sha256 of the archive of the same file name. Every archive
// must be named by exactly one platform, so that no platform is left out.
func (o *options) render(archives map[string]string) (string, error) {
	text, err := os.ReadFile(o.template)
	if err != nil {
		return "", fmt.Errorf("reading the template: %w", err)
	}
	used := map[string]int{}
	funcs := template.FuncMap{"addURIAndSha": func(url, tag string) (string, error) {
		var b strings.Builder
		t, err := template.New("uri").Parse(url)
		if err != nil {
			return "", err
		}
		if err := t.Execute(&b, struct{ TagName string }{tag}); err != nil {
			return "", err
		}
		uri := b.String()
		name := path.Base(uri)
		sum, ok := archives[name]
		if !ok {
			return "", fmt.Errorf("%s names %s, which was not built", o.template, name)
		}
		used[name]++
		// The indentation continues the platform item the call stands in, as in the bot's.
		return fmt.Sprintf("uri: %s\n    sha256: %s", uri, sum), nil
	}}
	t, err := template.New(filepath.Base(o.template)).Funcs(funcs).Option("missingkey=error").Parse(string(text))
	if err != nil {
		return "", fmt.Errorf("parsing the template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, struct{ TagName string }{o.tag}); err != nil {
		return "", fmt.Errorf("rendering %s: %w", o.template, err)
	}
	for name := range archives {
		if used[name] != 1 {
			return "", fmt.Errorf("%s names archive %s %d times, want once", o.template, name, used[name])
		}
	}
	// krew's validator reads the plugin's name from the file's.
	manifest := filepath.Join(o.out, filepath.Base(o.template))
	if err := os.WriteFile(manifest, b.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("writing the manifest: %w", err)
	}
	return manifest, nil
}

// runKrewValidator runs krew's validator over the manifest: its structure (ValidatePlugin: name,
// version, platforms with uri, sha256 and bin), that every platform selector matches a platform
// krew supports, and that no two select the same one. -skip-install: installing would download
// the archives from the release, which is not published yet.
func runKrewValidator(manifest string) error {
	cmd := exec.Command("go", "run", krewValidator, "-skip-install", "-manifest", manifest)
	// The validator builds as its own module; GOFLAGS meant for this one must not reach it.
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", krewValidator, err, out)
	}
	return nil
}
