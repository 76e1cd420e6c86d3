package controllers

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	dlcv1alpha1 "github.com/dlcsync/dlcsync/api/v1alpha1"
	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/snapshot"
)

// access is what a JobQuery may use for its requests, decided before any request is sent.
type access struct {
	// secret names the credentials Secret, whose data the sync reads (readCredentials); nil for
	// the operator's ambient credentials.
	secret *dlcv1alpha1.SecretCredentials
	// static holds the Secret's AccessKey once read.
	static *dlc.StaticCredentials
	// roleArn is the RAM role assumed with the operator's own credentials (ambient.roleArn).
	roleArn string
	// version changes when the credentials do (the Secret's resourceVersion, "ambient", or
	// "role:" and the role's ARN).
	version string
}

// resolveAccess checks what the administrator allows (endpoint, ambient credentials, revealed
// fields) and that the credentials Secret exists and is labelled for dlcsync. It runs at every
// reconcile, due or not, so it reads only the cache; the Secret's data is read when a sync runs.
// A refusal is a stalledError naming what to change; any other error is a transient failure to
// read Kubernetes.
func (r *JobQueryReconciler) resolveAccess(ctx context.Context, q *dlcv1alpha1.JobQuery) (access, error) {
	// The endpoint is checked before anything else, so that a refused endpoint never
	// receives a request, whatever the credentials.
	if err := r.Endpoints.Check(q.Spec.Endpoint); err != nil {
		return access{}, stalledError(dlcv1alpha1.ReasonEndpointNotAllowed, "%v; ask the operator's administrator to allow it", err)
	}
	if wantsReveal(&q.Spec.Snapshot) && !r.RevealNamespaces[q.Namespace] {
		return access{}, stalledError(dlcv1alpha1.ReasonRevealNotAllowed,
			"spec.snapshot asks to mirror redacted fields, which namespace %s may not do: snapshots are readable by the view role; "+
				"remove the option or ask the operator's administrator to add the namespace to --reveal-namespaces", q.Namespace)
	}
	creds := q.Spec.Credentials
	if creds.Ambient != nil && creds.Ambient.RoleArn != "" {
		arn := creds.Ambient.RoleArn
		if !r.AssumableRoles.Allows(q.Namespace, arn) {
			return access{}, stalledError(dlcv1alpha1.ReasonRoleNotAllowed,
				"role %s may not be assumed in namespace %s; ask the operator's administrator to allow it with --assumable-roles "+
					"(e.g. %s=%s; chart value assumableRoles)", arn, q.Namespace, q.Namespace, arn)
		}
		return access{roleArn: arn, version: roleVersionPrefix + arn}, nil
	}
	if creds.Ambient != nil {
		if !r.AmbientNamespaces[q.Namespace] {
			return access{}, stalledError(dlcv1alpha1.ReasonAmbientCredentialsNotAllowed,
				"ambient credentials are not allowed in namespace %s; use credentials.secretRef or ask the "+
					"operator's administrator to add the namespace to --ambient-credentials-namespaces", q.Namespace)
		}
		return access{version: ambientVersion}, nil
	}
	if creds.SecretRef == nil {
		return access{}, stalledError(dlcv1alpha1.ReasonInvalidSecret, "credentials name neither a Secret nor ambient")
	}
	if _, err := secretKeys(creds.SecretRef); err != nil {
		return access{}, err
	}
	version, err := r.secretVersion(ctx, q.Namespace, creds.SecretRef.Name)
	return access{secret: creds.SecretRef, version: version}, err
}

// readCredentials reads the AccessKey of the query's credentials Secret, when it has one.
func (r *JobQueryReconciler) readCredentials(ctx context.Context, sc *syncScope) error {
	if sc.access.secret == nil {
		return nil
	}
	static, version, err := r.secretCredentials(ctx, sc.query.Namespace, sc.access.secret)
	sc.access.static = static
	if err == nil {
		sc.query.Status.ObservedCredentialsVersion = version
	}
	return err
}

// secretVersion returns the resourceVersion of a credentials Secret of the query's namespace,
// refusing one that is missing or not labelled dlc.dlcsync.io/credentials=true. It looks at
// metadata only: first in the manager's cache, which holds labelled Secrets only, then, on a
// miss, at the apiserver, to tell a missing Secret from an unlabelled one in the condition.
func (r *JobQueryReconciler) secretVersion(ctx context.Context, namespace, name string) (string, error) {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	err := r.Get(ctx, key, meta)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, key, meta)
	}
	switch {
	case apierrors.IsNotFound(err):
		return "", stalledError(dlcv1alpha1.ReasonSecretNotFound, "Secret %s not found", key)
	case err != nil:
		return "", kubernetesError(fmt.Errorf("reading the metadata of Secret %s: %w", key, err))
	case meta.Labels[dlcv1alpha1.LabelCredentials] != "true":
		return "", stalledError(dlcv1alpha1.ReasonSecretNotLabelled,
			"Secret %s is not labelled for dlcsync; label it with `kubectl label secret -n %s %s %s=true` to let JobQueries use it",
			key, namespace, name, dlcv1alpha1.LabelCredentials)
	}
	return meta.ResourceVersion, nil
}

