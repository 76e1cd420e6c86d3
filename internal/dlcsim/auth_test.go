package dlcsim

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// The signature test vectors of the API reference (§5): computed by darabonba-openapi v2.1.13
// and re-verified independently. Key testid/testsecret, host pai-dlc.cn-hangzhou.aliyuncs.com.
const (
	vectorHost        = "pai-dlc.cn-hangzhou.aliyuncs.com"
	vectorNonce       = "3f1e2d3c4b5a69788796a5b4c3d2e1f0"
	vectorDate        = "2025-01-02T03:04:05Z"
	vectorRFC1123     = "Thu, 02 Jan 2025 03:04:05 GMT"
	vectorLongQuery   = "DisplayName=tf+mnist%2A~&FromAllWorkspaces=false&JobIds=dlc1%2Cdlc2&NumericRangeMin=4&PageNumber=1&PageSize=50&ShowOwn=true&StartTime=2025-04-16T07%3A25%3A34Z&Tags=%7B%22env%22%3A%22prod%22%2C%22team%22%3A%22a+b%22%7D"
	v3SignedHeaders   = "host;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version"
	v3SignedHeaderSTS = "host;x-acs-accesskey-id;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-security-token;x-acs-signature-nonce;x-acs-version"
)

func vectorRequest(query string, headers map[string]string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://"+vectorHost+"/api/v1/jobs?"+query, nil)
	r.Host = vectorHost
	r.Header.Set("accept", "application/json")
	r.Header.Set("x-acs-version", "2020-12-03")
	r.Header.Set("x-acs-action", "ListJobs")
	r.Header.Set("x-acs-signature-nonce", vectorNonce)
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	return r
}

func v3Headers(date, provider, signedHeaders, signature string) map[string]string {
	return map[string]string{
		"x-acs-date":                 date,
		"x-acs-content-sha256":       emptySHA256,
		"x-acs-credentials-provider": provider,
		"Authorization":              "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=" + signedHeaders + ",Signature=" + signature,
	}
}

func roaHeaders(provider, signature string) map[string]string {
	return map[string]string{
		"date":                       vectorRFC1123,
		"x-acs-signature-method":     "HMAC-SHA1",
		"x-acs-signature-version":    "1.0",
		"x-acs-credentials-provider": provider,
		"Authorization":              "acs testid:" + signature,
	}
}

