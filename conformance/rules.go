package conformance

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sms-connector/sms-connector/connector"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
	"github.com/sms-connector/sms-connector/internal/contract"
	"github.com/sms-connector/sms-connector/internal/protoconv"
)

// contractVersion is the contract this package checks, as GetMetadataResponse.contract_version
// names it. The conformance tests prove it equals server.ContractVersion.
const contractVersion = "connector.sms.v1"

// recipient is the number requests that must fail are addressed to: +1 415 555-0123 is in the
// NANP range reserved for fiction, so a broken server that sends one reaches nobody.
const recipient = "+14155550123"

// code is the verification code every request carries.
const code = "123456"

// noCodeContent replaces every template's content to make a configuration whose templates
// have neither {{code}} nor {{link}}.
const noCodeContent = "Your verification code is on its way."

// linkContent replaces every template's content to make a configuration whose templates carry
// a link and no code, as an organization invitation's does.
const linkContent = "Join the organization: {{link}}"

// reE164 is an E.164 phone number: "+" then 7 to 15 digits, the first not 0.
var reE164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// rule is one rule of the check.
type rule struct {
	name string
	run  func(c *checker, ctx context.Context) Result
}

// rules are every rule, in the order Check runs them: the shared rules of package
// internal/contract on the answers converted back to connector types, and the rules of the
// wire itself (health, contract version, request validation, the error model). The Send rules
// come before Errors/ErrorInfo so that their errors are judged too.
var rules = slices.Concat([]rule{
	{"Health", (*checker).checkHealth},
	{"Metadata", (*checker).metadata},
}, metadataRules(), []rule{
	{"Metadata/ContractVersion", (*checker).metadataContractVersion},
	{contract.RuleConfigTemplate, (*checker).validateTemplate},
	{contract.RuleEmptyObject, (*checker).validateEmptyObject},
	{contract.RuleMissingCode, (*checker).validateMissingCode},
	{"ValidateConfig/LinkTemplate", (*checker).validateLinkTemplate},
	{"ValidateConfig/MissingConfig", (*checker).validateMissingConfig},
	{"SendMessage/EmptyTo", requestRule(
		expectation{what: "SendMessage with an empty 'to'", code: codes.InvalidArgument,
			reasons: []string{reasonInvalidPhoneNumber, reasonInvalidRequest}, fields: []string{"to"}},
		func(r *smsv1.SendMessageRequest) { r.To = "" })},
	{"SendMessage/MalformedTo", requestRule(
		expectation{what: "SendMessage with the malformed 'to' \"not-a-phone-number\"", code: codes.InvalidArgument,
			reasons: []string{reasonInvalidPhoneNumber, reasonInvalidRequest}, fields: []string{"to"}},
		func(r *smsv1.SendMessageRequest) { r.To = "not-a-phone-number" })},
	{"SendMessage/UnspecifiedUsageType", requestRule(
		expectation{what: "SendMessage with usage_type USAGE_TYPE_UNSPECIFIED", code: codes.InvalidArgument,
			reasons: []string{reasonInvalidRequest}, fields: []string{"usage_type", "usageType"}},
		func(r *smsv1.SendMessageRequest) { r.UsageType = smsv1.UsageType_USAGE_TYPE_UNSPECIFIED })},
	{"SendMessage/MissingPayload", requestRule(
		expectation{what: "SendMessage without a payload", code: codes.InvalidArgument,
			reasons: []string{reasonInvalidRequest}, fields: []string{"payload", "payload.code"}},
		func(r *smsv1.SendMessageRequest) { r.Payload = nil })},
	{"SendMessage/EmptyCode", requestRule(
		expectation{what: "SendMessage with neither payload.code nor payload.link", code: codes.InvalidArgument,
			reasons: []string{reasonInvalidRequest}, fields: []string{"payload.code"}},
		func(r *smsv1.SendMessageRequest) { r.Payload.Code = "" })},
	{"SendMessage/NotHTTPSLink", requestRule(
		expectation{what: "SendMessage with the payload.link \"http://example.com/invite\" (not https)", code: codes.InvalidArgument,
			reasons: []string{reasonInvalidRequest}, fields: []string{"payload.link"}},
		func(r *smsv1.SendMessageRequest) { r.Payload.Link = "http://example.com/invite" })},
	{"SendMessage/BadUILocale", requestRule(
		expectation{what: "SendMessage with the payload.ui_locales [\"fr\", \"{{authToken}}\"]", code: codes.InvalidArgument,
			reasons: []string{reasonInvalidRequest}, fields: []string{"payload.ui_locales[1]", "payload.ui_locales", "payload.uiLocales[1]", "payload.uiLocales"}},
		func(r *smsv1.SendMessageRequest) { r.Payload.UiLocales = []string{"fr", "{{authToken}}"} })},
	{"SendMessage/InvalidConfig", (*checker).sendInvalidConfig},
	{"Send/DefaultConfig", (*checker).sendDefaultConfig},
	{"Send/ExpiredDeadline", (*checker).sendExpiredDeadline},
	{"GetMessageStatus/MissingID", (*checker).statusMissingID},
	{contract.RuleStatusUnknownID, (*checker).statusUnknownID},
	{contract.RuleStatusOfSent, (*checker).statusOfSent},
	{"Errors/ErrorInfo", (*checker).errorInfo},
})