// secretCredentials reads the AccessKey of a labelled credentials Secret, uncached (the manager
// never caches Secret data), and the version it read.
func (r *JobQueryReconciler) secretCredentials(ctx context.Context, namespace string,
	ref *dlcv1alpha1.SecretCredentials) (*dlc.StaticCredentials, string, error) {
	key := types.NamespacedName{Namespace: namespace, Name: ref.Name}
	var secret corev1.Secret
	if err := r.APIReader.Get(ctx, key, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, "", stalledError(dlcv1alpha1.ReasonSecretNotFound, "Secret %s not found", key)
		}
		return nil, "", kubernetesError(fmt.Errorf("reading Secret %s: %w", key, err))
	}
	if secret.Labels[dlcv1alpha1.LabelCredentials] != "true" {
		// The label was removed since the metadata was read.
		return nil, "", stalledError(dlcv1alpha1.ReasonSecretNotLabelled, "Secret %s is not labelled for dlcsync", key)
	}
	keys, err := secretKeys(ref)
	if err != nil {
		return nil, "", err
	}
	static := &dlc.StaticCredentials{
		AccessKeyID:     string(secret.Data[keys.id]),
		AccessKeySecret: string(secret.Data[keys.secret]),
		SecurityToken:   string(secret.Data[keys.token]),
	}
	var missing []string
	if static.AccessKeyID == "" {
		missing = append(missing, keys.id)
	}
	if static.AccessKeySecret == "" {
		missing = append(missing, keys.secret)
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, "", stalledError(dlcv1alpha1.ReasonInvalidSecret, "Secret %s has no value for key(s) %v", key, missing)
	}
	return static, secret.ResourceVersion, nil
}

// credentialKeys are the keys of a credentials Secret that hold each value, defaults applied.
type credentialKeys struct{ id, secret, token string }

// secretKeys returns the Secret keys a query names for the AccessKey ID, the AccessKey secret
// and the STS token (defaults as the CRD's), refusing names that coincide.
// Admission refuses coinciding names too, but a JobQuery stored before that rule, or under
// a CRD not yet upgraded, still has them; one key in two roles would send the AccessKey secret in
// clear as the x-acs-security-token header or as the AccessKey ID.
// defaultSecretKey is the key of the AccessKey secret in a Secret that names no keys.
const defaultSecretKey = "accessKeySecret"

func secretKeys(ref *dlcv1alpha1.SecretCredentials) (credentialKeys, error) {
	keyOr := func(key, def string) string {
		if key == "" {
			return def
		}
		return key
	}
	keys := credentialKeys{id: keyOr(ref.AccessKeyIDKey, "accessKeyId"), secret: keyOr(ref.AccessKeySecretKey, defaultSecretKey),
		token: keyOr(ref.SecurityTokenKey, "securityToken")}
	var clashes []string
	if keys.id == keys.secret {
		clashes = append(clashes, fmt.Sprintf("accessKeyIdKey and accessKeySecretKey both name %q", keys.id))
	}
	if keys.secret == keys.token {
		clashes = append(clashes, fmt.Sprintf("accessKeySecretKey and securityTokenKey both name %q", keys.secret))
	}
	if keys.id == keys.token && keys.id != keys.secret {
		clashes = append(clashes, fmt.Sprintf("accessKeyIdKey and securityTokenKey both name %q", keys.id))
	}
	// Distinct names are not enough when the author swaps roles (accessKeyIdKey:
	// accessKeySecret with accessKeySecretKey: accessKeyId): the key that conventionally holds
	// the AccessKey secret is never read for a role that is sent as a header.
	for role, key := range map[string]string{"accessKeyIdKey": keys.id, "securityTokenKey": keys.token} {
		if key == defaultSecretKey && keys.secret != defaultSecretKey {
			clashes = append(clashes, fmt.Sprintf("%s names %q, the conventional key of the AccessKey secret", role, key))
		}
	}
	if len(clashes) > 0 {
		return credentialKeys{}, stalledError(dlcv1alpha1.ReasonSecretKeysNotDistinct,
			"spec.credentials.secretRef: %s; accessKeyIdKey, accessKeySecretKey and securityTokenKey must name different keys "+
				"of Secret %s, or a value would be sent where another belongs (the AccessKey secret as the security token or "+
				"the AccessKey ID); the Secret was not read and nothing was sent",
			strings.Join(clashes, ", "), ref.Name)
	}
	return keys, nil
}

// wantsReveal reports whether a query asks for fields that are redacted by default.
func wantsReveal(p *dlcv1alpha1.SnapshotPolicy) bool {
	return len(snapshot.OptionsFor(*p).Reveal) > 0
}
