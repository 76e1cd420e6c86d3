package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
)

// previewManifest writes a JobQuery manifest as a user keeps it in Git: only the fields they set.
func previewManifest(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jobquery.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const previewYAML = `apiVersion: dlc.dlcsync.io/v1alpha1
kind: JobQuery
metadata:
  name: pytorch-only
spec:
  regionId: cn-hangzhou
  endpoint: %ENDPOINT%
  credentials:
    secretRef:
      name: dlc-credentials
  filter:
    displayName: %PREFIX%
    jobType: PyTorchJob
`

func TestPreviewListsWhatTheFilterMatchesAndWritesNothing(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	prefix := "preview" + strconv.FormatInt(time.Now().UnixNano(), 36)
	seedJobs(prefix) // two PyTorchJobs and a TFJob
	manifest := previewManifest(t, strings.NewReplacer("%ENDPOINT%", simURL, "%PREFIX%", prefix).Replace(previewYAML))

	// The secret comes from the environment, never from the command line; the simulator's
	// loopback endpoint, which no manifest may send credentials to, is named by the user.
	t.Setenv(envAccessKeySecret, simAdmin.AccessKeySecret)
	out, _, err := runCLI(testCtx, "preview", "-f", manifest, "-n", ns, "--access-key-id", simAdmin.AccessKeyID, "--endpoint", simURL)
	g.Expect(err).NotTo(HaveOccurred())
	table, summary, found := strings.Cut(out, "\n\n")
	g.Expect(found).To(BeTrue(), out)
	header, rows := tableRows(t, table)
	g.Expect(header).To(Equal([]string{"NAME", "DISPLAY NAME", "USER", "TYPE", "PHASE", "GPU", "CREATED"}))
	g.Expect(rows).To(HaveLen(2))
	failed := rows["dlc"+prefix+"failed"]
	g.Expect(failed).NotTo(BeNil(), out)
	g.Expect(cell(t, header, failed, "TYPE")).To(Equal("PyTorchJob"))
	g.Expect(cell(t, header, failed, "USER")).To(Equal("alice"))
	g.Expect(cell(t, header, rows["dlc"+prefix+"running"], "PHASE")).To(Equal("Running"))
	g.Expect(summary).To(HavePrefix("2 jobs would be mirrored as DLCJobSnapshots by JobQuery pytorch-only; the API matched 2.\n"))
	g.Expect(summary).To(MatchRegexp(`Window \S+ to \S+; 1 API calls, 1 pages\. Nothing was written to the cluster\.\n$`))
	// The dry run defaulted the window the controller would use: 168h before now.
	start, _, _ := strings.Cut(strings.TrimPrefix(summary[strings.Index(summary, "Window "):], "Window "), " ")
	at, perr := time.Parse(dlc.TimeLayout, start)
	g.Expect(perr).NotTo(HaveOccurred())
	g.Expect(time.Since(at)).To(BeNumerically("~", 168*time.Hour, time.Minute))

	var queries dlcv1alpha1.JobQueryList
	g.Expect(k8s.List(testCtx, &queries, client.InNamespace(ns))).To(Succeed())
	g.Expect(queries.Items).To(BeEmpty())
}

func TestPreviewLocalUsesTheGivenEndpointWithoutTheCluster(t *testing.T) {
	g := NewWithT(t)
	prefix := "previewlocal" + strconv.FormatInt(time.Now().UnixNano(), 36)
	seedJobs(prefix)
	// The manifest names an endpoint that does not answer; --endpoint replaces it.
	manifest := previewManifest(t, strings.NewReplacer("%ENDPOINT%", "http://127.0.0.1:1", "%PREFIX%", prefix).Replace(previewYAML))

	// The secret from a file, as a secrets manager or a password store writes it (with a newline).
	secretFile := filepath.Join(t.TempDir(), "secret")
	g.Expect(os.WriteFile(secretFile, []byte(simAdmin.AccessKeySecret+"\n"), 0o600)).To(Succeed())
	out, _, err := runCLI(testCtx, "preview", "-f", manifest, "--local", "--endpoint", simURL, "-o", "wide",
		"--access-key-id", simAdmin.AccessKeyID, "--access-key-secret-file", secretFile, "--server", "https://127.0.0.1:1")
	g.Expect(err).NotTo(HaveOccurred())
	header, rows := tableRows(t, strings.SplitN(out, "\n\n", 2)[0])
	g.Expect(header).To(ContainElements("JOB ID", "WORKSPACE", "REASON"))
	g.Expect(rows).To(HaveKey("dlc" + prefix + "failed"))
	g.Expect(cell(t, header, rows["dlc"+prefix+"failed"], "REASON")).To(Equal("JobFailed"))
	g.Expect(rows).To(HaveLen(2))
}

// The endpoint the user names is the only host that receives their credentials: one that answers
// with a redirect makes preview fail, saying so, and the host it names receives nothing.
func TestPreviewFollowsNoRedirect(t *testing.T) {
	g := NewWithT(t)
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.RequestURI(), http.StatusFound)
	}))
	defer redirecting.Close()
	manifest := previewManifest(t, strings.NewReplacer("%ENDPOINT%", redirecting.URL, "%PREFIX%", "x").Replace(previewYAML))
	t.Setenv(envAccessKeySecret, simAdmin.AccessKeySecret)
	_, _, err := runCLI(testCtx, "preview", "-f", manifest, "--local", "--endpoint", redirecting.URL,
		"--access-key-id", simAdmin.AccessKeyID, "--server", "https://127.0.0.1:1")
	g.Expect(elsewhere.Load()).To(BeZero(), "the redirect was followed with the user's credentials")
	g.Expect(err).To(MatchError(ContainSubstring("redirected to " + other.URL)))
}

