// Command sms-connector serves the Twilio SMS connector over gRPC (connector.sms.v1.SmsConnector).
//
// It listens on TCP or a unix socket, with health and reflection always on. Without a Twilio
// account, --sandbox starts the built-in Twilio emulator on loopback and serves against it, so
// every RPC can be tried with grpcurl. Every flag can also be set by an SMS_CONNECTOR_* variable
// (--log-level: SMS_CONNECTOR_LOG_LEVEL); a flag on the command line wins.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	os.Exit(code)
}
