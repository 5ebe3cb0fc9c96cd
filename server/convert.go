package server

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sms-connector/sms-connector/connector"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
)

// ContractVersion is the contract this server implements, sent as
// GetMetadataResponse.contract_version: the proto package name.
const ContractVersion = "connector.sms.v1"

// MaxIdempotencyKeyLength bounds SendMessageRequest.idempotency_key, as the proto documents.
const MaxIdempotencyKeyLength = 128

// usageTypes pairs each proto UsageType with its Logto name; the one table both directions use.
var usageTypes = []struct {
	proto smsv1.UsageType
	name  connector.UsageType
}{
	{smsv1.UsageType_USAGE_TYPE_REGISTER, connector.UsageRegister},
	{smsv1.UsageType_USAGE_TYPE_SIGN_IN, connector.UsageSignIn},
	{smsv1.UsageType_USAGE_TYPE_FORGOT_PASSWORD, connector.UsageForgotPassword},
	{smsv1.UsageType_USAGE_TYPE_GENERIC, connector.UsageGeneric},
	{smsv1.UsageType_USAGE_TYPE_ORGANIZATION_INVITATION, connector.UsageOrganizationInvitation},
	{smsv1.UsageType_USAGE_TYPE_USER_PERMISSION_VALIDATION, connector.UsageUserPermissionValidation},
	{smsv1.UsageType_USAGE_TYPE_BIND_NEW_IDENTIFIER, connector.UsageBindNewIdentifier},
	{smsv1.UsageType_USAGE_TYPE_MFA_VERIFICATION, connector.UsageMfaVerification},
	{smsv1.UsageType_USAGE_TYPE_BIND_MFA, connector.UsageBindMfa},
}

// usageFromProto returns the Logto name of u. UNSPECIFIED gives "" (Message.Check reports it
// as required); a number the table lacks gives a name that is not Valid (reported as unknown).
func usageFromProto(u smsv1.UsageType) connector.UsageType {
	if u == smsv1.UsageType_USAGE_TYPE_UNSPECIFIED {
		return ""
	}
	for _, t := range usageTypes {
		if t.proto == u {
			return t.name
		}
	}
	return connector.UsageType("USAGE_TYPE_" + strconv.Itoa(int(u)))
}

// usageToProto returns the proto value of a Logto usage type name.
func usageToProto(u connector.UsageType) (smsv1.UsageType, bool) {
	for _, t := range usageTypes {
		if t.name == u {
			return t.proto, true
		}
	}
	return smsv1.UsageType_USAGE_TYPE_UNSPECIFIED, false
}

// formItemTypes maps Logto's form item types to the proto enum.
var formItemTypes = map[connector.FormItemType]smsv1.FormItemType{
	connector.FormItemText:          smsv1.FormItemType_FORM_ITEM_TYPE_TEXT,
	connector.FormItemNumber:        smsv1.FormItemType_FORM_ITEM_TYPE_NUMBER,
	connector.FormItemMultilineText: smsv1.FormItemType_FORM_ITEM_TYPE_MULTILINE_TEXT,
	connector.FormItemSwitch:        smsv1.FormItemType_FORM_ITEM_TYPE_SWITCH,
	connector.FormItemJSON:          smsv1.FormItemType_FORM_ITEM_TYPE_JSON,
	connector.FormItemSelect:        smsv1.FormItemType_FORM_ITEM_TYPE_SELECT,
}

// encodingToProto maps a receipt's encoding to the proto enum; an unknown one is UNSPECIFIED.
func encodingToProto(e connector.Encoding) smsv1.Encoding {
	switch e {
	case connector.EncodingGSM7:
		return smsv1.Encoding_ENCODING_GSM7
	case connector.EncodingUCS2:
		return smsv1.Encoding_ENCODING_UCS2
	}
	return smsv1.Encoding_ENCODING_UNSPECIFIED
}

// messageFromRequest converts and validates a SendMessageRequest. It reports every request
// problem at once, with proto field names, as one INVALID_REQUEST (or INVALID_PHONE_NUMBER when
// the recipient is the only problem) *connector.Error; on success the recipient is in E.164.
// The config is not resolved here (see Server.config).
func messageFromRequest(req *smsv1.SendMessageRequest) (*connector.Message, error) {
	msg := &connector.Message{
		To:             req.GetTo(),
		UsageType:      usageFromProto(req.GetUsageType()),
		IdempotencyKey: req.GetIdempotencyKey(),
		ClientIP:       req.GetClientIp(),
	}
	if p := req.GetPayload(); p != nil {
		msg.Payload = connector.Payload{Code: p.GetCode(), Locale: p.GetLocale()}
		if v := p.GetVariables(); v != nil {
			msg.Payload.Variables = v.AsMap()
		}
	}

	// Message.Check owns the rules for to, usage_type and payload.code (and normalises to).
	var vs []connector.Violation
	reason := connector.ReasonInvalidRequest
	if err := msg.Check(); err != nil {
		ce, ok := err.(*connector.Error)
		if !ok {
			return nil, err
		}
		reason = ce.Reason
		for _, v := range ce.Violations {
			if v.Field == "payload.code" && req.GetPayload() == nil {
				v = connector.Violation{Field: "payload", Description: "is required: payload.code must be set"}
			}
			vs = append(vs, v)
		}
	}
	// The rest are the transport's own fields.
	extra := len(vs)
	if n := len([]rune(msg.IdempotencyKey)); n > MaxIdempotencyKeyLength {
		vs = append(vs, connector.Violation{Field: "idempotency_key",
			Description: fmt.Sprintf("is %d characters long; at most %d are allowed", n, MaxIdempotencyKeyLength)})
	}
	if msg.ClientIP != "" {
		if _, err := netip.ParseAddr(msg.ClientIP); err != nil {
			vs = append(vs, connector.Violation{Field: "client_ip", Description: "is not an IPv4 or IPv6 address"})
		}
	}
	if len(vs) == 0 {
		return msg, nil
	}
	if len(vs) > extra {
		reason = connector.ReasonInvalidRequest // not only the recipient is wrong
	}
	text := vs[0].Field + " " + vs[0].Description
	if len(vs) > 1 {
		text = fmt.Sprintf("the request has %d problems; first: %s", len(vs), text)
	}
	return nil, &connector.Error{Reason: reason, Message: text, Violations: vs}
}

