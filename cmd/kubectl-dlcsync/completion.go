package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
)

// completionTimeout bounds the read behind one <TAB>: a shell that waits on an unreachable
// cluster is worse than no names.
const completionTimeout = 5 * time.Second

// completeQueries completes the first argument with the names of the JobQueries of the namespace.
func completeQueries(root *rootOptions) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return completeNames(cmd, root, queriesResource, toComplete)
	}
}

// completeQueryFlag completes a --query flag with the names of the JobQueries of the namespace.
func completeQueryFlag(root *rootOptions) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return completeNames(cmd, root, queriesResource, toComplete)
	}
}

// completeNames lists the names of one kind in the namespace of --namespace (or the kubeconfig's),
// through the client the verbs use, that start with toComplete. It reads metadata only
// (PartialObjectMetadataList), so that completing among 10,000 snapshots does not fetch their job
// data, and in pages, as get does.
func completeNames(cmd *cobra.Command, root *rootOptions, res resource, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	names, err := listNames(cmd.Context(), root, res, toComplete)
	if err != nil {
		// Stderr of __complete is the shell's debug log, never the command line.
		cobra.CompErrorln(err.Error())
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

func listNames(ctx context.Context, root *rootOptions, res resource, prefix string) ([]string, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	defer cancel()
	c, err := root.client()
	if err != nil {
		return nil, err
	}
	ns, err := root.namespace()
	if err != nil {
		return nil, err
	}
	var names []string
	token := ""
	for {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(dlcv1alpha1.GroupVersion.WithKind(res.kind + "List"))
		if err := c.List(ctx, list, client.InNamespace(ns), client.Limit(listChunk), client.Continue(token)); err != nil {
			return nil, fmt.Errorf("listing %s names for completion: %w", res.kind, err)
		}
		for _, item := range list.Items {
			if strings.HasPrefix(item.Name, prefix) {
				names = append(names, item.Name)
			}
		}
		if token = list.Continue; token == "" {
			return names, nil
		}
	}
}
