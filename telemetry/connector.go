package telemetry

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sms-connector/sms-connector/connector"
)

// Span and attribute names of the provider span (see ProviderTelemetry).
const (
	// ProviderSpanName names the span of one vendor call.
	ProviderSpanName = "sms.provider.send"

	attrConnector    = "sms.connector.id"
	attrUsageType    = "sms.usage_type"
	attrCallingCode  = "sms.destination.country_code"
	attrOutcome      = "sms.outcome"
	attrSegments     = "sms.segments"
	attrEncoding     = "sms.encoding"
	attrMessageID    = "sms.message_id"
	attrProvider     = "sms.provider"
	attrProviderCode = "sms.provider.code"
	attrErrorType    = "error.type"
)

// refusalReasons are the reasons of the refusals the connector's own limits make before any
// vendor is called (with no Provider in the error): the abuse guard's and the concurrency
// limit's. A vendor's COUNTRY_NOT_PERMITTED (Twilio 21408) names its provider and is a
// provider error instead.
var refusalReasons = map[connector.Reason]bool{
	connector.ReasonRateLimited:         true,
	connector.ReasonCountryNotPermitted: true,
	connector.ReasonOverloaded:          true,
	connector.ReasonStoreUnavailable:    true,
}

// SendMetricsOptions configure NewSendMetrics.
type SendMetricsOptions struct {
	// Metrics receives the counts; required.
	Metrics *Metrics
	// ID labels the series: the connector's metadata id.
	ID string
}

// SendMetrics counts every send of the connector it wraps: by transport (connector.TransportOf
// the send's context), usage type, destination country calling code and outcome (sms_connector_messages_total), the refusals of the connector's own
// limits (sms_connector_rate_limit_refusals_total), and the sends in progress
// (sms_connector_sends_in_flight). It goes outside the defences, so that it counts their
// refusals (the order is in sdk.Defend). It passes ValidateConfig and Metadata through, and
// Close when the wrapped connector is an io.Closer. It is safe for concurrent use.
type SendMetrics struct {
	passThrough
	m        *Metrics
	id       string
	inFlight prometheus.Gauge
}

var _ connector.SmsConnector = (*SendMetrics)(nil)

// NewSendMetrics returns a SendMetrics counting next's sends in o.Metrics. It fails for a nil
// next, no Metrics or an empty ID.
func NewSendMetrics(next connector.SmsConnector, o SendMetricsOptions) (*SendMetrics, error) {
	switch {
	case next == nil:
		return nil, errors.New("telemetry: no connector to count")
	case o.Metrics == nil:
		return nil, errors.New("telemetry: no Metrics to count sends in")
	case o.ID == "":
		return nil, errors.New("telemetry: no connector ID to label the sends with")
	}
	return &SendMetrics{
		passThrough: passThrough{connector.Forward{Next: next}},
		m:           o.Metrics,
		id:          o.ID,
		inFlight:    o.Metrics.inFlight.WithLabelValues(o.ID),
	}, nil
}

// Send counts msg's send around next's.
func (s *SendMetrics) Send(ctx context.Context, msg *connector.Message) (*connector.Receipt, error) {
	s.inFlight.Inc()
	defer s.inFlight.Dec()
	r, err := s.Next.Send(ctx, msg)
	usage, cc := unknownLabel, unknownLabel
	if msg != nil {
		usage, cc = usageLabel(msg.UsageType), callingCode(msg.To)
	}
	outcome, transport := outcomeLabel(err), connector.TransportOf(ctx)
	s.m.messages.WithLabelValues(s.id, transport, usage, cc, outcome).Inc()
	var ce *connector.Error
	if errors.As(err, &ce) && ce.Provider == "" && refusalReasons[ce.Reason] {
		s.m.refusals.WithLabelValues(s.id, transport, string(ce.Reason)).Inc()
	}
	return r, err
}

// ProviderOptions configure NewProviderTelemetry; at least one of Metrics and TracerProvider
// is required.
type ProviderOptions struct {
	// Metrics, if not nil, receives the vendor calls' durations and failures.
	Metrics *Metrics
	// TracerProvider, if not nil, makes a span of every vendor call.
	TracerProvider trace.TracerProvider
	// ID labels the series and spans: the connector's metadata id.
	ID string
}

