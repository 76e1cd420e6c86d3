// Package identity_test runs the manager binary with an identity of its own (the environment
// variables RRSA or an ECS RAM role would give it) and JobQueries that assume their team's RAM
// role with it, against dlcsim's ListJobs and its simulated STS.
package identity_test

import (
	"context"
	"encoding/pem"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.RunRemovingManagerBinary(m)) }

const (
	mlRole      = "acs:ram::1557702098194903:role/ml-team-dlc"
	cvRole      = "acs:ram::1557702098194903:role/cv-team-dlc"
	missingRole = "acs:ram::1557702098194903:role/ml-team-gone"
)

// A JobQuery with credentials.ambient.roleArn lists jobs as that role: the manager assumes it
// through STS with its own identity (here the environment's AccessKey, which may not list jobs
// itself), and dlcsim's ListJobs accepts the temporary identity STS handed out. A namespace that
// --assumable-roles does not allow the role gets RoleNotAllowed and causes no STS call; a role
// that does not exist is an authorization failure whose message carries STS's answer.
func TestAQueryAssumesItsTeamsRoleWithTheOperatorsIdentity(t *testing.T) {
	g := NewWithT(t)
	env, k8s := testenv.StartWithClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)

	operator := dlcsim.Identity{AccessKeyID: "ak-operator", AccessKeySecret: "sk-operator-secret", UserID: "2001", Username: "dlcsync",
		AllowListJobs: dlc.Ptr(false)}
	owner := dlcsim.Identity{AccessKeyID: "ak-owner", AccessKeySecret: "sk-owner-secret", UserID: "2002", Username: "ml-user"}
	sim := dlcsim.New(dlcsim.Options{Identities: []dlcsim.Identity{operator, owner}, ShowOwnDefault: dlc.Ptr(false), Seed: 25,
		Roles: []dlcsim.Role{
			{Arn: mlRole, UserID: "3001", Username: "ml-team-dlc", Admin: true, TrustedAccessKeys: []string{operator.AccessKeyID}},
			// Exists and trusts the operator, but --assumable-roles does not allow it anywhere.
			{Arn: cvRole, UserID: "3002", Username: "cv-team-dlc", TrustedAccessKeys: []string{operator.AccessKeyID}},
		}})
	sim.Generate(12)
	// STS is HTTPS only: the simulator serves both APIs over TLS, and the manager trusts its
	// certificate as it would a private CA, through SSL_CERT_FILE.
	srv := httptest.NewTLSServer(sim.Handler())
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	g.Expect(os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)).To(Succeed())
	u, err := url.Parse(srv.URL)
	g.Expect(err).NotTo(HaveOccurred())

	mgr := testenv.StartManager(t, env, []string{"SSL_CERT_FILE=" + caFile,
		"ALIBABA_CLOUD_ACCESS_KEY_ID=" + operator.AccessKeyID, "ALIBABA_CLOUD_ACCESS_KEY_SECRET=" + operator.AccessKeySecret},
		"--allowed-endpoints", "https://127.0.0.1:*", "--sts-endpoint", u.Host,
		"--assumable-roles", "ml-team=acs:ram::1557702098194903:role/ml-team-*")
	waitReady := func(namespace, name, reason string) *dlcv1alpha1.JobQuery {
		t.Helper()
		q, err := testenv.WaitReady(ctx, k8s, namespace, name, reason, "", time.Minute)
		g.Expect(err).NotTo(HaveOccurred(), func() string { return mgr.Tail(30) })
		return q
	}
	roleQuery := func(namespace, name, arn string) {
		t.Helper()
		g.Expect(testenv.CreateTenant(ctx, k8s, namespace, "unused", "unused-secret")).To(Succeed())
		q := testenv.JobQuery(namespace, name, srv.URL)
		q.Spec.Credentials = dlcv1alpha1.Credentials{Ambient: &dlcv1alpha1.AmbientCredentials{RoleArn: arn}}
		g.Expect(k8s.Create(ctx, q)).To(Succeed())
	}

	roleQuery("ml-team", "as-role", mlRole)
	q := waitReady("ml-team", "as-role", dlcv1alpha1.ReasonSynced)
	// Note: the operator's own AccessKey may not list jobs at all: any listing is the role's.
	g.Expect(q.Status.MatchedJobs).To(BeNumerically(">", 0))
	var snapshots dlcv1alpha1.DLCJobSnapshotList
	g.Expect(k8s.List(ctx, &snapshots, client.InNamespace("ml-team"))).To(Succeed())
	g.Expect(snapshots.Items).To(HaveLen(int(q.Status.MatchedJobs)))
	stats := sim.Stats()
	g.Expect(stats.RolesAssumed).To(BeEquivalentTo(1))
	var asRole int64
	for key, n := range stats.ByAccessKey {
		if strings.HasPrefix(key, "STS.") {
			asRole += n
		}
	}
	g.Expect(asRole).To(BeNumerically(">", 0), "ListJobs was called with the temporary identity: %v", stats.ByAccessKey)

	// Another team's role, and a role nobody is allowed: refused before any STS call (a role
	// of its own, so that no cached session could hide a call).
	stsCalls := sim.Stats().STSRequests
	roleQuery("cv-team", "borrowed", mlRole)
	refused := waitReady("cv-team", "borrowed", dlcv1alpha1.ReasonRoleNotAllowed)
	g.Expect(meta.FindStatusCondition(refused.Status.Conditions, dlcv1alpha1.ConditionReady).Message).To(
		ContainSubstring("--assumable-roles"))
	roleQuery("cv-team", "own-role", cvRole)
	waitReady("cv-team", "own-role", dlcv1alpha1.ReasonRoleNotAllowed)
	g.Expect(sim.Stats().STSRequests).To(Equal(stsCalls), "a refused role caused an STS call")

	roleQuery("ml-team", "missing-role", missingRole)
	missing := waitReady("ml-team", "missing-role", dlcv1alpha1.ReasonUnauthorized)
	g.Expect(meta.FindStatusCondition(missing.Status.Conditions, dlcv1alpha1.ConditionReady).Message).To(
		ContainSubstring("EntityNotExist.Role"))
	g.Expect(sim.Stats().RolesAssumed).To(BeEquivalentTo(1), "only ml-team's role was assumed")
}
