package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/version"
)

// scheme knows the dlcsync types: the plugin reads nothing else from the cluster.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := dlcv1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}()

// rootOptions are shared by every subcommand: kubectl's connection flags and the output streams.
type rootOptions struct {
	flags   *genericclioptions.ConfigFlags
	streams genericiooptions.IOStreams
	// now is the clock ages and durations are computed against (tests pin it).
	now func() time.Time
}

func newRootCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &rootOptions{flags: genericclioptions.NewConfigFlags(true), streams: streams, now: time.Now}
	cmd := &cobra.Command{
		Use:   "kubectl-dlcsync",
		Short: "Inspect and drive dlcsync JobQueries and their DLCJobSnapshots",
		Long: "kubectl dlcsync reads and drives dlcsync's JobQueries and the DLCJobSnapshots they mirror from\n" +
			"PAI-DLC, and previews what a JobQuery would mirror before it is committed.",
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Kubectl runs the plugin as `kubectl dlcsync`; cobra names it that way in help.
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl dlcsync"},
	}
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	o.flags.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(newGetCommand(o), newSyncCommand(o), newSuspendCommand(o), newResumeCommand(o),
		newStatusCommand(o), newPreviewCommand(o), newWaitCommand(o))
	return cmd
}

// client connects to the cluster named by the kubeconfig flags.
func (o *rootOptions) client() (client.WithWatch, error) {
	cfg, err := o.flags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	cfg.UserAgent = "kubectl-dlcsync/" + version.Version
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("creating Kubernetes client: %w", err)
	}
	return c, nil
}

// namespace is --namespace, else the kubeconfig context's namespace, else default.
func (o *rootOptions) namespace() (string, error) {
	ns, _, err := o.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", fmt.Errorf("reading namespace from kubeconfig: %w", err)
	}
	return ns, nil
}

// namespaceFlag is namespace() and whether the user named it with --namespace, which a manifest's
// own namespace may then not override.
func (o *rootOptions) namespaceFlag() (ns string, explicit bool, err error) {
	ns, explicit, err = o.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", false, fmt.Errorf("reading namespace from kubeconfig: %w", err)
	}
	return ns, explicit, nil
}
