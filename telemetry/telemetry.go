// Package telemetry lets operators see what a connector does: Prometheus metrics on a listener
// of their own and OpenTelemetry traces exported over OTLP, both off unless asked for, the same
// for every vendor.
//
// Metrics (Metrics, in a Registry of their own, never Prometheus' global one):
//
//   - go-grpc-middleware's gRPC server metrics: grpc_server_started_total,
//     grpc_server_handled_total (by grpc_code), grpc_server_msg_received_total,
//     grpc_server_msg_sent_total, grpc_server_handling_seconds (histogram); labels grpc_type,
//     grpc_service, grpc_method;
//   - sms_connector_messages_total{connector, transport, usage_type, country_code, outcome}:
//     every send that reached the connector; transport is "grpc", "http" (the Logto bridge) or
//     "inprocess" (see connector.WithTransport); outcome is "ok" or the error reason;
//   - sms_connector_rate_limit_refusals_total{connector, transport, reason}: refusals of the connector's
//     own limits (RATE_LIMITED, COUNTRY_NOT_PERMITTED, OVERLOADED), no vendor called;
//   - sms_connector_provider_errors_total{connector, provider, provider_code, reason}: failures
//     the vendor reported (or met on the way to it; provider_code "none" then);
//   - sms_connector_provider_request_duration_seconds{connector, outcome} (histogram): the
//     vendor call of each send that reached the vendor, the driver's own retries included;
//   - sms_connector_sends_in_flight{connector}: sends in progress;
//   - sms_connector_store_errors_total{layer, policy}: failures of the shared store (Redis)
//     by the layer that met them and the policy it applied (refuse or allow);
//   - sms_connector_delivery_total{connector, country_code, state}: messages whose delivery
//     reached a final state, once each; sms_connector_delivery_seconds{connector, state}
//     (histogram): the time from the send to that state (Metrics.Delivery, fed by package
//     deliverystatus's OnFinal);
//   - the Go runtime's and the process's collectors (go_*, process_*).
//
// Traces: a server span per RPC (otelgrpc) and, as its child, a client span per vendor call
// ("sms.provider.send").
//
// No label, span name or attribute carries a phone number, a message body, a code or a
// secret: a destination is its country calling code, a failure its reason and the vendor's
// error code.
//
// The pieces are decorators of connector.SmsConnector (SendMetrics, ProviderTelemetry;
// where each sits is written in sdk.Defend) and gRPC server options, so a second vendor gets
// all of it unchanged. Start wires them for a binary (package sdk's --metrics-listen and
// --otlp-endpoint).
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/sms-connector/sms-connector/connector"
)

// MetricsServingMessage is the message of the log line Start writes once /metrics is served,
// with the field "address" (host:port): scripts and tests wait for it.
const MetricsServingMessage = "metrics serving"

// MetricsPath is where the metrics listener serves the metrics.
const MetricsPath = "/metrics"

// Options configure Start.
type Options struct {
	// MetricsListen is the host:port to serve Prometheus metrics on, at /metrics, over plain
	// HTTP. Empty: no metrics. Bind it to an address only the scraper reaches.
	MetricsListen string
	// OTLPEndpoint is the OTLP/HTTP receiver spans are exported to (see TracesEndpoint).
	// Empty: the standard OTEL_EXPORTER_OTLP_* variables decide; none set: no tracing.
	OTLPEndpoint string
	// Getenv reads the environment (nil: none), for the OTEL_* variables.
	Getenv func(string) string
	// ServiceName and ServiceVersion name the process in spans (service.name, service.version).
	ServiceName, ServiceVersion string
	// Log receives the "metrics serving" and "tracing" lines and the listener's failures. Nil
	// means no logging.
	Log *zap.Logger
	// SpanExporter, when set, turns tracing on and receives every span at its end instead of
	// an OTLP exporter (tests pass an in-memory one).
	SpanExporter sdktrace.SpanExporter
}

// Telemetry is what Start set up. A nil *Telemetry is valid and does nothing: every Wrap
// method returns its connector unchanged and ServerOptions is empty.
type Telemetry struct {
	metrics *Metrics                 // nil: no metrics
	tp      *sdktrace.TracerProvider // nil: no tracing
	srv     *http.Server             // the metrics listener's server, if any
	addr    net.Addr                 // its address
	served  chan error               // its Serve's result
	log     *zap.Logger
}