// ProviderTelemetry measures the connector it wraps, a vendor's, as the provider call of each
// send: with metrics, the duration of every send that reached the vendor
// (sms_connector_provider_request_duration_seconds, including the driver's own retries and
// their backoff) and the vendor's failures by provider code (sms_connector_provider_errors_total);
// with a tracer provider, a client span "sms.provider.send", a child of the caller's span (the
// RPC's), whose attributes are the connector id, the usage type, the destination's calling code,
// the outcome, segments and encoding, the vendor's message id, and on failure the reason
// (error.type), provider and provider code: never the number, the body or the code. It goes
// directly around the vendor's connector, inside the defences, whose refusals call no vendor
// (the order is in sdk.Defend). It passes ValidateConfig, Metadata and Close through like
// SendMetrics, and is safe for concurrent use.
//
// A send "reached the vendor" when it succeeded or failed with a *connector.Error that names
// its Provider: the driver's local failures (an invalid configuration, no template) are not
// vendor calls.
type ProviderTelemetry struct {
	passThrough
	m      *Metrics     // nil: no metrics
	tracer trace.Tracer // nil: no spans
	id     string
}

var _ connector.SmsConnector = (*ProviderTelemetry)(nil)

// NewProviderTelemetry returns a ProviderTelemetry measuring vendor as o says. It fails for a
// nil vendor, neither Metrics nor TracerProvider, or an empty ID.
func NewProviderTelemetry(vendor connector.SmsConnector, o ProviderOptions) (*ProviderTelemetry, error) {
	switch {
	case vendor == nil:
		return nil, errors.New("telemetry: no vendor connector to measure")
	case o.Metrics == nil && o.TracerProvider == nil:
		return nil, errors.New("telemetry: neither Metrics nor a TracerProvider to measure the vendor with")
	case o.ID == "":
		return nil, errors.New("telemetry: no connector ID to label the vendor calls with")
	}
	p := &ProviderTelemetry{passThrough: passThrough{connector.Forward{Next: vendor}}, m: o.Metrics, id: o.ID}
	if o.TracerProvider != nil {
		p.tracer = o.TracerProvider.Tracer(instrumentationName)
	}
	return p, nil
}

// Send measures the vendor's Send.
func (p *ProviderTelemetry) Send(ctx context.Context, msg *connector.Message) (*connector.Receipt, error) {
	var span trace.Span
	if p.tracer != nil {
		attrs := []attribute.KeyValue{attribute.String(attrConnector, p.id)}
		if msg != nil {
			attrs = append(attrs,
				attribute.String(attrUsageType, usageLabel(msg.UsageType)),
				attribute.String(attrCallingCode, callingCode(msg.To)))
		}
		ctx, span = p.tracer.Start(ctx, ProviderSpanName, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	}
	start := time.Now()
	r, err := p.Next.Send(ctx, msg)
	elapsed := time.Since(start)

	var ce *connector.Error
	isErr := errors.As(err, &ce)
	fromProvider := isErr && ce.Provider != ""
	outcome := outcomeLabel(err)
	if p.m != nil {
		if err == nil || fromProvider {
			p.m.providerDuration.WithLabelValues(p.id, outcome).Observe(elapsed.Seconds())
		}
		if fromProvider {
			code := ce.ProviderCode
			if code == "" {
				code = noCode
			}
			p.m.providerErrors.WithLabelValues(p.id, ce.Provider, code, string(ce.Reason)).Inc()
		}
	}
	if span != nil {
		span.SetAttributes(attribute.String(attrOutcome, outcome))
		switch {
		case err == nil && r != nil:
			span.SetAttributes(
				attribute.Int(attrSegments, r.Segments),
				attribute.String(attrEncoding, string(r.Encoding)),
				attribute.String(attrMessageID, r.MessageID))
		case err != nil:
			// The reason, never the error's text: a vendor's message may quote the number.
			span.SetAttributes(attribute.String(attrErrorType, outcome))
			if fromProvider {
				span.SetAttributes(attribute.String(attrProvider, ce.Provider))
				if ce.ProviderCode != "" {
					span.SetAttributes(attribute.String(attrProviderCode, ce.ProviderCode))
				}
			}
			span.SetStatus(codes.Error, outcome)
		}
		span.End()
	}
	return r, err
}

// passThrough forwards ValidateConfig, Metadata (connector.Forward) and Close to Next.
type passThrough struct {
	connector.Forward
}

// Close closes the wrapped connector when it is an io.Closer.
func (p passThrough) Close() error {
	if c, ok := p.Next.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
