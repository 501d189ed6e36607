// Command kube-testenv runs a real Kubernetes control plane on loopback for hostready's tests:
// an embedded etcd and the genuine kube-apiserver (k8s.io/kubernetes/cmd/kube-apiserver/app),
// with generated certificates, a static admin token, RBAC on and ServiceAccount token signing
// keys so that the TokenRequest API works.
//
// Everything it needs lives in --dir: certificates and keys are generated on first start and
// reused afterwards, as is etcd's data, so stopping the process and starting it again with the
// same --dir and --port is an API-server restart with the cluster's state intact (the agent's
// fault tests rely on that). Once /readyz answers ok it writes <dir>/kubeconfig (atomically),
// which is how scripts/kube-testenv knows it is up.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	_ "time/tzdata"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	dir := flag.String("dir", "", "state directory (certificates, etcd data, kubeconfig)")
	port := flag.Int("port", 0, "kube-apiserver secure port on 127.0.0.1 (0: reuse the saved one, or pick a free one)")
	verbosity := flag.Int("v", 0, "kube-apiserver log verbosity")
	parent := flag.Int("parent-pid", 0, "exit when this process is gone (a test that crashed cannot leak the control plane)")
	flag.Parse()
	if *dir == "" {
		fatal(fmt.Errorf("--dir is required"))
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		fatal(err)
	}
	*dir = abs
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		fatal(err)
	}
	apiPort, etcdPort, peerPort, err := ports(*dir, *port)
	if err != nil {
		fatal(err)
	}
	token, err := ensureCredentials(*dir)
	if err != nil {
		fatal(err)
	}
	// A stale kubeconfig from an earlier run must not be mistaken for readiness.
	_ = os.Remove(filepath.Join(*dir, "kubeconfig"))

	etcd, err := startEtcd(filepath.Join(*dir, "etcd"), etcdPort, peerPort)
	if err != nil {
		fatal(fmt.Errorf("etcd: %w", err))
	}
	defer etcd.Close()

	go waitReadyAndWriteKubeconfig(*dir, apiPort, token)
	if *parent > 0 {
		go watchParent(*parent)
	}

	cmd := app.NewAPIServerCommand()
	cmd.SetArgs([]string{
		"--etcd-servers=" + fmt.Sprintf("http://127.0.0.1:%d", etcdPort),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		// The default reconciler refuses a loopback address; there is one server anyway.
		"--endpoint-reconciler-type=none",
		"--secure-port=" + strconv.Itoa(apiPort),
		"--tls-cert-file=" + filepath.Join(*dir, "serving.crt"),
		"--tls-private-key-file=" + filepath.Join(*dir, "serving.key"),
		"--client-ca-file=" + filepath.Join(*dir, "ca.crt"),
		"--token-auth-file=" + filepath.Join(*dir, "tokens.csv"),
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + filepath.Join(*dir, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(*dir, "sa.key"),
		"--service-cluster-ip-range=10.96.0.0/24",
		"--allow-privileged=true",
		"--profiling=false",
		// Keep the footprint small: the tests share two cores with everything else.
		"--enable-priority-and-fairness=false",
		"--v=" + strconv.Itoa(*verbosity),
	})
	code := cli.Run(cmd)
	etcd.Close()
	os.Exit(code)
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "kube-testenv: %v\n", err)
	os.Exit(2)
}

// ports returns the API server, etcd client and etcd peer ports, saved in <dir>/ports so a
// restart listens where clients already point.
func ports(dir string, want int) (int, int, int, error) {
	path := filepath.Join(dir, "ports")
	var api, client, peer int
	if b, err := os.ReadFile(path); err == nil {
		if _, err := fmt.Sscanf(string(b), "%d %d %d", &api, &client, &peer); err != nil {
			return 0, 0, 0, fmt.Errorf("%s: %w", path, err)
		}
	}
	if want != 0 {
		api = want
	}
	var err error
	for _, p := range []*int{&api, &client, &peer} {
		if *p == 0 {
			if *p, err = freePort(); err != nil {
				return 0, 0, 0, err
			}
		}
	}
	return api, client, peer, os.WriteFile(path, []byte(fmt.Sprintf("%d %d %d\n", api, client, peer)), 0o600)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startEtcd(dir string, clientPort, peerPort int) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Name = "kube-testenv"
	cfg.Dir = dir
	cfg.LogLevel = "error"
	cu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", clientPort))
	pu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", peerPort))
	cfg.ListenClientUrls = []url.URL{*cu}
	cfg.AdvertiseClientUrls = []url.URL{*cu}
	cfg.ListenPeerUrls = []url.URL{*pu}
	cfg.AdvertisePeerUrls = []url.URL{*pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.QuotaBackendBytes = 2 << 30
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, fmt.Errorf("not ready after 60s")
	}
}

// ensureCredentials creates, once, the CA, the serving certificate, the ServiceAccount signing
// key pair and the static token file; it returns the admin token.
func ensureCredentials(dir string) (string, error) {
	tokPath := filepath.Join(dir, "admin.token")
	if b, err := os.ReadFile(tokPath); err == nil && len(b) > 0 {
		return string(b), nil
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kube-testenv-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return "", err
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return "", err
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	token := hex.EncodeToString(raw)
	files := map[string][]byte{
		"ca.crt":      pemBlock("CERTIFICATE", caDER),
		"serving.crt": pemBlock("CERTIFICATE", srvDER),
		"serving.key": ecKeyPEM(srvKey),
		"sa.key":      pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(saKey)),
		"sa.pub":      pemBlock("PUBLIC KEY", saPub),
		// token,user,uid,"groups": the admin is in system:masters, which RBAC always allows.
		"tokens.csv": []byte(fmt.Sprintf("%s,kube-testenv-admin,kube-testenv-admin,\"system:masters\"\n", token)),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return "", err
		}
	}
	// Written last: its presence means all the others are complete.
	return token, os.WriteFile(tokPath, []byte(token), 0o600)
}

func pemBlock(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}

func ecKeyPEM(k *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		fatal(err)
	}
	return pemBlock("EC PRIVATE KEY", der)
}

// waitReadyAndWriteKubeconfig polls /readyz as the admin and writes the kubeconfig once the
// server answers 200, so that its existence means "ready".
func waitReadyAndWriteKubeconfig(dir string, port int, token string) {
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	server := fmt.Sprintf("https://127.0.0.1:%d", port)
	for {
		req, _ := http.NewRequest("GET", server+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: kube-testenv
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: kube-testenv
  context:
    cluster: kube-testenv
    user: admin
current-context: kube-testenv
`, server, filepath.Join(dir, "ca.crt"), token)
	tmp := filepath.Join(dir, "kubeconfig.tmp")
	if err := os.WriteFile(tmp, []byte(kc), 0o600); err != nil {
		fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "kubeconfig")); err != nil {
		fatal(err)
	}
	fmt.Fprintf(os.Stderr, "kube-testenv: ready at %s\n", server)
}

// watchParent ends this process (SIGTERM to itself, so the API server shuts down as usual)
// once pid is gone.
func watchParent(pid int) {
	for {
		time.Sleep(time.Second)
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
			fmt.Fprintf(os.Stderr, "kube-testenv: parent %d is gone, stopping\n", pid)
			_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
			time.Sleep(15 * time.Second)
			os.Exit(1)
		}
	}
}