func TestPreviewReportsWhatTheClusterWouldRefuse(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	manifest := previewManifest(t, strings.NewReplacer("%ENDPOINT%", simURL, "%PREFIX%", "x").Replace(previewYAML)+
		"  interval: 5s\n")
	t.Setenv(envAccessKeySecret, simAdmin.AccessKeySecret)
	_, _, err := runCLI(testCtx, "preview", "-f", manifest, "-n", ns, "--access-key-id", simAdmin.AccessKeyID, "--endpoint", simURL)
	g.Expect(err).To(MatchError(ContainSubstring("the cluster refuses JobQuery pytorch-only")))
	g.Expect(err).To(MatchError(ContainSubstring("interval must be at least 10s")))

	// A misspelt field is an error, not a filter silently dropped.
	manifest = previewManifest(t, strings.NewReplacer("%ENDPOINT%", simURL, "%PREFIX%", "x", "jobType:", "jobTyp:").Replace(previewYAML))
	_, _, err = runCLI(testCtx, "preview", "-f", manifest, "--local")
	g.Expect(err).To(MatchError(ContainSubstring(`unknown field "jobTyp"`)))

	// A manifest's namespace does not override -n, as with kubectl apply.
	manifest = previewManifest(t, strings.NewReplacer("%ENDPOINT%", simURL, "%PREFIX%", "x", "  name: pytorch-only\n",
		"  name: pytorch-only\n  namespace: elsewhere\n").Replace(previewYAML))
	_, _, err = runCLI(testCtx, "preview", "-f", manifest, "-n", ns, "--access-key-id", simAdmin.AccessKeyID, "--endpoint", simURL)
	g.Expect(err).To(MatchError(`the namespace from the provided object "elsewhere" does not match the namespace "` + ns +
		`". You must pass '--namespace=elsewhere' to perform this operation`))
	var queries dlcv1alpha1.JobQueryList
	g.Expect(k8s.List(testCtx, &queries, client.InNamespace("elsewhere"))).To(Succeed())
	g.Expect(queries.Items).To(BeEmpty())
}

func TestPreviewTakesNoSecretOnTheCommandLine(t *testing.T) {
	g := NewWithT(t)
	manifest := previewManifest(t, strings.NewReplacer("%ENDPOINT%", simURL, "%PREFIX%", "x").Replace(previewYAML))
	t.Setenv(envAccessKeySecret, "")

	_, _, err := runCLI(testCtx, "preview", "-f", manifest, "--local", "--access-key-id", "only-half")
	g.Expect(err).To(MatchError("--access-key-id needs its secret: set ALIBABA_CLOUD_ACCESS_KEY_SECRET or use --access-key-secret-file"))
	_, _, err = runCLI(testCtx, "preview", "-f", manifest, "--local", "--access-key-id", "k", "--access-key-secret", "s")
	g.Expect(err).To(MatchError(ContainSubstring("--access-key-secret was removed: a secret on the command line shows in the process list")))
	_, _, err = runCLI(testCtx, "preview", "-f", manifest, "--local", "--access-key-secret-file", manifest)
	g.Expect(err).To(MatchError("--access-key-secret-file goes with --access-key-id"))
	_, _, err = runCLI(testCtx, "preview", "-f", "-", "--local", "--access-key-id", "k", "--access-key-secret-file", "-")
	g.Expect(err).To(MatchError("--access-key-secret-file - and -f - cannot both read stdin"))
	// A file of several lines (a whole manifest) is not taken for a secret.
	_, _, err = runCLI(testCtx, "preview", "-f", manifest, "--local", "--access-key-id", "k", "--access-key-secret-file", manifest)
	g.Expect(err).To(MatchError(ContainSubstring("must hold the AccessKey secret on one line")))

	// The help names no secret flag.
	out, _, err := runCLI(testCtx, "preview", "--help")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(ContainSubstring("--access-key-secret-file"))
	g.Expect(out).NotTo(ContainSubstring("--access-key-secret "))
}

// A query that assumes a RAM role lists as that role, which the preview never assumes: it says
// so, and lists with the caller's credentials.
func TestPreviewOfARoleQuerySaysItListsWithTheCallersCredentials(t *testing.T) {
	g := NewWithT(t)
	prefix := "previewrole" + strconv.FormatInt(time.Now().UnixNano(), 36)
	seedJobs(prefix)
	doc := strings.NewReplacer("%ENDPOINT%", simURL, "%PREFIX%", prefix,
		"    secretRef:\n      name: dlc-credentials", "    ambient: {roleArn: \"acs:ram::1557702098194903:role/ml-team-dlc\"}").Replace(previewYAML)
	secretFile := filepath.Join(t.TempDir(), "secret")
	g.Expect(os.WriteFile(secretFile, []byte(simAdmin.AccessKeySecret), 0o600)).To(Succeed())
	out, errOut, err := runCLI(testCtx, "preview", "-f", previewManifest(t, doc), "--local", "--endpoint", simURL,
		"--access-key-id", simAdmin.AccessKeyID, "--access-key-secret-file", secretFile, "--server", "https://127.0.0.1:1")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(errOut).To(ContainSubstring("role/ml-team-dlc, which the preview does not assume"))
	_, rows := tableRows(t, strings.SplitN(out, "\n\n", 2)[0])
	g.Expect(rows).To(HaveLen(2))
}
