package controllers

import (
	"fmt"
	"regexp"
	"strings"
)

// RolePolicy says which RAM roles the JobQueries of each namespace may assume with the
// operator's own credentials. The operator's identity is trusted by every team's role, so
// without it any namespace could name another team's role and read its jobs.
type RolePolicy map[string][]*regexp.Regexp

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
		if !ok || namespace == "" || !strings.HasPrefix(pattern, "acs:ram::") {
			return nil, fmt.Errorf("--assumable-roles: %q is not namespace=acs:ram::<account>:role/<name pattern>", pair)
		}
		parts := strings.Split(pattern, "*")
		for i := range parts {
			parts[i] = regexp.QuoteMeta(parts[i])
		}
		// RAM matches role names without regard to case, and ARNs name roles in lower case.
		re, err := regexp.Compile("(?i)^" + strings.Join(parts, ".*") + "$")
		if err != nil {
			return nil, fmt.Errorf("--assumable-roles: %q: %w", pair, err)
		}
		policy[namespace] = append(policy[namespace], re)
	}
	return policy, nil
}

// Allows reports whether a JobQuery of namespace may assume the role arn.
func (p RolePolicy) Allows(namespace, arn string) bool {
	for _, re := range p[namespace] {
		if re.MatchString(arn) {
			return true
		}
	}
	return false
}
