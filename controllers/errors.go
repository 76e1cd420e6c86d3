package controllers

import (
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
)

// reasonError is a sync failure with its condition reason attached where it happened (Flux's
// serror.Generic): the place that knows what failed names it, not a guess from the error text.
type reasonError struct {
	reason string
	// retryable is false when only a change (spec, Secret, manager flags) can fix it.
	retryable bool
	msg       string
	err       error
}

func (e *reasonError) Error() string {
	switch {
	case e.msg != "" && e.err != nil:
		return e.msg + ": " + e.err.Error()
	case e.msg != "":
		return e.msg
	}
	return e.err.Error()
}

func (e *reasonError) Unwrap() error { return e.err }

// stalledError is a problem the user or administrator must fix; nothing is retried until
// something changes.
func stalledError(reason, format string, args ...any) error {
	return &reasonError{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// kubernetesError wraps a failed read or write of Kubernetes objects during a sync, unless the
// place that failed already named its reason (e.g. SnapshotCRDOutdated).
func kubernetesError(err error) error {
	var tagged *reasonError
	if err == nil || errors.As(err, &tagged) {
		return err
	}
	return &reasonError{reason: dlcv1alpha1.ReasonKubernetesError, retryable: true, err: err}
}

// inconsistentError says the result set moved under every walk; nothing is written then.
type inconsistentError struct{ problem string }

func (e *inconsistentError) Error() string {
	return "the job list changed during every walk (" + e.problem + "); snapshots were left as they are"
}

// conflictError says another writer changed snapshots during the sync; a retry follows.
type conflictError struct{ n int32 }

func (e *conflictError) Error() string {
	return fmt.Sprintf("%d snapshot(s) changed concurrently; retrying", e.n)
}

// listingReason maps a sync failure to a condition reason and says whether retrying without
// a change can help.
func listingReason(err error) (reason string, retryable bool) {
	var tagged *reasonError
	var inconsistent *inconsistentError
	var conflict *conflictError
	var overBudget *dlc.OverBudgetError
	switch {
	case errors.As(err, &tagged):
		return tagged.reason, tagged.retryable
	case errors.As(err, &overBudget):
		return dlcv1alpha1.ReasonListingTooLarge, !overBudget.Alone
	case errors.As(err, &inconsistent):
		return dlcv1alpha1.ReasonInconsistentListing, true
	case errors.As(err, &conflict):
		return dlcv1alpha1.ReasonSnapshotConflict, true
	}
	switch dlc.KindOf(err) {
	case dlc.KindThrottled:
		return dlcv1alpha1.ReasonThrottled, true
	case dlc.KindServer:
		return dlcv1alpha1.ReasonServerError, true
	case dlc.KindBadResponse:
		return dlcv1alpha1.ReasonBadResponse, true
	case dlc.KindNetwork, dlc.KindCanceled:
		return dlcv1alpha1.ReasonEndpointUnreachable, true
	case dlc.KindUnauthorized:
		var e *dlc.Error
		if errors.As(err, &e) && e.Retryable() {
			return dlcv1alpha1.ReasonUnauthorized, true
		}
		return dlcv1alpha1.ReasonUnauthorized, false
	case dlc.KindForbidden:
		return dlcv1alpha1.ReasonForbidden, false
	case dlc.KindInvalidRequest:
		return dlcv1alpha1.ReasonInvalidFilter, false
	case dlc.KindCircuitOpen:
		return dlcv1alpha1.ReasonCircuitOpen, true
	case "":
		var status apierrors.APIStatus
		if errors.As(err, &status) {
			return dlcv1alpha1.ReasonKubernetesError, true
		}
	}
	return dlcv1alpha1.ReasonServerError, true
}