// metadataRules are contract.MetadataRules as rules of the check, each under "Metadata/".
func metadataRules() []rule {
	var out []rule
	for _, r := range contract.MetadataRules() {
		out = append(out, rule{"Metadata/" + r.Name, func(c *checker, _ context.Context) Result {
			if c.md == nil {
				return skipNoMetadata()
			}
			return problems(r.Check(c.cmd)).result("Metadata.%s is as the contract requires", r.Name)
		}})
	}
	return out
}

// checker is the state of one Check: the clients, the metadata once known, and every error
// an SmsConnector RPC returned.
type checker struct {
	sms  smsv1.SmsConnectorClient
	hc   healthpb.HealthClient
	opts Options

	md     *smsv1.GetMetadataResponse // nil until the Metadata rule passed its call
	cmd    *connector.Metadata        // md converted back to connector types
	errs   []observed
	sentID string // the message_id of Send/DefaultConfig's message; "" until it passed
}

// observed is an error an SmsConnector RPC returned, with the call that returned it.
type observed struct {
	what string
	err  error
}

// passf, failf and skipf make a Result; failures start with "conformance:".
func passf(format string, args ...any) Result {
	return Result{Outcome: Pass, Message: fmt.Sprintf(format, args...)}
}

func failf(format string, args ...any) Result {
	return Result{Outcome: Fail, Message: "conformance: " + fmt.Sprintf(format, args...)}
}

func skipf(format string, args ...any) Result {
	return Result{Outcome: Skip, Message: fmt.Sprintf(format, args...)}
}

// problems collects what is wrong in one rule, each a sentence of its own.
type problems []string

func (p *problems) addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// result fails with every problem, or passes with the message format.
func (p problems) result(format string, args ...any) Result {
	if len(p) > 0 {
		return failf("%s", strings.Join(p, "; "))
	}
	return passf(format, args...)
}

// rpcContext bounds one RPC.
func (c *checker) rpcContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.opts.RPCTimeout)
}

// observe records err, the outcome of the call what, for Errors/ErrorInfo.
func (c *checker) observe(what string, err error) {
	if err != nil {
		c.errs = append(c.errs, observed{what: what, err: err})
	}
}

func (c *checker) getMetadata(ctx context.Context) (*smsv1.GetMetadataResponse, error) {
	ctx, cancel := c.rpcContext(ctx)
	defer cancel()
	resp, err := c.sms.GetMetadata(ctx, &smsv1.GetMetadataRequest{})
	c.observe("GetMetadata", err)
	return resp, err
}

