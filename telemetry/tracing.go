package telemetry

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
)

// instrumentationName names this package's tracer.
const instrumentationName = "github.com/sms-connector/sms-connector/telemetry"

// The standard OpenTelemetry variables TracesEndpoint reads.
const (
	EnvOTLPEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvOTLPTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvSDKDisabled        = "OTEL_SDK_DISABLED"
	EnvTracesExporter     = "OTEL_TRACES_EXPORTER"
)

// tracesPath is the OTLP/HTTP path of traces, added to a base endpoint.
const tracesPath = "/v1/traces"

// TracesEndpoint returns the URL spans are exported to over OTLP/HTTP (protobuf), or "" when
// tracing is off. flag, when set, is a base URL as OTEL_EXPORTER_OTLP_ENDPOINT takes it
// ("http://collector:4318"; /v1/traces is added unless it has a path of its own). Without it,
// the standard variables decide, read through getenv: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used
// as it is), then OTEL_EXPORTER_OTLP_ENDPOINT (a base URL); OTEL_SDK_DISABLED=true or
// OTEL_TRACES_EXPORTER=none turn tracing off whatever the endpoint. The URL must be http or
// https; http sends spans in clear.
func TracesEndpoint(flag string, getenv func(string) string) (string, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if strings.EqualFold(strings.TrimSpace(getenv(EnvSDKDisabled)), "true") ||
		strings.EqualFold(strings.TrimSpace(getenv(EnvTracesExporter)), "none") {
		return "", nil
	}
	raw, base, source := flag, true, "--otlp-endpoint"
	if raw == "" {
		if v := getenv(EnvOTLPTracesEndpoint); v != "" {
			raw, base, source = v, false, EnvOTLPTracesEndpoint
		} else {
			raw, source = getenv(EnvOTLPEndpoint), EnvOTLPEndpoint
		}
	}
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", nil
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", fmt.Errorf("%s: %w", source, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%s %q: want an http:// or https:// URL of an OTLP/HTTP receiver (like http://127.0.0.1:4318)", source, redactURL(u))
	case u.Host == "":
		return "", fmt.Errorf("%s %q: no host", source, redactURL(u))
	}
	if base && strings.TrimSuffix(u.Path, "/") == "" {
		u.Path = tracesPath
	}
	return u.String(), nil
}

// redactURL returns u without its user information, for messages and logs.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// newTracerProvider returns a tracer provider that exports in batches to exp, with a resource
// naming the service (OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override and add, as
// usual). The sampler is the SDK's default, parent-based always-on, unless OTEL_TRACES_SAMPLER
// says otherwise.
func newTracerProvider(ctx context.Context, exp sdktrace.SpanExporter, batch bool, serviceName, serviceVersion string) (*sdktrace.TracerProvider, error) {
	attrs := []attribute.KeyValue{attribute.String("service.name", serviceName)}
	if serviceVersion != "" {
		attrs = append(attrs, attribute.String("service.version", serviceVersion))
	}
	res, err := resource.New(ctx, resource.WithAttributes(attrs...), resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	opt := sdktrace.WithSyncer(exp)
	if batch {
		opt = sdktrace.WithBatcher(exp)
	}
	return sdktrace.NewTracerProvider(opt, sdktrace.WithResource(res)), nil
}

// newOTLPExporter returns the OTLP/HTTP exporter of endpoint (a full URL, see TracesEndpoint).
// Other OTEL_EXPORTER_OTLP_* variables (headers, timeout, compression, certificates) apply.
func newOTLPExporter(ctx context.Context, endpoint string) (sdktrace.SpanExporter, error) {
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return nil, fmt.Errorf("OTLP exporter: %w", err)
	}
	return exp, nil
}

// RPCStatsHandler returns the gRPC stats handler that makes one server span per RPC with tp
// (OpenTelemetry's otelgrpc), a child of the caller's span when the request carries a W3C
// traceparent. Health checks make no span (probes call them every few seconds); no global
// OpenTelemetry state (propagator, meter provider) is used.
func RPCStatsHandler(tp trace.TracerProvider) stats.Handler {
	return otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(tp),
		otelgrpc.WithPropagators(propagation.TraceContext{}),
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelgrpc.WithFilter(filters.Not(filters.HealthCheck())),
	)
}

// tracingServerOptions are the server options of RPCStatsHandler.
func tracingServerOptions(tp trace.TracerProvider) []grpc.ServerOption {
	return []grpc.ServerOption{grpc.StatsHandler(RPCStatsHandler(tp))}
}
