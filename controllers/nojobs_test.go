package controllers

import (
	"net/http/httptest"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlcsim"
)

// A query pointed at the wrong region (here: another region's endpoint, a simulator without the
// team's jobs) syncs fine and keeps 0 jobs; its Ready message says what to check, and a Warning
// says it once, not at every sync (issue 25, point 4).
func TestAQueryThatMatchesNoJobSaysWhatToCheck(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	otherRegion := httptest.NewServer(dlcsim.New(dlcsim.Options{Identities: []dlcsim.Identity{simAdmin}, Seed: 1}).Handler())
	t.Cleanup(otherRegion.Close)
	q := query(ns, "elsewhere")
	q.Spec.RegionID = "cn-beijing"
	q.Spec.Endpoint = otherRegion.URL
	q.Spec.Filter.DisplayName = "dlcnowhere"
	q = createReady(t, q, dlcv1alpha1.ReasonSynced)
	c := meta.FindStatusCondition(q.Status.Conditions, dlcv1alpha1.ConditionReady)
	g.Expect(c.Message).To(ContainSubstring("Keeping 0 matching jobs: the complete listing of region cn-beijing at " + otherRegion.URL))
	g.Expect(c.Message).To(ContainSubstring("spec.regionId"))
	g.Expect(c.Message).To(ContainSubstring("showOwn"))
	resync(t, ns, "elsewhere", dlcv1alpha1.ReasonSynced)
	resync(t, ns, "elsewhere", dlcv1alpha1.ReasonSynced)
	noJobsWarnings := func(g Gomega) {
		var warnings int
		for _, e := range events(g, ns) {
			if e.Reason == "NoJobsMatched" {
				warnings++
				g.Expect(e.Type).To(Equal("Warning"))
			}
		}
		g.Expect(warnings).To(Equal(1))
	}
	NewWithT(t).Eventually(noJobsWarnings).WithTimeout(10 * time.Second).Should(Succeed())
	NewWithT(t).Consistently(noJobsWarnings).WithTimeout(2 * time.Second).Should(Succeed())
}