func (c *checker) validateConfig(ctx context.Context, what string, cfg *structpb.Struct) (*smsv1.ValidateConfigResponse, error) {
	ctx, cancel := c.rpcContext(ctx)
	defer cancel()
	resp, err := c.sms.ValidateConfig(ctx, &smsv1.ValidateConfigRequest{Config: cfg})
	c.observe(what, err)
	return resp, err
}

func (c *checker) sendMessage(ctx context.Context, what string, req *smsv1.SendMessageRequest) (*smsv1.SendMessageResponse, error) {
	ctx, cancel := c.rpcContext(ctx)
	defer cancel()
	resp, err := c.sms.SendMessage(ctx, req)
	c.observe(what, err)
	return resp, err
}

// usageType is the usage type requests carry: Generic when the connector supports it (it is
// every template list's fallback), else the first usage type it lists.
func (c *checker) usageType() smsv1.UsageType {
	us := c.md.GetSupportedUsageTypes()
	if len(us) == 0 || slices.Contains(us, smsv1.UsageType_USAGE_TYPE_GENERIC) {
		return smsv1.UsageType_USAGE_TYPE_GENERIC
	}
	for _, u := range us {
		if _, known := smsv1.UsageType_name[int32(u)]; known && u != smsv1.UsageType_USAGE_TYPE_UNSPECIFIED {
			return u
		}
	}
	return smsv1.UsageType_USAGE_TYPE_GENERIC
}

// request is a valid request to to, without config (so with the server's default one).
func (c *checker) request(to string) *smsv1.SendMessageRequest {
	return &smsv1.SendMessageRequest{To: to, UsageType: c.usageType(), Payload: &smsv1.Payload{Code: code}}
}

// checkHealth checks grpc.health.v1.
func (c *checker) checkHealth(ctx context.Context) Result {
	ctx, cancel := c.rpcContext(ctx)
	defer cancel()
	what := fmt.Sprintf("grpc.health.v1.Health/Check of the service %q", c.opts.HealthService)
	resp, err := c.hc.Check(ctx, &healthpb.HealthCheckRequest{Service: c.opts.HealthService})
	if err != nil {
		e := inspect(err)
		return failf("%s must answer SERVING, got %s: %q", what, codeName(e.st.Code()), contract.Cut(e.st.Message()))
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return failf("%s must answer SERVING, got %s", what, resp.GetStatus())
	}
	return passf("%s answers SERVING", what)
}

// metadata calls GetMetadata, which the other Metadata rules and the config rules need.
func (c *checker) metadata(ctx context.Context) Result {
	md, err := c.getMetadata(ctx)
	if err != nil {
		return failf("GetMetadata must not fail for a running connector, got %s", inspect(err))
	}
	c.md = md
	c.cmd = protoconv.MetadataFromProto(md)
	return passf("GetMetadata describes the connector %q (version %q)", md.GetId(), md.GetConnectorVersion())
}

// skipNoMetadata is the result of a rule that needs the metadata when GetMetadata failed.
func skipNoMetadata() Result {
	return skipf("needs the metadata, and GetMetadata failed (see the Metadata rule)")
}

func (c *checker) metadataContractVersion(context.Context) Result {
	if c.md == nil {
		return skipNoMetadata()
	}
	if v := c.md.GetContractVersion(); v != contractVersion {
		return failf("GetMetadataResponse.contract_version must be %q, the contract this check knows, got %q", contractVersion, v)
	}
	return passf("contract_version %q", contractVersion)
}

// validFlag checks the one part of a ValidateConfig answer the wire adds to the connector's
// violations: valid is true exactly when there are none.
func validFlag(what string, resp *smsv1.ValidateConfigResponse) problems {
	var p problems
	switch n := len(resp.GetViolations()); {
	case resp.GetValid() && n > 0:
		p.addf("ValidateConfigResponse.valid must be false when there are violations; for %s it is true with %d violation(s)", what, n)
	case !resp.GetValid() && n == 0:
		p.addf("ValidateConfig must list every problem of an invalid configuration as violations; for %s it says valid = false and lists none", what)
	}
	return p
}

