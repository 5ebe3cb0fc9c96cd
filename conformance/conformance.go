// Package conformance checks, over the wire, that a running gRPC server implements the
// connector.sms.v1.SmsConnector contract the way proto/connector/sms/v1/connector.proto
// documents it, whatever language the server is written in. It is the black-box twin of
// connector/connectortest: connectortest proves a Go connector.SmsConnector in its own tests;
// Check proves a served connector (ours, or another vendor's) as a platform sees it, through
// nothing but the generated client and grpc.health.v1.
//
//	cc, err := grpc.NewClient("127.0.0.1:50051", grpc.WithTransportCredentials(insecure.NewCredentials()))
//	...
//	report := conformance.Check(ctx, cc, conformance.Options{SendTo: "+15005550006"})
//	fmt.Print(report)
//	if report.Failed() { ... }
//
// The command cmd/sms-conformance does exactly that for an address given on its command line.
//
// Every rule ends as PASS, FAIL or SKIP with a message; a failure starts with "conformance:"
// and says what the contract requires and what the server did instead. The rules about what a
// connector answers (Metadata/*, ValidateConfig/ConfigTemplate, EmptyObject and MissingCode,
// the receipt and the INVALID_CONFIG error) are written once in internal/contract and shared
// with connectortest; this package runs them on the answers converted back to connector types
// with internal/protoconv. The others are the wire's own. The rules, in the order they run:
//
//   - Health: grpc.health.v1 Check of Options.HealthService ("" is the server's overall health;
//     plugin mode serves "plugin") answers SERVING.
//   - Metadata: GetMetadata succeeds. Then Metadata/ID (non-empty, no spaces),
//     Metadata/Name and Metadata/Description (a non-empty "en" entry, BCP 47 keys, no empty
//     entry), Metadata/FormItems (keys present and unique, a label, a known type, select items
//     for a select), Metadata/ConfigSchema (present, "type": "object"), Metadata/ConfigTemplate
//     (present), Metadata/UsageTypes (non-empty, known, no UNSPECIFIED, no repeats),
//     Metadata/ContractVersion ("connector.sms.v1"). Field names are the connector package's
//     with the proto's in parentheses: "Metadata.UsageTypes (supported_usage_types)".
//   - ValidateConfig/ConfigTemplate: the metadata's config_template is valid with no violations.
//   - ValidateConfig/EmptyObject: {} is invalid, with at least one violation naming a field.
//   - ValidateConfig/MissingCode: the config_template with every template's content rewritten
//     to have neither {{code}} nor {{link}} is invalid, with a violation under "templates"
//     (skipped when the config_template has no "templates" array).
//   - ValidateConfig/LinkTemplate: the config_template with every template's content rewritten
//     to "Join the organization: {{link}}" (a link, no code) is valid (skipped likewise).
//   - ValidateConfig/MissingConfig: a request without config fails with INVALID_ARGUMENT,
//     reason INVALID_REQUEST and a BadRequest naming "config".
//   - SendMessage/EmptyTo, SendMessage/MalformedTo: INVALID_ARGUMENT with reason
//     INVALID_PHONE_NUMBER or INVALID_REQUEST and a BadRequest naming "to".
//   - SendMessage/UnspecifiedUsageType, SendMessage/MissingPayload, SendMessage/EmptyCode:
//     INVALID_ARGUMENT with reason INVALID_REQUEST and a BadRequest naming usage_type, payload
//     (or payload.code) and payload.code (neither code nor link). Fields are proto field names;
//     the JSON name (usageType) is accepted too.
//   - SendMessage/NotHTTPSLink, SendMessage/BadUILocale: a payload.link over http, and a
//     payload.ui_locales entry that is not a language tag, are INVALID_ARGUMENT with reason
//     INVALID_REQUEST and a BadRequest naming payload.link, and payload.ui_locales[1] (or
//     payload.ui_locales).
//   - SendMessage/InvalidConfig: a non-empty configuration ValidateConfig rejects, sent in the
//     request, fails with INVALID_ARGUMENT, reason INVALID_CONFIG, a message and a BadRequest
//     whose fields are paths under "config".
//   - Send/DefaultConfig (only with Options.SendTo): a SendMessage without config, so with the
//     server's default configuration, succeeds with a message_id, segments >= 1, a known
//     encoding, to echoing Options.SendTo and connector_id equal to the metadata's id.
//   - Send/ExpiredDeadline (only with Options.SendTo): the same request with a deadline that has
//     already passed ends with DEADLINE_EXCEEDED or CANCELLED, never UNKNOWN and never a
//     receipt. (gRPC clients, grpc-go's included, refuse such a call before it leaves the
//     process, so the rule proves what a platform sees; a deadline that passes inside the
//     connector is connectortest's Context rule.)
//   - GetMessageStatus/MissingID: a GetMessageStatus without message_id fails with
//     INVALID_ARGUMENT, reason INVALID_REQUEST and a BadRequest naming "message_id".
//   - MessageStatus/UnknownID: GetMessageStatus of an id no send returned, with the server's
//     default config, fails with NOT_FOUND (MESSAGE_NOT_FOUND), or UNIMPLEMENTED (NOT_SUPPORTED)
//     from a connector that cannot tell statuses (skipped when the server has no default
//     configuration).
//   - MessageStatus/SentMessage (only with Options.SendTo): GetMessageStatus of Send/DefaultConfig's
//     message reports its message_id, a state other than UNSPECIFIED and the vendor's status
//     word, or UNIMPLEMENTED (NOT_SUPPORTED).
//   - Errors/ErrorInfo: every error an SmsConnector RPC returned during the run (expected or
//     not) had a code other than UNKNOWN and a google.rpc.ErrorInfo with domain
//     "sms-connector.dev" and a reason named in ErrorReason (without its "ERROR_REASON_" prefix).
//
// Requests that must fail are addressed to +14155550123, a number reserved for fiction, so a
// broken server that accepts one sends nothing anybody receives. Real messages are sent only to
// Options.SendTo, and only by the Send rules; with no SendTo they are skipped and say so.
package conformance

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
)

