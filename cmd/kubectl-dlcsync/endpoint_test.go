package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/dlcsync/dlcsync/internal/endpoints"
)

func TestPreviewEndpointAllowsOfficialHostsAndWhatTheUserNames(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		region, spec, flagged string
		want                  string // the endpoint used; "" with allowed: the region's
		allowed               bool
	}{
		{name: "region default", region: "cn-hangzhou", allowed: true},
		{name: "official spec", region: "cn-hangzhou", spec: "https://pai-dlc.cn-hangzhou.aliyuncs.com",
			want: "https://pai-dlc.cn-hangzhou.aliyuncs.com", allowed: true},
		{name: "official vpc spec", region: "cn-beijing", spec: "https://pai-dlc-vpc.cn-beijing.aliyuncs.com",
			want: "https://pai-dlc-vpc.cn-beijing.aliyuncs.com", allowed: true},
		{name: "spec elsewhere", region: "cn-hangzhou", spec: "https://evil.example"},
		{name: "spec plain http", region: "cn-hangzhou", spec: "http://evil.example"},
		{name: "spec official host over http", region: "cn-hangzhou", spec: "http://pai-dlc.cn-hangzhou.aliyuncs.com"},
		{name: "spec loopback", region: "cn-hangzhou", spec: "http://127.0.0.1:8080"},
		{name: "spec metadata server", region: "cn-hangzhou", spec: "http://100.100.100.200"},
		{name: "spec userinfo trick", region: "cn-hangzhou", spec: "https://pai-dlc.cn-hangzhou.aliyuncs.com:443@evil.example"},
		{name: "region makes another host", region: "x.evil.example#"},
		{name: "region makes another host with a path", region: "evil.example/"},
		{name: "no region", region: ""},
		{name: "flag https anywhere", spec: "http://evil.example", flagged: "https://dlc-proxy.example.internal:8443",
			want: "https://dlc-proxy.example.internal:8443", allowed: true},
		{name: "flag loopback v4", spec: "http://evil.example", flagged: "http://127.0.0.1:8080", want: "http://127.0.0.1:8080", allowed: true},
		{name: "flag loopback 127/8", flagged: "http://127.8.9.10:1", want: "http://127.8.9.10:1", allowed: true},
		{name: "flag loopback v6", flagged: "http://[::1]:8080", want: "http://[::1]:8080", allowed: true},
		{name: "flag localhost", flagged: "http://LocalHost:8080", want: "http://LocalHost:8080", allowed: true},
		{name: "flag plain http elsewhere", flagged: "http://evil.example"},
		{name: "flag plain http private ip", flagged: "http://10.0.0.1:8080"},
		{name: "flag plain http looks like loopback", flagged: "http://127.0.0.1.evil.example"},
		{name: "flag userinfo", flagged: "http://127.0.0.1:1@evil.example"},
		{name: "flag path", flagged: "https://dlc-proxy.example/api"},
		{name: "flag query", flagged: "https://dlc-proxy.example?x=1"},
		{name: "flag other scheme", flagged: "ftp://127.0.0.1"},
		{name: "flag no host", flagged: "https://"},
		{name: "flag not a url", flagged: "::not a url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := previewEndpoint(tc.region, tc.spec, tc.flagged)
			if !tc.allowed {
				if err == nil {
					t.Fatalf("previewEndpoint(%q, %q, %q) = %q, want a refusal", tc.region, tc.spec, tc.flagged, got)
				}
				if !errors.Is(err, endpoints.ErrNotAllowed) && tc.name != "no region" {
					t.Errorf("error %v is not ErrNotAllowed", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("previewEndpoint(%q, %q, %q) = %q, %v; want %q", tc.region, tc.spec, tc.flagged, got, err, tc.want)
			}
		})
	}
}

// recorder is an endpoint that counts the requests it receives: a refused endpoint must see none.
func recorder(t *testing.T) (url string, requests *atomic.Int32) {
	t.Helper()
	requests = &atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		http.Error(w, "recorded", http.StatusForbidden)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, requests
}

func TestPreviewSendsNoCredentialsToTheManifestsEndpoint(t *testing.T) {
	g := NewWithT(t)
	evil, requests := recorder(t)
	manifest := previewManifest(t, strings.NewReplacer("%ENDPOINT%", evil, "%PREFIX%", "x").Replace(previewYAML))
	t.Setenv(envAccessKeySecret, simAdmin.AccessKeySecret)

	// With an AccessKey, and with the default credential chain (which may be an ECS RAM role's).
	for _, args := range [][]string{{"--access-key-id", simAdmin.AccessKeyID}, nil} {
		_, _, err := runCLI(testCtx, append([]string{"preview", "-f", manifest, "--local"}, args...)...)
		g.Expect(err).To(MatchError(ContainSubstring(`the manifest's spec.endpoint "` + evil + `" is not one`)))
		g.Expect(err).To(MatchError(ContainSubstring("name it yourself with --endpoint")))
		g.Expect(errors.Is(err, endpoints.ErrNotAllowed)).To(BeTrue())
	}
	// Plain http to a host that is not loopback is refused even when named on the command line.
	_, _, err := runCLI(testCtx, "preview", "-f", manifest, "--local", "--access-key-id", simAdmin.AccessKeyID,
		"--endpoint", strings.Replace(evil, "127.0.0.1", "127.0.0.1.nip.io", 1))
	g.Expect(err).To(MatchError(ContainSubstring("is plain http")))
	g.Expect(requests.Load()).To(BeZero())

	// The user's own decision: the same endpoint named with --endpoint is called.
	_, _, err = runCLI(testCtx, "preview", "-f", manifest, "--local", "--access-key-id", simAdmin.AccessKeyID, "--endpoint", evil)
	g.Expect(err).To(MatchError(ContainSubstring("listing jobs for JobQuery pytorch-only")))
	g.Expect(requests.Load()).To(BeNumerically(">", 0))
}
