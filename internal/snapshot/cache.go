package snapshot

import (
	"slices"
	"strconv"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
)

// ForCache is what the manager's cache keeps of a snapshot: the fields the reconciler decides
// with, and nothing else.
//
// Kept: identity (name, namespace, UID, resourceVersion, timestamps), every label, dlcsync's own
// annotations, owner references, finalizers, the spec, and of the status what a sync compares
// or carries over: phase (events, job counts), createdAt (incremental listing), matching,
// matchedBy, contentHash (an unchanged job is recognised by it), revealed (what a snapshot
// reveals, which the redaction controller narrows), observedAt, the conditions' type,
// status, reason and lastTransitionTime (a write keeps the time of a condition whose status
// stays), the transitions (a write carries them over; CloudEvents read them) and finishedAt (whether a job first
// seen ended had ended before a CloudEvents sink existed).
// Dropped: managed fields, the job data and the status' summary fields, which a changed job
// rewrites whole, the conditions' messages (a failed job's carries its reasonMessage, up to 32 KiB:
// kept, 10,000 failed jobs would hold hundreds of MiB), and other tools' annotations (kubectl's last-applied-configuration can hold a
// whole object). The few paths that rewrite a status from the existing one read the snapshot
// uncached.
//
// Strings that repeat across snapshots (namespace, owner references, phases, query names,
// condition reasons) are interned, and snapshots with the same labels (or annotations) share one
// map: a decoded object holds its own copy of each, which at 100,000 snapshots is most of the
// cache. Sharing is safe because cached objects are never modified: the cache hands out deep
// copies.
//
// The trade-off is that a reader of the manager's cache sees these fields only; nothing
// but the JobQuery reconciler reads it.
func ForCache(s *dlcv1alpha1.DLCJobSnapshot) *dlcv1alpha1.DLCJobSnapshot {
	out := &dlcv1alpha1.DLCJobSnapshot{
		TypeMeta: metav1.TypeMeta{APIVersion: intern(s.APIVersion), Kind: intern(s.Kind)},
		ObjectMeta: metav1.ObjectMeta{
			Name: s.Name, Namespace: intern(s.Namespace), UID: s.UID, ResourceVersion: s.ResourceVersion,
			Generation: s.Generation, CreationTimestamp: s.CreationTimestamp, DeletionTimestamp: s.DeletionTimestamp,
			Labels: sharedMap(s.Labels, func(string) bool { return true }), Annotations: sharedMap(s.Annotations, ownAnnotation),
			OwnerReferences: internOwners(s.OwnerReferences), Finalizers: internAll(s.Finalizers),
		},
		Spec: dlcv1alpha1.DLCJobSnapshotSpec{JobID: s.Spec.JobID, RegionID: intern(s.Spec.RegionID)},
	}
	st := &s.Status
	out.Status = dlcv1alpha1.DLCJobSnapshotStatus{
		Phase: intern(st.Phase), CreatedAt: st.CreatedAt, FinishedAt: st.FinishedAt, ObservedAt: st.ObservedAt,
		MatchedBy: internAll(st.MatchedBy), Matching: st.Matching, ContentHash: st.ContentHash,
		Conditions: internConditions(st.Conditions),
		Revealed: internEach(st.Revealed, func(g dlcv1alpha1.RevealGroup) dlcv1alpha1.RevealGroup {
			return dlcv1alpha1.RevealGroup(intern(string(g)))
		}),
	}
	if tr := st.Transition; tr != nil {
		out.Status.Transition = &dlcv1alpha1.PhaseTransition{Phase: intern(tr.Phase), From: intern(tr.From), SeenAt: tr.SeenAt, Key: tr.Key}
	}
	if len(st.PreviousTransitions) > 0 {
		out.Status.PreviousTransitions = make([]dlcv1alpha1.PhaseTransition, len(st.PreviousTransitions))
		for i, tr := range st.PreviousTransitions {
			out.Status.PreviousTransitions[i] = dlcv1alpha1.PhaseTransition{Phase: intern(tr.Phase), From: intern(tr.From),
				SeenAt: tr.SeenAt, Key: tr.Key}
		}
	}
	return out
}

