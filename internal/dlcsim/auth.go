package dlcsim

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the legacy ROA scheme is HMAC-SHA1 by definition
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// Identity is an AccessKey the simulator accepts, and who it belongs to.
type Identity struct {
	AccessKeyID     string `json:"accessKeyId"`
	AccessKeySecret string `json:"accessKeySecret"`
	// SecurityToken, when set, makes this an STS identity: requests must carry this token.
	SecurityToken string `json:"securityToken,omitempty"`
	// TokenExpiresAt, when set, makes the STS token expire.
	TokenExpiresAt *time.Time `json:"tokenExpiresAt,omitempty"`
	UserID         string     `json:"userId"`
	Username       string     `json:"username"`
	// Admin sees every job, PRIVATE ones included.
	Admin bool `json:"admin"`
	// AllowListJobs grants paidlc:ListJobs; when false the identity gets Forbidden.RAM.
	AllowListJobs *bool `json:"allowListJobs,omitempty"`
	// Workspaces, when set, are the only workspaces the identity's RAM policy covers: a listing
	// filtered on another WorkspaceId gets Forbidden.RAM, as a RAM role scoped to some workspaces
	// does. Listings without a WorkspaceId are not restricted.
	Workspaces []string `json:"workspaces,omitempty"`
	// source is the AccessKey ID of the identity that assumed the role this temporary identity
	// was issued for, and role that role's ARN (the simulated STS sets both).
	source, role string
}

func (id *Identity) mayList() bool { return id.AllowListJobs == nil || *id.AllowListJobs }

// apiError is an error answer of the gateway.
type apiError struct {
	status  int
	code    string
	message string
	// accessDenied adds the AccessDeniedDetail object of permission errors.
	accessDenied map[string]string
	// header holds extra response headers (throttling's x-ratelimit-*).
	header map[string]string
}

const codeSignatureDoesNotMatch = "SignatureDoesNotMatch"

const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// requiredV3Headers must be in SignedHeaders of a V3 request.
var requiredV3Headers = []string{"host", "x-acs-action", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce", "x-acs-version"}

// authConfig holds the switches of signature checking.
type authConfig struct {
	// mu guards identities: the simulated STS adds temporary ones while requests are checked.
	mu         sync.RWMutex
	identities map[string]*Identity
	// maxSkew bounds the difference between the request's date and the server's clock.
	maxSkew time.Duration
	// checkNonce rejects a nonce seen within maxSkew.
	checkNonce bool
	now        func() time.Time
}

// nonceCache remembers the nonces of the last maxSkew (a replay older than that fails the
// timestamp check anyway).
type nonceCache struct {
	mu   sync.Mutex
	seen map[string]time.Time
	last time.Time
}

func (c *nonceCache) use(nonce string, now time.Time, ttl time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]time.Time{}
	}
	if now.Sub(c.last) > time.Minute {
		for n, exp := range c.seen {
			if now.After(exp) {
				delete(c.seen, n)
			}
		}
		c.last = now
	}
	if exp, ok := c.seen[nonce]; ok && now.Before(exp) {
		return false
	}
	c.seen[nonce] = now.Add(ttl)
	return true
}

// authenticate verifies the request's signature (V3 ACS3-HMAC-SHA256 or legacy ROA HMAC-SHA1)
// and returns the identity, or the gateway's error.
func authenticate(r *http.Request, body []byte, cfg *authConfig, nonces *nonceCache) (*Identity, *apiError) {
	auth := r.Header.Get("Authorization")
	switch {
	case strings.HasPrefix(auth, "ACS3-HMAC-SHA256 "):
		return verifyV3(r, body, auth, cfg, nonces)
	case strings.HasPrefix(auth, "acs "):
		return verifyROA(r, auth, cfg, nonces)
	case auth == "":
		return nil, &apiError{status: 400, code: "MissingAuthorization", message: "The Authorization header is missing."}
	default:
		return nil, incomplete("unsupported algorithm.")
	}
}

// accessKeyOf is the AccessKey ID an Authorization header names, in either signature style; ""
// when it names none.
func accessKeyOf(auth string) string {
	if rest, ok := strings.CutPrefix(auth, "acs "); ok {
		id, _, _ := strings.Cut(rest, ":")
		return id
	}
	for _, part := range strings.Split(strings.TrimPrefix(auth, "ACS3-HMAC-SHA256 "), ",") {
		if id, ok := strings.CutPrefix(strings.TrimSpace(part), "Credential="); ok {
			return id
		}
	}
	return ""
}

func incomplete(msg string) *apiError {
	return &apiError{status: 400, code: "IncompleteSignature", message: "The request signature does not conform to Aliyun standards: " + msg}
}

