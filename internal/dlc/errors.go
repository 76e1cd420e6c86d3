package dlc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	"github.com/alibabacloud-go/tea/tea"
	credential "github.com/aliyun/credentials-go/credentials"
)

// Kind classifies a ListJobs failure by what the caller should do about it.
type Kind string

const (
	// KindThrottled: the API refused the call for flow control; retry later.
	KindThrottled Kind = "Throttled"
	// KindServer: the API failed (5xx); retry.
	KindServer Kind = "ServerError"
	// KindNetwork: the endpoint could not be reached or did not answer in time; retry.
	KindNetwork Kind = "EndpointUnreachable"
	// KindBadResponse: the answer was not a ListJobs body (truncated or invalid JSON); retry.
	KindBadResponse Kind = "BadResponse"
	// KindUnauthorized: the credentials are wrong, expired or unusable; fix them first.
	KindUnauthorized Kind = "Unauthorized"
	// KindForbidden: the identity lacks paidlc:ListJobs; fix the RAM policy first.
	KindForbidden Kind = "Forbidden"
	// KindInvalidRequest: a parameter was refused; fix the filter first.
	KindInvalidRequest Kind = "InvalidRequest"
	// KindCircuitOpen: calls for this credential are paused after repeated auth failures.
	KindCircuitOpen Kind = "CircuitOpen"
	// KindCanceled: the caller's context ended.
	KindCanceled Kind = "Canceled"
)

