package server

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	middleware "github.com/grpc-ecosystem/go-grpc-middleware/v2"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sms-connector/sms-connector/connector"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
	"github.com/sms-connector/sms-connector/internal/protoconv"
)

// Log field names this package adds to go-grpc-middleware's (grpc.method, grpc.code, ...).
const (
	fieldConnectorID  = "connector.id"
	fieldUsageType    = "sms.usage_type"
	fieldTo           = "sms.to"
	fieldMessageID    = "sms.message_id"
	fieldErrorReason  = "error.reason"
	fieldProvider     = "error.provider"
	fieldProviderCode = "error.provider_code"
	fieldErrorCause   = "error.cause"
	fieldTimeMS       = "grpc.time_ms"
)

// msgStartedCall is the message go-grpc-middleware's logging interceptor logs a call's start
// with; the adapter logs it at debug level.
const msgStartedCall = "started call"

// unaryInterceptors is the unary chain, outermost first: request fields into the context (the
// logging interceptor reads them when the call starts), logging, the server's lifetime (see
// lifetimeUnary: what the caller saw is what gets logged), caller authentication (when
// Options ask for it; a refused call is logged with its reason), then recovery, so a panic is
// logged as the INTERNAL it is turned into.
func (s *Server) unaryInterceptors() []grpc.UnaryServerInterceptor {
	is := []grpc.UnaryServerInterceptor{
		s.fieldsUnary,
		logging.UnaryServerInterceptor(zapLogger(s.log), s.loggingOptions()...),
		s.lifetimeUnary,
	}
	if s.auth != nil {
		is = append(is, s.auth.unary())
	}
	return append(is, recovery.UnaryServerInterceptor(recovery.WithRecoveryHandlerContext(s.recovered)))
}

// streamInterceptors is the same chain for streaming RPCs (health Watch, reflection).
func (s *Server) streamInterceptors() []grpc.StreamServerInterceptor {
	is := []grpc.StreamServerInterceptor{
		s.fieldsStream,
		logging.StreamServerInterceptor(zapLogger(s.log), s.loggingOptions()...),
		s.lifetimeStream,
	}
	if s.auth != nil {
		is = append(is, s.auth.stream())
	}
	return append(is, recovery.StreamServerInterceptor(recovery.WithRecoveryHandlerContext(s.recovered)))
}

// loggingOptions: log start and finish only (never payloads: a request's config holds
// credentials), the error reason on failure, the duration as a number of milliseconds. The
// start line is a debug line (see zapLogger), so it is asked for only when the logger writes
// debug lines: the middleware builds every event's fields before the logger can drop the
// line, and that work is a visible part of an RPC's cost.
func (s *Server) loggingOptions() []logging.Option {
	events := []logging.LoggableEvent{logging.FinishCall}
	if s.log.Core().Enabled(zapcore.DebugLevel) {
		events = append(events, logging.StartCall)
	}
	return []logging.Option{
		logging.WithLogOnEvents(events...),
		logging.WithFieldsFromContextAndCallMeta(fieldsOfCall),
		logging.WithErrorFields(errorFields),
		logging.WithDurationField(func(d time.Duration) logging.Fields {
			return logging.Fields{fieldTimeMS, float64(d.Microseconds()) / 1000}
		}),
	}
}

// errorFields extracts the safe facts of a failed call from its status: the ErrorInfo reason,
// provider and provider code.
func errorFields(err error) logging.Fields {
	info := protoconv.ErrorInfoOf(err)
	if info == nil {
		return nil
	}
	f := logging.Fields{fieldErrorReason, info.GetReason()}
	if p := info.GetMetadata()[metaProvider]; p != "" {
		f = append(f, fieldProvider, p)
	}
	if c := info.GetMetadata()[metaProviderCode]; c != "" {
		f = append(f, fieldProviderCode, c)
	}
	return f
}

// requestFieldsKey is the context key of a call's requestFields.
type requestFieldsKey struct{}

// requestFields are the log fields of one call that come from its request, and whether its
// successful finish is logged at debug level only (quiet).
type requestFields struct {
	fields logging.Fields
	quiet  bool
}

// quietMethods are infrastructure RPCs that probes call every few seconds.
var quietMethods = []string{"/grpc.health.v1.Health/", "/grpc.reflection.v1.ServerReflection/", "/grpc.reflection.v1alpha.ServerReflection/"}

