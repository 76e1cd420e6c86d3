package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadIdentitiesFromAYAMLFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ids.yaml")
	data := `
- accessKeyId: alice-key
  accessKeySecret: alice-secret
  userId: "1"
  username: alice
- accessKeyId: STS.key
  accessKeySecret: sts-secret
  securityToken: CAIS-token
  userId: "2"
  admin: true
  allowListJobs: false
`
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	ids, err := loadIdentities(path, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 || ids[0].Username != "alice" || ids[1].SecurityToken != "CAIS-token" || !ids[1].Admin ||
		ids[1].AllowListJobs == nil || *ids[1].AllowListJobs {
		t.Fatalf("identities: %+v", ids)
	}
	if err := os.WriteFile(path, []byte("- accessKeyId: no-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadIdentities(path, "", "", ""); err == nil {
		t.Fatal("an identity without a secret was accepted")
	}
	single, err := loadIdentities("", "k", "s", "9")
	if err != nil || len(single) != 1 || !single[0].Admin || single[0].UserID != "9" {
		t.Fatalf("flags: %+v %v", single, err)
	}
	if _, err := loadIdentities("", "k", "", ""); err == nil {
		t.Fatal("--access-key-id without a secret was accepted")
	}
}

func TestFaultsFlagTakesTheControlAPIJSONInlineOrFromAFile(t *testing.T) {
	f, err := parseFaults(`{"totalCount":"omit","oversizePage":5,"shuffleTies":true,"pageDelay":"2s","hang":true,"padMB":200,"tinyJobs":200000,"liveDuration":true}`)
	if err != nil || f.TotalCount != "omit" || f.OversizePage != 5 || !f.ShuffleTies || time.Duration(f.PageDelay) != 2*time.Second ||
		!f.Hang || f.PadMB != 200 || f.TinyJobs != 200000 || !f.LiveDuration {
		t.Fatalf("inline: %+v %v", f, err)
	}
	path := filepath.Join(t.TempDir(), "faults.json")
	if err := os.WriteFile(path, []byte(`{"totalCount":"more","totalCountBy":3}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if f, err := parseFaults("@" + path); err != nil || f.TotalCount != "more" || f.TotalCountBy != 3 {
		t.Fatalf("from a file: %+v %v", f, err)
	}
	for _, bad := range []string{`{"noSuchFault":1}`, `{"totalCount":"sometimes"}`, `{"tinyJobs":-1}`, "@/no/such/file"} {
		if _, err := parseFaults(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestTLSFlagsServeHTTPS starts dlcsim with --tls-cert/--tls-key and expects an API answer over
// HTTPS from a client that trusts only that certificate.
func TestTLSFlagsServeHTTPS(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"--tls-cert", certFile}); err == nil || !strings.Contains(err.Error(), "go together") {
		t.Fatalf("--tls-cert without --tls-key: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--listen", addr, "--tls-cert", certFile, "--tls-key", keyFile, "--control"})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}, Timeout: 5 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.Get("https://" + addr + "/_sim/stats")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.TLS == nil {
				t.Fatalf("GET /_sim/stats over HTTPS: %s, TLS %v", resp.Status, resp.TLS != nil)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no HTTPS answer within 10s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// selfSigned makes a certificate for 127.0.0.1 and its key, in PEM.
func selfSigned(t *testing.T) ([]byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dlcsim"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

func TestLoadRolesFromAYAMLFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "roles.yaml")
	if err := os.WriteFile(good, []byte(`- arn: acs:ram::1557702098194903:role/ml-team-dlc
  userId: "3001"
  username: ml-team-dlc
  admin: true
  trustedAccessKeys: [ak-operator]
  maxSessionDurationSeconds: 7200
`), 0o600); err != nil {
		t.Fatal(err)
	}
	roles, err := loadRoles(good)
	if err != nil || len(roles) != 1 || !roles[0].Admin || roles[0].TrustedAccessKeys[0] != "ak-operator" || roles[0].MaxSessionDurationSeconds != 7200 {
		t.Fatalf("loadRoles: %+v, %v", roles, err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("- arn: ml-team-dlc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadRoles(bad); err == nil || !strings.Contains(err.Error(), "arn") {
		t.Errorf("a role without an ARN: %v", err)
	}
}