// Error is a classified ListJobs failure. Its text never contains a credential: messages the
// server echoes (a SignatureDoesNotMatch message repeats the string to sign, which holds the
// security token) are scrubbed of every secret the client knows.
type Error struct {
	Kind       Kind
	Code       string
	HTTPStatus int
	RequestID  string
	Message    string
	// RetryAfter is the wait the server asked for (Retry-After header or the TimeLeft of a
	// throttling answer); zero when it asked for none.
	RetryAfter time.Duration
	// Attempts is how many HTTP requests the failed call sent.
	Attempts int
	// cause is kept for errors.Is (context errors, net errors); never a darabonba error, whose
	// text may hold the request's headers.
	cause error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("ListJobs failed: ")
	if e.Code != "" {
		b.WriteString(e.Code)
	} else {
		b.WriteString(string(e.Kind))
	}
	var details []string
	if e.HTTPStatus != 0 {
		details = append(details, fmt.Sprintf("HTTP %d", e.HTTPStatus))
	}
	if e.RequestID != "" {
		details = append(details, "request "+e.RequestID)
	}
	if len(details) > 0 {
		b.WriteString(" (" + strings.Join(details, ", ") + ")")
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.cause }

// codeSignatureNonceUsed is the one unauthorized code that Retryable retries.
const codeSignatureNonceUsed = "SignatureNonceUsed"

// Retryable reports whether the same call may succeed later without any change by the user.
func (e *Error) Retryable() bool {
	switch e.Kind {
	case KindThrottled, KindServer, KindNetwork, KindBadResponse:
		return true
	}
	// A replayed nonce is fixed by the next attempt, which signs with a fresh nonce.
	return e.Code == codeSignatureNonceUsed
}

// AuthFailure reports whether the failure is the credentials' or the RAM policy's fault, which
// the circuit breaker counts.
func (e *Error) AuthFailure() bool { return e.Kind == KindUnauthorized || e.Kind == KindForbidden }

// KindOf returns the Kind of err, or "" when err is not an *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

// kindForCode classifies an API error code; ok is false for codes we do not know.
func kindForCode(code string) (Kind, bool) {
	switch {
	case IsThrottlingCode(code) && code != string(KindThrottled):
		return KindThrottled, true
	case strings.HasPrefix(code, "InvalidAccessKeyId"),
		code == "SignatureDoesNotMatch",
		code == "IncompleteSignature",
		strings.HasPrefix(code, "InvalidSecurityToken"),
		strings.HasPrefix(code, "InvalidTimeStamp"),
		code == "InvalidCredentials",
		code == "MissingSecurityToken",
		code == codeSignatureNonceUsed:
		return KindUnauthorized, true
	case strings.HasPrefix(code, "Forbidden"), code == "NoPermission":
		return KindForbidden, true
	case strings.HasPrefix(code, "InvalidParameter"), strings.HasPrefix(code, "MissingParameter"),
		strings.HasPrefix(code, "InvalidParam"):
		return KindInvalidRequest, true
	case code == "InternalError", code == "InternalFailure", code == "ServiceUnavailable",
		code == "ServiceUnavailableTemporary":
		return KindServer, true
	}
	return "", false
}

// kindForStatus classifies by HTTP status when the code is unknown.
func kindForStatus(status int) Kind {
	switch {
	case status == 429:
		return KindThrottled
	case status == 401:
		return KindUnauthorized
	case status == 403:
		return KindForbidden
	case status >= 500:
		return KindServer
	case status >= 400:
		return KindInvalidRequest
	}
	return KindBadResponse
}

// classify turns whatever darabonba or the transport returned into an *Error, scrubbing secrets.
// status is the HTTP status the transport saw (0 when no response arrived).
func classify(err error, status int, retryAfter time.Duration, scrub func(string) string) *Error {
	out := &Error{HTTPStatus: status, RetryAfter: retryAfter}
	var (
		throttling *openapi.ThrottlingError
		clientErr  *openapi.ClientError
		serverErr  *openapi.ServerError
		sdkErr     *tea.SDKError
		urlErr     *url.Error
		netErr     net.Error
	)
	var credErr *credentialProviderError
	var redirect *redirectError
	switch {
	case errors.As(err, &redirect):
		// An answer, but not a ListJobs page: a bad answer like any other (and the condition says
		// where it pointed).
		out.Kind, out.Message = KindBadResponse, redirect.Error()
	case errors.As(err, &credErr) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded):
		out.Message = err.Error()
		out.Kind, out.Code = classifyCredentialFailure(credErr.err)
		out.HTTPStatus = 0
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		out.Kind, out.Message, out.cause = KindCanceled, err.Error(), contextCause(err)
		// A deadline inside the HTTP client (not the caller's) is a network timeout; the caller
		// tells them apart by checking its own context.
	case errors.As(err, &throttling):
		out.Code, out.RequestID = tea.StringValue(throttling.Code), tea.StringValue(throttling.RequestId)
		out.Message = apiMessage(throttling.Data, tea.StringValue(throttling.Message))
		out.HTTPStatus = orStatus(throttling.StatusCode, status)
		if ms := tea.Int64Value(throttling.RetryAfter); ms > 0 && time.Duration(ms)*time.Millisecond > out.RetryAfter {
			out.RetryAfter = time.Duration(ms) * time.Millisecond
		}
		out.Kind = KindThrottled
	case errors.As(err, &clientErr):
		out.Code, out.RequestID = tea.StringValue(clientErr.Code), tea.StringValue(clientErr.RequestId)
		out.Message = apiMessage(clientErr.Data, tea.StringValue(clientErr.Message))
		out.HTTPStatus = orStatus(clientErr.StatusCode, status)
	case errors.As(err, &serverErr):
		out.Code, out.RequestID = tea.StringValue(serverErr.Code), tea.StringValue(serverErr.RequestId)
		out.Message = apiMessage(serverErr.Data, tea.StringValue(serverErr.Message))
		out.HTTPStatus = orStatus(serverErr.StatusCode, status)
	case errors.As(err, &sdkErr):
		out.Code = tea.StringValue(sdkErr.Code)
		out.Message = tea.StringValue(sdkErr.Message)
		out.HTTPStatus = orStatus(sdkErr.StatusCode, status)
	case errors.As(err, &urlErr), errors.As(err, &netErr):
		out.Kind, out.Message, out.cause = KindNetwork, err.Error(), err
	default:
		// A non-JSON error body or a broken 200 body (classified by status below), or a failure
		// before any answer.
		out.Message = err.Error()
		if status == 0 {
			out.Kind = KindNetwork
		}
	}
	if out.Kind == "" {
		if k, ok := kindForCode(out.Code); ok {
			out.Kind = k
		} else {
			out.Kind = kindForStatus(out.HTTPStatus)
		}
	}
	out.Message = scrub(out.Message)
	out.Code = scrub(out.Code)
	out.RequestID = scrub(out.RequestID)
	return out
}

// contextCause returns the context error inside err, so errors.Is works on the classified error.
func contextCause(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return context.Canceled
}

func orStatus(p *int, fallback int) int {
	if p != nil && *p != 0 {
		return *p
	}
	return fallback
}

