package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sms-connector/sms-connector/conformance"
)

// Exit codes.
const (
	exitPass  = 0 // no rule failed
	exitFail  = 1 // a rule failed
	exitUsage = 2 // the check could not run: bad flags or TLS files
)

// reE164 is the shape --send-to must have: "+" then 7 to 15 digits, the first not 0.
var reE164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// options are the parsed flags.
type options struct {
	addr          string
	sendTo        string
	healthService string
	tls           bool
	tlsCA         string
	tlsServerName string
	rpcTimeout    time.Duration
}

// parseFlags reads and checks args.
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("sms-conformance", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "", "the server to check: host:port, or unix:///path/to.sock (required)")
	fs.StringVar(&o.sendTo, "send-to", "", "E.164 number to send one real message to with the server's default config (e.g. +15005550006 against --sandbox); empty: the Send rules are skipped")
	fs.StringVar(&o.healthService, "health-service", "", `grpc.health.v1 service name that must be SERVING ("" is the server's overall health; a go-plugin plugin serves "plugin")`)
	fs.BoolVar(&o.tls, "tls", false, "connect with TLS, trusting the system's root certificates (implied by --tls-ca)")
	fs.StringVar(&o.tlsCA, "tls-ca", "", "PEM file of the CA certificate(s) to trust; turns TLS on")
	fs.StringVar(&o.tlsServerName, "tls-server-name", "", "server name to verify the certificate against, when it differs from the host of --addr")
	fs.DurationVar(&o.rpcTimeout, "rpc-timeout", conformance.DefaultRPCTimeout, "upper bound of each RPC")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: sms-conformance --addr HOST:PORT|unix:///path [flags]\n\n"+
			"Checks that a running gRPC server implements connector.sms.v1.SmsConnector as the contract documents it,\n"+
			"prints one line per rule and exits 0 only if no rule failed.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	case o.addr == "":
		return nil, errors.New("--addr is required: the server to check, host:port or unix:///path/to.sock")
	case o.sendTo != "" && !reE164.MatchString(o.sendTo):
		return nil, fmt.Errorf("--send-to %q is not an E.164 phone number like +15005550006", o.sendTo)
	case o.tlsServerName != "" && !o.tls && o.tlsCA == "":
		return nil, errors.New("--tls-server-name needs TLS: add --tls or --tls-ca")
	case o.rpcTimeout <= 0:
		return nil, fmt.Errorf("--rpc-timeout must be positive, got %s", o.rpcTimeout)
	}
	return o, nil
}

// transportCredentials returns plaintext, or TLS as the flags ask.
func transportCredentials(o *options) (credentials.TransportCredentials, error) {
	if !o.tls && o.tlsCA == "" {
		return insecure.NewCredentials(), nil
	}
	cfg := &tls.Config{ServerName: o.tlsServerName, MinVersion: tls.VersionTLS12}
	if o.tlsCA != "" {
		pem, err := os.ReadFile(o.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s holds no PEM certificate", o.tlsCA)
		}
		cfg.RootCAs = pool
	}
	return credentials.NewTLS(cfg), nil
}

// run is main without the process: it checks the server, prints the report and returns the
// exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitPass
	}
	if err != nil {
		fmt.Fprintf(stderr, "sms-conformance: %v\n", err)
		return exitUsage
	}
	creds, err := transportCredentials(o)
	if err != nil {
		fmt.Fprintf(stderr, "sms-conformance: %v\n", err)
		return exitUsage
	}
	cc, err := grpc.NewClient(o.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		fmt.Fprintf(stderr, "sms-conformance: --addr %q: %v\n", o.addr, err)
		return exitUsage
	}
	defer cc.Close()
	rep := conformance.Check(ctx, cc, conformance.Options{
		SendTo:        o.sendTo,
		HealthService: o.healthService,
		RPCTimeout:    o.rpcTimeout,
	})
	fmt.Fprint(stdout, rep)
	if rep.Failed() {
		return exitFail
	}
	return exitPass
}
