package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
)

// listChunk is the page size of a listing: a namespace of 10,000 snapshots is read in pieces, so
// that no single response holds them all. What is kept between pages is only what is
// printed. A table keeps one row of short cells per object (not the object with its job data)
// and prints them once, so that its columns align as kubectl's do; -o yaml|json|name keep every
// object, as kubectl does, to print them as one v1 List.
const listChunk = 500

// resource is a kind the plugin gets: JobQueries or DLCJobSnapshots.
type resource struct {
	kind      string
	newList   func() client.ObjectList
	newObject func() client.Object
	columns   []metav1.TableColumnDefinition
}

var (
	queriesResource = resource{kind: "JobQuery",
		newList:   func() client.ObjectList { return &dlcv1alpha1.JobQueryList{} },
		newObject: func() client.Object { return &dlcv1alpha1.JobQuery{} },
		columns:   queryColumns}
	jobsResource = resource{kind: "DLCJobSnapshot",
		newList:   func() client.ObjectList { return &dlcv1alpha1.DLCJobSnapshotList{} },
		newObject: func() client.Object { return &dlcv1alpha1.DLCJobSnapshot{} },
		columns:   jobColumns}
)

// resourceFor accepts the names kubectl accepts for the two kinds, and the plugin's short ones.
func resourceFor(arg string) (resource, error) {
	switch strings.ToLower(arg) {
	case "queries", "query", "jobqueries", "jobquery", "jq":
		return queriesResource, nil
	case "jobs", "job", "snapshots", "snapshot", "dlcjobsnapshots", "dlcjobsnapshot", "djs":
		return jobsResource, nil
	}
	return resource{}, fmt.Errorf("unknown resource %q: use queries (jq) or jobs (djs)", arg)
}

type getOptions struct {
	root          *rootOptions
	print         *genericclioptions.PrintFlags
	selector      string
	allNamespaces bool
	watch         bool
	noHeaders     bool
	query         string
	// namespace is the namespace read, "" with -A.
	namespace string
}

func newGetCommand(root *rootOptions) *cobra.Command {
	g := &getOptions{root: root, print: genericclioptions.NewPrintFlags("").WithTypeSetter(scheme)}
	cmd := &cobra.Command{
		Use:   "get queries|jobs [NAME]",
		Short: "List JobQueries or the DLCJobSnapshots they mirror",
		Example: `  kubectl dlcsync get queries -A
  kubectl dlcsync get jobs -n ml -l dlc.dlcsync.io/status=Failed -o wide
  kubectl dlcsync get jobs --query recent-jobs --watch`,
		Args: cobra.RangeArgs(1, 2),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return []cobra.Completion{cobra.CompletionWithDesc("queries", "JobQueries (jq)"),
					cobra.CompletionWithDesc("jobs", "the DLCJobSnapshots they mirror (djs)")}, cobra.ShellCompDirectiveNoFileComp
			}
			res, err := resourceFor(args[0])
			if err != nil || len(args) > 1 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return completeNames(cmd, root, res, toComplete)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd.Context(), args)
		},
	}
	g.print.AddFlags(cmd)
	// PrintFlags lists json, yaml, name and templates; wide is the table with every column.
	cmd.Flag("output").Usage = "Output format: wide, " + strings.Join(g.print.AllowedFormats(), ", ") + " (default: a table)"
	f := cmd.Flags()
	f.StringVarP(&g.selector, "selector", "l", "", "Label selector, e.g. -l dlc.dlcsync.io/status=Failed")
	f.BoolVarP(&g.allNamespaces, "all-namespaces", "A", false, "List across every namespace")
	f.BoolVarP(&g.watch, "watch", "w", false, "After listing, print every change until interrupted")
	f.BoolVar(&g.noHeaders, "no-headers", false, "Print tables without headers")
	f.StringVar(&g.query, "query", "", "jobs only: keep the snapshots this JobQuery matches")
	_ = cmd.RegisterFlagCompletionFunc("query", completeQueryFlag(root))
	return cmd
}

func (g *getOptions) run(ctx context.Context, args []string) error {
	res, err := resourceFor(args[0])
	if err != nil {
		return err
	}
	if g.query != "" && res.kind != jobsResource.kind {
		return fmt.Errorf("--query applies to jobs only")
	}
	if len(args) == 2 && g.allNamespaces {
		return fmt.Errorf("a %s cannot be read by name across all namespaces", res.kind)
	}
	c, err := g.root.client()
	if err != nil {
		return err
	}
	opts, err := g.listOptions(args)
	if err != nil {
		return err
	}
	out, err := g.newOutput(res)
	if err != nil {
		return err
	}
	rv, err := g.read(ctx, c, res, args, opts, out)
	if err != nil {
		return err
	}
	if err := out.flush(); err != nil {
		return err
	}
	if out.empty() && out.table != nil && !g.watch {
		where := "in any namespace"
		if !g.allNamespaces {
			where = "in namespace " + g.namespace
		}
		_, _ = fmt.Fprintf(g.root.streams.ErrOut, "No %s found %s.\n", res.kind, where)
	}
	if !g.watch {
		return nil
	}
	return g.follow(ctx, c, res, opts, rv, out)
}

