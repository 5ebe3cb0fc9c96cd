package conformance_test

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sms-connector/sms-connector/conformance"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
	"github.com/sms-connector/sms-connector/internal/testutil"
)

// flaw names one way the in-test server can be broken on purpose, to prove that Check catches
// it. flawNone is a conforming server written straight from the proto, in no way from server/.
type flaw string

// The flaws. Each breaks one rule of the contract (some, by nature, more than one).
const (
	flawNone                flaw = "none"
	flawUnknownErrors       flaw = "unknownErrors"       // every error is UNKNOWN "boom" without details
	flawMetadataNoEnglish   flaw = "metadataNoEnglish"   // name has no "en"
	flawMetadataFails       flaw = "metadataFails"       // GetMetadata fails
	flawAcceptsEmptyTo      flaw = "acceptsEmptyTo"      // SendMessage with an empty to succeeds
	flawWrongDomain         flaw = "wrongDomain"         // ErrorInfo domain "example.com"
	flawUndocumentedReason  flaw = "undocumentedReason"  // ErrorInfo reason "BAD_TO" for a bad recipient
	flawNoBadRequest        flaw = "noBadRequest"        // errors carry no BadRequest
	flawUnprefixedConfig    flaw = "unprefixedConfig"    // INVALID_CONFIG fields lack "config."
	flawWrongContract       flaw = "wrongContract"       // contract_version "connector.sms.v2"
	flawDuplicateFormKeys   flaw = "duplicateFormKeys"   // two form items with the key "account"
	flawSchemaNotObject     flaw = "schemaNotObject"     // config_schema "type": "array"
	flawUnspecifiedUsage    flaw = "unspecifiedUsage"    // supported_usage_types holds UNSPECIFIED
	flawTemplateInvalid     flaw = "templateInvalid"     // config_template lacks {{code}}
	flawValidatesEverything flaw = "validatesEverything" // ValidateConfig says every config is valid
	flawNotServing          flaw = "notServing"          // health NOT_SERVING
	flawEmptyReceipt        flaw = "emptyReceipt"        // SendMessageResponse without id, segments, encoding, to
	flawNoDefaultConfig     flaw = "noDefaultConfig"     // the server has no default configuration
	flawCodeOnlyTemplates   flaw = "codeOnlyTemplates"   // a template with {{link}} and no {{code}} is invalid
	flawAcceptsAnyLink      flaw = "acceptsAnyLink"      // payload.link is not checked
	// GetMessageStatus answers gRPC's own UNIMPLEMENTED, without ErrorInfo
	flawStatusBareUnimplemented flaw = "statusBareUnimplemented"
	flawStatusAcceptsNoID       flaw = "statusAcceptsNoID"  // an empty message_id is looked up, not refused
	flawStatusFindsUnknown      flaw = "statusFindsUnknown" // an id never sent has a status
)

// brokenServer is a small SmsConnector of an invented vendor whose configuration is
// {"account": "acct-<digits>", "templates": [{usageType, content}]}, broken by its flaw.
type brokenServer struct {
	smsv1.UnimplementedSmsConnectorServer
	flaw flaw
	sent atomic.Int64
}

