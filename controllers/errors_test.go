package controllers

import (
	"errors"
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
)

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