// listOptions are the namespace, the label selector and, for one name, a field selector (which
// only --watch needs: a named read is a Get).
func (g *getOptions) listOptions(args []string) ([]client.ListOption, error) {
	if !g.allNamespaces {
		ns, err := g.root.namespace()
		if err != nil {
			return nil, err
		}
		g.namespace = ns
	}
	opts := []client.ListOption{client.InNamespace(g.namespace)}
	if g.selector != "" {
		sel, err := labels.Parse(g.selector)
		if err != nil {
			return nil, fmt.Errorf("parsing --selector: %w", err)
		}
		opts = append(opts, client.MatchingLabelsSelector{Selector: sel})
	}
	if len(args) == 2 {
		opts = append(opts, client.MatchingFields{"metadata.name": args[1]})
	}
	return opts, nil
}

// read prints the current objects and returns the resourceVersion a watch continues from.
func (g *getOptions) read(ctx context.Context, c client.Client, res resource, args []string, opts []client.ListOption,
	out *output) (string, error) {
	if len(args) == 2 {
		obj := res.newObject()
		key := client.ObjectKey{Namespace: g.namespace, Name: args[1]}
		if err := c.Get(ctx, key, obj); err != nil {
			if apierrors.IsNotFound(err) {
				return "", fmt.Errorf("%s %s not found", res.kind, key)
			}
			return "", fmt.Errorf("reading %s %s: %w", res.kind, key, err)
		}
		out.single = true
		return obj.GetResourceVersion(), out.add(obj, g.root.now())
	}
	var rv, token string
	for {
		list := res.newList()
		chunk := append(slices.Clone(opts), client.Limit(listChunk), client.Continue(token))
		if err := c.List(ctx, list, chunk...); err != nil {
			return "", fmt.Errorf("listing %s: %w", res.kind, err)
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return "", fmt.Errorf("reading %s list: %w", res.kind, err)
		}
		now := g.root.now()
		for _, item := range items {
			if g.keep(item) {
				if err := out.add(item, now); err != nil {
					return "", err
				}
			}
		}
		rv, token = list.GetResourceVersion(), list.GetContinue()
		if token == "" {
			return rv, nil
		}
	}
}

// keep applies --query, which no selector can express: matchedBy is a status list.
func (g *getOptions) keep(obj runtime.Object) bool {
	s, ok := obj.(*dlcv1alpha1.DLCJobSnapshot)
	return !ok || g.query == "" || slices.Contains(s.Status.MatchedBy, g.query)
}

// follow prints every change after rv until the context ends or the server closes the watch.
func (g *getOptions) follow(ctx context.Context, c client.WithWatch, res resource, opts []client.ListOption, rv string, out *output) error {
	w, err := c.Watch(ctx, res.newList(), append(opts, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv}})...)
	if err != nil {
		return fmt.Errorf("watching %s: %w", res.kind, err)
	}
	defer w.Stop()
	// Each change is printed as it comes, one object at a time, as kubectl get --watch does.
	out.single = true
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil
			}
			switch ev.Type {
			case watch.Error:
				return fmt.Errorf("watching %s: %w", res.kind, apierrors.FromObject(ev.Object))
			case watch.Bookmark:
				continue
			}
			if !g.keep(ev.Object) {
				continue
			}
			if err := out.add(ev.Object, g.root.now()); err != nil {
				return err
			}
			if err := out.flush(); err != nil {
				return err
			}
		}
	}
}

// output collects what a get prints: table rows, or objects for the json/yaml/name printers.
type output struct {
	res     resource
	table   printers.ResourcePrinter // nil unless printing a table
	printer printers.ResourcePrinter
	rows    []metav1.TableRow
	objects []runtime.Object
	// single prints one object rather than a list (a get by name).
	single  bool
	printed int
	root    *rootOptions
}

func (g *getOptions) newOutput(res resource) (*output, error) {
	o := &output{res: res, root: g.root}
	switch format := *g.print.OutputFormat; format {
	case "", outputWide:
		o.table = newTablePrinter(printers.PrintOptions{Wide: format == outputWide, WithNamespace: g.allNamespaces,
			NoHeaders: g.noHeaders})
	default:
		p, err := g.print.ToPrinter()
		if err != nil {
			return nil, err
		}
		o.printer = p
	}
	return o, nil
}

func (o *output) add(obj runtime.Object, now time.Time) error {
	if o.table == nil {
		o.objects = append(o.objects, obj)
		return nil
	}
	switch v := obj.(type) {
	case *dlcv1alpha1.JobQuery:
		o.rows = append(o.rows, queryRow(v, now))
	case *dlcv1alpha1.DLCJobSnapshot:
		o.rows = append(o.rows, jobRow(v, now))
	default:
		return fmt.Errorf("unexpected object %T", obj)
	}
	return nil
}

// flush prints what was added since the last flush. The table printer remembers that it printed
// the header, so rows printed by --watch come without one, as with kubectl get --watch.
func (o *output) flush() error {
	w := o.root.streams.Out
	defer func() { o.rows, o.objects = nil, nil }()
	if o.table != nil {
		if len(o.rows) == 0 {
			return nil
		}
		o.printed += len(o.rows)
		return o.table.PrintObj(&metav1.Table{ColumnDefinitions: o.res.columns, Rows: o.rows}, w)
	}
	o.printed += len(o.objects)
	if o.single {
		for _, obj := range o.objects {
			if err := printObject(o.printer, obj, w); err != nil {
				return err
			}
		}
		return nil
	}
	// Several objects print as kubectl prints them, a v1 List.
	return printList(o.printer, o.objects, w)
}

func (o *output) empty() bool { return o.printed == 0 }
