package controllers

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
)

// RolePolicy says which RAM roles the JobQueries of each namespace may assume with the
// operator's own credentials. The operator's identity is trusted by every team's role, so
// without it any namespace could name another team's role and read its jobs.
type RolePolicy map[string][]string

// ParseRolePolicy reads --assumable-roles: comma-separated namespace=pattern pairs, a pattern
// being a role ARN in which * matches any run of characters (acs:ram::123456789012:role/ml-*).
// A namespace may appear in several pairs.
func ParseRolePolicy(flag string) (RolePolicy, error) {
	policy := RolePolicy{}
	for _, pair := range strings.Split(flag, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		namespace, pattern, ok := strings.Cut(pair, "=")
		if !ok || namespace == "" || !rolePattern.MatchString(pattern) {
			return nil, fmt.Errorf("--assumable-roles: %q is not namespace=acs:ram::<account ID>:role/<name pattern>: "+
				"the account is digits, the name letters, digits, '.', '-' and '*'", pair)
		}
		// Lower case, as Allows compares: RAM matches role names without regard to case.
		policy[namespace] = append(policy[namespace], strings.ToLower(pattern))
	}
	return policy, nil
}

// rolePattern is what --assumable-roles accepts as a role: the account written out, so that no
// pattern reaches another account's roles, and * only in the role's name.
var rolePattern = regexp.MustCompile(`^acs:ram::[0-9]+:role/[A-Za-z0-9.*-]+$`)

// ValidateSTSEndpoint checks --sts-endpoint: a host[:port] (credentials-go always calls it over
// HTTPS), nothing else, so that a scheme or a path typed into it stops the manager at start
// instead of failing every assumed role's sync.
func ValidateSTSEndpoint(endpoint string) error {
	if endpoint == "" {
		return nil
	}
	u, err := url.Parse("https://" + endpoint)
	if err != nil || u.Host != endpoint || u.User != nil || u.Hostname() == "" {
		return fmt.Errorf("--sts-endpoint %q: want host[:port], e.g. sts-vpc.cn-hangzhou.aliyuncs.com", endpoint)
	}
	return nil
}

// Allows reports whether a JobQuery of namespace may assume the role arn. path.Match's *
// stops at '/', which neither a pattern's nor a roleArn's role name may contain (rolePattern and
// the CRD's pattern), so it matches any run of the name's characters; a malformed pattern, the
// only error, cannot pass rolePattern.
func (p RolePolicy) Allows(namespace, arn string) bool {
	arn = strings.ToLower(arn)
	for _, pattern := range p[namespace] {
		if ok, _ := path.Match(pattern, arn); ok {
			return true
		}
	}
	return false
}
