// Command golangci-lint is golangci-lint with the Kube API Linter compiled in as a module plugin:
// the binary `golangci-lint custom` would build from a .custom-gcl.yml, built here from the
// module proxy because `custom` git-clones golangci-lint from GitHub. See README.md.
//
// golangci-lint's own cmd/golangci-lint/main.go is GPL-3.0, so it is not copied into this
// Apache-2.0 tree; this main does what it does (commands.Execute, exit code 3 on a failure), with
// the version stamped by -ldflags as `golangci-lint custom` stamps it.
package main

import (
	"fmt"
	"os"
	"runtime"

	"github.com/golangci/golangci-lint/v2/pkg/commands"
	"github.com/golangci/golangci-lint/v2/pkg/exitcodes"
)

// Set with -ldflags "-X main.version=... -X main.date=..." by the Makefile.
var (
	version = "unknown"
	date    = "(unknown)"
)

func main() {
	info := commands.BuildInfo{
		Version:   version,
		Commit:    "kube-api-linter module plugin",
		Date:      date,
		GoVersion: runtime.Version(),
	}
	if err := commands.Execute(info); err != nil {
		_, _ = fmt.Fprintf(os.Stderr, "The command is terminated due to an error: %v\n", err)
		os.Exit(exitcodes.Failure)
	}
}
