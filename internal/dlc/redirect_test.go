package dlc_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/dlcsync/dlcsync/internal/dlc"
)

// headerRecorder is a server that records the signed headers of every request it receives.
type headerRecorder struct {
	mu      sync.Mutex
	headers []http.Header
}

func (h *headerRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.headers = append(h.headers, r.Header.Clone())
	h.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"Jobs":[],"TotalCount":0,"RequestId":"ELSEWHERE"}`))
}

func (h *headerRecorder) received() []http.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.headers
}

// An allowed endpoint that answers with a redirect must not make the client carry the signed
// headers (x-acs-accesskey-id, x-acs-security-token, the signature) to the host it names: the
// allow-list decides where requests go, not the endpoint.
func TestARedirectIsNeverFollowed(t *testing.T) {
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			elsewhere := &headerRecorder{}
			other := httptest.NewServer(elsewhere)
			t.Cleanup(other.Close)
			allowed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, other.URL+r.URL.RequestURI(), status)
			}))
			t.Cleanup(allowed.Close)
			c := newClient(t, allowed.URL, dlc.Config{Static: &dlc.StaticCredentials{AccessKeyID: admin.AccessKeyID,
				AccessKeySecret: admin.AccessKeySecret, SecurityToken: "sts-token-0123456789"}})
			_, err := c.ListJobs(context.Background(), &dlc.ListJobsRequest{})
			if got := elsewhere.received(); len(got) > 0 {
				t.Fatalf("the redirect was followed: %s received %d request(s), the first with x-acs-accesskey-id %q and "+
					"x-acs-security-token set: %v", other.URL, len(got), got[0].Get("x-acs-accesskey-id"),
					got[0].Get("x-acs-security-token") != "")
			}
			if err == nil {
				t.Fatal("a redirect answer was taken for a ListJobs page")
			}
			if kind := dlc.KindOf(err); kind != dlc.KindBadResponse {
				t.Errorf("kind %q, want %q: %v", kind, dlc.KindBadResponse, err)
			}
			for _, want := range []string{"redirected to " + other.URL + ";", "follows no redirects"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not say %q: %v", want, err)
				}
			}
		})
	}
}

// A Location with a path, a query or userinfo is named by its scheme and host only: the rest is
// the endpoint's text, which the condition message has no use for.
func TestARedirectIsNamedByItsOriginOnly(t *testing.T) {
	target := "https://user:pw@evil.example:8443/steal?token=abc"
	allowed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", target)
		w.WriteHeader(http.StatusFound)
	}))
	t.Cleanup(allowed.Close)
	_, err := newClient(t, allowed.URL, dlc.Config{}).ListJobs(context.Background(), &dlc.ListJobsRequest{})
	if err == nil || !strings.Contains(err.Error(), "redirected to https://evil.example:8443; ") {
		t.Fatalf("want the redirect named by its origin, got %v", err)
	}
	u, _ := url.Parse(target)
	for _, hidden := range []string{u.User.String(), u.Path, u.RawQuery} {
		if strings.Contains(err.Error(), hidden) {
			t.Errorf("the error quotes %q of the Location: %v", hidden, err)
		}
	}
}
