// Package version holds the build version of dlcsync binaries, stamped with -ldflags.
package version

// Version is set at build time with -ldflags "-X github.com/dlcsync/dlcsync/internal/version.Version=v1.2.3".
var Version = "dev"