// withRequestFields returns ctx carrying the log fields of one call, computed from its request
// without ever copying a payload: the connector id, for SendMessage the usage type and the
// masked recipient, for GetMessageStatus the message id. The logging interceptor reads them
// through fieldsOfCall rather than from fields injected with logging.InjectFields: the
// middleware merges injected fields with its own through a map at every step, a visible share
// of an RPC's cost.
func (s *Server) withRequestFields(ctx context.Context, method string, req any) context.Context {
	rf := &requestFields{fields: append(make(logging.Fields, 0, 6), fieldConnectorID, s.svc.connectorID)}
	if r, ok := req.(*smsv1.SendMessageRequest); ok {
		u := string(protoconv.UsageFromProto(r.GetUsageType()))
		if u == "" || !connector.UsageType(u).Valid() {
			u = r.GetUsageType().String()
		}
		rf.fields = append(rf.fields, fieldUsageType, u, fieldTo, maskedRecipient(r.GetTo()))
	}
	if r, ok := req.(*smsv1.GetMessageStatusRequest); ok {
		id := r.GetMessageId()
		if protoconv.CheckMessageID(id) != nil {
			id = "(invalid)" // the input might be anything
		}
		rf.fields = append(rf.fields, fieldMessageID, id)
	}
	for _, p := range quietMethods {
		if strings.HasPrefix(method, p) {
			rf.quiet = true
		}
	}
	return context.WithValue(ctx, requestFieldsKey{}, rf)
}

// fieldsOfCall gives the logging interceptor the fields withRequestFields stored, as a slice
// of their own (the interceptor appends to it).
func fieldsOfCall(ctx context.Context, _ interceptors.CallMeta) logging.Fields {
	rf, _ := ctx.Value(requestFieldsKey{}).(*requestFields)
	if rf == nil {
		return nil
	}
	return slices.Clip(rf.fields)
}

// quietCall reports whether ctx is that of a quiet call (see requestFields).
func quietCall(ctx context.Context) bool {
	rf, _ := ctx.Value(requestFieldsKey{}).(*requestFields)
	return rf != nil && rf.quiet
}

// maskedRecipient is the recipient as logs may show it: normalised and masked, "" when
// absent, and "(invalid)" when it is not a phone number (the input might be anything).
func maskedRecipient(to string) string {
	if to == "" {
		return ""
	}
	n, err := connector.NormalizePhone(to)
	if err != nil {
		return "(invalid)"
	}
	return connector.MaskPhone(n)
}

// fieldsUnary is the outermost unary interceptor; see withRequestFields.
func (s *Server) fieldsUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	return handler(s.withRequestFields(ctx, info.FullMethod, req), req)
}

// fieldsStream is the outermost stream interceptor; see withRequestFields.
func (s *Server) fieldsStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	w := middleware.WrapServerStream(ss)
	w.WrappedContext = s.withRequestFields(ss.Context(), info.FullMethod, nil)
	return handler(srv, w)
}

// deadlineSlack is how close to its deadline a call may be cancelled and still count as
// stopped by that deadline. A client whose deadline passes resets the stream (RST_STREAM
// CANCEL) at the same moment the server's own timer for it fires, so the server sees one or
// the other first; the caller saw DEADLINE_EXCEEDED either way.
const deadlineSlack = 100 * time.Millisecond

// lifetimeUnary runs the handler with a context that also ends when the server's grace period
// does (see Shutdown), and returns the error as the caller sees it:
//   - when the caller is gone (its deadline passed or it cancelled), the code is the one the
//     caller's own gRPC library reported (DEADLINE_EXCEEDED or CANCELLED), whichever of the
//     client's reset and the server's timer came first; a reason that only says the context
//     ended (CANCELLED, PROVIDER_TIMEOUT) follows that code, any other keeps what the
//     connector found. Nothing reaches the caller any more, so this is what the log records.
//   - when Shutdown cancelled the call, a send that ended with CANCELLED is answered
//     UNAVAILABLE with reason PROVIDER_OUTCOME_UNKNOWN: it may have reached the vendor, and a
//     retry could send a second SMS.
func (s *Server) lifetimeUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	hctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(s.life, func() { cancel(errShutdown) })
	resp, err := handler(hctx, req)
	stop()
	cancel(nil)
	if err == nil {
		return resp, nil
	}
	switch {
	case ctx.Err() != nil:
		return resp, asCallerSaw(ctx, err)
	case errors.Is(context.Cause(hctx), errShutdown) && info.FullMethod == smsv1.SmsConnector_SendMessage_FullMethodName &&
		status.Code(err) == codes.Canceled:
		return resp, stoppedByShutdown(err)
	}
	return resp, err
}