func TestVerifierAcceptsTheReferenceSignatureVectors(t *testing.T) {
	sts := map[string]string{"x-acs-accesskey-id": "testid", "x-acs-security-token": "STS.token123"}
	cases := []struct {
		name    string
		query   string
		headers map[string]string
		extra   map[string]string
		token   string
	}{
		{"V3 worked example", "ShowOwn=true&WorkspaceId=12345",
			v3Headers(vectorDate, "static_ak", v3SignedHeaders, "df9f44abcd51db6d07982d97aeb761cfc9d16f7f5bde3675f86b97c4d0901bd9"), nil, ""},
		{"ROA worked example", "ShowOwn=true&WorkspaceId=12345", roaHeaders("static_ak", "OaMyc4BBjQGxf74583332/izJfI="), nil, ""},
		{"V3 with an STS token", "ShowOwn=true&WorkspaceId=12345",
			v3Headers(vectorDate, "static_sts", v3SignedHeaderSTS, "6517496d4ef5d759d677ef7990fff813cb7969372932b2d8345f9905981a77ff"), sts, "STS.token123"},
		{"ROA with an STS token", "ShowOwn=true&WorkspaceId=12345", roaHeaders("static_sts", "gtS6K8iQgg4ZMpYsnGEkahING0o="), sts, "STS.token123"},
		{"V3 with an empty value", "Caller=&PageSize=10",
			v3Headers(vectorDate, "static_ak", v3SignedHeaders, "c99bfcd4fbc804dd3507e1e636de79e3b03deda208d2457888c21050a89701aa"), nil, ""},
		{"ROA with an empty value", "Caller=&PageSize=10", roaHeaders("static_ak", "CbOR3g5J+lg4w7+hMdSpkJhCqR4="), nil, ""},
		{"V3 encoding edge cases", vectorLongQuery, func() map[string]string {
			h := v3Headers("2026-11-28T21:50:55Z", "static_ak", v3SignedHeaders, "29d8437c91fefaffff3b918c0325f8b91ef14edbf9cb642dd085a10adcc855d7")
			return h
		}(), map[string]string{"x-acs-signature-nonce": "008929980383d7d2516099c81ddd28f9"}, ""},
		{"ROA encoding edge cases", vectorLongQuery, roaHeaders("static_ak", "Y79E30wGwcO6AMaXOy0UtzVqAjU="), nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			headers := map[string]string{}
			for k, v := range tc.headers {
				headers[k] = v
			}
			for k, v := range tc.extra {
				headers[k] = v
			}
			cfg := &authConfig{
				identities: map[string]*Identity{"testid": {AccessKeyID: "testid", AccessKeySecret: "testsecret", SecurityToken: tc.token}},
				maxSkew:    0, // the vectors are dated; freshness is tested separately
				now:        time.Now,
			}
			id, apiErr := authenticate(vectorRequest(tc.query, headers), nil, cfg, &nonceCache{})
			if apiErr != nil {
				t.Fatalf("rejected: %s %s", apiErr.code, apiErr.message)
			}
			if id.AccessKeyID != "testid" {
				t.Fatalf("identity %q", id.AccessKeyID)
			}

			// One changed byte of the query must break the signature.
			tampered := vectorRequest(tc.query+"&PageNumber=2", headers)
			if _, apiErr := authenticate(tampered, nil, cfg, &nonceCache{}); apiErr == nil || apiErr.code != "SignatureDoesNotMatch" {
				t.Fatalf("a tampered query was accepted: %+v", apiErr)
			}
		})
	}
}

func TestVerifierRejectsEachAuthenticationFailureWithTheReferenceCode(t *testing.T) {
	valid := v3Headers(vectorDate, "static_ak", v3SignedHeaders, "df9f44abcd51db6d07982d97aeb761cfc9d16f7f5bde3675f86b97c4d0901bd9")
	with := func(changes map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range valid {
			out[k] = v
		}
		for k, v := range changes {
			out[k] = v
		}
		return out
	}
	vectorTime, _ := time.Parse(time.RFC3339, vectorDate)
	expired := time.Now().Add(-time.Hour)
	cases := []struct {
		name    string
		headers map[string]string
		id      Identity
		now     time.Time
		skew    time.Duration
		code    string
		status  int
	}{
		{"unknown key", with(map[string]string{"Authorization": "ACS3-HMAC-SHA256 Credential=nobody,SignedHeaders=" + v3SignedHeaders + ",Signature=00"}),
			Identity{AccessKeyID: "testid", AccessKeySecret: "testsecret"}, vectorTime, 0, "InvalidAccessKeyId.NotFound", 404},
		{"wrong secret", valid, Identity{AccessKeyID: "testid", AccessKeySecret: "other"}, vectorTime, 0, "SignatureDoesNotMatch", 400},
		{"required header not signed", with(map[string]string{"Authorization": "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-action,Signature=00"}),
			Identity{AccessKeyID: "testid", AccessKeySecret: "testsecret"}, vectorTime, 0, "IncompleteSignature", 400},
		{"malformed authorization", with(map[string]string{"Authorization": "ACS3-HMAC-SHA256 nonsense"}),
			Identity{AccessKeyID: "testid", AccessKeySecret: "testsecret"}, vectorTime, 0, "IncompleteSignature", 400},
		{"date 20 minutes off", valid, Identity{AccessKeyID: "testid", AccessKeySecret: "testsecret"}, vectorTime.Add(20 * time.Minute),
			15 * time.Minute, "InvalidTimeStamp.Expired", 400},
		{"token for a plain key", with(map[string]string{"x-acs-security-token": "STS.x"}),
			Identity{AccessKeyID: "testid", AccessKeySecret: "testsecret"}, vectorTime, 0, "InvalidSecurityToken.MismatchWithAccessKey", 400},
		{"STS key without its token", valid, Identity{AccessKeyID: "testid", AccessKeySecret: "testsecret", SecurityToken: "STS.token123"},
			vectorTime, 0, "InvalidSecurityToken.MismatchWithAccessKey", 400},
		{"expired STS token", with(map[string]string{"x-acs-accesskey-id": "testid", "x-acs-security-token": "STS.token123",
			"x-acs-credentials-provider": "static_sts",
			"Authorization": "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=" + v3SignedHeaderSTS +
				",Signature=6517496d4ef5d759d677ef7990fff813cb7969372932b2d8345f9905981a77ff"}),
			Identity{AccessKeyID: "testid", AccessKeySecret: "testsecret", SecurityToken: "STS.token123", TokenExpiresAt: &expired},
			time.Now(), 0, "InvalidSecurityToken.Expired", 400},
		{"no authorization", with(map[string]string{"Authorization": ""}), Identity{AccessKeyID: "testid", AccessKeySecret: "testsecret"},
			vectorTime, 0, "MissingAuthorization", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.id
			now := tc.now
			cfg := &authConfig{identities: map[string]*Identity{id.AccessKeyID: &id}, maxSkew: tc.skew, now: func() time.Time { return now }}
			_, apiErr := authenticate(vectorRequest("ShowOwn=true&WorkspaceId=12345", tc.headers), nil, cfg, &nonceCache{})
			if apiErr == nil || apiErr.code != tc.code || apiErr.status != tc.status {
				t.Fatalf("got %+v, want %s (%d)", apiErr, tc.code, tc.status)
			}
		})
	}
}