// Start sets up what o asks for: the metrics and their listener, the tracer provider and its
// OTLP exporter. Stop it with Shutdown. It fails when the listener cannot listen or the
// endpoint is not a URL; it does not wait for the OTLP receiver, whose failures the exporter
// reports later.
func Start(ctx context.Context, o Options) (*Telemetry, error) {
	t := &Telemetry{log: o.Log}
	if t.log == nil {
		t.log = zap.NewNop()
	}
	if o.ServiceName == "" {
		o.ServiceName = "sms-connector"
	}
	exp := o.SpanExporter
	batch := false
	if exp == nil {
		endpoint, err := TracesEndpoint(o.OTLPEndpoint, o.Getenv)
		if err != nil {
			return nil, err
		}
		if endpoint != "" {
			if exp, err = newOTLPExporter(ctx, endpoint); err != nil {
				return nil, err
			}
			batch = true
			t.log.Info("tracing: exporting spans over OTLP/HTTP", zap.String("endpoint", endpointForLog(endpoint)))
		}
	}
	if exp != nil {
		tp, err := newTracerProvider(ctx, exp, batch, o.ServiceName, o.ServiceVersion)
		if err != nil {
			return nil, err
		}
		t.tp = tp
	}
	if o.MetricsListen != "" {
		t.metrics = NewMetrics()
		l, err := net.Listen("tcp", o.MetricsListen)
		if err != nil {
			_ = t.Shutdown(ctx)
			return nil, fmt.Errorf("--metrics-listen %s: %w", o.MetricsListen, err)
		}
		mux := http.NewServeMux()
		mux.Handle(MetricsPath, t.metrics.Handler())
		t.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		t.addr = l.Addr()
		t.served = make(chan error, 1)
		go func() { t.served <- t.srv.Serve(l) }()
		t.log.Info(MetricsServingMessage, zap.String("address", t.addr.String()), zap.String("path", MetricsPath))
	}
	return t, nil
}

// endpointForLog is the endpoint without user information or query (which may carry a token).
func endpointForLog(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "(unparsable)"
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}

// Metrics returns the metrics, or nil when they are off.
func (t *Telemetry) Metrics() *Metrics {
	if t == nil {
		return nil
	}
	return t.metrics
}

// TracerProvider returns the tracer provider, or nil when tracing is off.
func (t *Telemetry) TracerProvider() trace.TracerProvider {
	if t == nil || t.tp == nil {
		return nil
	}
	return t.tp
}

// MetricsAddr returns the metrics listener's address (host:port), or "" when there is none.
func (t *Telemetry) MetricsAddr() string {
	if t == nil || t.addr == nil {
		return ""
	}
	return t.addr.String()
}

// WrapVendor wraps the vendor's own connector in a ProviderTelemetry of what is on, labelled
// with its metadata id; with metrics and tracing off it returns vendor unchanged.
func (t *Telemetry) WrapVendor(ctx context.Context, vendor connector.SmsConnector) (connector.SmsConnector, error) {
	if t == nil || (t.metrics == nil && t.tp == nil) || vendor == nil {
		return vendor, nil
	}
	id, err := connectorID(ctx, vendor)
	if err != nil {
		return nil, err
	}
	o := ProviderOptions{Metrics: t.metrics, ID: id}
	if t.tp != nil { // a nil *sdktrace.TracerProvider is not a nil interface
		o.TracerProvider = t.tp
	}
	p, err := NewProviderTelemetry(vendor, o)
	if err != nil {
		return nil, err // not a nil *ProviderTelemetry in a non-nil interface
	}
	return p, nil
}

// WrapSends wraps the defended connector in a SendMetrics, labelled with its metadata id; with
// metrics off it returns c unchanged.
func (t *Telemetry) WrapSends(ctx context.Context, c connector.SmsConnector) (connector.SmsConnector, error) {
	if t == nil || t.metrics == nil || c == nil {
		return c, nil
	}
	id, err := connectorID(ctx, c)
	if err != nil {
		return nil, err
	}
	m, err := NewSendMetrics(c, SendMetricsOptions{Metrics: t.metrics, ID: id})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// connectorID asks c for its id.
func connectorID(ctx context.Context, c connector.SmsConnector) (string, error) {
	md, err := c.Metadata(ctx)
	if err != nil {
		return "", fmt.Errorf("telemetry: connector metadata: %w", err)
	}
	if md == nil || md.ID == "" {
		return unknownLabel, nil
	}
	return md.ID, nil
}

// ServerOptions returns the gRPC server options of what is on: the gRPC server metrics'
// interceptors and the tracing stats handler. Append them to server.Options.ServerOptions.
func (t *Telemetry) ServerOptions() []grpc.ServerOption {
	if t == nil {
		return nil
	}
	var opts []grpc.ServerOption
	if t.metrics != nil {
		opts = append(opts, t.metrics.ServerOptions()...)
	}
	if t.tp != nil {
		opts = append(opts, tracingServerOptions(t.tp)...)
	}
	return opts
}

// InstrumentHTTP wraps the handler of an HTTP route (its path) in what is on: the HTTP
// request metrics (see Metrics.InstrumentHTTP) and a server span per request, whose context
// the send's own spans continue. With both off it returns h unchanged.
func (t *Telemetry) InstrumentHTTP(route string, h http.Handler) http.Handler {
	if t == nil {
		return h
	}
	if t.metrics != nil {
		h = t.metrics.InstrumentHTTP(route, h)
	}
	if t.tp != nil {
		h = otelhttp.NewHandler(h, route, otelhttp.WithTracerProvider(t.tp))
	}
	return h
}

// Shutdown stops the metrics listener and flushes the spans not yet exported, within ctx.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	var errs []error
	if t.srv != nil {
		if err := t.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("metrics listener: %w", err))
		}
		if err := <-t.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("metrics listener: %w", err))
		}
		t.srv = nil
	}
	if t.tp != nil {
		if err := t.tp.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("tracing: %w", err))
		}
	}
	return errors.Join(errs...)
}