func verifyV3(r *http.Request, body []byte, auth string, cfg *authConfig, nonces *nonceCache) (*Identity, *apiError) {
	var akID, signedList, signature string
	for _, part := range strings.Split(strings.TrimPrefix(auth, "ACS3-HMAC-SHA256 "), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			akID = v
		case "SignedHeaders":
			signedList = v
		case "Signature":
			signature = v
		}
	}
	if akID == "" || signedList == "" || signature == "" {
		return nil, incomplete("Credential, SignedHeaders and Signature are required.")
	}
	signed := strings.Split(signedList, ";")
	for _, h := range requiredV3Headers {
		if !contains(signed, h) {
			return nil, incomplete("header " + h + " must be signed.")
		}
	}
	id, apiErr := lookup(akID, cfg)
	if apiErr != nil {
		return nil, apiErr
	}
	date, err := time.Parse("2006-01-02T15:04:05Z", r.Header.Get("x-acs-date"))
	if err != nil {
		return nil, &apiError{status: 400, code: "InvalidTimeStamp.Format",
			message: "The x-acs-date header is not a UTC time like 2025-01-02T03:04:05Z."}
	}
	if apiErr := checkFreshness(date, r.Header.Get("x-acs-signature-nonce"), cfg, nonces); apiErr != nil {
		return nil, apiErr
	}
	sum := sha256.Sum256(body)
	if r.Header.Get("x-acs-content-sha256") != hex.EncodeToString(sum[:]) {
		return nil, &apiError{status: 400, code: codeSignatureDoesNotMatch,
			message: "The x-acs-content-sha256 header does not match the request body."}
	}
	var canonicalHeaders strings.Builder
	for _, h := range signed {
		v := r.Header.Get(h)
		if h == "host" {
			v = r.Host
		}
		canonicalHeaders.WriteString(h + ":" + strings.TrimSpace(v) + "\n")
	}
	canonicalRequest := strings.Join([]string{
		r.Method,
		canonicalURI(r.URL.EscapedPath()),
		canonicalQueryV3(r.URL.Query()),
		canonicalHeaders.String(),
		signedList,
		r.Header.Get("x-acs-content-sha256"),
	}, "\n")
	hashed := sha256.Sum256([]byte(canonicalRequest))
	stringToSign := "ACS3-HMAC-SHA256\n" + hex.EncodeToString(hashed[:])
	mac := hmac.New(sha256.New, []byte(id.AccessKeySecret))
	_, _ = io.WriteString(mac, stringToSign)
	want := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(signature))) {
		// Like the gateway, echo what the server signed so the caller can debug; it includes
		// signed header values (the security token), which a careful client never logs.
		return nil, &apiError{status: 400, code: codeSignatureDoesNotMatch,
			message: "Specified signature does not match our calculation. server string to sign is:" + canonicalRequest}
	}
	if apiErr := checkToken(r.Header.Get("x-acs-security-token"), id, signed, cfg); apiErr != nil {
		return nil, apiErr
	}
	return id, nil
}

func verifyROA(r *http.Request, auth string, cfg *authConfig, nonces *nonceCache) (*Identity, *apiError) {
	akID, signature, ok := strings.Cut(strings.TrimPrefix(auth, "acs "), ":")
	if !ok || akID == "" || signature == "" {
		return nil, incomplete("want acs <AccessKeyId>:<Signature>.")
	}
	id, apiErr := lookup(akID, cfg)
	if apiErr != nil {
		return nil, apiErr
	}
	date, err := http.ParseTime(r.Header.Get("Date"))
	if err != nil {
		return nil, &apiError{status: 400, code: "InvalidTimeStamp.Format", message: "The Date header is not an RFC 1123 GMT time."}
	}
	if apiErr := checkFreshness(date, r.Header.Get("x-acs-signature-nonce"), cfg, nonces); apiErr != nil {
		return nil, apiErr
	}
	var names []string
	for name := range r.Header {
		if strings.HasPrefix(strings.ToLower(name), "x-acs-") {
			names = append(names, strings.ToLower(name))
		}
	}
	sort.Strings(names)
	var sb strings.Builder
	sb.WriteString(r.Method + "\n" + r.Header.Get("Accept") + "\n" + r.Header.Get("Content-MD5") + "\n" +
		r.Header.Get("Content-Type") + "\n" + r.Header.Get("Date") + "\n")
	for _, n := range names {
		sb.WriteString(n + ":" + r.Header.Get(n) + "\n")
	}
	sb.WriteString(canonicalResourceROA(r.URL.Path, r.URL.Query()))
	mac := hmac.New(sha1.New, []byte(id.AccessKeySecret))
	_, _ = io.WriteString(mac, sb.String())
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return nil, &apiError{status: 400, code: codeSignatureDoesNotMatch,
			message: "Specified signature does not match our calculation. server string to sign is:" + sb.String()}
	}
	if apiErr := checkToken(r.Header.Get("x-acs-security-token"), id, nil, cfg); apiErr != nil {
		return nil, apiErr
	}
	return id, nil
}