// validateAnswer asks ValidateConfig about cfg, which what describes, and returns the
// violations as connector types with the problems of the wire's own answer; a failed call is
// a problem, since an invalid configuration is a successful call with valid = false.
func (c *checker) validateAnswer(ctx context.Context, what string, cfg *structpb.Struct) ([]connector.Violation, problems) {
	resp, err := c.validateConfig(ctx, "ValidateConfig of "+what, cfg)
	if err != nil {
		var p problems
		p.addf("ValidateConfig of %s must answer (an invalid configuration is a successful call with valid = false), got %s", what, inspect(err))
		return nil, p
	}
	return protoconv.ViolationsFromProto(resp.GetViolations()), validFlag(what, resp)
}

func (c *checker) validateTemplate(ctx context.Context) Result {
	if c.md == nil {
		return skipNoMetadata()
	}
	tpl := c.md.GetConfigTemplate()
	if tpl == nil {
		return skipf("GetMetadataResponse.config_template is absent (see Metadata/ConfigTemplate)")
	}
	const what = "Metadata.ConfigTemplate (config_template), the configuration platforms start from,"
	vs, p := c.validateAnswer(ctx, what, tpl)
	if len(p) == 0 {
		p = append(p, contract.Accepted(what, vs)...)
	}
	return p.result("ValidateConfig accepts config_template")
}

func (c *checker) validateEmptyObject(ctx context.Context) Result {
	const what = "the empty configuration {}"
	vs, p := c.validateAnswer(ctx, what, &structpb.Struct{})
	if len(p) == 0 {
		p = append(p, contract.Rejected(what, vs, "", true)...)
	}
	return p.result("%s is invalid with the violations %s", what, contract.ShowViolations(vs))
}

// withoutCode returns a copy of tpl whose every template content lacks {{code}}, and whether
// tpl has a "templates" array with at least one template content to rewrite.
func withoutCode(tpl *structpb.Struct) (*structpb.Struct, bool) {
	return withContent(tpl, noCodeContent)
}

// withContent returns a copy of the configuration template tpl with every template's content
// replaced by content, and whether there was any.
func withContent(tpl *structpb.Struct, content string) (*structpb.Struct, bool) {
	if tpl == nil {
		return nil, false
	}
	cfg := proto.Clone(tpl).(*structpb.Struct)
	n := 0
	for _, v := range cfg.GetFields()["templates"].GetListValue().GetValues() {
		t := v.GetStructValue()
		if _, ok := t.GetFields()["content"].GetKind().(*structpb.Value_StringValue); ok {
			t.Fields["content"] = structpb.NewStringValue(content)
			n++
		}
	}
	return cfg, n > 0
}

func (c *checker) validateMissingCode(ctx context.Context) Result {
	if c.md == nil {
		return skipNoMetadata()
	}
	cfg, ok := withoutCode(c.md.GetConfigTemplate())
	if !ok {
		return skipf("GetMetadataResponse.config_template has no \"templates\" array of objects with a \"content\" string to derive a template with neither {{code}} nor {{link}} from")
	}
	what := fmt.Sprintf("config_template with every template's content rewritten to %q", noCodeContent)
	vs, p := c.validateAnswer(ctx, what, cfg)
	p = append(problems(contract.MissingCode(what, vs, "templates")), p...)
	return p.result("templates with neither {{code}} nor {{link}} are flagged: %s", contract.ShowViolations(vs))
}

