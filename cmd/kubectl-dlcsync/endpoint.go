package main

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/dlcsync/dlcsync/internal/dlc"
	"github.com/dlcsync/dlcsync/internal/endpoints"
)

// previewEndpoint decides where preview may send the user's credentials: every request carries
// the AccessKey ID, a signature and any STS token, and the default credential chain may hand out
// an ECS RAM role's. A manifest is often someone else's (a pull request under review), so its
// spec.endpoint gets the manager's default policy, PAI-DLC's official HTTPS hosts only; any other
// endpoint must be named by the user on the command line (--endpoint), and plain http only on
// loopback, where nothing on the network can read the request.
func previewEndpoint(regionID, specEndpoint, flagEndpoint string) (string, error) {
	if flagEndpoint != "" {
		if err := checkExplicitEndpoint(flagEndpoint); err != nil {
			return "", err
		}
		return flagEndpoint, nil
	}
	var none endpoints.Policy
	if specEndpoint != "" {
		if err := none.Check(specEndpoint); err != nil {
			return "", fmt.Errorf("%w: preview sends your credentials only to a PAI-DLC HTTPS endpoint "+
				"(https://pai-dlc[-vpc].<region>.aliyuncs.com), and the manifest's spec.endpoint %q is not one; "+
				"if you trust that host, name it yourself with --endpoint", endpoints.ErrNotAllowed, specEndpoint)
		}
		return specEndpoint, nil
	}
	// Without --local nothing has checked spec.regionId against the CRD's pattern; the
	// host it makes must be an official one too ("x.evil.example#" would make another).
	host, protocol, err := dlc.ResolveEndpoint(regionID, "")
	if err != nil {
		return "", fmt.Errorf("spec.regionId: %w", err)
	}
	if err := none.Check(protocol + "://" + host); err != nil {
		return "", fmt.Errorf("%w: spec.regionId %q does not name a PAI-DLC endpoint", endpoints.ErrNotAllowed, regionID)
	}
	return "", nil
}

// checkExplicitEndpoint accepts an endpoint the user typed: any HTTPS origin, and plain http
// only on a loopback host.
func checkExplicitEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("%w: --endpoint %q is not a URL", endpoints.ErrNotAllowed, endpoint)
	}
	// Userinfo would send the request to another host than the one a reader sees
	// ("https://pai-dlc.cn-hangzhou.aliyuncs.com@evil.example").
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || (u.Path != "" && u.Path != "/") ||
		u.Hostname() == "" {
		return fmt.Errorf("%w: --endpoint %q must be scheme://host[:port] without user, path, query or fragment",
			endpoints.ErrNotAllowed, endpoint)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%w: --endpoint %q is plain http: anyone on the path could read your credentials; "+
			"use https, or http only on loopback (127.0.0.0/8, ::1, localhost)", endpoints.ErrNotAllowed, endpoint)
	}
	return fmt.Errorf("%w: --endpoint %q: want https://host[:port] or http://<loopback>[:port]", endpoints.ErrNotAllowed, endpoint)
}

// isLoopback reports whether host is a loopback IP literal or localhost.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
