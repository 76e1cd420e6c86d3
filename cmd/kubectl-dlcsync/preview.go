package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/queryspec"
	"github.com/dlcsync/dlcsync/internal/snapshot"
	"github.com/dlcsync/dlcsync/internal/version"
)

type previewOptions struct {
	root        *rootOptions
	file        string
	endpoint    string
	accessKeyID string
	secretFile  string
	// removedSecret is the former --access-key-secret, kept hidden only to say what replaced it.
	removedSecret string
	local         bool
	output        *objectOutput
	timeout       time.Duration
}

var previewColumns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name"},
	{Name: "Display Name", Type: "string"},
	{Name: "User", Type: "string"},
	{Name: "Type", Type: "string"},
	{Name: "Phase", Type: "string"},
	{Name: "GPU", Type: "string"},
	{Name: "Created", Type: "string"},
	{Name: "Job ID", Type: "string", Priority: 1},
	{Name: "Workspace", Type: "string", Priority: 1},
	{Name: "Reason", Type: "string", Priority: 1},
}

func newPreviewCommand(root *rootOptions) *cobra.Command {
	p := &previewOptions{root: root}
	cmd := &cobra.Command{
		Use:   "preview -f JOBQUERY.yaml",
		Short: "List what a JobQuery would mirror, with your own credentials, writing nothing",
		Long: "preview sends the JobQuery's filter to the ListJobs API exactly as the controller would and\n" +
			"prints the snapshots a sync would write. Nothing is written to the cluster: the JobQuery is\n" +
			"checked and defaulted by a server-side dry run (the CRD's rules and defaults, as `kubectl\n" +
			"apply` would meet them), or, with --local, used as written without the cluster.\n\n" +
			"Credentials are your own: --access-key-id with its secret in $" + envAccessKeySecret + " or\n" +
			"--access-key-secret-file, or else the Alibaba Cloud default credential chain\n" +
			"(ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET, a CLI profile, an ECS RAM role).\n\n" +
			"They are sent only to PAI-DLC's HTTPS endpoints: a manifest's spec.endpoint naming another host\n" +
			"is refused. Name any other endpoint yourself with --endpoint (https, or http on loopback only).",
		Example: `  kubectl dlcsync preview -f jobquery.yaml -n ml
  ALIBABA_CLOUD_ACCESS_KEY_SECRET=... kubectl dlcsync preview -f jobquery.yaml --local \
      --endpoint http://127.0.0.1:8080 --access-key-id demo-key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return p.run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&p.file, "filename", "f", "", "The JobQuery manifest (- for stdin)")
	f.StringVar(&p.endpoint, "endpoint", "", "Send your credentials to this endpoint instead of spec.endpoint or the region's: "+
		"https://host[:port], or http:// on loopback only (e.g. a dlcsim URL)")
	f.StringVar(&p.accessKeyID, "access-key-id", "", "AccessKey ID, its secret in $"+envAccessKeySecret+
		" or --access-key-secret-file (default: the Alibaba Cloud credential chain)")
	f.StringVar(&p.secretFile, "access-key-secret-file", "", "With --access-key-id: read the AccessKey secret from this file (- for stdin)")
	// A secret given as a flag shows in the process list and the shell history; the flag
	// stays, hidden, only to tell a user of the old command what replaced it.
	f.StringVar(&p.removedSecret, "access-key-secret", "", "Removed: use $"+envAccessKeySecret+" or --access-key-secret-file")
	_ = f.MarkHidden("access-key-secret")
	f.BoolVar(&p.local, "local", false, "Do not contact the cluster: use the manifest as written, without the CRD's defaults")
	f.DurationVar(&p.timeout, "timeout", 2*time.Minute, "How long the whole listing may take")
	_ = cmd.MarkFlagRequired("filename")
	p.output = addObjectOutput(cmd, "the DLCJobSnapshots a sync would write (a v1 List)", outputWide)
	return cmd
}

func (p *previewOptions) run(ctx context.Context) error {
	printer, err := p.output.printer(outputWide)
	if err != nil {
		return err
	}
	static, err := p.credentials()
	if err != nil {
		return err
	}
	q, err := p.readQuery(ctx)
	if err != nil {
		return err
	}
	// Decided before any client exists, so that a refused endpoint receives nothing, not
	// even a request of the default credential chain.
	endpoint, err := previewEndpoint(q.Spec.RegionID, q.Spec.Endpoint, p.endpoint)
	if err != nil {
		return err
	}
	// The user agent names the plugin, so that API-side logs tell a preview from a sync.
	cfg := dlc.Config{RegionID: q.Spec.RegionID, Endpoint: endpoint, Static: static, UserAgent: "kubectl-dlcsync/" + version.Version}
	lister, err := dlc.NewClient(cfg)
	if err != nil {
		return fmt.Errorf("creating the PAI-DLC client: %w", err)
	}
	// The same request and pager as a full sync of the controller: what is listed here is what
	// a sync would mirror, seen with the caller's credentials. A query that assumes a RAM role
	// lists as that role, which the plugin never assumes: say that the answer may differ.
	if c := q.Spec.Credentials.Ambient; c != nil && c.RoleArn != "" {
		_, _ = fmt.Fprintf(p.root.streams.ErrOut, "Warning: JobQuery %s lists as RAM role %s, which the preview does not assume: "+
			"it lists with your credentials, and may see other jobs than the role does\n", q.Name, c.RoleArn)
	}
	req, within := queryspec.Request(&q.Spec)
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	held, stats, err := dlc.ListAll(ctx, lister, req, dlc.PageOptions{MaxJobs: int(q.Spec.MaxJobs), Within: within})
	if err != nil {
		return fmt.Errorf("listing jobs for JobQuery %s: %w", q.Name, err)
	}
	jobs, err := dlc.Jobs(held)
	if err != nil {
		return fmt.Errorf("listing jobs for JobQuery %s: %w", q.Name, err)
	}
	if printer != nil {
		return p.printObjects(printer, q, jobs, stats)
	}
	return p.print(q, jobs, stats)
}

// readQuery decodes the manifest strictly (a misspelt field is an error, as with kubectl apply)
// and, unless --local, lets the apiserver check and default it in a dry run.
func (p *previewOptions) readQuery(ctx context.Context) (*dlcv1alpha1.JobQuery, error) {
	var data []byte
	var err error
	if p.file == "-" {
		data, err = io.ReadAll(p.root.streams.In)
	} else {
		data, err = os.ReadFile(p.file)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p.file, err)
	}
	q := &dlcv1alpha1.JobQuery{}
	if err := yaml.UnmarshalStrict(data, q); err != nil {
		return nil, fmt.Errorf("decoding JobQuery from %s: %w", p.file, err)
	}
	if gvk := q.GroupVersionKind(); gvk != dlcv1alpha1.GroupVersion.WithKind("JobQuery") {
		return nil, fmt.Errorf("%s holds %s %s, not a %s JobQuery", p.file, gvk.GroupVersion(), gvk.Kind, dlcv1alpha1.GroupVersion)
	}
	if p.local {
		return q, nil
	}
	// The dry run sends the manifest as written, not q: a typed round trip would send the
	// fields the user left out as zero values (interval: 0s), which the CRD then refuses instead
	// of defaulting.
	written := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &written.Object); err != nil {
		return nil, fmt.Errorf("decoding JobQuery from %s: %w", p.file, err)
	}
	return p.dryRun(ctx, q.Name, written)
}

// dryRun creates the JobQuery with dryRun=All: the apiserver applies the CRD's schema, CEL rules
// and defaults and stores nothing. The name is generated, so that a query of the same name
// that already exists does not make the dry run fail.
func (p *previewOptions) dryRun(ctx context.Context, name string, trial *unstructured.Unstructured) (*dlcv1alpha1.JobQuery, error) {
	c, err := p.root.client()
	if err != nil {
		return nil, err
	}
	ns, explicit, err := p.root.namespaceFlag()
	if err != nil {
		return nil, err
	}
	if own := trial.GetNamespace(); own != "" && own != ns {
		// As kubectl apply: -n names where the user means to act, a manifest may not move it.
		if explicit {
			return nil, fmt.Errorf("the namespace from the provided object %q does not match the namespace %q. "+
				"You must pass '--namespace=%s' to perform this operation", own, ns, own)
		}
		ns = own
	}
	trial.SetNamespace(ns)
	trial.SetName("")
	trial.SetGenerateName("preview-")
	if err := c.Create(ctx, trial, client.DryRunAll); err != nil {
		return nil, fmt.Errorf("the cluster refuses JobQuery %s (server-side dry run; --local skips it): %w", name, err)
	}
	q := &dlcv1alpha1.JobQuery{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(trial.Object, q); err != nil {
		return nil, fmt.Errorf("reading the defaulted JobQuery %s: %w", name, err)
	}
	q.Name, q.Namespace = name, ns
	return q, nil
}

func (p *previewOptions) print(q *dlcv1alpha1.JobQuery, jobs []dlc.JobItem, stats dlc.WalkStats) error {
	out := p.root.streams.Out
	now := p.root.now()
	rows := make([]metav1.TableRow, len(jobs))
	for i := range jobs {
		j := &jobs[i]
		user := j.Username
		if user == "" {
			user = j.UserID
		}
		rows[i] = metav1.TableRow{Cells: []any{snapshot.Name(j.JobID), orNone(j.DisplayName), orNone(user), orNone(j.JobType),
			orNone(j.Status), orNone(j.RequestGPU), agoTime(apiTime(j.GmtCreateTime), now), j.JobID,
			orNone(j.WorkspaceName), orNone(j.ReasonCode)}}
	}
	if len(rows) > 0 {
		table := newTablePrinter(printers.PrintOptions{Wide: *p.output.flags.OutputFormat == outputWide})
		if err := table.PrintObj(&metav1.Table{ColumnDefinitions: previewColumns, Rows: rows}, out); err != nil {
			return err
		}
	}
	_, _ = fmt.Fprintln(out)
	p.summary(out, q, len(jobs), stats)
	return nil
}

// printObjects prints the snapshots a sync would write, built from the jobs by the functions the
// controller writes them with (snapshot.ConvertJob, Labels, Status), as a v1 List on stdout; the
// summary goes to stderr, so that stdout parses.
func (p *previewOptions) printObjects(printer printers.ResourcePrinter, q *dlcv1alpha1.JobQuery, jobs []dlc.JobItem,
	stats dlc.WalkStats) error {
	now := metav1.NewTime(p.root.now())
	// Redacted as the query asks; the manager may redact more (it reveals a group only in
	// the namespaces its --reveal-namespaces allows), never less.
	opts := snapshot.OptionsFor(q.Spec.Snapshot)
	objs := make([]runtime.Object, 0, len(jobs))
	for i := range jobs {
		j := &jobs[i]
		converted, err := snapshot.ConvertJob(j, opts)
		if err != nil {
			return fmt.Errorf("previewing the snapshot of job %s: %w", j.JobID, err)
		}
		s := &dlcv1alpha1.DLCJobSnapshot{
			ObjectMeta: metav1.ObjectMeta{Name: snapshot.Name(j.JobID), Namespace: q.Namespace, Labels: snapshot.Labels(j, q.Spec.RegionID)},
			Spec:       dlcv1alpha1.DLCJobSnapshotSpec{JobID: j.JobID, RegionID: q.Spec.RegionID},
			Status:     snapshot.Status(converted, snapshot.Hash(converted), nil, now),
		}
		s.Status.MatchedBy, s.Status.Matching, s.Status.ObservedAt = []string{q.Name}, true, &now
		objs = append(objs, s)
	}
	if err := printList(printer, objs, p.root.streams.Out); err != nil {
		return err
	}
	p.summary(p.root.streams.ErrOut, q, len(jobs), stats)
	return nil
}

// summary says how many jobs a sync would mirror, what the listing cost and whether it can be trusted.
func (p *previewOptions) summary(out io.Writer, q *dlcv1alpha1.JobQuery, n int, stats dlc.WalkStats) {
	_, _ = fmt.Fprintf(out, "%d jobs would be mirrored as DLCJobSnapshots by JobQuery %s; the API matched %d", n, q.Name,
		stats.TotalCount)
	if stats.Truncated {
		_, _ = fmt.Fprintf(out, ", more than maxJobs (%d): the first %d by %s %s are kept", q.Spec.MaxJobs, n,
			orDefault(q.Spec.SortBy, dlc.SortByCreateTime), orDefault(q.Spec.Order, "desc"))
	}
	_, _ = fmt.Fprintf(out, ".\nWindow %s to %s; %d API calls, %d pages. Nothing was written to the cluster.\n",
		stats.StartTime, stats.EndTime, stats.APICalls, stats.Pages)
	if !stats.Complete || !stats.Consistent {
		_, _ = fmt.Fprintf(out, "Warning: the listing was not complete and consistent (%s); a sync would neither prune nor trust it.\n",
			orDefault(stats.Inconsistency, "the API's page limit cut it short"))
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// envAccessKeySecret is where preview reads the secret of --access-key-id: the variable
// credentials-go's own environment provider reads.
const envAccessKeySecret = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"

// maxSecretBytes bounds what --access-key-secret-file reads: an AccessKey secret is 30 characters.
const maxSecretBytes = 4096

// credentials returns the AccessKey of --access-key-id, its secret from --access-key-secret-file
// or the environment, never from the command line; nil means the default credential chain.
func (p *previewOptions) credentials() (*dlc.StaticCredentials, error) {
	if p.removedSecret != "" {
		return nil, fmt.Errorf("--access-key-secret was removed: a secret on the command line shows in the process list "+
			"and the shell history; set %s or use --access-key-secret-file", envAccessKeySecret)
	}
	if p.accessKeyID == "" {
		if p.secretFile != "" {
			return nil, errors.New("--access-key-secret-file goes with --access-key-id")
		}
		return nil, nil
	}
	if p.secretFile == "" {
		secret := os.Getenv(envAccessKeySecret)
		if secret == "" {
			return nil, fmt.Errorf("--access-key-id needs its secret: set %s or use --access-key-secret-file", envAccessKeySecret)
		}
		return &dlc.StaticCredentials{AccessKeyID: p.accessKeyID, AccessKeySecret: secret}, nil
	}
	var r io.Reader
	if p.secretFile == "-" {
		if p.file == "-" {
			return nil, errors.New("--access-key-secret-file - and -f - cannot both read stdin")
		}
		r = p.root.streams.In
	} else {
		f, err := os.Open(p.secretFile)
		if err != nil {
			return nil, fmt.Errorf("reading --access-key-secret-file: %w", err)
		}
		defer func() { _ = f.Close() }()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxSecretBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading --access-key-secret-file: %w", err)
	}
	// A file written by echo or an editor ends with a newline, which is not the secret's.
	secret := strings.TrimSpace(string(data))
	switch {
	case len(data) > maxSecretBytes:
		return nil, fmt.Errorf("--access-key-secret-file %s holds more than %d bytes: not an AccessKey secret", p.secretFile, maxSecretBytes)
	case secret == "", strings.ContainsAny(secret, "\r\n"):
		return nil, fmt.Errorf("--access-key-secret-file %s must hold the AccessKey secret on one line", p.secretFile)
	}
	return &dlc.StaticCredentials{AccessKeyID: p.accessKeyID, AccessKeySecret: secret}, nil
}
