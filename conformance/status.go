package conformance

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
	"github.com/sms-connector/sms-connector/internal/contract"
)

// errorDomain is google.rpc.ErrorInfo.domain of every error of the contract (see the proto's
// file comment). The conformance tests prove it equals server.ErrorDomain.
const errorDomain = "sms-connector.dev"

// reasonPrefix is the prefix of ErrorReason value names that ErrorInfo.reason leaves out.
const reasonPrefix = "ERROR_REASON_"

// The reasons the rules expect, as ErrorInfo carries them.
const (
	reasonInvalidRequest     = "INVALID_REQUEST"
	reasonInvalidPhoneNumber = "INVALID_PHONE_NUMBER"
	reasonInvalidConfig      = "INVALID_CONFIG"
	reasonConfigMissing      = "CONFIG_MISSING"
)

// codeNames are the canonical names of the gRPC codes, as the gRPC specification writes them
// (codes.Code.String gives "InvalidArgument"; platforms and the proto say INVALID_ARGUMENT).
var codeNames = map[codes.Code]string{
	codes.OK:                 "OK",
	codes.Canceled:           "CANCELLED",
	codes.Unknown:            "UNKNOWN",
	codes.InvalidArgument:    "INVALID_ARGUMENT",
	codes.DeadlineExceeded:   "DEADLINE_EXCEEDED",
	codes.NotFound:           "NOT_FOUND",
	codes.AlreadyExists:      "ALREADY_EXISTS",
	codes.PermissionDenied:   "PERMISSION_DENIED",
	codes.ResourceExhausted:  "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION",
	codes.Aborted:            "ABORTED",
	codes.OutOfRange:         "OUT_OF_RANGE",
	codes.Unimplemented:      "UNIMPLEMENTED",
	codes.Internal:           "INTERNAL",
	codes.Unavailable:        "UNAVAILABLE",
	codes.DataLoss:           "DATA_LOSS",
	codes.Unauthenticated:    "UNAUTHENTICATED",
}

// codeName returns the canonical name of c.
func codeName(c codes.Code) string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("CODE_%d", uint32(c))
}

// rpcError is a failed RPC's status with the details the contract defines.
type rpcError struct {
	st   *status.Status
	info *errdetails.ErrorInfo  // nil when absent
	bad  *errdetails.BadRequest // nil when absent
}

// inspect decodes err, which an RPC returned, into its status and details.
func inspect(err error) *rpcError {
	e := &rpcError{st: status.Convert(err)}
	for _, d := range e.st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if e.info == nil {
				e.info = d
			}
		case *errdetails.BadRequest:
			if e.bad == nil {
				e.bad = d
			}
		}
	}
	return e
}

// reason returns the ErrorInfo reason, or "" without an ErrorInfo.
func (e *rpcError) reason() string {
	if e.info == nil {
		return ""
	}
	return e.info.GetReason()
}

// fields returns the fields the BadRequest names.
func (e *rpcError) fields() []string {
	var out []string
	for _, v := range e.bad.GetFieldViolations() {
		out = append(out, v.GetField())
	}
	return out
}

// String says what the error is: its code, its reason or the lack of one, and its message.
func (e *rpcError) String() string {
	var b strings.Builder
	b.WriteString(codeName(e.st.Code()))
	if e.info == nil {
		b.WriteString(" without a google.rpc.ErrorInfo")
	} else {
		fmt.Fprintf(&b, " with reason %s", orNone(e.info.GetReason()))
		if d := e.info.GetDomain(); d != errorDomain {
			fmt.Fprintf(&b, " (domain %q)", d)
		}
	}
	if m := e.st.Message(); m != "" {
		fmt.Fprintf(&b, ": %q", contract.Cut(m))
	}
	return b.String()
}

// knownReason reports whether r is an ErrorReason value name without its prefix, other than
// UNSPECIFIED (which the proto says is never sent).
func knownReason(r string) bool {
	v, ok := smsv1.ErrorReason_value[reasonPrefix+r]
	return ok && v != int32(smsv1.ErrorReason_ERROR_REASON_UNSPECIFIED)
}

