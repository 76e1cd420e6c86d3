// Command dlcsim serves a simulated PAI-DLC ListJobs API (GET /api/v1/jobs, version 2020-12-03)
// for tests, demos and offline development. See docs/dlcsim.md.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"

	"github.com/dlcsync/dlcsync/internal/dlcsim"
	"github.com/dlcsync/dlcsync/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dlcsim:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends.
// simFlags are the command line of dlcsim.
type simFlags struct {
	listen, credentialsFile, rolesFile, accessKeyID, accessKeySecret, userID, jobsFile, faults, tlsCert, tlsKey string
	generate                                                                                                    int
	seed                                                                                                        uint64
	lifecycle, updateFinished, control, noNonce, showOwnDefault, omitEmpty, showVersion                         bool
	submitRate, pace, updateRate                                                                                float64
	tick, maxSkew                                                                                               time.Duration
}

// newFlagSet defines dlcsim's flags into f.
func newFlagSet(f *simFlags) *pflag.FlagSet {
	fs := pflag.NewFlagSet("dlcsim", pflag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "dlcsim serves a simulated PAI-DLC ListJobs API (GET /api/v1/jobs, 2020-12-03).\n\n"+
			"Usage: dlcsim [flags]\n\nExample: dlcsim --generate 1000 --lifecycle --control\n\nFlags:\n%s", fs.FlagUsages())
	}
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8080", "address to serve on")
	fs.StringVar(&f.credentialsFile, "credentials-file", "",
		"YAML or JSON list of identities: accessKeyId, accessKeySecret, securityToken (optional), userId, username, admin, allowListJobs")
	fs.StringVar(&f.rolesFile, "roles-file", "",
		"YAML or JSON list of RAM roles the simulated STS (AssumeRole on /, served on the same address; use --tls-cert, STS is HTTPS only) "+
			"lets identities assume: arn, userId, username, admin, workspaces, trustedAccessKeys, trustedRoles, maxSessionDurationSeconds")
	fs.StringVar(&f.accessKeyID, "access-key-id", "", "AccessKey ID of a single admin identity (with --access-key-secret)")
	fs.StringVar(&f.accessKeySecret, "access-key-secret", "", "AccessKey secret of that identity")
	fs.StringVar(&f.userID, "user-id", "1557702098194903", "user ID of the --access-key-id identity")
	fs.StringVar(&f.jobsFile, "jobs-file", "", "jobs to serve: a JSON array of JobItem objects or a saved ListJobs response body")
	fs.IntVar(&f.generate, "generate", 0, "add this many synthetic jobs created over the last 30 days")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of generated data, lifecycles and injected faults")
	fs.BoolVar(&f.lifecycle, "lifecycle", false, "move jobs through their states over time and submit new jobs")
	fs.Float64Var(&f.submitRate, "submit-per-minute", 6, "with --lifecycle: new jobs per minute")
	fs.Float64Var(&f.pace, "pace", 1, "with --lifecycle: scale of the time jobs spend in each state (1: seconds to minutes)")
	fs.DurationVar(&f.tick, "tick", time.Second, "with --lifecycle: how often the lifecycle advances")
	fs.Float64Var(&f.updateRate, "updates-per-minute", 0,
		"with --lifecycle: UpdateJob-like changes per minute (accessibility, images, spot, node assignment, priority) to unfinished jobs")
	fs.BoolVar(&f.updateFinished, "update-finished", false, "with --updates-per-minute: finished jobs may be updated too")
	fs.StringVar(&f.faults, "faults", "",
		`faults injected from the start, as the JSON of PUT /_sim/faults (or @file), e.g. '{"totalCount":"less","oversizePage":5}'`)
	fs.BoolVar(&f.control, "control", false, "serve the /_sim/ control API (jobs, faults, stats; see docs/dlcsim.md)")
	fs.DurationVar(&f.maxSkew, "max-clock-skew", 15*time.Minute,
		"largest accepted difference between a request's date and the server clock (negative: unchecked)")
	fs.BoolVar(&f.noNonce, "disable-nonce-check", false, "accept replayed signature nonces")
	fs.BoolVar(&f.showOwnDefault, "show-own-default", true, "ShowOwn applied when a request omits it (the API metadata says true)")
	fs.BoolVar(&f.omitEmpty, "omit-empty-jobs", false, "answer an empty page without a Jobs field instead of \"Jobs\": []")
	fs.BoolVar(&f.showVersion, "version", false, "print the version and exit")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "serve HTTPS with this PEM certificate (chain) file, with --tls-key")
	fs.StringVar(&f.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	return fs
}

