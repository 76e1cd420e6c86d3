package dlc

import (
	"strings"
	"testing"
)

func TestBoundedCodeKeepsKnownCodesOnly(t *testing.T) {
	for code, want := range map[string]string{
		"200":                         "200",
		"Throttling.User":             "Throttling.User",
		"InvalidAccessKeyId.NotFound": "InvalidAccessKeyId.NotFound",
		"Forbidden.RAM":               "Forbidden.RAM",
		string(KindNetwork):           string(KindNetwork),
		string(KindBadResponse):       string(KindBadResponse),
		// An endpoint makes up codes: each would be a new series kept forever, and a code may
		// carry what the endpoint was sent.
		"":                          CodeOther,
		"Throttling.User2":          CodeOther,
		"InvalidParameter.Evil":     CodeOther,
		"LTAI5tSecretLookingKey":    CodeOther,
		strings.Repeat("A", 10_000): CodeOther,
		"Code\nwith newline":        CodeOther,
	} {
		if got := BoundedCode(code); got != want {
			t.Errorf("BoundedCode(%.40q) = %q, want %q", code, got, want)
		}
	}
}