var (
	reAccount = regexp.MustCompile(`^acct-[0-9]+$`)
	reE164    = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	reLocale  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,35}$`)
)

// fail makes the contract's error: code, ErrorInfo{reason, domain}, and a BadRequest naming
// fields, or the flawed variant of it.
func (s *brokenServer) fail(code codes.Code, reason, msg string, fields ...string) error {
	if s.flaw == flawUnknownErrors {
		return status.Error(codes.Unknown, "boom")
	}
	domain := "sms-connector.dev"
	if s.flaw == flawWrongDomain {
		domain = "example.com"
	}
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: reason, Domain: domain}}
	if len(fields) > 0 && s.flaw != flawNoBadRequest {
		br := &errdetails.BadRequest{}
		for _, f := range fields {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: f, Description: "is wrong"})
		}
		details = append(details, br)
	}
	st, err := status.New(code, msg).WithDetails(details...)
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	return st.Err()
}

func (s *brokenServer) configTemplate() map[string]any {
	content := "Your code is {{code}}"
	if s.flaw == flawTemplateInvalid {
		content = "Your code is ready"
	}
	return map[string]any{"account": "acct-1", "templates": []any{map[string]any{"usageType": "Generic", "content": content}}}
}

func (s *brokenServer) GetMetadata(context.Context, *smsv1.GetMetadataRequest) (*smsv1.GetMetadataResponse, error) {
	if s.flaw == flawMetadataFails {
		return nil, s.fail(codes.Internal, "INTERNAL", "internal error in the connector")
	}
	md := &smsv1.GetMetadataResponse{
		Id:          "broken-sms",
		Target:      "broken",
		Name:        map[string]string{"en": "Broken", "fr": "Cassé"},
		Description: map[string]string{"en": "A connector broken on purpose."},
		FormItems: []*smsv1.FormItem{
			{Key: "account", Label: "Account", Type: smsv1.FormItemType_FORM_ITEM_TYPE_TEXT, Required: true},
			{Key: "templates", Label: "Templates", Type: smsv1.FormItemType_FORM_ITEM_TYPE_JSON, Required: true},
		},
		ConfigSchema:     mustStruct(map[string]any{"type": "object", "required": []any{"account", "templates"}}),
		ConfigTemplate:   mustStruct(s.configTemplate()),
		ContractVersion:  "connector.sms.v1",
		ConnectorVersion: "0.0.1",
	}
	for u := range smsv1.UsageType_name {
		if u != 0 {
			md.SupportedUsageTypes = append(md.SupportedUsageTypes, smsv1.UsageType(u))
		}
	}
	switch s.flaw {
	case flawMetadataNoEnglish:
		delete(md.Name, "en")
	case flawWrongContract:
		md.ContractVersion = "connector.sms.v2"
	case flawDuplicateFormKeys:
		md.FormItems = append(md.FormItems, &smsv1.FormItem{Key: "account", Label: "Again", Type: smsv1.FormItemType_FORM_ITEM_TYPE_TEXT})
	case flawSchemaNotObject:
		md.ConfigSchema = mustStruct(map[string]any{"type": "array"})
	case flawUnspecifiedUsage:
		md.SupportedUsageTypes = append(md.SupportedUsageTypes, smsv1.UsageType_USAGE_TYPE_UNSPECIFIED)
	}
	return md, nil
}

// violations validates a configuration; the fields are paths in it.
func (s *brokenServer) violations(cfg *structpb.Struct) []*smsv1.ConfigViolation {
	if s.flaw == flawValidatesEverything {
		return nil
	}
	var vs []*smsv1.ConfigViolation
	bad := func(field, desc string) {
		vs = append(vs, &smsv1.ConfigViolation{Field: field, Description: desc})
	}
	f := cfg.GetFields()
	for k := range f {
		if k != "account" && k != "templates" {
			bad(k, "is not a field of the configuration")
		}
	}
	if !reAccount.MatchString(f["account"].GetStringValue()) {
		bad("account", "must be acct- followed by digits")
	}
	ts := f["templates"].GetListValue().GetValues()
	if len(ts) == 0 {
		bad("templates", "must list at least one template")
	}
	for i, t := range ts {
		content := t.GetStructValue().GetFields()["content"].GetStringValue()
		if !strings.Contains(content, "{{code}}") && (s.flaw == flawCodeOnlyTemplates || !strings.Contains(content, "{{link}}")) {
			bad(fmt.Sprintf("templates[%d].content", i), "does not contain {{code}}")
		}
	}
	return vs
}

func (s *brokenServer) ValidateConfig(_ context.Context, req *smsv1.ValidateConfigRequest) (*smsv1.ValidateConfigResponse, error) {
	if req.GetConfig() == nil {
		return nil, s.fail(codes.InvalidArgument, "INVALID_REQUEST", "config is required", "config")
	}
	vs := s.violations(req.GetConfig())
	return &smsv1.ValidateConfigResponse{Valid: len(vs) == 0, Violations: vs}, nil
}

func (s *brokenServer) SendMessage(_ context.Context, req *smsv1.SendMessageRequest) (*smsv1.SendMessageResponse, error) {
	switch {
	case req.GetTo() == "" && s.flaw == flawAcceptsEmptyTo:
	case !reE164.MatchString(req.GetTo()):
		reason := "INVALID_PHONE_NUMBER"
		if s.flaw == flawUndocumentedReason {
			reason = "BAD_TO"
		}
		return nil, s.fail(codes.InvalidArgument, reason, "to is not an E.164 phone number", "to")
	}
	switch {
	case req.GetUsageType() == smsv1.UsageType_USAGE_TYPE_UNSPECIFIED:
		return nil, s.fail(codes.InvalidArgument, "INVALID_REQUEST", "usage_type is required", "usage_type")
	case req.GetPayload() == nil:
		return nil, s.fail(codes.InvalidArgument, "INVALID_REQUEST", "payload is required", "payload")
	case req.GetPayload().GetCode() == "" && req.GetPayload().GetLink() == "":
		return nil, s.fail(codes.InvalidArgument, "INVALID_REQUEST", "payload.code is required", "payload.code")
	case req.GetPayload().GetLink() != "" && !strings.HasPrefix(req.GetPayload().GetLink(), "https://") && s.flaw != flawAcceptsAnyLink:
		return nil, s.fail(codes.InvalidArgument, "INVALID_REQUEST", "payload.link must be an https URL", "payload.link")
	}
	for i, l := range req.GetPayload().GetUiLocales() {
		if !reLocale.MatchString(l) {
			field := fmt.Sprintf("payload.ui_locales[%d]", i)
			return nil, s.fail(codes.InvalidArgument, "INVALID_REQUEST", field+" is not a language tag", field)
		}
	}
	if len(req.GetConfig().GetFields()) > 0 {
		if vs := s.violations(req.GetConfig()); len(vs) > 0 {
			var fields []string
			for _, v := range vs {
				if s.flaw == flawUnprefixedConfig {
					fields = append(fields, v.GetField())
				} else {
					fields = append(fields, "config."+v.GetField())
				}
			}
			return nil, s.fail(codes.InvalidArgument, "INVALID_CONFIG", "the config is invalid", fields...)
		}
	} else if s.flaw == flawNoDefaultConfig {
		return nil, s.fail(codes.FailedPrecondition, "CONFIG_MISSING", "no config and no default config")
	}
	if s.flaw == flawEmptyReceipt {
		return &smsv1.SendMessageResponse{}, nil
	}
	return &smsv1.SendMessageResponse{
		MessageId:   fmt.Sprintf("broken-%d", s.sent.Add(1)),
		Status:      "queued",
		Segments:    1,
		Encoding:    smsv1.Encoding_ENCODING_GSM7,
		To:          req.GetTo(),
		ConnectorId: "broken-sms",
	}, nil
}

func mustStruct(m map[string]any) *structpb.Struct {
	s, err := structpb.NewStruct(m)
	if err != nil {
		panic(err)
	}
	return s
}

// serveBroken serves a brokenServer with flaw f, and health, on loopback.
func serveBroken(t *testing.T, f flaw) *grpc.ClientConn {
	t.Helper()
	gs := grpc.NewServer()
	smsv1.RegisterSmsConnectorServer(gs, &brokenServer{flaw: f})
	hs := health.NewServer()
	if f == flawNotServing {
		hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	}
	healthpb.RegisterHealthServer(gs, hs)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gs.Serve(l)
	}()
	t.Cleanup(func() {
		gs.Stop()
		<-done
	})
	return testutil.Dial(t, l.Addr().String())
}

// TestCheckCatchesBrokenServers runs the check against the in-test server broken in one way at
// a time, and checks that the rule that was broken fails with a message that says what is
// wrong; and that the unbroken server passes every rule, so a failure cannot come from the
// in-test server itself.
func TestCheckCatchesBrokenServers(t *testing.T) {
	type failure struct {
		rule    string
		message string
	}
	cases := []struct {
		flaw    flaw
		failing []failure // rules that must fail, each with what its message must say
		skipped []string  // rules that must be skipped
	}{
		{flaw: flawNone},
		{flaw: flawUnknownErrors, failing: []failure{
			{"SendMessage/EmptyTo", `conformance: SendMessage with an empty 'to' must fail with INVALID_ARGUMENT and reason INVALID_PHONE_NUMBER or INVALID_REQUEST, got UNKNOWN without a google.rpc.ErrorInfo: "boom"`},
			{"ValidateConfig/MissingConfig", `conformance: ValidateConfig without a config must fail with INVALID_ARGUMENT and reason INVALID_REQUEST, got UNKNOWN without a google.rpc.ErrorInfo: "boom"`},
			{"Errors/ErrorInfo", `conformance: every error of an SmsConnector RPC must carry a google.rpc.ErrorInfo with the domain "sms-connector.dev" and a reason named in ErrorReason, and must not have the code UNKNOWN: ValidateConfig without a config, SendMessage with an empty 'to', SendMessage with the malformed 'to' "not-a-phone-number" and 8 more calls returned UNKNOWN without a google.rpc.ErrorInfo: "boom", which has the code UNKNOWN and no google.rpc.ErrorInfo`},
		}},
		{flaw: flawMetadataNoEnglish, failing: []failure{
			{"Metadata/Name", `conformance: Metadata.Name (name) must have a non-empty "en" entry (the language platforms fall back to), got the languages ["fr"]`},
		}},
		{flaw: flawMetadataFails,
			failing: []failure{{"Metadata", `conformance: GetMetadata must not fail for a running connector, got INTERNAL with reason INTERNAL: "internal error in the connector"`}},
			skipped: []string{"Metadata/ID", "Metadata/Name", "ValidateConfig/ConfigTemplate", "ValidateConfig/MissingCode"}},
		{flaw: flawAcceptsEmptyTo, failing: []failure{
			{"SendMessage/EmptyTo", `conformance: SendMessage with an empty 'to' must fail with INVALID_ARGUMENT and reason INVALID_PHONE_NUMBER or INVALID_REQUEST, got success (message_id "broken-`},
		}},
		{flaw: flawWrongDomain, failing: []failure{
			{"SendMessage/EmptyTo", `conformance: SendMessage with an empty 'to': its google.rpc.ErrorInfo must have the domain "sms-connector.dev", got "example.com"`},
			{"Errors/ErrorInfo", `which has the ErrorInfo domain "example.com" instead of "sms-connector.dev"`},
		}},
		{flaw: flawUndocumentedReason, failing: []failure{
			{"SendMessage/MalformedTo", `must fail with INVALID_ARGUMENT and reason INVALID_PHONE_NUMBER or INVALID_REQUEST, got INVALID_ARGUMENT with reason BAD_TO`},
			{"Errors/ErrorInfo", `SendMessage with an empty 'to' and SendMessage with the malformed 'to' "not-a-phone-number" returned INVALID_ARGUMENT with reason BAD_TO: "to is not an E.164 phone number", which has the ErrorInfo reason "BAD_TO" (not an ErrorReason name without its "ERROR_REASON_" prefix)`},
		}},
		{flaw: flawNoBadRequest, failing: []failure{
			{"SendMessage/UnspecifiedUsageType", `conformance: SendMessage with usage_type USAGE_TYPE_UNSPECIFIED: its error must carry a google.rpc.BadRequest naming the field "usage_type", it carries none`},
			{"SendMessage/InvalidConfig", `its error must carry a google.rpc.BadRequest listing each problem with its field path under "config.", it lists none`},
		}},
		{flaw: flawUnprefixedConfig, failing: []failure{
			{"SendMessage/InvalidConfig", `conformance: SendMessage carrying an invalid config (config_template with templates lacking {{code}}): every field of its google.rpc.BadRequest must be a path under "config." (the request field the configuration travels in), got ["templates[0].content"]`},
		}},
		{flaw: flawWrongContract, failing: []failure{
			{"Metadata/ContractVersion", `conformance: GetMetadataResponse.contract_version must be "connector.sms.v1", the contract this check knows, got "connector.sms.v2"`},
		}},
		{flaw: flawDuplicateFormKeys, failing: []failure{
			{"Metadata/FormItems", `conformance: Metadata.FormItems (form_items) keys must be unique, entries 0 and 2 both have the key "account"`},
		}},
		{flaw: flawSchemaNotObject, failing: []failure{
			{"Metadata/ConfigSchema", `conformance: Metadata.ConfigSchema (config_schema) must be a JSON Schema with "type": "object" (configurations are JSON objects), got "type": "array"`},
		}},
		{flaw: flawUnspecifiedUsage, failing: []failure{
			{"Metadata/UsageTypes", `conformance: Metadata.UsageTypes (supported_usage_types) must not hold an unspecified usage type (USAGE_TYPE_UNSPECIFIED)`},
		}},
		{flaw: flawTemplateInvalid, failing: []failure{
			{"ValidateConfig/ConfigTemplate", `conformance: ValidateConfig must accept Metadata.ConfigTemplate (config_template), the configuration platforms start from, with no violations, it reports ["templates[0].content": does not contain {{code}}]`},
		}},
		{flaw: flawValidatesEverything,
			failing: []failure{
				{"ValidateConfig/EmptyObject", `conformance: ValidateConfig must report the empty configuration {} as invalid, with a violation for each problem, it reports no violation`},
				{"ValidateConfig/MissingCode", `conformance: ValidateConfig must flag a template with neither {{code}} nor {{link}}, it reports no violation for config_template with every template's content rewritten to "Your verification code is on its way."`},
			},
			skipped: []string{"SendMessage/InvalidConfig"}},
		{flaw: flawNotServing, failing: []failure{
			{"Health", `conformance: grpc.health.v1.Health/Check of the service "" must answer SERVING, got NOT_SERVING`},
		}},
		{flaw: flawEmptyReceipt, failing: []failure{
			{"Send/DefaultConfig", `conformance: SendMessage to +15005550006 with the server's default config (no config in the request): Receipt.MessageID (message_id) must carry the vendor's message id, it is empty`},
			{"Send/DefaultConfig", `Receipt.Segments (segments) must be at least 1, got 0`},
			{"Send/DefaultConfig", `Receipt.Encoding (encoding) must be GSM-7 (ENCODING_GSM7) or UCS-2 (ENCODING_UCS2), got ""`},
			{"Send/DefaultConfig", `Receipt.To (to) must echo the recipient in E.164, "+15005550006", got ""`},
			{"Send/DefaultConfig", `SendMessageResponse.connector_id must be GetMetadata's id "broken-sms", got ""`},
		}},
		{flaw: flawCodeOnlyTemplates, failing: []failure{
			{"ValidateConfig/LinkTemplate", `conformance: ValidateConfig must accept config_template with every template's content rewritten to "Join the organization: {{link}}" (a link and no code) with no violations, it reports ["templates[0].content": does not contain {{code}}]`},
		}},
		{flaw: flawAcceptsAnyLink, failing: []failure{
			{"SendMessage/NotHTTPSLink", `conformance: SendMessage with the payload.link "http://example.com/invite" (not https) must fail with INVALID_ARGUMENT and reason INVALID_REQUEST, got success`},
		}},
		{flaw: flawStatusBareUnimplemented, failing: []failure{
			{"GetMessageStatus/MissingID", `conformance: GetMessageStatus without a message_id must fail with INVALID_ARGUMENT and reason INVALID_REQUEST, got UNIMPLEMENTED without a google.rpc.ErrorInfo`},
			{"Errors/ErrorInfo", `returned UNIMPLEMENTED without a google.rpc.ErrorInfo: "method GetMessageStatus not implemented", which has no google.rpc.ErrorInfo`},
		}},
		{flaw: flawStatusAcceptsNoID, failing: []failure{
			{"GetMessageStatus/MissingID", `conformance: GetMessageStatus without a message_id must fail with INVALID_ARGUMENT and reason INVALID_REQUEST, got NOT_FOUND with reason MESSAGE_NOT_FOUND`},
		}},
		{flaw: flawStatusFindsUnknown, failing: []failure{
			{"MessageStatus/UnknownID", `an id no send returned, with the server's default config must fail with reason MESSAGE_NOT_FOUND, got a status with state QUEUED`},
		}},
		{flaw: flawNoDefaultConfig, skipped: []string{"MessageStatus/UnknownID", "MessageStatus/SentMessage"}, failing: []failure{
			{"Send/DefaultConfig", `must succeed, got FAILED_PRECONDITION with reason CONFIG_MISSING: "no config and no default config" (the server has no default configuration: start it with one, or leave out the phone number to skip the Send rules)`},
		}},
	}
	for _, tc := range cases {
		t.Run(string(tc.flaw), func(t *testing.T) {
			cc := serveBroken(t, tc.flaw)
			rep := conformance.Check(t.Context(), cc, conformance.Options{SendTo: sendTo})
			defer func() {
				if t.Failed() {
					t.Logf("report:\n%s", rep)
				}
			}()
			if tc.flaw == flawNone {
				if n := rep.Count(conformance.Pass); n != len(conformance.Rules()) {
					t.Errorf("the unbroken in-test server must pass every rule, %d of %d passed", n, len(conformance.Rules()))
				}
				return
			}
			if !rep.Failed() {
				t.Fatalf("the check passed a server with the flaw %s", tc.flaw)
			}
			for _, f := range tc.failing {
				r, ok := rep.Result(f.rule)
				if !ok {
					t.Fatalf("the report has no rule %s", f.rule)
				}
				if r.Outcome != conformance.Fail {
					t.Errorf("the check must fail %s for the flaw %s, got %s", f.rule, tc.flaw, r)
				}
				if !strings.Contains(r.Message, f.message) {
					t.Errorf("the failure of %s for the flaw %s must say\n\t%s\ngot\n\t%s", f.rule, tc.flaw, f.message, r.Message)
				}
			}
			for _, rule := range tc.skipped {
				if r, _ := rep.Result(rule); r.Outcome != conformance.Skip {
					t.Errorf("the check must skip %s for the flaw %s, got %s", rule, tc.flaw, r)
				}
			}
		})
	}
}

