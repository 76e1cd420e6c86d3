package controllers

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
)

func TestSetConditionsIsKstatusCompatible(t *testing.T) {
	cases := []struct {
		outcome                     outcome
		ready, reconciling, stalled metav1.ConditionStatus
		reason                      string
	}{
		{outcomeSynced, "True", "False", "False", dlcv1alpha1.ReasonSynced},
		{outcomeRetrying, "False", "True", "False", dlcv1alpha1.ReasonThrottled},
		{outcomeStalled, "False", "False", "True", dlcv1alpha1.ReasonUnauthorized},
		{outcomeSuspended, "False", "False", "False", dlcv1alpha1.ReasonSuspended},
	}
	for _, c := range cases {
		var conds []metav1.Condition
		setConditions(&conds, 3, c.outcome, c.reason, "message")
		for typ, want := range map[string]metav1.ConditionStatus{dlcv1alpha1.ConditionReady: c.ready,
			dlcv1alpha1.ConditionReconciling: c.reconciling, dlcv1alpha1.ConditionStalled: c.stalled} {
			got := meta.FindStatusCondition(conds, typ)
			if got == nil || got.Status != want || got.ObservedGeneration != 3 {
				t.Errorf("outcome %d: %s = %+v, want %s", c.outcome, typ, got, want)
			}
		}
		if readyReason(conds) != c.reason {
			t.Errorf("outcome %d: Ready reason %s, want %s", c.outcome, readyReason(conds), c.reason)
		}
	}
}

func TestConditionsKeepTheirTransitionTimeWithoutATransition(t *testing.T) {
	var conds []metav1.Condition
	setConditions(&conds, 1, outcomeSynced, "", "Keeping 3 matching jobs")
	first := meta.FindStatusCondition(conds, dlcv1alpha1.ConditionReady).LastTransitionTime
	time.Sleep(1100 * time.Millisecond) // condition times have a resolution of one second
	setConditions(&conds, 2, outcomeSynced, "", "Keeping 4 matching jobs")
	if got := meta.FindStatusCondition(conds, dlcv1alpha1.ConditionReady).LastTransitionTime; !got.Equal(&first) {
		t.Fatalf("lastTransitionTime moved from %v to %v without a transition", first, got)
	}
	setConditions(&conds, 2, outcomeRetrying, dlcv1alpha1.ReasonThrottled, "slow down")
	if got := meta.FindStatusCondition(conds, dlcv1alpha1.ConditionReady).LastTransitionTime; got.Equal(&first) {
		t.Fatal("lastTransitionTime did not move on a real transition")
	}
}

