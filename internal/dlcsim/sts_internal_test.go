package dlcsim

import (
	"net/url"
	"testing"
	"time"
)

// A role's trust policy names its principals as RAM judges the immediate caller: a long-term key
// by its ID, a role's session by its role (role chaining, as under RRSA), never by the key that
// first assumed that role.
func TestARoleTrustsItsPrincipalsAsRAMJudgesTheCaller(t *testing.T) {
	operatorRole := "acs:ram::1:role/dlcsync-reader"
	s := New(Options{Identities: []Identity{{AccessKeyID: "ak-operator", AccessKeySecret: "sk"}, {AccessKeyID: "ak-other", AccessKeySecret: "sk"}},
		Roles: []Role{
			{Arn: operatorRole, TrustedAccessKeys: []string{"ak-operator"}},
			{Arn: "acs:ram::1:role/ml-team-dlc", TrustedRoles: []string{"ACS:RAM::1:ROLE/DLCSYNC-READER"}},
			{Arn: "acs:ram::1:role/keys-only", TrustedAccessKeys: []string{"ak-operator"}},
			{Arn: "acs:ram::1:role/open"},
		}})
	assume := func(caller *Identity, arn string) (*Identity, string) {
		form := url.Values{"RoleArn": {arn}, "RoleSessionName": {"dlcsync"}}
		got, apiErr := s.assumeRole(caller, form)
		if apiErr != nil {
			return nil, apiErr.code
		}
		return got.identity, ""
	}
	operator, _ := lookup("ak-operator", s.auth)
	other, _ := lookup("ak-other", s.auth)
	session, code := assume(operator, operatorRole)
	if code != "" || session.TokenExpiresAt == nil || !session.TokenExpiresAt.After(time.Now()) {
		t.Fatalf("the operator's key assuming its role: %s", code)
	}
	for _, c := range []struct {
		name   string
		caller *Identity
		arn    string
		want   string
	}{
		{"a role's session trusted by role", session, "acs:ram::1:role/ml-team-dlc", ""},
		{"a role's session where only keys are trusted", session, "acs:ram::1:role/keys-only", "NoPermission"},
		{"a long-term key where only a role is trusted", operator, "acs:ram::1:role/ml-team-dlc", "NoPermission"},
		{"an untrusted key", other, operatorRole, "NoPermission"},
		{"anyone, where nothing is named", other, "acs:ram::1:role/open", ""},
		{"a role that does not exist", operator, "acs:ram::1:role/gone", "EntityNotExist.Role"},
	} {
		if _, code := assume(c.caller, c.arn); code != c.want {
			t.Errorf("%s: %q, want %q", c.name, code, c.want)
		}
	}
}