// asCallerSaw is err, the status of a call whose caller is gone, with the code the caller saw;
// see lifetimeUnary.
func asCallerSaw(ctx context.Context, err error) error {
	code, reason := codes.Canceled, connector.ReasonCancelled
	if d, ok := ctx.Deadline(); errors.Is(ctx.Err(), context.DeadlineExceeded) || (ok && time.Until(d) < deadlineSlack) {
		code, reason = codes.DeadlineExceeded, connector.ReasonProviderTimeout
	}
	ce := protoconv.ErrorFromStatus(err)
	if ce.Reason == connector.ReasonCancelled || ce.Reason == connector.ReasonProviderTimeout {
		ce.Reason = reason
	}
	st := Status(ce).Proto()
	st.Code = int32(code)
	return status.FromProto(st).Err()
}

// lifetimeStream runs a streaming handler (health Watch, reflection) with a context that also
// ends when the server's grace period does, so that a stream cannot hold Shutdown.
func (s *Server) lifetimeStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	hctx, cancel := context.WithCancelCause(ss.Context())
	defer cancel(nil)
	stop := context.AfterFunc(s.life, func() { cancel(errShutdown) })
	defer stop()
	w := middleware.WrapServerStream(ss)
	w.WrappedContext = hctx
	return handler(srv, w)
}

// recovered turns a panic into INTERNAL (reason INTERNAL, generic message) and logs the panic
// (phone numbers masked) with its stack at error level; neither reaches the caller.
func (s *Server) recovered(ctx context.Context, p any) error {
	s.log.Error("panic in an RPC handler; the caller gets INTERNAL",
		append(zapFields(logging.ExtractFields(ctx)),
			zap.String("panic", redactPhones(fmt.Sprint(p))),
			zap.Stack("stack"))...)
	return Status(connector.Errorf(connector.ReasonInternal, msgInternal)).Err()
}

// zapLogger adapts zap to go-grpc-middleware's logging.Logger. The start of a call is logged at
// debug level, the finish at the level the interceptor chose (info for success); a quiet
// call's finish is demoted to debug unless it is a warning or worse.
func zapLogger(l *zap.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		if msg == msgStartedCall || (lvl < logging.LevelWarn && quietCall(ctx)) {
			lvl = logging.LevelDebug
		}
		if e := l.Check(zapLevel(lvl), msg); e != nil {
			e.Write(zapFields(fields)...)
		}
	})
}

// zapLevel maps a logging.Level (slog's levels) to zap's.
func zapLevel(l logging.Level) zapcore.Level {
	switch {
	case l < logging.LevelInfo:
		return zapcore.DebugLevel
	case l < logging.LevelWarn:
		return zapcore.InfoLevel
	case l < logging.LevelError:
		return zapcore.WarnLevel
	default:
		return zapcore.ErrorLevel
	}
}

// zapFields converts key-value pairs to zap fields.
func zapFields(kv []any) []zap.Field {
	out := make([]zap.Field, 0, len(kv)/2+3)
	for i := 0; i+1 < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			k = fmt.Sprint(kv[i])
		}
		switch v := kv[i+1].(type) {
		case string:
			out = append(out, zap.String(k, v))
		default:
			out = append(out, zap.Any(k, v))
		}
	}
	return out
}

// phoneLike matches what could be a phone number inside free text: 7 to 15 digits, optionally
// after a "+" and separated by spaces, dashes, dots or parentheses.
var phoneLike = regexp.MustCompile(`\+?\d(?:[\s\-.()]{0,2}\d){6,14}`)

// redactPhones masks every phone-like number in s, for error causes written to the log: a
// vendor's error text may quote the recipient ("The 'To' number +15005550001 is not valid").
func redactPhones(s string) string {
	return phoneLike.ReplaceAllStringFunc(s, connector.MaskPhone)
}

// causeField logs err's text with phone numbers masked.
func causeField(err error) zap.Field {
	return zap.String(fieldErrorCause, redactPhones(err.Error()))
}
