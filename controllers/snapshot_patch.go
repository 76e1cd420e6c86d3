package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// A snapshot has no status subresource (see docs/api.md): its labels, annotations, owners and
// status change in one request. That request is an RFC 6902 JSON patch built from the cached
// object, for three reasons that the other ways to write one object lack:
//   - `replace /status` sets the whole status, so no field of an earlier status is left behind
//     (a merge patch merges into the old status, and the cache does not hold the old job data
//     needed to null what went away);
//   - labels and annotations change key by key, so other tools' keys stay as they are (an update
//     would need the whole object, which the cache trims);
//   - the first operation sets metadata.resourceVersion to the version the patch was computed
//     from: the apiserver refuses the patch with 409 Conflict when the object moved on, so a
//     concurrent change by another query is never undone (the sync retries a second later).
// Server-side apply would also keep others' fields, but it leaves behind the fields an earlier
// release owned through /status (a different field manager), and it costs the apiserver more
// per write (docs/benchmarks.md, "Write methods").

// The RFC 6902 operations the snapshot patches use.
const (
	opAdd     = "add"
	opRemove  = "remove"
	opReplace = "replace"
)

// patchOp is one RFC 6902 operation.
type patchOp struct {
	Op    string
	Path  string
	Value any
}

// MarshalJSON writes the operation, with a value for every op but remove (a value that is
// false or empty must still be sent, which omitempty would drop).
func (o patchOp) MarshalJSON() ([]byte, error) {
	if o.Op == opRemove {
		return json.Marshal(struct {
			Op   string `json:"op"`
			Path string `json:"path"`
		}{o.Op, o.Path})
	}
	return json.Marshal(struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value any    `json:"value"`
	}{o.Op, o.Path, o.Value})
}

// snapshotPatch collects the operations that bring one cached snapshot to what it should be.
type snapshotPatch struct {
	existing *dlcv1alpha1.DLCJobSnapshot
	ops      []patchOp
	// hash is the content hash of the status the patch writes ("" when it writes none), and
	// revealed its revealed groups: the answer must show them (see statusDropped).
	hash     string
	revealed int
}

// newSnapshotPatch starts a patch of existing, guarded by its resourceVersion.
func newSnapshotPatch(existing *dlcv1alpha1.DLCJobSnapshot) *snapshotPatch {
	return &snapshotPatch{existing: existing, ops: []patchOp{
		{Op: opReplace, Path: "/metadata/resourceVersion", Value: existing.ResourceVersion},
	}}
}

// empty reports whether the patch changes nothing but its guard.
func (p *snapshotPatch) empty() bool { return len(p.ops) == 1 }

// pointerEscaper escapes a map key for a JSON pointer (RFC 6901).
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

func jsonPointer(key string) string { return pointerEscaper.Replace(key) }

// labels sets dlcsync's labels to want and leaves every other label as it is.
func (p *snapshotPatch) labels(want map[string]string) {
	have := p.existing.Labels
	if len(have) == 0 {
		// The object has no labels at all (the cache keeps every label): the map is new.
		if len(want) > 0 {
			p.ops = append(p.ops, patchOp{Op: opAdd, Path: "/metadata/labels", Value: want})
		}
		return
	}
	for _, k := range snapshot.LabelKeys {
		wantValue, wanted := want[k]
		haveValue, had := have[k]
		switch {
		case wanted && (!had || haveValue != wantValue):
			p.ops = append(p.ops, patchOp{Op: opAdd, Path: "/metadata/labels/" + jsonPointer(k), Value: wantValue})
		case !wanted && had:
			p.ops = append(p.ops, patchOp{Op: opRemove, Path: "/metadata/labels/" + jsonPointer(k)})
		}
	}
}

