package logtobridge

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/sms-connector/sms-connector/connector"
	"github.com/sms-connector/sms-connector/internal/protoconv"
)

// The bridge's own refusals, before any send.
var (
	errUnauthenticated = connector.Errorf(connector.ReasonUnauthenticated, `a bearer token is required: set Logto's "Authorization Header" to "Bearer <token>" with the token of --auth-token-file`)
	errMethod          = connector.Errorf(connector.ReasonInvalidRequest, "only POST is served here")
	errNotFound        = connector.Errorf(connector.ReasonInvalidRequest, "no such path: Logto's HTTP SMS connector is served at "+PathLogtoSMS)
	errShuttingDown    = &connector.Error{Reason: connector.ReasonProviderUnavailable, Message: "the server is shutting down: nothing was sent", RetryAfter: time.Second}
)

// Log field names, as the gRPC server's lines name the same facts.
const (
	fieldMethod    = "http.method"
	fieldPath      = "http.path"
	fieldStatus    = "http.status"
	fieldTimeMS    = "http.time_ms"
	fieldPeer      = "peer.address"
	fieldUsageType = "sms.usage_type"
	fieldTo        = "sms.to"
	fieldReason    = "error.reason"
	fieldMessage   = "error.message"
)

// msgFinished is the message of the one log line of each request.
const msgFinished = "finished HTTP request"

// requestLog collects the facts of one request for its log line.
type requestLog struct {
	start  time.Time
	status int
	reason string
	errMsg string
	usage  string
	to     string
}

// serveNotFound answers every path but PathLogtoSMS.
func (s *Server) serveNotFound(w http.ResponseWriter, r *http.Request) {
	rl := &requestLog{start: time.Now()}
	rl.fail(w, http.StatusNotFound, errNotFound)
	s.logRequest(r, rl)
}

// serveLogto answers Logto's HTTP SMS connector: method, credentials, content type, body,
// then the send through the served stack.
func (s *Server) serveLogto(w http.ResponseWriter, r *http.Request) {
	rl := &requestLog{start: time.Now()}
	defer s.logRequest(r, rl)
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in the Logto bridge; the caller gets INTERNAL", zap.String("panic", fmt.Sprint(p)), zap.Stack("stack"))
			rl.fail(w, 0, connector.Errorf(connector.ReasonInternal, protoconv.MsgInternal))
		}
	}()
	switch {
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		rl.fail(w, http.StatusMethodNotAllowed, errMethod)
		return
	case !s.authorized(r):
		rl.fail(w, 0, errUnauthenticated)
		return
	case !checkContentType(r):
		rl.fail(w, http.StatusUnsupportedMediaType, errUnsupportedType)
		return
	}
	msg, err := readMessage(r, s.maxBytes)
	var tooLarge errTooLarge
	switch {
	case errors.As(err, &tooLarge):
		w.Header().Set("Connection", "close")
		rl.fail(w, http.StatusRequestEntityTooLarge, connector.Errorf(connector.ReasonInvalidRequest, "%s", tooLarge.Error()))
		return
	case err != nil:
		rl.fail(w, 0, err)
		return
	}
	rl.usage = "(invalid)"
	if msg.UsageType.Valid() {
		rl.usage = string(msg.UsageType)
	}
	if err := protoconv.CheckMessage(msg); err != nil {
		rl.to = "(invalid)"
		rl.fail(w, 0, inLogtoFields(err))
		return
	}
	rl.to = connector.MaskPhone(msg.To)
	resp, err := s.send.Send(connector.WithTransport(r.Context(), connector.TransportHTTP), msg)
	if err != nil {
		rl.failStatus(w, err)
		return
	}
	body, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(resp)
	if err != nil {
		rl.fail(w, 0, fmt.Errorf("logtobridge: receipt as JSON: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(body, '\n'))
	rl.status = http.StatusOK
}

// inLogtoFields renames the fields of a CheckMessage error to Logto's names, message
// included.
func inLogtoFields(err error) error {
	var ce *connector.Error
	if !errors.As(err, &ce) || len(ce.Violations) == 0 {
		return err
	}
	vs := make([]connector.Violation, len(ce.Violations))
	for i, v := range ce.Violations {
		vs[i] = connector.Violation{Field: logtoField(v.Field), Description: v.Description}
	}
	return connector.ViolationsError(ce.Reason, connector.RequestSubject, vs)
}

// fail answers err (any error: it becomes the status a gRPC caller would get) and records it.
func (rl *requestLog) fail(w http.ResponseWriter, httpStatus int, err error) {
	code, b := writeError(w, httpStatus, protoconv.Status(err).Err())
	rl.status, rl.reason, rl.errMsg = code, b.Reason, b.Message
}

// failStatus answers a gRPC status error and records it.
func (rl *requestLog) failStatus(w http.ResponseWriter, err error) {
	code, b := writeError(w, 0, err)
	rl.status, rl.reason, rl.errMsg = code, b.Reason, b.Message
}

// logRequest writes the request's one log line: info, warn for 5xx but 500, error for 500.
// It never holds a body, a header or a full phone number.
func (s *Server) logRequest(r *http.Request, rl *requestLog) {
	lvl := zapcore.InfoLevel
	switch {
	case rl.status == http.StatusInternalServerError:
		lvl = zapcore.ErrorLevel
	case rl.status > http.StatusInternalServerError:
		lvl = zapcore.WarnLevel
	}
	e := s.log.Check(lvl, msgFinished)
	if e == nil {
		return
	}
	fs := []zap.Field{
		zap.String(fieldMethod, r.Method), zap.String(fieldPath, r.URL.Path), zap.String(fieldPeer, r.RemoteAddr),
		zap.Int(fieldStatus, rl.status), zap.Float64(fieldTimeMS, float64(time.Since(rl.start).Microseconds())/1000),
	}
	if rl.usage != "" {
		fs = append(fs, zap.String(fieldUsageType, rl.usage))
	}
	if rl.to != "" {
		fs = append(fs, zap.String(fieldTo, rl.to))
	}
	if rl.reason != "" {
		fs = append(fs, zap.String(fieldReason, rl.reason), zap.String(fieldMessage, rl.errMsg))
	}
	e.Write(fs...)
}
