package main

import (
	"debug/buildinfo"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// writeSBOM writes a CycloneDX JSON SBOM of one platform's image: the image, the binary and every
// Go module linked into it, read from the binary's own build information (what `go version -m`
// prints), so it lists what was linked rather than what go.mod allows.
func writeSBOM(o options, p v1.Platform, binPath string, img v1.Image) error {
	info, err := buildinfo.ReadFile(binPath)
	if err != nil {
		return fmt.Errorf("reading build information of %s: %w", binPath, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	bom := cdx.NewBOM()
	// Derived from the image digest rather than random, so the same image gives the same SBOM.
	h := digest.Hex
	bom.SerialNumber = fmt.Sprintf("urn:uuid:%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
	// The purl spec percent-encodes the digest's colon.
	imageRef := "pkg:oci/dlcsync@" + strings.Replace(digest.String(), ":", "%3A", 1) +
		"?arch=" + p.Architecture + "&tag=" + url.QueryEscape(o.version)
	bom.Metadata = &cdx.Metadata{
		Timestamp: o.created.Format("2006-01-02T15:04:05Z"),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{Type: cdx.ComponentTypeApplication,
			Name: "dlcsync hack/image", Version: o.version}}},
		Component: &cdx.Component{BOMRef: imageRef, Type: cdx.ComponentTypeContainer, Name: "dlcsync",
			Version: o.version, PackageURL: imageRef},
	}
	mainRef := "pkg:golang/" + info.Main.Path + "@" + o.version
	props := []cdx.Property{{Name: "go.version", Value: info.GoVersion}}
	for _, s := range info.Settings {
		props = append(props, cdx.Property{Name: "go.build." + s.Key, Value: s.Value})
	}
	components := []cdx.Component{{BOMRef: mainRef, Type: cdx.ComponentTypeApplication, Name: info.Main.Path,
		Version: o.version, PackageURL: mainRef, Properties: &props}}
	deps := make([]string, 0, len(info.Deps)+1)
	stdlib := "pkg:golang/stdlib@" + strings.TrimPrefix(info.GoVersion, "go")
	components = append(components, cdx.Component{BOMRef: stdlib, Type: cdx.ComponentTypeLibrary, Name: "stdlib",
		Version: info.GoVersion, PackageURL: stdlib})
	deps = append(deps, stdlib)
	for _, m := range info.Deps {
		if m.Replace != nil {
			m = m.Replace
		}
		ref := "pkg:golang/" + m.Path + "@" + m.Version
		c := cdx.Component{BOMRef: ref, Type: cdx.ComponentTypeLibrary, Name: m.Path, Version: m.Version, PackageURL: ref}
		if m.Sum != "" {
			c.Properties = &[]cdx.Property{{Name: "go.sum", Value: m.Sum}}
		}
		components = append(components, c)
		deps = append(deps, ref)
	}
	bom.Components = &components
	bom.Dependencies = &[]cdx.Dependency{{Ref: imageRef, Dependencies: &[]string{mainRef}}, {Ref: mainRef, Dependencies: &deps}}
	if err := os.MkdirAll(o.sbomDir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(o.sbomDir, fmt.Sprintf("dlcsync-%s-%s-%s.cdx.json", o.version, p.OS, p.Architecture))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := cdx.NewBOMEncoder(f, cdx.BOMFileFormatJSON)
	enc.SetPretty(true).SetEscapeHTML(false)
	if err := enc.Encode(bom); err != nil {
		_ = f.Close()
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	return f.Close()
}