func (c *checker) validateLinkTemplate(ctx context.Context) Result {
	if c.md == nil {
		return skipNoMetadata()
	}
	cfg, ok := withContent(c.md.GetConfigTemplate(), linkContent)
	if !ok {
		return skipf("GetMetadataResponse.config_template has no \"templates\" array of objects with a \"content\" string to derive a template with {{link}} from")
	}
	what := fmt.Sprintf("config_template with every template's content rewritten to %q (a link and no code)", linkContent)
	vs, p := c.validateAnswer(ctx, what, cfg)
	if len(p) == 0 {
		p = append(p, contract.Accepted(what, vs)...)
	}
	return p.result("templates with {{link}} and no {{code}} are accepted")
}

func (c *checker) validateMissingConfig(ctx context.Context) Result {
	x := expectation{what: "ValidateConfig without a config", code: codes.InvalidArgument,
		reasons: []string{reasonInvalidRequest}, fields: []string{"config"}}
	resp, err := c.validateConfig(ctx, x.what, nil)
	p := problems(x.check(fmt.Sprintf("valid = %t", resp.GetValid()), err))
	return p.result("%s fails with %s", x.what, inspect(err))
}

// requestRule makes a rule that sends a valid request edited by edit, which must fail as x says.
func requestRule(x expectation, edit func(*smsv1.SendMessageRequest)) func(*checker, context.Context) Result {
	return func(c *checker, ctx context.Context) Result {
		req := c.request(recipient)
		edit(req)
		resp, err := c.sendMessage(ctx, x.what, req)
		p := problems(x.check(showResponse(resp), err))
		return p.result("%s fails with %s", x.what, inspect(err))
	}
}

// showResponse renders a SendMessage response for a message.
func showResponse(r *smsv1.SendMessageResponse) string {
	return fmt.Sprintf("message_id %q to %q", r.GetMessageId(), r.GetTo())
}

func (c *checker) sendInvalidConfig(ctx context.Context) Result {
	type candidate struct {
		what string
		cfg  *structpb.Struct
	}
	var cands []candidate
	if cfg, ok := withoutCode(c.md.GetConfigTemplate()); ok {
		cands = append(cands, candidate{"config_template with templates lacking {{code}}", cfg})
	}
	cands = append(cands, candidate{`{"smsConformance": true}`, &structpb.Struct{Fields: map[string]*structpb.Value{
		"smsConformance": structpb.NewBoolValue(true),
	}}})
	var (
		chosen *candidate
		tried  []string
	)
	for i := range cands {
		resp, err := c.validateConfig(ctx, "ValidateConfig of "+cands[i].what, cands[i].cfg)
		if err == nil && !resp.GetValid() && len(resp.GetViolations()) > 0 {
			chosen = &cands[i]
			break
		}
		tried = append(tried, cands[i].what)
	}
	if chosen == nil {
		return skipf("found no non-empty configuration that ValidateConfig rejects with violations (tried %s)", strings.Join(tried, ", "))
	}
	x := expectation{what: fmt.Sprintf("SendMessage carrying an invalid config (%s)", chosen.what), code: codes.InvalidArgument,
		reasons: []string{reasonInvalidConfig}, fieldPrefix: "config"}
	req := c.request(recipient)
	req.Config = chosen.cfg
	resp, err := c.sendMessage(ctx, x.what, req)
	p := problems(x.check(showResponse(resp), err))
	if len(p) == 0 {
		_, shared := contract.Failure(x.what, protoconv.ErrorFromStatus(err), connector.ReasonInvalidConfig)
		p = append(p, shared...)
	}
	return p.result("%s fails with %s and the fields %q", x.what, inspect(err), inspect(err).fields())
}

// skipNoSendTo is the result of a Send rule without Options.SendTo.
func skipNoSendTo() Result {
	return skipf("sends a real message, and no phone number was given to send it to (Options.SendTo, --send-to)")
}