// GetMessageStatus answers message_id required, a message this server sent as delivered, and
// any other id NOT_FOUND, or the flawed variants.
func (s *brokenServer) GetMessageStatus(_ context.Context, req *smsv1.GetMessageStatusRequest) (*smsv1.MessageStatus, error) {
	id := req.GetMessageId()
	switch {
	case s.flaw == flawStatusBareUnimplemented:
		return nil, status.Error(codes.Unimplemented, "method GetMessageStatus not implemented")
	case id == "" && s.flaw != flawStatusAcceptsNoID:
		return nil, s.fail(codes.InvalidArgument, "INVALID_REQUEST", "message_id is required", "message_id")
	case len(req.GetConfig().GetFields()) == 0 && s.flaw == flawNoDefaultConfig:
		return nil, s.fail(codes.FailedPrecondition, "CONFIG_MISSING", "no config and no default config")
	}
	var n int64
	if _, err := fmt.Sscanf(id, "broken-%d", &n); err != nil || n < 1 || n > s.sent.Load() {
		if s.flaw == flawStatusFindsUnknown {
			return &smsv1.MessageStatus{MessageId: id, State: smsv1.DeliveryState_DELIVERY_STATE_QUEUED, VendorStatus: "queued"}, nil
		}
		return nil, s.fail(codes.NotFound, "MESSAGE_NOT_FOUND", "no message "+id)
	}
	return &smsv1.MessageStatus{MessageId: id, State: smsv1.DeliveryState_DELIVERY_STATE_DELIVERED, VendorStatus: "delivered", Segments: 1}, nil
}
