package controllers

import "testing"

func TestTheRolePolicyAllowsOnlyTheListedNamespacesRoles(t *testing.T) {
	policy, err := ParseRolePolicy("ml-team=acs:ram::123:role/ml-*, ml-team=acs:ram::123:role/shared,cv-team=acs:ram::123:role/cv.team")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		namespace, arn string
		allowed        bool
	}{
		{"ml-team", "acs:ram::123:role/ml-team-dlc", true},
		{"ml-team", "acs:ram::123:role/ML-Team-DLC", true},
		{"ml-team", "acs:ram::123:role/shared", true},
		{"ml-team", "acs:ram::123:role/cv.team", false},
		{"cv-team", "acs:ram::123:role/cv.team", true},
		{"ml-team", "acs:ram::999:role/ml-team-dlc", false},
		{"ml-team", "acs:ram::123:role/shared-admin", false},
		{"cv-team", "acs:ram::123:role/ml-team-dlc", false},
		{"other", "acs:ram::123:role/shared", false},
		// A dot in a pattern is a dot, not any character.
		{"cv-team", "acs:ram::123:role/cvxteam", false},
	} {
		if got := policy.Allows(c.namespace, c.arn); got != c.allowed {
			t.Errorf("Allows(%s, %s) = %v, want %v", c.namespace, c.arn, got, c.allowed)
		}
	}
	for _, bad := range []string{"ml-team", "=acs:ram::1:role/x", "ml-team=role/x",
		"ml-team=acs:ram::*:role/ml-team", "ml-team=acs:ram::1*:role/x", "ml-team=acs:ram::1:role/x/y"} {
		if _, err := ParseRolePolicy(bad); err == nil {
			t.Errorf("ParseRolePolicy(%q) accepted", bad)
		}
	}
}

func TestTheSTSEndpointIsAHostAndPortOnly(t *testing.T) {
	for _, good := range []string{"", "sts.aliyuncs.com", "sts-vpc.cn-hangzhou.aliyuncs.com", "127.0.0.1:8443"} {
		if err := ValidateSTSEndpoint(good); err != nil {
			t.Errorf("%q refused: %v", good, err)
		}
	}
	for _, bad := range []string{"https://sts.aliyuncs.com", "sts.aliyuncs.com/path", "user@sts.aliyuncs.com", "sts.aliyuncs.com?x=1",
		"sts.aliyuncs.com#f", ":443"} {
		if err := ValidateSTSEndpoint(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