// ownAnnotation reports an annotation dlcsync sets or reads on snapshots.
func ownAnnotation(key string) bool {
	return strings.HasPrefix(key, dlcv1alpha1.GroupVersion.Group+"/")
}

// interned holds the canonical copy of each interned string, up to maxInternedBytes of them; a
// string beyond that, or longer than maxInternedLen, is kept as it is. Unique.Make would drop
// a canonical copy once no handle refers to it, so strings decoded after the next GC would get
// copies of their own.
var interned struct {
	sync.Mutex
	byValue map[string]string
	bytes   int
}

const (
	// maxInternedLen is the longest string interned: the strings that repeat across snapshots
	// (namespaces, phases, reasons, query names, label values) are short; a long one is most likely
	// one job's own text, which interning would only keep alive.
	maxInternedLen = 256
	// maxInternedBytes bounds the bytes interned, counted with a map entry's overhead, so the table
	// stays within a few MiB whatever the jobs hold, and never needs to shrink.
	maxInternedBytes = 4 << 20
	// internEntryOverhead is roughly what a map entry costs besides the string's bytes.
	internEntryOverhead = 48
)

// intern returns the canonical copy of s.
func intern(s string) string {
	if s == "" || len(s) > maxInternedLen {
		return s
	}
	interned.Lock()
	defer interned.Unlock()
	if c, ok := interned.byValue[s]; ok {
		return c
	}
	if interned.byValue == nil {
		interned.byValue = map[string]string{}
	}
	if cost := len(s) + internEntryOverhead; interned.bytes+cost <= maxInternedBytes {
		interned.byValue[s] = s
		interned.bytes += cost
	}
	return s
}

// internEach returns a copy of in with the strings of every item interned by internItem.
func internEach[T any](in []T, internItem func(T) T) []T {
	if in == nil {
		return nil
	}
	out := make([]T, len(in))
	for i, item := range in {
		out[i] = internItem(item)
	}
	return out
}

func internAll(in []string) []string { return internEach(in, intern) }

// sharedMaps holds one map per distinct set of labels (or annotations) of cached snapshots, up
// to maxSharedMaps sets; a set beyond that gets a map of its own.
var sharedMaps struct {
	sync.Mutex
	byKey map[string]map[string]string
}

// maxSharedMaps bounds sharedMaps (sets are few: they combine phases, job types, workspaces,
// users and regions; a map is a few hundred bytes).
const maxSharedMaps = 8192

// sharedMap returns the entries of in that keep accepts, as a map shared by every caller with
// the same entries. It must not be modified.
func sharedMap(in map[string]string, keep func(key string) bool) map[string]string {
	keys := make([]string, 0, len(in))
	for k := range in {
		if keep(k) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	// Each key and value is prefixed by its length, so no two different sets share an
	// id whatever bytes their values hold (annotation values are not validated).
	var id strings.Builder
	for _, k := range keys {
		for _, part := range []string{k, in[k]} {
			id.WriteString(strconv.Itoa(len(part)))
			id.WriteByte(':')
			id.WriteString(part)
		}
	}
	sharedMaps.Lock()
	defer sharedMaps.Unlock()
	if m, ok := sharedMaps.byKey[id.String()]; ok {
		return m
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		out[intern(k)] = intern(in[k])
	}
	if sharedMaps.byKey == nil {
		sharedMaps.byKey = map[string]map[string]string{}
	}
	if len(sharedMaps.byKey) < maxSharedMaps {
		sharedMaps.byKey[id.String()] = out
	}
	return out
}

func internOwners(in []metav1.OwnerReference) []metav1.OwnerReference {
	return internEach(in, func(r metav1.OwnerReference) metav1.OwnerReference {
		r.APIVersion, r.Kind, r.Name = intern(r.APIVersion), intern(r.Kind), intern(r.Name)
		return r
	})
}

// internConditions keeps of each condition what a write carries over (snapshot.Status sets the
// reason and message of every job condition anew, and keeps lastTransitionTime while the status
// stays): no message.
func internConditions(in []metav1.Condition) []metav1.Condition {
	return internEach(in, func(c metav1.Condition) metav1.Condition {
		c.Type, c.Status, c.Reason, c.Message = intern(c.Type), metav1.ConditionStatus(intern(string(c.Status))), intern(c.Reason), ""
		return c
	})
}