func run(ctx context.Context, args []string) error {
	f := &simFlags{}
	if err := newFlagSet(f).Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	if f.showVersion {
		fmt.Println(version.Version)
		return nil
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	identities, err := loadIdentities(f.credentialsFile, f.accessKeyID, f.accessKeySecret, f.userID)
	if err != nil {
		return err
	}
	roles, err := loadRoles(f.rolesFile)
	if err != nil {
		return err
	}
	sim, err := buildSimulator(f, identities, roles)
	if err != nil {
		return err
	}
	if f.lifecycle {
		sim.EnableLifecycle(dlcsim.Lifecycle{SubmitPerMinute: f.submitRate, Pace: f.pace, UpdatesPerMinute: f.updateRate,
			UpdateFinished: f.updateFinished})
		go sim.RunLifecycle(ctx, f.tick)
	}
	return serve(ctx, f, sim, identities)
}

// buildSimulator makes the simulator the flags describe: its identities, jobs loaded or
// generated, and faults from the start.
func buildSimulator(f *simFlags, identities []dlcsim.Identity, roles []dlcsim.Role) (*dlcsim.Server, error) {
	showOwnDefault := f.showOwnDefault
	sim := dlcsim.New(dlcsim.Options{
		Identities: identities, MaxClockSkew: f.maxSkew, DisableNonceCheck: f.noNonce,
		ShowOwnDefault: &showOwnDefault, OmitEmptyJobs: f.omitEmpty, Control: f.control, Seed: f.seed, Roles: roles,
	})
	if f.jobsFile != "" {
		file, err := os.Open(f.jobsFile)
		if err != nil {
			return nil, err
		}
		n, err := sim.LoadJobs(file)
		_ = file.Close()
		if err != nil {
			return nil, fmt.Errorf("loading %s: %w", f.jobsFile, err)
		}
		fmt.Fprintf(os.Stderr, "dlcsim: loaded %d jobs from %s\n", n, f.jobsFile)
	}
	if f.faults != "" {
		faults, err := parseFaults(f.faults)
		if err != nil {
			return nil, err
		}
		sim.SetFaults(faults)
	}
	if f.generate > 0 {
		sim.Generate(f.generate)
		fmt.Fprintf(os.Stderr, "dlcsim: generated %d jobs (seed %d)\n", f.generate, f.seed)
	}
	return sim, nil
}

// serve answers on the listen address, over TLS with --tls-cert, until ctx ends.
func serve(ctx context.Context, f *simFlags, sim *dlcsim.Server, identities []dlcsim.Identity) error {
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	ids := make([]string, 0, len(identities))
	for _, id := range identities {
		ids = append(ids, id.AccessKeyID)
	}
	scheme := "http"
	if f.tlsCert != "" {
		scheme = "https"
	}
	fmt.Fprintf(os.Stderr, "dlcsim %s: serving ListJobs on %s://%s (identities: %s; control API: %v)\n",
		version.Version, scheme, ln.Addr(), strings.Join(ids, ", "), f.control)
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	start := func() error { return srv.Serve(ln) }
	if f.tlsCert != "" {
		// The files are read here, so a bad pair fails at start rather than at the first request.
		if _, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey); err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		start = func() error { return srv.ServeTLS(ln, f.tlsCert, f.tlsKey) }
	}
	if err := start(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// readList reads a YAML or JSON list of T from file (what names the items in errors), and
// checks each with valid.
func readList[T any](file, what string, valid func(T) error) ([]T, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	jsonData, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var items []T
	if err := json.Unmarshal(jsonData, &items); err != nil {
		return nil, fmt.Errorf("%s: want a list, each item a %s: %w", file, what, err)
	}
	for i, item := range items {
		if err := valid(item); err != nil {
			return nil, fmt.Errorf("%s: %s %d %w", file, what, i, err)
		}
	}
	return items, nil
}

// loadRoles reads --roles-file: the RAM roles the simulated STS hands out credentials for.
func loadRoles(file string) ([]dlcsim.Role, error) {
	if file == "" {
		return nil, nil
	}
	return readList(file, "role", func(r dlcsim.Role) error {
		if !strings.HasPrefix(r.Arn, "acs:ram::") {
			return errors.New("needs an arn acs:ram::<account>:role/<name>")
		}
		return nil
	})
}

// loadIdentities reads --credentials-file, or builds the one admin identity of the key flags, or
// falls back to the well-known test key of the API reference's examples.
func loadIdentities(file, akID, secret, userID string) ([]dlcsim.Identity, error) {
	switch {
	case file != "":
		return readList(file, "identity", func(id dlcsim.Identity) error {
			if id.AccessKeyID == "" || id.AccessKeySecret == "" {
				return errors.New("needs accessKeyId and accessKeySecret")
			}
			return nil
		})
	case akID != "" || secret != "":
		if akID == "" || secret == "" {
			return nil, errors.New("--access-key-id and --access-key-secret go together")
		}
		return []dlcsim.Identity{{AccessKeyID: akID, AccessKeySecret: secret, UserID: userID, Username: "admin", Admin: true}}, nil
	}
	fmt.Fprintln(os.Stderr, "dlcsim: no identity given; accepting the test key testid/testsecret (admin)")
	return []dlcsim.Identity{{AccessKeyID: "testid", AccessKeySecret: "testsecret", UserID: userID, Username: "admin", Admin: true}}, nil
}

// parseFaults reads --faults: the JSON of PUT /_sim/faults, inline or from @file. Unknown fields
// are refused, as the control API does.
func parseFaults(v string) (dlcsim.Faults, error) {
	data := []byte(v)
	if name, ok := strings.CutPrefix(v, "@"); ok {
		var err error
		if data, err = os.ReadFile(name); err != nil {
			return dlcsim.Faults{}, fmt.Errorf("--faults: %w", err)
		}
	}
	var f dlcsim.Faults
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return dlcsim.Faults{}, fmt.Errorf("--faults: %w", err)
	}
	if err := f.Validate(); err != nil {
		return dlcsim.Faults{}, fmt.Errorf("--faults: %w", err)
	}
	return f, nil
}