func TestVerifierRejectsAReplayedNonce(t *testing.T) {
	vectorTime, _ := time.Parse(time.RFC3339, vectorDate)
	cfg := &authConfig{identities: map[string]*Identity{"testid": {AccessKeyID: "testid", AccessKeySecret: "testsecret"}},
		maxSkew: 15 * time.Minute, checkNonce: true, now: func() time.Time { return vectorTime }}
	headers := v3Headers(vectorDate, "static_ak", v3SignedHeaders, "df9f44abcd51db6d07982d97aeb761cfc9d16f7f5bde3675f86b97c4d0901bd9")
	nonces := &nonceCache{}
	if _, apiErr := authenticate(vectorRequest("ShowOwn=true&WorkspaceId=12345", headers), nil, cfg, nonces); apiErr != nil {
		t.Fatalf("first use rejected: %+v", apiErr)
	}
	_, apiErr := authenticate(vectorRequest("ShowOwn=true&WorkspaceId=12345", headers), nil, cfg, nonces)
	if apiErr == nil || apiErr.code != "SignatureNonceUsed" {
		t.Fatalf("replay: %+v, want SignatureNonceUsed", apiErr)
	}
}

func TestTokenizerSplitsEnglishWordsAndCJKBigrams(t *testing.T) {
	cases := map[string][]string{
		"registry/pai/pytorch-training:2.1": {"registry", "pai", "pytorch", "training", "2", "1"},
		"CUDA Out-Of-Memory":                {"cuda", "out", "of", "memory"},
		"训练进程异常退出：显存不足":                     {"训练", "练进", "进程", "程异", "异常", "常退", "退出", "显存", "存不", "不足"},
		"OOM 内存": {"oom", "内存"},
		"单":      {"单"},
	}
	for in, want := range cases {
		got := tokenize(in)
		if len(got) != len(want) {
			t.Errorf("tokenize(%q) = %q, want %q", in, got, want)
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("tokenize(%q) = %q, want %q", in, got, want)
				break
			}
		}
	}
}

func TestGlobMatch(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"tf-*", "tf-mnist", true}, {"*mnist", "tf-mnist", true}, {"tf-?nist", "tf-mnist", true},
		{"tf-?", "tf-mnist", false}, {"*", "", true}, {"a*b*c", "axxbyyc", true}, {"a*b*c", "axxbyy", false},
	}
	for _, c := range cases {
		if got := globMatch(c.pattern, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v", c.pattern, c.s, got)
		}
	}
}
