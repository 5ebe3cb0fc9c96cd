package smsplugin

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"time"
)

// certLifetime is how long the plugin's one-time certificate is valid: as go-plugin's, so long
// that a plugin process never outlives it.
const certLifetime = 262980 * time.Hour // 30 years

// autoMTLS is the plugin's side of go-plugin's AutoMTLS: a TLS configuration that presents a
// fresh self-signed certificate and requires a client certificate signed by the host's
// (clientCertPEM, from PLUGIN_CLIENT_CERT), and the certificate for the handshake line: base64
// of its DER bytes without padding.
func autoMTLS(clientCertPEM string) (*tls.Config, string, error) {
	hosts := x509.NewCertPool()
	if !hosts.AppendCertsFromPEM([]byte(clientCertPEM)) {
		return nil, "", fmt.Errorf("%s holds no PEM certificate: the host must pass its own certificate for AutoMTLS", EnvClientCert)
	}
	cert, err := selfSignedCert()
	if err != nil {
		return nil, "", fmt.Errorf("AutoMTLS: %w", err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    hosts,
		MinVersion:   tls.VersionTLS12,
	}
	return cfg, base64.RawStdEncoding.EncodeToString(cert.Certificate[0]), nil
}

// selfSignedCert makes the plugin's one-time certificate the way go-plugin does, so its host
// accepts it: "localhost" (go-plugin's host checks that name), usable for server and client
// authentication, and its own CA (the host trusts exactly this certificate). The key is ECDSA
// P-256.
func selfSignedCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate key: %w", err)
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("serial number: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"sms-connector plugin"}},
		DNSNames:              []string{"localhost"},
		NotBefore:             now.Add(-30 * time.Second),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