// DefaultRPCTimeout bounds each RPC the check makes unless Options.RPCTimeout says otherwise.
// It guards against a server that never answers; it is not a performance requirement.
const DefaultRPCTimeout = 30 * time.Second

// Options configure Check.
type Options struct {
	// SendTo is the E.164 phone number ("+15005550006") the Send rules deliver a real message
	// to, with the server's default configuration. Empty: the Send rules are skipped.
	SendTo string
	// HealthService is the grpc.health.v1 service name whose status must be SERVING. Empty is
	// the server's overall health; a go-plugin plugin serves "plugin".
	HealthService string
	// RPCTimeout bounds each RPC; 0 means DefaultRPCTimeout.
	RPCTimeout time.Duration
}

// Outcome is how a rule ended.
type Outcome string

// The outcomes of a rule.
const (
	// Pass: the server did what the rule requires.
	Pass Outcome = "PASS"
	// Fail: it did not; the message says what it did instead.
	Fail Outcome = "FAIL"
	// Skip: the rule could not or was asked not to run; the message says why.
	Skip Outcome = "SKIP"
)

// Result is the outcome of one rule.
type Result struct {
	// Rule is the rule's name, as listed by Rules ("SendMessage/EmptyTo").
	Rule string
	// Outcome is PASS, FAIL or SKIP.
	Outcome Outcome
	// Message says what was checked (PASS), what is wrong (FAIL, starting "conformance:") or
	// why the rule did not run (SKIP).
	Message string
}

// String renders r as one line: "FAIL SendMessage/EmptyTo: conformance: ...".
func (r Result) String() string {
	return fmt.Sprintf("%s %s: %s", r.Outcome, r.Rule, r.Message)
}

// Report is the outcome of every rule, in the order they ran.
type Report struct {
	// Results has one entry per rule, in the order of Rules.
	Results []Result
}

// Failed reports whether any rule failed.
func (r Report) Failed() bool { return r.Count(Fail) > 0 }

// Count returns how many rules ended with o.
func (r Report) Count(o Outcome) int {
	n := 0
	for _, res := range r.Results {
		if res.Outcome == o {
			n++
		}
	}
	return n
}

// Result returns the result of the named rule.
func (r Report) Result(rule string) (Result, bool) {
	for _, res := range r.Results {
		if res.Rule == rule {
			return res, true
		}
	}
	return Result{}, false
}

// String renders the report: one line per rule, then a summary line.
func (r Report) String() string {
	var b strings.Builder
	for _, res := range r.Results {
		b.WriteString(res.String())
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "conformance: %d rules: %d passed, %d failed, %d skipped\n",
		len(r.Results), r.Count(Pass), r.Count(Fail), r.Count(Skip))
	return b.String()
}

// Rules returns the names of the rules Check runs, in order.
func Rules() []string {
	names := make([]string, len(rules))
	for i, r := range rules {
		names[i] = r.name
	}
	return names
}

// Check runs every rule against the SmsConnector and grpc.health.v1 services behind cc, one
// RPC at a time, and reports each. It never stops early: a rule whose premise failed (no
// metadata, say) is skipped with a message naming the rule that failed, and once ctx ends the
// rules not yet run fail, so a cut-short check never looks like a pass.
func Check(ctx context.Context, cc grpc.ClientConnInterface, opts Options) Report {
	if opts.RPCTimeout <= 0 {
		opts.RPCTimeout = DefaultRPCTimeout
	}
	c := &checker{
		sms:  smsv1.NewSmsConnectorClient(cc),
		hc:   healthpb.NewHealthClient(cc),
		opts: opts,
	}
	rep := Report{Results: make([]Result, 0, len(rules))}
	for _, r := range rules {
		var res Result
		if err := ctx.Err(); err != nil {
			res = failf("not run: the check ended first (%v)", err)
		} else {
			res = r.run(c, ctx)
		}
		res.Rule = r.name
		rep.Results = append(rep.Results, res)
	}
	return rep
}