func TestRetryDelayBacksOffToACap(t *testing.T) {
	for n, want := range map[int32]time.Duration{0: 5 * time.Second, 1: 5 * time.Second, 2: 10 * time.Second, 3: 20 * time.Second,
		8: 10 * time.Minute, 100: 10 * time.Minute} {
		if got := retryDelay(n); got != want {
			t.Errorf("retryDelay(%d) = %v, want %v", n, got, want)
		}
	}
	for n, want := range map[int32]time.Duration{1: time.Second, 2: 2 * time.Second, 6: 32 * time.Second, 7: time.Minute, 100: time.Minute} {
		if got := conflictDelay(n); got != want {
			t.Errorf("conflictDelay(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestListingReasonClassifiesFailures(t *testing.T) {
	cases := []struct {
		err       error
		reason    string
		retryable bool
	}{
		{&dlc.Error{Kind: dlc.KindThrottled}, dlcv1alpha1.ReasonThrottled, true},
		{&dlc.Error{Kind: dlc.KindServer}, dlcv1alpha1.ReasonServerError, true},
		{&dlc.Error{Kind: dlc.KindBadResponse}, dlcv1alpha1.ReasonBadResponse, true},
		{&dlc.Error{Kind: dlc.KindNetwork}, dlcv1alpha1.ReasonEndpointUnreachable, true},
		{&dlc.Error{Kind: dlc.KindUnauthorized, Code: "SignatureDoesNotMatch"}, dlcv1alpha1.ReasonUnauthorized, false},
		{&dlc.Error{Kind: dlc.KindUnauthorized, Code: "SignatureNonceUsed"}, dlcv1alpha1.ReasonUnauthorized, true},
		{&dlc.Error{Kind: dlc.KindForbidden}, dlcv1alpha1.ReasonForbidden, false},
		{&dlc.Error{Kind: dlc.KindInvalidRequest}, dlcv1alpha1.ReasonInvalidFilter, false},
		{&dlc.Error{Kind: dlc.KindCircuitOpen}, dlcv1alpha1.ReasonCircuitOpen, true},
		{stalledError(dlcv1alpha1.ReasonSecretNotFound, "gone"), dlcv1alpha1.ReasonSecretNotFound, false},
		{stalledError(dlcv1alpha1.ReasonEndpointNotAllowed, "no"), dlcv1alpha1.ReasonEndpointNotAllowed, false},
		{kubernetesError(errors.New("etcd is slow")), dlcv1alpha1.ReasonKubernetesError, true},
		// A write that named its reason keeps it through the sync's wrapping.
		{kubernetesError(fmt.Errorf("writing: %w", statusDropped(&dlcv1alpha1.DLCJobSnapshot{}, "h"))), dlcv1alpha1.ReasonSnapshotCRDOutdated, true},
		{fmt.Errorf("listing snapshots: %w", apierrors.NewServiceUnavailable("x")), dlcv1alpha1.ReasonKubernetesError, true},
		{errors.New("something else"), dlcv1alpha1.ReasonServerError, true},
		{&inconsistentError{"TotalCount changed"}, dlcv1alpha1.ReasonInconsistentListing, true},
		{&conflictError{2}, dlcv1alpha1.ReasonSnapshotConflict, true},
		// A listing that alone needs more than the budget will not fit later; one that lost to
		// other syncs' listings may.
		{fmt.Errorf("listing: %w", &dlc.OverBudgetError{Held: 10, Budget: 10, Alone: true}), dlcv1alpha1.ReasonListingTooLarge, false},
		{fmt.Errorf("listing: %w", &dlc.OverBudgetError{Held: 1, Budget: 10}), dlcv1alpha1.ReasonListingTooLarge, true},
		{kubernetesError(apierrors.NewConflict(schema.GroupResource{Resource: "dlcjobsnapshots"}, "x", errors.New("modified"))),
			dlcv1alpha1.ReasonKubernetesError, true},
	}
	for _, c := range cases {
		reason, retryable := listingReason(c.err)
		if reason != c.reason || retryable != c.retryable {
			t.Errorf("%v: %s %v, want %s %v", c.err, reason, retryable, c.reason, c.retryable)
		}
	}
}

func TestDueSpreadsOverdueQueriesAfterARestartAndPutsNewOnesFirst(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	past, future := metav1.NewTime(now.Add(-time.Hour)), metav1.NewTime(now.Add(30*time.Second))
	q := func(name string, mutate func(*dlcv1alpha1.JobQuery)) *dlcv1alpha1.JobQuery {
		jq := &dlcv1alpha1.JobQuery{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Generation: 1}}
		jq.Spec.Interval = metav1.Duration{Duration: 5 * time.Minute}
		jq.Status = dlcv1alpha1.JobQueryStatus{ObservedGeneration: 1, LastSyncTime: &past, NextSyncTime: &past}
		mutate(jq)
		return jq
	}
	r := &JobQueryReconciler{}
	check := func(jq *dlcv1alpha1.JobQuery, credVersion string) (time.Duration, bool) {
		state, seen := r.state(types.NamespacedName{Namespace: jq.Namespace, Name: jq.Name})
		if !seen {
			// As reconcileSync: a query this process sees for the first time is restored.
			restoreState(state, jq, now)
		}
		return due(jq, state, seen, credVersion, now)
	}
	if _, due := check(q("new", func(j *dlcv1alpha1.JobQuery) { j.Status = dlcv1alpha1.JobQueryStatus{} }), ""); !due {
		t.Error("a never-synced query must sync at once")
	}
	wait, due := check(q("overdue", func(*dlcv1alpha1.JobQuery) {}), "")
	if due || wait < time.Second || wait > time.Minute+time.Second {
		t.Errorf("an overdue query right after a restart: due %v, wait %v; want a spread wait", due, wait)
	}
	if _, due := check(q("overdue", func(*dlcv1alpha1.JobQuery) {}), ""); !due {
		t.Error("the same overdue query must sync on its next reconcile")
	}
	if wait, due := check(q("scheduled", func(j *dlcv1alpha1.JobQuery) { j.Status.NextSyncTime = &future }), ""); due || wait != 30*time.Second {
		t.Errorf("a scheduled query: due %v wait %v", due, wait)
	}
	// A sync that changed nothing did not write the status: the schedule in memory wins over
	// the stale one of the status.
	state, _ := r.state(types.NamespacedName{Namespace: "ns", Name: "quiet"})
	state.nextSync = now.Add(40 * time.Second)
	if wait, due := check(q("quiet", func(j *dlcv1alpha1.JobQuery) {}), ""); due || wait != 40*time.Second {
		t.Errorf("a query whose last sync wrote nothing: due %v wait %v; want the remembered 40s", due, wait)
	}
	if _, due := check(q("edited", func(j *dlcv1alpha1.JobQuery) { j.Generation = 2; j.Status.NextSyncTime = &future }), ""); !due {
		t.Error("a spec change must sync at once")
	}
	if _, due := check(q("asked", func(j *dlcv1alpha1.JobQuery) {
		j.Annotations = map[string]string{dlcv1alpha1.AnnotationRequestedAt: "1"}
		j.Status.NextSyncTime = &future
	}), ""); !due {
		t.Error("a requestedAt annotation must sync at once")
	}
	if _, due := check(q("rotated", func(j *dlcv1alpha1.JobQuery) {
		j.Status.ObservedCredentialsVersion = "1"
		j.Status.NextSyncTime = &future
	}), "2"); !due {
		t.Error("a new Secret version must sync at once")
	}
	stalled := q("stalled", func(j *dlcv1alpha1.JobQuery) {
		j.Status.NextSyncTime = nil
		setConditions(&j.Status.Conditions, 1, outcomeStalled, dlcv1alpha1.ReasonInvalidFilter, "bad filter")
	})
	if _, due := check(stalled, ""); !due {
		t.Error("a stalled query must be looked at once by a new process, which may run with other flags")
	}
	if wait, due := check(stalled, ""); due || wait != 0 {
		t.Errorf("a stalled query without a change: due %v wait %v; want to wait for a change", due, wait)
	}
	// A RAM denial is fixed in Alibaba Cloud, out of sight of any watch: looked at every 10 minutes.
	denied := func(lastSync time.Duration) *dlcv1alpha1.JobQuery {
		return q("denied", func(j *dlcv1alpha1.JobQuery) {
			last := metav1.NewTime(now.Add(-lastSync))
			j.Status.LastSyncTime, j.Status.NextSyncTime = &last, nil
			setConditions(&j.Status.Conditions, 1, outcomeStalled, dlcv1alpha1.ReasonForbidden, "denied")
		})
	}
	r.state(types.NamespacedName{Namespace: "ns", Name: "denied"})
	if wait, due := check(denied(time.Minute), ""); due || wait != stalledRecheck-time.Minute {
		t.Errorf("a query denied a minute ago: due %v wait %v; want a wait of 9m", due, wait)
	}
	if _, due := check(denied(11*time.Minute), ""); !due {
		t.Error("a query denied 11 minutes ago must be tried again")
	}
}

func TestOnlyTheSyncTimesChangingIsNotWorthAWrite(t *testing.T) {
	t1, t2 := metav1.NewTime(time.Unix(100, 0)), metav1.NewTime(time.Unix(200, 0))
	before := dlcv1alpha1.JobQueryStatus{Snapshots: 3, LastSyncTime: &t1, NextSyncTime: &t1,
		LastSyncStats: &dlcv1alpha1.SyncStats{APICalls: 1, Unchanged: 3}}
	setConditions(&before.Conditions, 1, outcomeSynced, "", "Keeping 3 matching jobs")
	after := before.DeepCopy()
	after.LastSyncTime, after.LastSuccessfulSyncTime, after.NextSyncTime = &t2, &t2, &t2
	after.LastSyncStats = &dlcv1alpha1.SyncStats{APICalls: 2, Unchanged: 3, Mode: dlcv1alpha1.SyncModeIncremental}
	if !onlySyncTimesChanged(&before, after) {
		t.Error("a sync that changed only times and stats must not write")
	}
	for name, change := range map[string]func(*dlcv1alpha1.JobQueryStatus){
		"snapshots": func(s *dlcv1alpha1.JobQueryStatus) { s.Snapshots = 4 },
		"counts":    func(s *dlcv1alpha1.JobQueryStatus) { s.JobStatusCounts = map[string]int32{"Running": 1} },
		"condition": func(s *dlcv1alpha1.JobQueryStatus) {
			setConditions(&s.Conditions, 1, outcomeRetrying, dlcv1alpha1.ReasonThrottled, "slow down")
		},
		"failures": func(s *dlcv1alpha1.JobQueryStatus) { s.ConsecutiveFailures = 1 },
	} {
		changed := after.DeepCopy()
		change(changed)
		if onlySyncTimesChanged(&before, changed) {
			t.Errorf("a change of %s must be written", name)
		}
	}
}

func TestIncrementalListingOnlyForFiltersFixedAtCreationAndAfterARecentFullListing(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	base := func() *dlcv1alpha1.JobQuery {
		q := &dlcv1alpha1.JobQuery{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
		q.Spec.FullResyncInterval = &metav1.Duration{Duration: time.Hour}
		q.Spec.Filter = dlcv1alpha1.JobFilter{WorkspaceID: "268", JobType: "PyTorchJob", ShowOwn: dlc.Ptr(true)}
		q.Status.Snapshots = 300
		return q
	}
	// 300 jobs, 50 of them running: 2 calls instead of 3 pages.
	known := make([]dlc.KnownJob, 0, 300)
	for i := range 300 {
		status := dlc.StatusSucceeded
		if i < 50 {
			status = dlc.StatusRunning
		}
		known = append(known, dlc.KnownJob{JobID: fmt.Sprint("dlc", i), GmtCreateTime: "2026-01-01T10:00:00Z", Status: status})
	}
	fresh := func(q *dlcv1alpha1.JobQuery) *queryState {
		return &queryState{lastFull: now.Add(-10 * time.Minute), fullKey: fullKey(q)}
	}
	if q := base(); !incrementalDue(q, fresh(q), known, now) {
		t.Fatal("a fixed filter after a recent full listing must list incrementally")
	}
	for name, mutate := range map[string]func(*dlcv1alpha1.JobQuery){
		"status filter": func(q *dlcv1alpha1.JobQuery) { q.Spec.Filter.Status = dlc.StatusRunning },
		"reason search": func(q *dlcv1alpha1.JobQuery) { q.Spec.Filter.ReasonSearch = "OOM" },
		"numeric range": func(q *dlcv1alpha1.JobQuery) {
			q.Spec.Filter.NumericRange = &dlcv1alpha1.NumericRange{Field: "Duration"}
		},
		"finish-time window": func(q *dlcv1alpha1.JobQuery) {
			q.Spec.Filter.TimeRange = &dlcv1alpha1.TimeRange{Field: "GmtFinishTime"}
		},
		// Fields UpdateJob or scheduling can change (dlc.FilterRules).
		"accessibility":         func(q *dlcv1alpha1.JobQuery) { q.Spec.Filter.Accessibility = "PUBLIC" },
		"image search":          func(q *dlcv1alpha1.JobQuery) { q.Spec.Filter.ImageSearch = "pytorch" },
		"oversold":              func(q *dlcv1alpha1.JobQuery) { q.Spec.Filter.OversoldInfo = "ForceQuotaJob" },
		"payment type":          func(q *dlcv1alpha1.JobQuery) { q.Spec.Filter.PaymentType = "Spot" },
		"tags":                  func(q *dlcv1alpha1.JobQuery) { q.Spec.Filter.Tags = map[string]string{"team": "a"} },
		"others' jobs":          func(q *dlcv1alpha1.JobQuery) { q.Spec.Filter.ShowOwn = dlc.Ptr(false) },
		"showOwn unset":         func(q *dlcv1alpha1.JobQuery) { q.Spec.Filter.ShowOwn = nil },
		"assigned nodes":        func(q *dlcv1alpha1.JobQuery) { q.Spec.Filter.EnableAssignNode = dlc.Ptr(true) },
		"full listing disabled": func(q *dlcv1alpha1.JobQuery) { q.Spec.FullResyncInterval = &metav1.Duration{} },
		"truncated":             func(q *dlcv1alpha1.JobQuery) { q.Status.Truncated = true },
	} {
		q := base()
		mutate(q)
		if incrementalDue(q, fresh(q), known, now) {
			t.Errorf("%s: must list in full", name)
		}
	}
	if q := base(); incrementalDue(q, fresh(q), known[1:], now) {
		t.Error("a snapshot was deleted by hand: must list in full to restore it")
	}
	q := base()
	if incrementalDue(q, &queryState{}, known, now) {
		t.Error("no full listing since the process started: must list in full")
	}
	if incrementalDue(q, &queryState{lastFull: now.Add(-time.Hour), fullKey: fullKey(q)}, known, now) {
		t.Error("fullResyncInterval passed: must list in full")
	}
	state := fresh(q)
	q.Generation++
	if incrementalDue(q, state, known, now) {
		t.Error("the spec changed since the full listing: must list in full")
	}
	if q := base(); incrementalDue(q, fresh(q), nil, now) {
		t.Error("no known job to start from: must list in full")
	}
	few := base()
	few.Status.Snapshots = 150
	if incrementalDue(few, fresh(few), known[:150], now) {
		t.Error("150 jobs, 50 moving: the full listing takes 2 calls too, and finds deletions: must list in full")
	}
	withinDay := base()
	withinDay.Spec.Filter.TimeRange = &dlcv1alpha1.TimeRange{Within: &metav1.Duration{Duration: 24 * time.Hour}}
	if !incrementalDue(withinDay, fresh(withinDay), known, now) {
		t.Error("a creation-time window is fixed at creation: must list incrementally")
	}
}

func TestCutKeepsValidUTF8WithinTheBound(t *testing.T) {
	long := strings.Repeat("显存不足", 200) // 3-byte runes
	for _, n := range []int{1, 200, 1021} {
		got := cut(long, n)
		if len(got) > n+len("...") || !utf8.ValidString(got) || !strings.HasSuffix(got, "...") {
			t.Errorf("cut(%d): %d bytes, valid %v", n, len(got), utf8.ValidString(got))
		}
	}
	if got := truncateMessage(long); len(got) > 1024 || !utf8.ValidString(got) {
		t.Errorf("truncateMessage: %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
	if short := strings.Repeat("a", 1024); truncateMessage(short) != short {
		t.Error("a message of 1 KiB was cut")
	}
}

// The skipped jobs' text fits whole in the Ready message after the longest text a Synced message
// puts before it: the next sync finds it there and emits no second JobsSkipped event.
func TestASkippedListAlwaysFitsWholeInTheReadyMessage(t *testing.T) {
	var refused []string
	for i := range 5 {
		refused = append(refused, fmt.Sprintf("dlc%d%s: creating snapshot: %s", i, strings.Repeat("x", 300), strings.Repeat("invalid ", 40)))
	}
	skipped := skippedMessage(1_000_000, refused)
	if len(skipped) > maxSkippedBytes || !utf8.ValidString(skipped) {
		t.Fatalf("the skipped text has %d bytes (at most %d) or is not UTF-8", len(skipped), maxSkippedBytes)
	}
	longest := syncedMessage(10000, 1<<62, true) + pendingMessage(1<<62)
	message := truncateMessage(longest + "; " + skipped)
	if !strings.Contains(message, skipped) {
		t.Errorf("the Ready message (%d bytes) cut the skipped text of %d bytes", len(message), len(skipped))
	}
}