func (c *checker) sendDefaultConfig(ctx context.Context) Result {
	to := c.opts.SendTo
	if to == "" {
		return skipNoSendTo()
	}
	if !reE164.MatchString(to) {
		return failf("Options.SendTo must be an E.164 phone number like +15005550006, got %q", to)
	}
	what := fmt.Sprintf("SendMessage to %s with the server's default config (no config in the request)", to)
	resp, err := c.sendMessage(ctx, what, c.request(to))
	if err != nil {
		e := inspect(err)
		hint := ""
		if e.reason() == reasonConfigMissing {
			hint = " (the server has no default configuration: start it with one, or leave out the phone number to skip the Send rules)"
		}
		return failf("%s must succeed, got %s%s", what, e, hint)
	}
	p := problems(contract.Receipt(what, protoconv.ReceiptFromResponse(resp), to))
	c.sentID = resp.GetMessageId()
	if c.md != nil && resp.GetConnectorId() != c.md.GetId() {
		p.addf("%s: SendMessageResponse.connector_id must be GetMetadata's id %q, got %q", what, c.md.GetId(), resp.GetConnectorId())
	}
	return p.result("message_id %q, status %q, %d segment(s), %s", resp.GetMessageId(), resp.GetStatus(), resp.GetSegments(), resp.GetEncoding())
}

func (c *checker) sendExpiredDeadline(ctx context.Context) Result {
	to := c.opts.SendTo
	if to == "" {
		return skipNoSendTo()
	}
	if !reE164.MatchString(to) {
		return failf("Options.SendTo must be an E.164 phone number like +15005550006, got %q", to)
	}
	what := fmt.Sprintf("SendMessage to %s with a deadline that has already passed", to)
	dctx, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	// Not observed: the error may come from the client library, not the server.
	resp, err := c.sms.SendMessage(dctx, c.request(to))
	if err == nil {
		return failf("%s must fail with DEADLINE_EXCEEDED or CANCELLED and send nothing, got success (%s)", what, showResponse(resp))
	}
	e := inspect(err)
	if code := e.st.Code(); code != codes.DeadlineExceeded && code != codes.Canceled {
		return failf("%s must fail with DEADLINE_EXCEEDED or CANCELLED, never UNKNOWN, got %s", what, e)
	}
	return passf("%s fails with %s", what, codeName(e.st.Code()))
}

func (c *checker) getMessageStatus(ctx context.Context, what string, id string) (*smsv1.MessageStatus, error) {
	ctx, cancel := c.rpcContext(ctx)
	defer cancel()
	resp, err := c.sms.GetMessageStatus(ctx, &smsv1.GetMessageStatusRequest{MessageId: id})
	c.observe(what, err)
	return resp, err
}

func (c *checker) statusMissingID(ctx context.Context) Result {
	x := expectation{what: "GetMessageStatus without a message_id", code: codes.InvalidArgument,
		reasons: []string{reasonInvalidRequest}, fields: []string{"message_id", "messageId"}}
	resp, err := c.getMessageStatus(ctx, x.what, "")
	p := problems(x.check(fmt.Sprintf("state %s", resp.GetState()), err))
	return p.result("%s fails with %s", x.what, inspect(err))
}

// statusAnswer converts the outcome of a GetMessageStatus back to connector types: a status
// only on success, and the error as a host gets it.
func statusAnswer(resp *smsv1.MessageStatus, err error) (*connector.MessageStatus, error) {
	if err != nil {
		return nil, protoconv.ErrorFromStatus(err)
	}
	return protoconv.MessageStatusFromProto(resp), nil
}

