// Command sms-conformance checks that a running gRPC server implements the connector.sms.v1
// SmsConnector contract, whatever language it is written in: metadata, configuration
// validation, request validation, the error model (google.rpc.ErrorInfo, BadRequest) and
// grpc.health.v1; and, with --send-to, that a real message goes out with the server's default
// configuration. It is the black-box counterpart of the Go suite connectortest.
//
//	sms-conformance --addr HOST:PORT | unix:///path/to.sock [--send-to +15005550006]
//	                [--health-service NAME] [--tls | --tls-ca FILE [--tls-server-name NAME]]
//	                [--rpc-timeout 30s]
//
// It prints one line per rule (PASS, FAIL or SKIP, the rule and what was found) and a summary,
// and exits 0 when no rule failed, 1 when one did, and 2 when it could not run (bad flags).
// Without --send-to nothing is sent and the Send rules are skipped. See package conformance for
// the rules.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
