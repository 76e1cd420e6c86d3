package controllers

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
)

// The functions in this file compute JobQuery conditions; they are pure and table-tested. They
// use meta.SetStatusCondition, which keeps lastTransitionTime while a status does not change.

// outcome is how a sync ended, as the conditions report it.
type outcome int

const (
	outcomeSynced outcome = iota
	outcomeRetrying
	outcomeStalled
	outcomeSuspended
)

// setConditions writes Ready, Reconciling and Stalled (kstatus) for an outcome.
func setConditions(conds *[]metav1.Condition, generation int64, o outcome, reason, message string) {
	set := func(t string, s metav1.ConditionStatus, r, m string) {
		meta.SetStatusCondition(conds, metav1.Condition{Type: t, Status: s, Reason: r, Message: m, ObservedGeneration: generation})
	}
	switch o {
	case outcomeSynced:
		if reason == "" {
			reason = dlcv1alpha1.ReasonSynced
		}
		set(dlcv1alpha1.ConditionReady, metav1.ConditionTrue, reason, message)
		set(dlcv1alpha1.ConditionReconciling, metav1.ConditionFalse, dlcv1alpha1.ReasonSynced, "The last sync succeeded")
		set(dlcv1alpha1.ConditionStalled, metav1.ConditionFalse, dlcv1alpha1.ReasonSynced, "The last sync succeeded")
	case outcomeRetrying:
		set(dlcv1alpha1.ConditionReady, metav1.ConditionFalse, reason, message)
		set(dlcv1alpha1.ConditionReconciling, metav1.ConditionTrue, reason, "Retrying: "+message)
		set(dlcv1alpha1.ConditionStalled, metav1.ConditionFalse, reason, "The failure may pass without a change")
	case outcomeStalled:
		set(dlcv1alpha1.ConditionReady, metav1.ConditionFalse, reason, message)
		set(dlcv1alpha1.ConditionReconciling, metav1.ConditionFalse, reason, "Waiting for a change to the spec or the credentials")
		set(dlcv1alpha1.ConditionStalled, metav1.ConditionTrue, reason, message)
	case outcomeSuspended:
		set(dlcv1alpha1.ConditionReady, metav1.ConditionFalse, dlcv1alpha1.ReasonSuspended, "Syncing is suspended")
		set(dlcv1alpha1.ConditionReconciling, metav1.ConditionFalse, dlcv1alpha1.ReasonSuspended, "Syncing is suspended")
		set(dlcv1alpha1.ConditionStalled, metav1.ConditionFalse, dlcv1alpha1.ReasonSuspended, "Syncing is suspended")
	}
}

// readyReason returns the reason of the Ready condition, "" when there is none.
func readyReason(conds []metav1.Condition) string {
	if c := meta.FindStatusCondition(conds, dlcv1alpha1.ConditionReady); c != nil {
		return c.Reason
	}
	return ""
}

// readyMessage returns the message of the Ready condition, "" when there is none.
func readyMessage(conds []metav1.Condition) string {
	if c := meta.FindStatusCondition(conds, dlcv1alpha1.ConditionReady); c != nil {
		return c.Message
	}
	return ""
}

// skippedMessage says which jobs a successful sync could not mirror: those the API sent without
// an ID, and those whose snapshot the apiserver refused (up to three named). "" when none.
func skippedMessage(withoutID int, refused []string) string {
	var parts []string
	if withoutID > 0 {
		parts = append(parts, fmt.Sprintf("skipped %d job(s) the API sent without a JobId", withoutID))
	}
	if len(refused) > 0 {
		slices.Sort(refused)
		named := refused[:min(len(refused), 3)]
		parts = append(parts, fmt.Sprintf("could not write the snapshot of %d job(s): %s", len(refused), strings.Join(named, "; ")))
	}
	return strings.Join(parts, "; ")
}

// isStalled reports whether Stalled is True.
func isStalled(conds []metav1.Condition) bool {
	return meta.IsStatusConditionTrue(conds, dlcv1alpha1.ConditionStalled)
}

// syncedMessage is the stable message of a successful sync.
func syncedMessage(kept int, matched int64, truncated bool) string {
	if truncated {
		return fmt.Sprintf("Keeping %d of %d matching jobs (maxJobs)", kept, matched)
	}
	return fmt.Sprintf("Keeping %d matching jobs", kept)
}

// retryDelay is the wait after the n-th consecutive transient failure: 5s doubling, capped at
// 10m, so a throttled or failing API is not hammered.
func retryDelay(n int32) time.Duration { return doubling(5*time.Second, 10*time.Minute, n) }

// truncateMessage keeps condition messages within a readable size.
func truncateMessage(s string) string {
	const maxLen = 1024
	if len(s) > maxLen {
		return s[:maxLen-3] + "..."
	}
	return s
}