// claims sets the JobQuery owner references and the holders annotation. Owners that are not
// JobQueries (a user's own objects) keep their place. annotated says whether the object has an
// annotations map at all: the cache shows only dlcsync's annotations, so a caller that finds
// none there must ask the apiserver before a key can be added.
func (p *snapshotPatch) claims(owners, holders []metav1.OwnerReference, annotated bool) {
	s := p.existing
	if !ownersEqual(s.OwnerReferences, owners) {
		refs := slices.DeleteFunc(slices.Clone(s.OwnerReferences), isQueryRef)
		refs = append(refs, owners...)
		switch {
		case len(refs) > 0:
			p.ops = append(p.ops, patchOp{Op: opAdd, Path: "/metadata/ownerReferences", Value: refs})
		case len(s.OwnerReferences) > 0:
			p.ops = append(p.ops, patchOp{Op: opRemove, Path: "/metadata/ownerReferences"})
		}
	}
	have, had := s.Annotations[holdersAnnotation]
	want := formatHolders(holders)
	path := "/metadata/annotations/" + jsonPointer(holdersAnnotation)
	switch {
	case want != "" && !annotated:
		p.ops = append(p.ops, patchOp{Op: opAdd, Path: "/metadata/annotations", Value: map[string]string{holdersAnnotation: want}})
	case want != "" && (!had || have != want):
		p.ops = append(p.ops, patchOp{Op: opAdd, Path: path, Value: want})
	case want == "" && had:
		p.ops = append(p.ops, patchOp{Op: opRemove, Path: path})
	}
}

// status replaces the whole status.
func (p *snapshotPatch) status(status *dlcv1alpha1.DLCJobSnapshotStatus) {
	// Add, not replace: it also writes a status where the object has none (one made by
	// hand), and it replaces an existing one whole.
	p.ops = append(p.ops, patchOp{Op: opAdd, Path: "/status", Value: status})
	p.hash, p.revealed = status.ContentHash, len(status.Revealed)
}

// matches sets status.matchedBy, and status.matching to false when no query matches any more,
// leaving the rest of the status (the job data, which the cache does not hold) as it is.
func (p *snapshotPatch) matches(matchedBy []string) {
	st := &p.existing.Status
	switch {
	case len(matchedBy) > 0 && !slices.Equal(st.MatchedBy, matchedBy):
		p.ops = append(p.ops, patchOp{Op: opAdd, Path: "/status/matchedBy", Value: matchedBy})
	case len(matchedBy) == 0 && len(st.MatchedBy) > 0:
		p.ops = append(p.ops, patchOp{Op: opRemove, Path: "/status/matchedBy"})
	}
	if len(matchedBy) == 0 && st.Matching {
		p.ops = append(p.ops, patchOp{Op: opRemove, Path: "/status/matching"})
	}
}

// sendPatch writes the patch in one request and counts it in snapshotWritesTotal.
func (r *JobQueryReconciler) sendPatch(ctx context.Context, p *snapshotPatch) error {
	s := p.existing
	body, err := json.Marshal(p.ops)
	if err != nil {
		return fmt.Errorf("encoding the patch of snapshot %s/%s: %w", s.Namespace, s.Name, err)
	}
	obj := &dlcv1alpha1.DLCJobSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name}}
	if err := r.Patch(ctx, obj, client.RawPatch(types.JSONPatchType, body), client.FieldOwner(FieldOwner)); err != nil {
		return fmt.Errorf("patching snapshot %s/%s: %w", s.Namespace, s.Name, patchConflict(err))
	}
	snapshotWritesTotal.WithLabelValues("patch").Inc()
	if p.hash != "" && (obj.Status.ContentHash != p.hash || len(obj.Status.Revealed) != p.revealed) {
		// A CRD older than the status pruned what it did not know (status.revealed); the
		// next sync would write the snapshot again, and the redaction controller not see it.
		return statusDropped(obj, p.hash)
	}
	return nil
}

// patchConflict turns the apiserver's refusal to apply the patch's operations into the conflict
// it is. The apiserver applies a JSON patch before it compares the resourceVersion, so a
// patch built from a cached copy that another writer has since changed (a label it removes is
// already gone) fails with 422 and no kind, not 409; an object the CRD's schema refuses (a job
// problem) also answers 422, but names its kind and fields.
func patchConflict(err error) error {
	var status apierrors.APIStatus
	if !apierrors.IsInvalid(err) || !errors.As(err, &status) {
		return err
	}
	if d := status.Status().Details; d != nil && d.Kind != "" {
		return err
	}
	return apierrors.NewConflict(dlcv1alpha1.GroupVersion.WithResource("dlcjobsnapshots").GroupResource(), "",
		fmt.Errorf("the patch no longer applies to the stored object: %s", status.Status().Message))
}

