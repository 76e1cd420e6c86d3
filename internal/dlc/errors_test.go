package dlc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"testing"
)

func TestCredentialProviderFailuresAreClassifiedByWhatFailed(t *testing.T) {
	refused := &url.Error{Op: "Post", URL: "https://sts.aliyuncs.com", Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}
	cases := []struct {
		name string
		err  error
		kind Kind
		code string
	}{
		{"the token service is unreachable", &credentialProviderError{refused}, KindNetwork, ""},
		{"a wrapped net error", &credentialProviderError{fmt.Errorf("refresh: %w", &net.DNSError{Err: "no such host", IsTimeout: true})}, KindNetwork, ""},
		{"the metadata server answers 503", &credentialProviderError{errors.New("refresh Ecs sts token err, httpStatus: 503, message = busy")}, KindServer, ""},
		{"the OAuth endpoint answers 502", &credentialProviderError{errors.New("failed to refresh token, status code: 502")}, KindServer, ""},
		{"STS throttles", &credentialProviderError{errors.New(`refresh session token failed: {"Code":"Throttling.User","Message":"x"}`)}, KindThrottled, ""},
		{"STS fails", &credentialProviderError{errors.New(`refresh session token failed: {"Code":"InternalError"}`)}, KindServer, ""},
		{"STS refuses the role", &credentialProviderError{errors.New(`refresh session token failed: {"Code":"NoPermission"}`)}, KindUnauthorized, "CredentialsUnavailable"},
		{"the metadata server has no role", &credentialProviderError{errors.New("get role name failed: http://100.100.100.200 404")}, KindUnauthorized, "CredentialsUnavailable"},
		{"the metadata server answers 404", &credentialProviderError{errors.New("refresh Ecs sts token err, httpStatus: 404, message = x")}, KindUnauthorized, "CredentialsUnavailable"},
		{"no provider is configured", &credentialProviderError{errors.New("unable to get credentials from any of the providers in the chain: env: missing")}, KindUnauthorized, "CredentialsUnavailable"},
		{"the caller gave up", &credentialProviderError{context.Canceled}, KindCanceled, ""},
		// Before, any text holding "sts" (requests, lists, exists) was called Unauthorized.
		{"not a credential failure: requests", errors.New("too many requests in flight"), KindNetwork, ""},
		{"not a credential failure: exists", errors.New("the file exists"), KindNetwork, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := classify(tc.err, 0, 0, scrubber())
			if e.Kind != tc.kind || e.Code != tc.code {
				t.Fatalf("kind %s code %q, want %s %q (%v)", e.Kind, e.Code, tc.kind, tc.code, e)
			}
			if e.Retryable() != (tc.kind == KindNetwork || tc.kind == KindServer || tc.kind == KindThrottled) {
				t.Fatalf("retryable %v for %s", e.Retryable(), tc.kind)
			}
		})
	}
}

// The ambient chain with nothing configured fails before a request is sent, as a refusal.
func TestAnEmptyCredentialChainIsUnauthorized(t *testing.T) {
	for _, env := range []string{"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_ROLE_ARN",
		"ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "ALIBABA_CLOUD_OIDC_TOKEN_FILE", "ALIBABA_CLOUD_CREDENTIALS_FILE"} {
		t.Setenv(env, "")
	}
	t.Setenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")
	t.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
	t.Setenv("HOME", t.TempDir())
	c, err := NewClient(Config{RegionID: "cn-hangzhou", Endpoint: "http://127.0.0.1:1", Retry: RetryPolicy{MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListJobs(context.Background(), &ListJobsRequest{})
	if KindOf(err) != KindUnauthorized || !errors.As(err, new(*Error)) {
		t.Fatalf("err %v (%s); want Unauthorized", err, KindOf(err))
	}
}

func TestIsThrottlingCode(t *testing.T) {
	for code, want := range map[string]bool{"Throttling": true, "Throttling.User": true, "Throttling.Api": true, "Throttled": true,
		"ThrottlingX": false, "": false, "InternalError": false, "throttling": false} {
		if got := IsThrottlingCode(code); got != want {
			t.Errorf("IsThrottlingCode(%q) = %v", code, got)
		}
	}
}

// retryable reports whether err is a classified error worth retrying.
func retryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable()
}
