package connector

import "context"

// The transports a send can come through, as WithTransport records them and the metrics label
// them (the transport label of sms_connector_messages_total and
// sms_connector_rate_limit_refusals_total).
const (
	// TransportGRPC is a SendMessage RPC.
	TransportGRPC = "grpc"
	// TransportHTTP is the Logto HTTP bridge (POST /logto/sms).
	TransportHTTP = "http"
	// TransportInProcess is a send no transport marked: a Go program calling a connector
	// directly.
	TransportInProcess = "inprocess"
)

type transportKey struct{}

// WithTransport returns ctx marked as carrying a send that came through transport (one of the
// Transport constants), so that the decorators around the connector (its metrics) can tell the
// transports apart without each transport wrapping its own stack.
func WithTransport(ctx context.Context, transport string) context.Context {
	return context.WithValue(ctx, transportKey{}, transport)
}

// TransportOf returns the transport WithTransport recorded in ctx, TransportInProcess when none
// did.
func TransportOf(ctx context.Context) string {
	if t, ok := ctx.Value(transportKey{}).(string); ok && t != "" {
		return t
	}
	return TransportInProcess
}
