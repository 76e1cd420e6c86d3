// Package v1alpha1 contains the API types of the dlc.dlcsync.io group: JobQuery, which says which
// PAI-DLC jobs to mirror into a namespace, and DLCJobSnapshot, one mirrored job.
// +kubebuilder:object:generate=true
// +kubebuilder:ac:generate=true
// +groupName=dlc.dlcsync.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every type in this package.
	GroupVersion = schema.GroupVersion{Group: "dlc.dlcsync.io", Version: "v1alpha1"}

	// SchemeGroupVersion is GroupVersion under the name generated apply configurations use.
	SchemeGroupVersion = GroupVersion

	// SchemeBuilder registers the types of this package with a runtime.Scheme. It is
	// apimachinery's builder rather than controller-runtime's (deprecated there), so importing
	// this package pulls in no controller-runtime.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &JobQuery{}, &JobQueryList{}, &DLCJobSnapshot{}, &DLCJobSnapshotList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
