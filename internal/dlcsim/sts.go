package dlcsim

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // the RPC signature of STS is HMAC-SHA1 by definition
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Role is a RAM role the simulated STS lets identities assume (AssumeRole, 2015-04-01): the
// temporary identity it hands out sees what the role's user, admin flag and workspaces say.
type Role struct {
	// Arn is the role's ARN, e.g. acs:ram::1557702098194903:role/ml-team-dlc.
	Arn      string `json:"arn"`
	UserID   string `json:"userId"`
	Username string `json:"username"`
	Admin    bool   `json:"admin"`
	// Workspaces restrict the temporary identity as Identity.Workspaces does.
	Workspaces []string `json:"workspaces,omitempty"`
	// TrustedAccessKeys are the AccessKey IDs (of Identities) whose callers may assume the role,
	// as the role's trust policy names its principals; TrustedRoles are the roles whose sessions
	// may (role chaining: under RRSA the operator is itself a role's session). Both empty trusts
	// every identity.
	TrustedAccessKeys []string `json:"trustedAccessKeys,omitempty"`
	TrustedRoles      []string `json:"trustedRoles,omitempty"`
	// MaxSessionDurationSeconds bounds DurationSeconds (default 3600, RAM's default).
	MaxSessionDurationSeconds int `json:"maxSessionDurationSeconds,omitempty"`
}

// stsAction reports whether a request is an STS RPC call: POST or GET on / with an Action.
// STS is its own host (sts[-vpc].<region>.aliyuncs.com) in Alibaba Cloud; the simulator
// answers it on the same address as ListJobs, told apart by path and style, so that one server
// (one TLS certificate) serves both to a manager started with --sts-endpoint.
func stsAction(r *http.Request) bool {
	return r.URL.Path == "/" && r.URL.Query().Get("Action") != ""
}

// serveSTS answers AssumeRole as STS does: an RPC request signed with HMAC-SHA1 by a known
// identity (itself possibly temporary, with its SecurityToken), for a role that trusts it. The
// answer's temporary AccessKey, secret and token are then accepted by ListJobs until Expiration.
func (s *Server) serveSTS(w http.ResponseWriter, r *http.Request) {
	requestID := newRequestID()
	if err := r.ParseForm(); err != nil {
		s.writeError(w, requestID, &apiError{status: 400, code: "InvalidParameter", message: "The request body is not a form: " + err.Error()})
		return
	}
	s.mu.Lock()
	s.stats.Requests++
	s.stats.STSRequests++
	s.stats.ByAccessKey[r.URL.Query().Get("AccessKeyId")]++
	s.mu.Unlock()
	params := r.URL.Query()
	if action := params.Get("Action"); action != "AssumeRole" || params.Get("Version") != "2015-04-01" {
		s.writeError(w, requestID, &apiError{status: 404, code: "InvalidAction.NotFound",
			message: "Specified api is not found, please check your url and method."})
		return
	}
	caller, apiErr := s.verifyRPC(r)
	if apiErr != nil {
		s.mu.Lock()
		s.stats.SignaturesRejected++
		s.mu.Unlock()
		s.writeError(w, requestID, apiErr)
		return
	}
	creds, apiErr := s.assumeRole(caller, r.PostForm)
	if apiErr != nil {
		s.writeError(w, requestID, apiErr)
		return
	}
	s.mu.Lock()
	s.stats.RolesAssumed++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"RequestId": requestID,
		"AssumedRoleUser": map[string]string{
			"Arn":           creds.role.Arn + "/" + r.PostForm.Get("RoleSessionName"),
			"AssumedRoleId": "3" + creds.identity.UserID + ":" + r.PostForm.Get("RoleSessionName"),
		},
		"Credentials": map[string]string{
			"AccessKeyId":     creds.identity.AccessKeyID,
			"AccessKeySecret": creds.identity.AccessKeySecret,
			"SecurityToken":   creds.identity.SecurityToken,
			"Expiration":      creds.identity.TokenExpiresAt.UTC().Format("2006-01-02T15:04:05Z"),
		},
	})
}

