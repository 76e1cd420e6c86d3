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
func run(ctx context.Context, args []string) error {
	fs := pflag.NewFlagSet("dlcsim", pflag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "dlcsim serves a simulated PAI-DLC ListJobs API (GET /api/v1/jobs, 2020-12-03).\n\n"+
			"Usage: dlcsim [flags]\n\nExample: dlcsim --generate 1000 --lifecycle --control\n\nFlags:\n%s", fs.FlagUsages())
	}
	var (
		listen          = fs.String("listen", "127.0.0.1:8080", "address to serve on")
		credentialsFile = fs.String("credentials-file", "",
			"YAML or JSON list of identities: accessKeyId, accessKeySecret, securityToken (optional), userId, username, admin, allowListJobs")
		accessKeyID     = fs.String("access-key-id", "", "AccessKey ID of a single admin identity (with --access-key-secret)")
		accessKeySecret = fs.String("access-key-secret", "", "AccessKey secret of that identity")
		userID          = fs.String("user-id", "1557702098194903", "user ID of the --access-key-id identity")
		jobsFile        = fs.String("jobs-file", "", "jobs to serve: a JSON array of JobItem objects or a saved ListJobs response body")
		generate        = fs.Int("generate", 0, "add this many synthetic jobs created over the last 30 days")
		seed            = fs.Uint64("seed", 1, "seed of generated data, lifecycles and injected faults")
		lifecycle       = fs.Bool("lifecycle", false, "move jobs through their states over time and submit new jobs")
		submitRate      = fs.Float64("submit-per-minute", 6, "with --lifecycle: new jobs per minute")
		pace            = fs.Float64("pace", 1, "with --lifecycle: scale of the time jobs spend in each state (1: seconds to minutes)")
		tick            = fs.Duration("tick", time.Second, "with --lifecycle: how often the lifecycle advances")
		updateRate      = fs.Float64("updates-per-minute", 0,
			"with --lifecycle: UpdateJob-like changes per minute (accessibility, images, spot, node assignment, priority) to unfinished jobs")
		updateFinished = fs.Bool("update-finished", false, "with --updates-per-minute: finished jobs may be updated too")
		faults         = fs.String("faults", "",
			`faults injected from the start, as the JSON of PUT /_sim/faults (or @file), e.g. '{"totalCount":"less","oversizePage":5}'`)
		control = fs.Bool("control", false, "serve the /_sim/ control API (jobs, faults, stats; see docs/dlcsim.md)")
		maxSkew = fs.Duration("max-clock-skew", 15*time.Minute,
			"largest accepted difference between a request's date and the server clock (negative: unchecked)")
		noNonce        = fs.Bool("disable-nonce-check", false, "accept replayed signature nonces")
		showOwnDefault = fs.Bool("show-own-default", true, "ShowOwn applied when a request omits it (the API metadata says true)")
		omitEmpty      = fs.Bool("omit-empty-jobs", false, "answer an empty page without a Jobs field instead of \"Jobs\": []")
		showVersion    = fs.Bool("version", false, "print the version and exit")
		tlsCert        = fs.String("tls-cert", "", "serve HTTPS with this PEM certificate (chain) file, with --tls-key")
		tlsKey         = fs.String("tls-key", "", "PEM private key of --tls-cert")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	if *showVersion {
		fmt.Println(version.Version)
		return nil
	}

	if (*tlsCert == "") != (*tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	identities, err := loadIdentities(*credentialsFile, *accessKeyID, *accessKeySecret, *userID)
	if err != nil {
		return err
	}
	sim := dlcsim.New(dlcsim.Options{
		Identities: identities, MaxClockSkew: *maxSkew, DisableNonceCheck: *noNonce,
		ShowOwnDefault: showOwnDefault, OmitEmptyJobs: *omitEmpty, Control: *control, Seed: *seed,
	})
	if *jobsFile != "" {
		f, err := os.Open(*jobsFile)
		if err != nil {
			return err
		}
		n, err := sim.LoadJobs(f)
		_ = f.Close()
		if err != nil {
			return fmt.Errorf("loading %s: %w", *jobsFile, err)
		}
		fmt.Fprintf(os.Stderr, "dlcsim: loaded %d jobs from %s\n", n, *jobsFile)
	}
	if *faults != "" {
		f, err := parseFaults(*faults)
		if err != nil {
			return err
		}
		sim.SetFaults(f)
	}
	if *generate > 0 {
		sim.Generate(*generate)
		fmt.Fprintf(os.Stderr, "dlcsim: generated %d jobs (seed %d)\n", *generate, *seed)
	}

	if *lifecycle {
		sim.EnableLifecycle(dlcsim.Lifecycle{SubmitPerMinute: *submitRate, Pace: *pace, UpdatesPerMinute: *updateRate,
			UpdateFinished: *updateFinished})
		go sim.RunLifecycle(ctx, *tick)
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	ids := make([]string, 0, len(identities))
	for _, id := range identities {
		ids = append(ids, id.AccessKeyID)
	}
	scheme := "http"
	if *tlsCert != "" {
		scheme = "https"
	}
	fmt.Fprintf(os.Stderr, "dlcsim %s: serving ListJobs on %s://%s (identities: %s; control API: %v)\n",
		version.Version, scheme, ln.Addr(), strings.Join(ids, ", "), *control)
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	serve := func() error { return srv.Serve(ln) }
	if *tlsCert != "" {
		// Note: the files are read here, so a bad pair fails at start rather than at the first request.
		if _, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey); err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		serve = func() error { return srv.ServeTLS(ln, *tlsCert, *tlsKey) }
	}
	if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// loadIdentities reads --credentials-file, or builds the one admin identity of the key flags, or
// falls back to the well-known test key of the API reference's examples.
func loadIdentities(file, akID, secret, userID string) ([]dlcsim.Identity, error) {
	switch {
	case file != "":
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		jsonData, err := yaml.YAMLToJSON(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		var ids []dlcsim.Identity
		if err := json.Unmarshal(jsonData, &ids); err != nil {
			return nil, fmt.Errorf("%s: want a list of identities: %w", file, err)
		}
		for i, id := range ids {
			if id.AccessKeyID == "" || id.AccessKeySecret == "" {
				return nil, fmt.Errorf("%s: identity %d needs accessKeyId and accessKeySecret", file, i)
			}
		}
		return ids, nil
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
