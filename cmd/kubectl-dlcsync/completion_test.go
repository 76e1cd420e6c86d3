package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// complete runs `kubectl dlcsync __complete ARGS` in-process, as the shell scripts and
// kubectl_complete-dlcsync do, and returns the candidates (without descriptions) and the directive.
func complete(g Gomega, args ...string) ([]string, string) {
	out := &strings.Builder{}
	errOut := &strings.Builder{}
	// Note: the word being completed is the last argument, so the kubeconfig goes before it.
	full := append([]string{"__complete", args[0], "--kubeconfig=" + kubeconfig}, args[1:]...)
	g.Expect(runCLIRaw(testCtx, out, errOut, full...)).To(Succeed())
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	g.Expect(lines).NotTo(BeEmpty())
	directive := lines[len(lines)-1]
	g.Expect(directive).To(HavePrefix(":"), out.String())
	var names []string
	for _, l := range lines[:len(lines)-1] {
		name, _, _ := strings.Cut(l, "\t")
		names = append(names, name)
	}
	return names, directive
}

func TestCompletionNamesQueriesAndJobsOfTheNamespace(t *testing.T) {
	g := NewWithT(t)
	ns, other := newNamespace(t), newNamespace(t)
	prefix := "compl" + strconv.FormatInt(time.Now().UnixNano(), 36)
	seedJobs(prefix)
	createSynced(t, newQuery(ns, "recent-jobs", prefix))
	g.Expect(k8s.Create(testCtx, newQuery(ns, "failed-pytorch", prefix))).To(Succeed())
	g.Expect(k8s.Create(testCtx, newQuery(other, "elsewhere", prefix))).To(Succeed())

	names, directive := complete(g, "status", "-n", ns, "")
	g.Expect(names).To(ConsistOf("recent-jobs", "failed-pytorch"))
	g.Expect(directive).To(Equal(":4")) // ShellCompDirectiveNoFileComp
	names, _ = complete(g, "sync", "-n", ns, "rec")
	g.Expect(names).To(Equal([]string{"recent-jobs"}))
	names, _ = complete(g, "suspend", "--namespace", other, "")
	g.Expect(names).To(Equal([]string{"elsewhere"}))
	// One query per command: nothing after it.
	names, _ = complete(g, "resume", "-n", ns, "recent-jobs", "")
	g.Expect(names).To(BeEmpty())

	names, _ = complete(g, "get", "")
	g.Expect(names).To(ConsistOf("queries", "jobs"))
	names, _ = complete(g, "get", "jobs", "-n", ns, "")
	g.Expect(names).To(ConsistOf("dlc"+prefix+"failed", "dlc"+prefix+"running", "dlc"+prefix+"done"))
	names, _ = complete(g, "get", "jq", "-n", ns, "f")
	g.Expect(names).To(Equal([]string{"failed-pytorch"}))
	names, _ = complete(g, "get", "jobs", "-n", ns, "--query", "")
	g.Expect(names).To(ConsistOf("recent-jobs", "failed-pytorch"))
	names, _ = complete(g, "wait", "-n", ns, "dlc"+prefix+"r")
	g.Expect(names).To(Equal([]string{"dlc" + prefix + "running"}))
	names, _ = complete(g, "wait", "-n", ns, "--query", "")
	g.Expect(names).To(ConsistOf("recent-jobs", "failed-pytorch"))

	// The verbs themselves.
	out := &strings.Builder{}
	g.Expect(runCLIRaw(testCtx, out, &strings.Builder{}, "__complete", "")).To(Succeed())
	for _, verb := range []string{"get", "sync", "suspend", "resume", "status", "preview", "wait", "completion"} {
		g.Expect(out.String()).To(MatchRegexp(`(?m)^` + verb + `\t`))
	}
}

func TestCompletionScriptsNameTheCommand(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			g := NewWithT(t)
			out := &strings.Builder{}
			g.Expect(runCLIRaw(testCtx, out, &strings.Builder{}, "completion", shell)).To(Succeed())
			g.Expect(out.Len()).To(BeNumerically(">", 1000))
			g.Expect(out.String()).To(ContainSubstring("kubectl-dlcsync"))
			g.Expect(out.String()).To(ContainSubstring("__complete"))
		})
	}
}

// kubectl (1.26+) completes `kubectl dlcsync ...` by running kubectl_complete-dlcsync with the
// words after `dlcsync`; the script must hand them, unchanged, to the plugin's __complete.
func TestKubectlCompleteScriptRunsThePluginsCompletion(t *testing.T) {
	g := NewWithT(t)
	bin := t.TempDir()
	fake := "#!/bin/sh\nfor a in \"$@\"; do printf '[%s]' \"$a\"; done\n"
	g.Expect(os.WriteFile(filepath.Join(bin, "kubectl-dlcsync"), []byte(fake), 0o755)).To(Succeed())
	script, err := filepath.Abs(filepath.Join("..", "..", "plugins", "kubectl_complete-dlcsync"))
	g.Expect(err).NotTo(HaveOccurred())
	info, err := os.Stat(script)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(info.Mode().Perm()&0o111).NotTo(BeZero(), "the script must be executable")
	cmd := exec.Command(script, "status", "-n", "my ns", "")
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(out))
	g.Expect(string(out)).To(Equal("[__complete][status][-n][my ns][]"))
}