func (c *checker) statusUnknownID(ctx context.Context) Result {
	what := fmt.Sprintf("GetMessageStatus of %q, an id no send returned, with the server's default config", contract.UnknownMessageID)
	resp, err := c.getMessageStatus(ctx, what, contract.UnknownMessageID)
	e := inspect(err)
	if err != nil && e.reason() == reasonConfigMissing {
		return skipf("%s: the server has no default configuration (CONFIG_MISSING)", what)
	}
	supported := err == nil || e.st.Code() != codes.Unimplemented
	if resp.GetState() == smsv1.DeliveryState_DELIVERY_STATE_UNSPECIFIED && err == nil {
		return failf("%s must fail with NOT_FOUND (MESSAGE_NOT_FOUND) or UNIMPLEMENTED (NOT_SUPPORTED), got a status with state DELIVERY_STATE_UNSPECIFIED", what)
	}
	st, cerr := statusAnswer(resp, err)
	p := problems(contract.StatusOfUnknown(what, st, cerr, supported))
	if len(p) == 0 && err != nil {
		want := codes.NotFound
		if !supported {
			want = codes.Unimplemented
		}
		if e.st.Code() != want {
			p.addf("%s must fail with %s for reason %s, got %s", what, codeName(want), e.reason(), e)
		}
	}
	return p.result("%s fails with %s", what, e)
}

func (c *checker) statusOfSent(ctx context.Context) Result {
	if c.opts.SendTo == "" {
		return skipNoSendTo()
	}
	if c.sentID == "" {
		return skipf("needs the message_id of Send/DefaultConfig, which did not succeed")
	}
	what := fmt.Sprintf("GetMessageStatus of %q, the message Send/DefaultConfig sent, with the server's default config", c.sentID)
	resp, err := c.getMessageStatus(ctx, what, c.sentID)
	if err == nil && resp.GetState() == smsv1.DeliveryState_DELIVERY_STATE_UNSPECIFIED {
		return failf("%s: MessageStatus.state must never be DELIVERY_STATE_UNSPECIFIED", what)
	}
	st, cerr := statusAnswer(resp, err)
	supported, shared := contract.StatusOfSent(what, st, cerr, c.sentID)
	p := problems(shared)
	if !supported && len(p) == 0 {
		if code := inspect(err).st.Code(); code != codes.Unimplemented {
			p.addf("%s must fail with UNIMPLEMENTED for reason NOT_SUPPORTED, got %s", what, inspect(err))
		}
		return p.result("the connector cannot tell delivery statuses: %s", inspect(err))
	}
	return p.result("state %s, vendor status %q", resp.GetState(), resp.GetVendorStatus())
}

func (c *checker) errorInfo(context.Context) Result {
	// Calls that got the same error are reported together: a server that fails everything
	// the same way (UNKNOWN, or unreachable) gets one sentence, not one per call.
	type group struct {
		err      *rpcError
		problems []string
		whats    []string
	}
	var (
		groups []*group
		byErr  = make(map[string]*group)
	)
	for _, o := range c.errs {
		e := inspect(o.err)
		p := errorModelProblems(e)
		if len(p) == 0 {
			continue
		}
		g, ok := byErr[e.String()]
		if !ok {
			g = &group{err: e, problems: p}
			byErr[e.String()] = g
			groups = append(groups, g)
		}
		g.whats = append(g.whats, o.what)
	}
	if len(groups) > 0 {
		var p problems
		for _, g := range groups {
			p.addf("%s returned %s, which has %s", listCalls(g.whats), g.err, strings.Join(g.problems, " and "))
		}
		return failf("every error of an SmsConnector RPC must carry a google.rpc.ErrorInfo with the domain %q and a reason named in ErrorReason, and must not have the code UNKNOWN: %s",
			errorDomain, strings.Join(p, "; "))
	}
	return passf("all %d errors of SmsConnector RPCs carried a google.rpc.ErrorInfo with the domain %q and a documented reason", len(c.errs), errorDomain)
}

// listCalls names calls for a message: the first few, then how many more.
func listCalls(whats []string) string {
	const maxShown = 3
	switch n := len(whats); {
	case n == 1:
		return whats[0]
	case n <= maxShown:
		return strings.Join(whats[:n-1], ", ") + " and " + whats[n-1]
	default:
		return fmt.Sprintf("%s and %d more calls", strings.Join(whats[:maxShown], ", "), n-maxShown)
	}
}