// add registers a temporary identity and forgets the expired temporary ones, so that a client
// assuming roles in a loop does not grow the simulator.
func (cfg *authConfig) add(id *Identity) {
	cfg.mu.Lock()
	defer cfg.mu.Unlock()
	now := cfg.now()
	for key, other := range cfg.identities {
		if other.source != "" && other.TokenExpiresAt != nil && now.After(*other.TokenExpiresAt) {
			delete(cfg.identities, key)
		}
	}
	cfg.identities[id.AccessKeyID] = id
}

func lookup(akID string, cfg *authConfig) (*Identity, *apiError) {
	cfg.mu.RLock()
	id, ok := cfg.identities[akID]
	cfg.mu.RUnlock()
	if !ok {
		return nil, &apiError{status: 404, code: "InvalidAccessKeyId.NotFound", message: "Specified access key is not found."}
	}
	return id, nil
}

func checkFreshness(date time.Time, nonce string, cfg *authConfig, nonces *nonceCache) *apiError {
	now := cfg.now()
	if cfg.maxSkew > 0 && (date.Before(now.Add(-cfg.maxSkew)) || date.After(now.Add(cfg.maxSkew))) {
		return &apiError{status: 400, code: "InvalidTimeStamp.Expired",
			message: "Specified time stamp or date value is expired: the request time must be within 15 minutes of the server time."}
	}
	if nonce == "" {
		return &apiError{status: 400, code: "MissingSignatureNonce", message: "The x-acs-signature-nonce header is missing."}
	}
	if cfg.checkNonce && !nonces.use(nonce, now, max(cfg.maxSkew, time.Minute)) {
		return &apiError{status: 400, code: "SignatureNonceUsed", message: "Specified signature nonce was used already."}
	}
	return nil
}

// checkToken enforces STS tokens: an STS identity needs its token (signed, for V3), a plain
// AccessKey must not carry one. token is what the request presented: the x-acs-security-token
// header of ListJobs, the SecurityToken parameter of an RPC call to STS.
func checkToken(token string, id *Identity, signedV3 []string, cfg *authConfig) *apiError {
	switch {
	case id.SecurityToken == "" && token == "":
		return nil
	case id.SecurityToken == "" || token != id.SecurityToken:
		return &apiError{status: 400, code: "InvalidSecurityToken.MismatchWithAccessKey",
			message: "The security token does not match the access key."}
	case signedV3 != nil && !contains(signedV3, "x-acs-security-token"):
		return incomplete("header x-acs-security-token must be signed.")
	case id.TokenExpiresAt != nil && cfg.now().After(*id.TokenExpiresAt):
		return &apiError{status: 400, code: "InvalidSecurityToken.Expired", message: "Specified SecurityToken is expired."}
	}
	return nil
}

// sortedPairs returns the query's key/value pairs sorted by key, then value. Clients send each
// key once; a repeated key is signed with all its values, so a value appended after signing
// cannot slip through.
func sortedPairs(values url.Values) [][2]string {
	var pairs [][2]string
	for k, vs := range values {
		for _, v := range vs {
			pairs = append(pairs, [2]string{k, v})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i][0] != pairs[j][0] {
			return pairs[i][0] < pairs[j][0]
		}
		return pairs[i][1] < pairs[j][1]
	})
	return pairs
}

// canonicalQueryV3 encodes the decoded query per V3: sorted keys, RFC 3986 encoding of values.
func canonicalQueryV3(values url.Values) string {
	pairs := sortedPairs(values)
	parts := make([]string, 0, len(pairs))
	for _, p := range pairs {
		parts = append(parts, percentEncode(p[0])+"="+percentEncode(p[1]))
	}
	return strings.Join(parts, "&")
}

// canonicalResourceROA is the path plus the decoded, sorted, unencoded query (key alone when
// the value is empty).
func canonicalResourceROA(path string, values url.Values) string {
	if len(values) == 0 {
		return path
	}
	pairs := sortedPairs(values)
	parts := make([]string, 0, len(pairs))
	for _, p := range pairs {
		if p[1] == "" {
			parts = append(parts, p[0])
		} else {
			parts = append(parts, p[0]+"="+p[1])
		}
	}
	return path + "?" + strings.Join(parts, "&")
}

func canonicalURI(escapedPath string) string {
	if escapedPath == "" {
		return "/"
	}
	return escapedPath
}

// percentEncode is RFC 3986 encoding: only A-Z a-z 0-9 - _ . ~ stay as they are.
func percentEncode(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~' {
			sb.WriteByte(c)
		} else {
			sb.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
		}
	}
	return sb.String()
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