// statusDropped is the error of a write whose answer lacks the status it sent: the apiserver
// serves the snapshot CRD of an earlier release, with the status subresource (which drops the
// status of a create and keeps the old one on a patch: the answer's content hash is not the one
// sent), or without a field of this release's status (pruned: the hash came back, status.revealed
// did not). Without it every sync would write every snapshot again, and new snapshots would have
// no phase.
func statusDropped(obj *dlcv1alpha1.DLCJobSnapshot, wantHash string) error {
	cause := "still has the status subresource of an earlier release"
	if obj.Status.ContentHash == wantHash {
		cause = "is that of an earlier release, without status.revealed"
	}
	return &reasonError{reason: dlcv1alpha1.ReasonSnapshotCRDOutdated, retryable: true,
		msg: fmt.Sprintf("the apiserver dropped the status, or part of it, written to snapshot %s/%s: the DLCJobSnapshot CRD %s; "+
			"upgrade it (helm upgrade with chart 0.2.0 or later, which upgrades the CRDs, or kubectl apply --server-side --force-conflicts "+
			"-f with this release's install.yaml)", obj.Namespace, obj.Name, cause)}
}

// patchClaims adds the claims to the patch. The cache shows only dlcsync's annotations, so
// when it shows none and a holder is to be added, the snapshot's metadata is read uncached to
// learn whether it has an annotations map at all (rare: snapshots carry dlcsync's endpoint
// annotation from their creation).
func (r *JobQueryReconciler) patchClaims(ctx context.Context, p *snapshotPatch, owners, holders []metav1.OwnerReference) error {
	s, annotated := p.existing, true
	if len(s.Annotations) == 0 && len(holders) > 0 {
		meta := &metav1.PartialObjectMetadata{}
		meta.SetGroupVersionKind(dlcv1alpha1.GroupVersion.WithKind("DLCJobSnapshot"))
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(s), meta); err != nil {
			return fmt.Errorf("reading the metadata of snapshot %s/%s: %w", s.Namespace, s.Name, err)
		}
		annotated = len(meta.Annotations) > 0
	}
	p.claims(owners, holders, annotated)
	return nil
}

// createSnapshot creates a new snapshot whole: labels, annotations, owners, spec and status in
// one request. It fails with AlreadyExists when the cache has not yet seen another
// query's snapshot; syncSnapshot then reads that one from the apiserver and joins it.
func (r *JobQueryReconciler) createSnapshot(ctx context.Context, namespace string,
	want *desiredSnapshot) (*dlcv1alpha1.DLCJobSnapshot, error) {
	annotations := map[string]string{dlcv1alpha1.AnnotationEndpoint: want.endpoint}
	if len(want.holders) > 0 {
		annotations[holdersAnnotation] = formatHolders(want.holders)
	}
	obj := &dlcv1alpha1.DLCJobSnapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: want.name, Labels: want.labels, OwnerReferences: want.owners,
			Annotations: annotations},
		Spec:   want.spec,
		Status: want.status,
	}
	if err := r.Create(ctx, obj, client.FieldOwner(FieldOwner)); err != nil {
		return nil, fmt.Errorf("creating snapshot %s/%s: %w", namespace, want.name, err)
	}
	snapshotWritesTotal.WithLabelValues("create").Inc()
	if obj.Status.ContentHash != want.status.ContentHash || len(obj.Status.Revealed) != len(want.status.Revealed) {
		return nil, statusDropped(obj, want.status.ContentHash)
	}
	return obj, nil
}

// patchSnapshot brings an existing snapshot to want in one patch: labels and claims when the
// object is not current, the whole status when the status is not.
func (r *JobQueryReconciler) patchSnapshot(ctx context.Context, existing *dlcv1alpha1.DLCJobSnapshot, want *desiredSnapshot,
	objectCurrent, statusCurrent bool) error {
	p := newSnapshotPatch(existing)
	if !objectCurrent {
		p.labels(want.labels)
		if err := r.patchClaims(ctx, p, want.owners, want.holders); err != nil {
			return err
		}
		if want.moveEndpoint {
			p.ops = append(p.ops, patchOp{Op: opAdd, Path: "/metadata/annotations/" + jsonPointer(dlcv1alpha1.AnnotationEndpoint),
				Value: want.endpoint})
		}
	}
	if !statusCurrent {
		p.status(&want.status)
	}
	return r.sendPatch(ctx, p)
}

// ownLabels keeps the labels dlcsync manages.
func ownLabels(labels map[string]string) map[string]string {
	out := map[string]string{}
	for _, k := range snapshot.LabelKeys {
		if v, ok := labels[k]; ok {
			out[k] = v
		}
	}
	return out
}

func ownLabelsEqual(have, want map[string]string) bool { return maps.Equal(ownLabels(have), want) }