// errorModelProblems says how e breaks the contract's error model (a code other than UNKNOWN;
// an ErrorInfo with the documented domain and a documented reason), or nil if it does not.
func errorModelProblems(e *rpcError) []string {
	var p []string
	if e.st.Code() == codes.Unknown {
		p = append(p, "the code UNKNOWN")
	}
	switch {
	case e.info == nil:
		p = append(p, "no google.rpc.ErrorInfo")
	default:
		if d := e.info.GetDomain(); d != errorDomain {
			p = append(p, fmt.Sprintf("the ErrorInfo domain %q instead of %q", d, errorDomain))
		}
		if r := e.info.GetReason(); !knownReason(r) {
			p = append(p, fmt.Sprintf("the ErrorInfo reason %q (not an ErrorReason name without its %q prefix)", r, reasonPrefix))
		}
	}
	return p
}

// expectation is how a call that must fail has to fail.
type expectation struct {
	// what names the call in messages ("SendMessage with an empty 'to'").
	what string
	// code is the required gRPC code.
	code codes.Code
	// reasons are the ErrorInfo reasons accepted; the first is the preferred one.
	reasons []string
	// fields, when set, are the BadRequest fields of which at least one must be named (the
	// first is the proto field name; the others are accepted spellings).
	fields []string
	// fieldPrefix, when set, requires a BadRequest whose every field is fieldPrefix itself or a
	// path under it (fieldPrefix + "." or fieldPrefix + "[").
	fieldPrefix string
}

// sentence is the rule the expectation states: "X must fail with CODE and reason R".
func (x expectation) sentence() string {
	return fmt.Sprintf("%s must fail with %s and reason %s", x.what, codeName(x.code), strings.Join(x.reasons, " or "))
}

// check compares the outcome of a call (err, and got describing a response when err is nil)
// with x and returns the problems, each a sentence of its own.
func (x expectation) check(got string, err error) []string {
	if err == nil {
		return []string{fmt.Sprintf("%s, got success (%s)", x.sentence(), got)}
	}
	e := inspect(err)
	if e.st.Code() != x.code || !slices.Contains(x.reasons, e.reason()) {
		return []string{fmt.Sprintf("%s, got %s", x.sentence(), e)}
	}
	var p []string
	if d := e.info.GetDomain(); d != errorDomain {
		p = append(p, fmt.Sprintf("%s: its google.rpc.ErrorInfo must have the domain %q, got %q", x.what, errorDomain, d))
	}
	switch {
	case len(x.fields) > 0 && e.bad == nil:
		p = append(p, fmt.Sprintf("%s: its error must carry a google.rpc.BadRequest naming the field %q, it carries none", x.what, x.fields[0]))
	case len(x.fields) > 0 && !slices.ContainsFunc(e.fields(), func(f string) bool { return slices.Contains(x.fields, f) }):
		p = append(p, fmt.Sprintf("%s: its google.rpc.BadRequest must name the field %q, it names %q", x.what, x.fields[0], e.fields()))
	}
	if x.fieldPrefix != "" {
		fs := e.fields()
		bad := slices.DeleteFunc(slices.Clone(fs), func(f string) bool { return contract.UnderPath(f, x.fieldPrefix) })
		switch {
		case e.bad == nil || len(fs) == 0:
			p = append(p, fmt.Sprintf("%s: its error must carry a google.rpc.BadRequest listing each problem with its field path under %q, it lists none", x.what, x.fieldPrefix+"."))
		case len(bad) > 0:
			p = append(p, fmt.Sprintf("%s: every field of its google.rpc.BadRequest must be a path under %q (the request field the configuration travels in), got %q", x.what, x.fieldPrefix+".", bad))
		}
	}
	return p
}

// orNone renders an empty string as "(none)" in messages.
func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