// verifyRPC checks an RPC-style signature (SignatureVersion 1.0, HMAC-SHA1): the string to sign
// is METHOD&%2F& and the percent-encoded, sorted query and form parameters but Signature.
func (s *Server) verifyRPC(r *http.Request) (*Identity, *apiError) {
	query := r.URL.Query()
	if query.Get("SignatureMethod") != "HMAC-SHA1" || query.Get("SignatureVersion") != "1.0" {
		return nil, &apiError{status: 400, code: "InvalidParameter.SignatureMethod", message: "Specified signature method is not supported."}
	}
	timestamp, err := time.Parse("2006-01-02T15:04:05Z", query.Get("Timestamp"))
	if err != nil {
		return nil, &apiError{status: 400, code: "InvalidTimeStamp.Format", message: "Specified time stamp or date value is not well formatted."}
	}
	if apiErr := checkFreshness(timestamp, query.Get("SignatureNonce"), s.auth, &s.nonces); apiErr != nil {
		return nil, apiErr
	}
	id, apiErr := lookup(query.Get("AccessKeyId"), s.auth)
	if apiErr != nil {
		return nil, apiErr
	}
	signed := url.Values{}
	for k, vs := range query {
		if k != "Signature" {
			signed[k] = vs
		}
	}
	for k, vs := range r.PostForm {
		signed[k] = append(signed[k], vs...)
	}
	stringToSign := r.Method + "&" + percentEncode("/") + "&" + percentEncode(canonicalQueryV3(signed))
	mac := hmac.New(sha1.New, []byte(id.AccessKeySecret+"&"))
	_, _ = io.WriteString(mac, stringToSign)
	if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); !hmac.Equal([]byte(want), []byte(query.Get("Signature"))) {
		return nil, &apiError{status: 400, code: codeSignatureDoesNotMatch,
			message: "Specified signature is not matched with our calculation. server string to sign is:" + stringToSign}
	}
	if apiErr := checkToken(query.Get("SecurityToken"), id, nil, s.auth); apiErr != nil {
		return nil, apiErr
	}
	return id, nil
}

// issued is a temporary identity and the role it was issued for.
type issued struct {
	identity *Identity
	role     *Role
}

// assumeRole checks the role, the caller's trust and the duration, and registers a temporary
// identity of the role.
func (s *Server) assumeRole(caller *Identity, form url.Values) (issued, *apiError) {
	arn := form.Get("RoleArn")
	var role *Role
	for i := range s.opts.Roles {
		if strings.EqualFold(s.opts.Roles[i].Arn, arn) {
			role = &s.opts.Roles[i]
		}
	}
	if role == nil {
		return issued{}, &apiError{status: 404, code: "EntityNotExist.Role", message: "The role not exists: " + arn + "."}
	}
	if !role.trusts(caller) {
		return issued{}, &apiError{status: 403, code: "NoPermission",
			message: "You are not authorized to do this action. You should be authorized by RAM."}
	}
	session := form.Get("RoleSessionName")
	const sessionNameChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.@-_"
	if len(session) < 2 || len(session) > 64 || strings.Trim(session, sessionNameChars) != "" {
		return issued{}, &apiError{status: 400, code: "InvalidParameter.RoleSessionName",
			message: "The parameter RoleSessionName is wrongly formed."}
	}
	maxDuration := time.Duration(role.MaxSessionDurationSeconds) * time.Second
	if maxDuration <= 0 {
		maxDuration = time.Hour
	}
	seconds := 3600
	if v := form.Get("DurationSeconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 900 || time.Duration(n)*time.Second > maxDuration {
			return issued{}, &apiError{status: 400, code: "InvalidParameter.DurationSeconds",
				message: "The Min/Max value of DurationSeconds is 15min/" + maxDuration.String() + "."}
		}
		seconds = n
	}
	expires := s.auth.now().Add(time.Duration(seconds) * time.Second)
	id := &Identity{
		AccessKeyID:     "STS." + randomText(24),
		AccessKeySecret: randomText(40),
		SecurityToken:   "CAIS" + randomText(96),
		TokenExpiresAt:  &expires,
		UserID:          role.UserID,
		Username:        role.Username,
		Admin:           role.Admin,
		Workspaces:      role.Workspaces,
		source:          caller.sourceAccessKeyID(),
		role:            role.Arn,
	}
	s.auth.add(id)
	return issued{identity: id, role: role}, nil
}

// trusts reports whether the role's trust policy names the caller: a long-term key by its ID, a
// role's session by that role, as RAM judges the immediate caller.
func (r *Role) trusts(caller *Identity) bool {
	if len(r.TrustedAccessKeys) == 0 && len(r.TrustedRoles) == 0 {
		return true
	}
	if caller.role != "" {
		return slices.ContainsFunc(r.TrustedRoles, func(arn string) bool { return strings.EqualFold(arn, caller.role) })
	}
	return contains(r.TrustedAccessKeys, caller.AccessKeyID)
}

// sourceAccessKeyID is the long-term AccessKey behind an identity: its own, or that of the
// identity that assumed the role it was issued for (role chaining keeps the trust decision on
// the principal the trust policy names).
func (id *Identity) sourceAccessKeyID() string {
	if id.source != "" {
		return id.source
	}
	return id.AccessKeyID
}

// randomText returns n hexadecimal characters of crypto randomness.
func randomText(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}
