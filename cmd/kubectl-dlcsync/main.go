// Command kubectl-dlcsync is the dlcsync kubectl plugin: `kubectl dlcsync get|sync|suspend|resume|
// status|preview|wait`. kubectl finds it on the PATH by its name; it also runs on its own.
//
//	go install github.com/dlcsync/dlcsync/cmd/kubectl-dlcsync@latest
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := newRootCommand(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	if err := cmd.ExecuteContext(ctx); err != nil {
		_, _ = fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(exitCode(err))
	}
}