// apiMessage returns the server's own Message field when the body had one; darabonba's text
// prefixes it with the status and suffixes the request ID, which Error() prints separately.
func apiMessage(data map[string]interface{}, fallback string) string {
	for _, key := range []string{"Message", "message"} {
		if m, ok := data[key].(string); ok && m != "" {
			return m
		}
	}
	return fallback
}

// credentialProviderError marks a failure to obtain credentials (no ListJobs request was
// sent). The client wraps its credential provider so that such failures are known by type,
// not guessed from their text.
type credentialProviderError struct{ err error }

func (e *credentialProviderError) Error() string { return "obtaining credentials: " + e.err.Error() }
func (e *credentialProviderError) Unwrap() error { return e.err }

// guardedCredential is a credentials-go Credential whose failures are credentialProviderErrors.
type guardedCredential struct{ credential.Credential }

func (g guardedCredential) GetCredential() (*credential.CredentialModel, error) {
	m, err := g.Credential.GetCredential()
	if err != nil {
		return nil, &credentialProviderError{err: err}
	}
	return m, nil
}

// statusInText finds the HTTP status credentials-go writes into its refresh errors
// ("httpStatus: 503", "status code: 503"); it keeps no typed status.
var statusInText = regexp.MustCompile(`(?i)(?:httpStatus|status code)\s*[:=]?\s*(\d{3})`)

// classifyCredentialFailure sorts a credential provider failure: the token service or metadata
// server unreachable or failing (a net error, a 5xx, a throttling or server error code in an
// STS answer) is retryable; anything else (a 4xx, a refused role, missing configuration) is a
// real refusal the user must fix.
func classifyCredentialFailure(err error) (Kind, string) {
	var netErr net.Error
	var urlErr *url.Error
	if errors.As(err, &netErr) || errors.As(err, &urlErr) {
		return KindNetwork, ""
	}
	msg := err.Error()
	if m := statusInText.FindStringSubmatch(msg); m != nil {
		status, _ := strconv.Atoi(m[1])
		switch k := kindForStatus(status); k {
		case KindServer, KindThrottled:
			return k, ""
		}
		return KindUnauthorized, "CredentialsUnavailable"
	}
	// An STS answer quoted whole after "refresh session token failed: ".
	if i := strings.Index(msg, "{"); i >= 0 {
		var body struct{ Code string }
		if json.Unmarshal([]byte(msg[i:]), &body) == nil {
			if k, ok := kindForCode(body.Code); ok && (k == KindServer || k == KindThrottled) {
				return k, ""
			}
		}
	}
	return KindUnauthorized, "CredentialsUnavailable"
}

// IsThrottlingCode reports whether an API error code is a throttling code (Throttling or
// Throttling.*), or the KindThrottled name the client's Observer reports for an answer
// without a code.
func IsThrottlingCode(code string) bool {
	return code == "Throttling" || strings.HasPrefix(code, "Throttling.") || code == string(KindThrottled)
}

// scrubber returns a function that replaces every occurrence of the given secrets in a string.
func scrubber(secrets ...string) func(string) string {
	var olds []string
	for _, s := range secrets {
		// Short values would redact innocent text; real secrets are long.
		if len(s) >= 4 {
			olds = append(olds, s, "[REDACTED]")
		}
	}
	r := strings.NewReplacer(olds...)
	return func(s string) string {
		s = securityTokenInText.ReplaceAllString(r.Replace(s), "${1}[REDACTED]")
		return encodedSecurityTokenInText.ReplaceAllString(s, "${1}[REDACTED]")
	}
}

// securityTokenInText finds an STS token a server quotes back, e.g. in the canonical request of a
// SignatureDoesNotMatch answer: the token of the operator's own chain or of an assumed role is
// not known to the scrubber by value (credentials-go renews it), so it is found by its header or
// parameter name.
var securityTokenInText = regexp.MustCompile(`(?i)(x-acs-security-token:\s*|SecurityToken=)[^\s&"\\]+`)

// encodedSecurityTokenInText finds it percent-encoded in an RPC string to sign, up to the
// encoded & (%26) that ends the parameter.
var encodedSecurityTokenInText = regexp.MustCompile(`(?i)(SecurityToken%3D)(?:[^%\s&]|%(?:[013-9A-F][0-9A-F]|2[0-57-9A-F]))+`)