// structToJSON turns a config Struct into the connector's JSON bytes; nil for an absent or
// empty Struct. As in the proto3 JSON mapping, NaN and infinite numbers become the strings
// "NaN", "Infinity" and "-Infinity", so the conversion does not fail in practice.
func structToJSON(s *structpb.Struct) (json.RawMessage, error) {
	if len(s.GetFields()) == 0 {
		return nil, nil
	}
	return json.Marshal(s.AsMap())
}

// receiptToResponse converts a connector's receipt.
func receiptToResponse(r *connector.Receipt, connectorID string) *smsv1.SendMessageResponse {
	segments := r.Segments
	if segments > math.MaxInt32 {
		segments = math.MaxInt32
	}
	return &smsv1.SendMessageResponse{
		MessageId:   r.MessageID,
		Status:      r.Status,
		Segments:    int32(segments),
		Encoding:    encodingToProto(r.Encoding),
		To:          r.To,
		Sender:      r.Sender,
		ConnectorId: connectorID,
	}
}

// violationsToProto converts configuration violations.
func violationsToProto(vs []connector.Violation) []*smsv1.ConfigViolation {
	out := make([]*smsv1.ConfigViolation, 0, len(vs))
	for _, v := range vs {
		out = append(out, &smsv1.ConfigViolation{Field: v.Field, Description: v.Description})
	}
	return out
}

// configViolations returns e with every violation's field prefixed "config." (the request
// field the configuration travels in), as a copy; e itself belongs to the connector.
func configViolations(e *connector.Error) *connector.Error {
	c := *e
	c.Violations = make([]connector.Violation, len(e.Violations))
	for i, v := range e.Violations {
		switch {
		case v.Field == "" || v.Field == "config":
			v.Field = "config"
		case !strings.HasPrefix(v.Field, "config.") && !strings.HasPrefix(v.Field, "config["):
			if strings.HasPrefix(v.Field, "[") {
				v.Field = "config" + v.Field
			} else {
				v.Field = "config." + v.Field
			}
		}
		c.Violations[i] = v
	}
	return &c
}

// metadataToProto converts a connector's metadata. Values of JSON shape (schema, template, form
// defaults) go through encoding/json first, so any Go value that marshals as JSON is accepted
// (structpb.NewValue alone refuses []string and typed maps).
func metadataToProto(m *connector.Metadata) (*smsv1.GetMetadataResponse, error) {
	resp := &smsv1.GetMetadataResponse{
		Id:               m.ID,
		Target:           m.Target,
		Name:             maps.Clone(m.Name),
		Description:      maps.Clone(m.Description),
		Logo:             m.Logo,
		LogoDark:         m.LogoDark,
		Readme:           m.Readme,
		ConnectorVersion: m.Version,
		ContractVersion:  ContractVersion,
	}
	for _, it := range m.FormItems {
		t, ok := formItemTypes[it.Type]
		if !ok {
			return nil, fmt.Errorf("form item %q: unknown type %q", it.Key, it.Type)
		}
		fi := &smsv1.FormItem{
			Key:          it.Key,
			Label:        it.Label,
			Type:         t,
			Required:     it.Required,
			Placeholder:  it.Placeholder,
			Confidential: it.Confidential,
			Description:  it.Description,
		}
		if it.Default != nil {
			v := &structpb.Value{}
			if err := jsonToProto(it.Default, v); err != nil {
				return nil, fmt.Errorf("form item %q default: %w", it.Key, err)
			}
			fi.DefaultValue = v
		}
		for _, s := range it.SelectItems {
			fi.SelectItems = append(fi.SelectItems, &smsv1.SelectItem{Value: s.Value, Title: s.Title})
		}
		resp.FormItems = append(resp.FormItems, fi)
	}
	if m.ConfigSchema != nil {
		resp.ConfigSchema = &structpb.Struct{}
		if err := jsonToProto(m.ConfigSchema, resp.ConfigSchema); err != nil {
			return nil, fmt.Errorf("config schema: %w", err)
		}
	}
	if m.ConfigTemplate != nil {
		resp.ConfigTemplate = &structpb.Struct{}
		if err := jsonToProto(m.ConfigTemplate, resp.ConfigTemplate); err != nil {
			return nil, fmt.Errorf("config template: %w", err)
		}
	}
	for _, u := range m.UsageTypes {
		pu, ok := usageToProto(u)
		if !ok {
			return nil, fmt.Errorf("unknown usage type %q", u)
		}
		resp.SupportedUsageTypes = append(resp.SupportedUsageTypes, pu)
	}
	return resp, nil
}

// jsonToProto sets dst (a structpb.Value or Struct) to v as JSON.
func jsonToProto(v any, dst proto.Message) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return protojson.Unmarshal(b, dst)
}
