package endpoints

import (
	"errors"
	"testing"
)

func TestPolicyAllowsOnlyOfficialHostsByDefault(t *testing.T) {
	var none Policy
	for _, tc := range []struct {
		endpoint string
		allowed  bool
	}{
		{"", true}, // derived from the region
		{"https://pai-dlc.cn-hangzhou.aliyuncs.com", true},
		{"https://pai-dlc.cn-hangzhou.aliyuncs.com:443", true},
		{"https://pai-dlc.cn-shanghai-finance-1.aliyuncs.com/", true},
		{"https://pai-dlc.aliyuncs.com", true},
		{"https://pai-dlc-vpc.cn-beijing.aliyuncs.com", true},
		{"https://PAI-DLC.CN-HANGZHOU.ALIYUNCS.COM", true},
		{"http://pai-dlc.cn-hangzhou.aliyuncs.com", false}, // plain http: credentials readable on the path
		{"https://pai-dlc.cn-hangzhou.aliyuncs.com:8443", false},
		{"https://pai-dlc.cn-hangzhou.aliyuncs.com:443@evil.example", false},
		{"https://user:pw@pai-dlc.cn-hangzhou.aliyuncs.com", false},
		{"https://pai-dlc.cn-hangzhou.aliyuncs.com?x=1", false},
		{"https://pai-dlc.cn-hangzhou.aliyuncs.com#frag", false},
		{"https://pai-dlc.cn-hangzhou.aliyuncs.com/api", false},
		{"https://pai-dlc.cn-hangzhou.aliyuncs.com.evil.example", false},
		{"https://evilpai-dlc.cn-hangzhou.aliyuncs.com", false},
		{"https://ecs.cn-hangzhou.aliyuncs.com", false},
		{"http://100.100.100.200", false}, // the metadata server
		{"http://127.0.0.1:8080", false},
		{"https://dlc.svc.cluster.local", false},
		{"::not a url", false},
	} {
		err := none.Check(tc.endpoint)
		if (err == nil) != tc.allowed {
			t.Errorf("Check(%q) = %v, want allowed=%v", tc.endpoint, err, tc.allowed)
		}
		if err != nil && !errors.Is(err, ErrNotAllowed) {
			t.Errorf("Check(%q) error %v is not ErrNotAllowed", tc.endpoint, err)
		}
	}
}

func TestPolicyPatternsWidenTheDefault(t *testing.T) {
	p, err := ParsePatterns(" http://127.0.0.1:*, https://*.dlc-proxy.example.internal ,http://[::1]:8080,https://mirror.example")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.String(); got != "http://127.0.0.1:*,https://*.dlc-proxy.example.internal,http://::1:8080,https://mirror.example" {
		t.Errorf("String() = %q", got)
	}
	for _, tc := range []struct {
		endpoint string
		allowed  bool
	}{
		{"http://127.0.0.1:38211", true},
		{"http://127.0.0.1", true}, // port * includes the default port
		{"https://127.0.0.1:38211", false},
		{"http://127.0.0.2:38211", false},
		{"https://a.dlc-proxy.example.internal", true},
		{"https://a.dlc-proxy.example.internal:443", true},
		{"https://a.dlc-proxy.example.internal:444", false},
		{"http://[::1]:8080", true},
		{"http://[::1]:8081", false},
		{"https://mirror.example", true},
		{"https://mirror.example:443", true},
		{"https://pai-dlc.cn-hangzhou.aliyuncs.com", true}, // the official hosts stay allowed
		{"http://127.0.0.1:1@evil.example", false},
	} {
		if err := p.Check(tc.endpoint); (err == nil) != tc.allowed {
			t.Errorf("Check(%q) = %v, want allowed=%v", tc.endpoint, err, tc.allowed)
		}
	}
}

func TestParsePatternsRejectsWhatIsNotAnOrigin(t *testing.T) {
	for _, bad := range []string{"127.0.0.1:*", "ftp://x", "http://", "http://a/b", "http://a?x", "http://u@a", "http://a:", "http://[a:1"} {
		if _, err := ParsePatterns(bad); err == nil {
			t.Errorf("ParsePatterns(%q) accepted", bad)
		}
	}
}

// The same service written differently is one source; another host or port is not.
func TestSameSource(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"", "https://pai-dlc.cn-hangzhou.aliyuncs.com", true},
		{"", "https://pai-dlc-vpc.cn-hangzhou.aliyuncs.com:443/", true},
		{"https://pai-dlc.cn-hangzhou.aliyuncs.com", "https://PAI-DLC.cn-hangzhou.aliyuncs.com:443", true},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/", true},
		{"http://proxy.example", "http://proxy.example:80", true},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8081", false},
		{"https://proxy.example", "http://proxy.example", false},
		{"", "https://proxy.example", false},
	} {
		if got := SameSource(tc.a, tc.b); got != tc.same {
			t.Errorf("SameSource(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}
