// Package protoconv converts between the Go contract (package connector) and its protobuf
// form (package connector.sms.v1), in both directions: the gRPC server (package server) turns
// requests into connector calls and results into responses and statuses; the gRPC client
// (package smsplugin) does the reverse, so that a connector served in another process is a
// connector.SmsConnector again on the caller's side. Every conversion lives here, once.
//
// The error model (AIP-193) is here too: Status turns any error into the gRPC status a client
// receives, and ErrorFromStatus turns such a status back into the *connector.Error it came from.
package protoconv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sms-connector/sms-connector/connector"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
)

// ContractVersion is the contract served and spoken, sent as
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

// UsageFromProto returns the Logto name of u. UNSPECIFIED gives "" (Message.Check reports it
// as required); a number the table lacks gives a name that is not Valid (reported as unknown).
func UsageFromProto(u smsv1.UsageType) connector.UsageType {
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

// UsageToProto returns the proto value of a Logto usage type name, and false for a name the
// contract does not know.
func UsageToProto(u connector.UsageType) (smsv1.UsageType, bool) {
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

// formItemTypeFromProto is the reverse of formItemTypes; UNSPECIFIED and unknown values give "".
func formItemTypeFromProto(t smsv1.FormItemType) connector.FormItemType {
	for k, v := range formItemTypes {
		if v == t {
			return k
		}
	}
	return ""
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

// encodingFromProto is the reverse of encodingToProto; UNSPECIFIED gives "".
func encodingFromProto(e smsv1.Encoding) connector.Encoding {
	switch e {
	case smsv1.Encoding_ENCODING_GSM7:
		return connector.EncodingGSM7
	case smsv1.Encoding_ENCODING_UCS2:
		return connector.EncodingUCS2
	}
	return ""
}

// MessageFromRequest converts and validates a SendMessageRequest. It reports every request
// problem at once, with proto field names, as one INVALID_REQUEST (or INVALID_PHONE_NUMBER when
// the recipient is the only problem) *connector.Error; on success the recipient is in E.164.
// The config is not resolved here: the caller applies its default (see StructToJSON).
func MessageFromRequest(req *smsv1.SendMessageRequest) (*connector.Message, error) {
	msg := &connector.Message{
		To:             req.GetTo(),
		UsageType:      UsageFromProto(req.GetUsageType()),
		IdempotencyKey: req.GetIdempotencyKey(),
		ClientIP:       req.GetClientIp(),
	}
	if p := req.GetPayload(); p != nil {
		msg.Payload = connector.Payload{Code: p.GetCode(), Locale: p.GetLocale(), Link: p.GetLink(), Locales: p.GetUiLocales()}
		if v := p.GetVariables(); v != nil {
			msg.Payload.Variables = v.AsMap()
		}
	}

	err := CheckMessage(msg)
	if err == nil {
		return msg, nil
	}
	var ce *connector.Error
	if req.GetPayload() == nil && errors.As(err, &ce) {
		vs := slices.Clone(ce.Violations)
		for i, v := range vs {
			if v.Field == "payload.code" {
				vs[i] = connector.Violation{Field: "payload", Description: "is required: payload.code or payload.link must be set"}
			}
		}
		return nil, connector.ViolationsError(ce.Reason, connector.RequestSubject, vs)
	}
	return nil, err
}

// CheckMessage validates a message that came in a request, whatever the transport: the rules
// of Message.Check (which normalises the recipient) and the transport's own fields, an
// idempotency key of at most MaxIdempotencyKeyLength characters and a client IP that is an IPv4
// or IPv6 address. It reports every problem at once, with the proto's field names, as one
// INVALID_REQUEST (or INVALID_PHONE_NUMBER when the recipient is the only problem)
// *connector.Error.
func CheckMessage(msg *connector.Message) error {
	var vs []connector.Violation
	reason := connector.ReasonInvalidRequest
	if err := msg.Check(); err != nil {
		var ce *connector.Error
		if !errors.As(err, &ce) {
			return err
		}
		reason = ce.Reason
		vs = append(vs, ce.Violations...)
	}
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
		return nil
	}
	if len(vs) > extra {
		reason = connector.ReasonInvalidRequest // not only the recipient is wrong
	}
	return connector.ViolationsError(reason, connector.RequestSubject, vs)
}

// RequestFromMessage converts a message into the request that carries it. It does not check
// the message (the server does, with Message.Check); it fails, with an INVALID_REQUEST
// *connector.Error naming the field, only for what the wire cannot carry: a usage type the
// contract does not know, payload variables that are not JSON, a config that is not a JSON
// object. An empty msg.Config is sent as no config: the server's default applies.
func RequestFromMessage(msg *connector.Message) (*smsv1.SendMessageRequest, error) {
	if msg == nil {
		return nil, connector.Errorf(connector.ReasonInvalidRequest, "no message to send")
	}
	req := &smsv1.SendMessageRequest{
		To:             msg.To,
		Payload:        &smsv1.Payload{Code: msg.Payload.Code, Locale: msg.Payload.Locale, Link: msg.Payload.Link, UiLocales: msg.Payload.Locales},
		IdempotencyKey: msg.IdempotencyKey,
		ClientIp:       msg.ClientIP,
	}
	var vs []connector.Violation
	if msg.UsageType != "" {
		u, ok := UsageToProto(msg.UsageType)
		if !ok {
			vs = append(vs, connector.Violation{Field: "usage_type", Description: "is not a known usage type"})
		}
		req.UsageType = u
	}
	if msg.Payload.Variables != nil {
		req.Payload.Variables = &structpb.Struct{}
		if err := jsonToProto(msg.Payload.Variables, req.Payload.Variables); err != nil {
			vs = append(vs, connector.Violation{Field: "payload.variables", Description: "cannot be sent as a JSON object: " + err.Error()})
		}
	}
	cfg, err := JSONToStruct(msg.Config)
	if err != nil {
		vs = append(vs, connector.Violation{Field: "config", Description: err.Error()})
	}
	req.Config = cfg
	if len(vs) > 0 {
		return nil, connector.ViolationsError(connector.ReasonInvalidRequest, connector.RequestSubject, vs)
	}
	return req, nil
}

// StructToJSON turns a config Struct into the connector's JSON bytes; nil for an absent or
// empty Struct. As in the proto3 JSON mapping, NaN and infinite numbers become the strings
// "NaN", "Infinity" and "-Infinity", so the conversion does not fail in practice.
func StructToJSON(s *structpb.Struct) (json.RawMessage, error) {
	if len(s.GetFields()) == 0 {
		return nil, nil
	}
	return json.Marshal(s.AsMap())
}

// JSONToStruct turns a connector's JSON config into the Struct that carries it: nil for empty
// input, an error for anything but a JSON object (the only shape the wire can carry).
func JSONToStruct(raw json.RawMessage) (*structpb.Struct, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return nil, nil
	}
	if trimmed[0] != '{' {
		return nil, errors.New("is not a JSON object")
	}
	s := &structpb.Struct{}
	if err := protojson.Unmarshal(trimmed, s); err != nil {
		return nil, fmt.Errorf("is not a valid JSON object: %w", err)
	}
	return s, nil
}

// ResponseFromReceipt converts a connector's receipt.
func ResponseFromReceipt(r *connector.Receipt, connectorID string) *smsv1.SendMessageResponse {
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

// ReceiptFromResponse converts a SendMessageResponse back into the receipt it carries. The
// response's connector_id has no place in a receipt and is dropped.
func ReceiptFromResponse(resp *smsv1.SendMessageResponse) *connector.Receipt {
	return &connector.Receipt{
		MessageID: resp.GetMessageId(),
		Status:    resp.GetStatus(),
		Segments:  int(resp.GetSegments()),
		Encoding:  encodingFromProto(resp.GetEncoding()),
		To:        resp.GetTo(),
		Sender:    resp.GetSender(),
	}
}

// ViolationsToProto converts configuration violations.
func ViolationsToProto(vs []connector.Violation) []*smsv1.ConfigViolation {
	out := make([]*smsv1.ConfigViolation, 0, len(vs))
	for _, v := range vs {
		out = append(out, &smsv1.ConfigViolation{Field: v.Field, Description: v.Description})
	}
	return out
}

// ViolationsFromProto converts configuration violations back; nil when there are none, as a
// connector reports a valid configuration.
func ViolationsFromProto(vs []*smsv1.ConfigViolation) []connector.Violation {
	var out []connector.Violation
	for _, v := range vs {
		out = append(out, connector.Violation{Field: v.GetField(), Description: v.GetDescription()})
	}
	return out
}

// configField is the request field a message's configuration travels in.
const configField = "config"

// ConfigJSONField is the request field of a configuration sent as JSON text.
const ConfigJSONField = "config_json"

// ConfigViolations returns e with every violation's field prefixed "config." (the request
// field the configuration travels in), as a copy; e itself belongs to the connector. The
// server applies it to the INVALID_CONFIG errors of Send, so that a caller of SendMessage
// reads request field paths; UnprefixConfigViolations undoes it.
func ConfigViolations(e *connector.Error) *connector.Error {
	return ConfigViolationsIn(e, configField)
}

// ConfigViolationsIn is ConfigViolations for a configuration that travelled in the request
// field named field ("config", or ConfigJSONField).
func ConfigViolationsIn(e *connector.Error, field string) *connector.Error {
	c := *e
	c.Violations = make([]connector.Violation, len(e.Violations))
	for i, v := range e.Violations {
		switch {
		case v.Field == "" || v.Field == field:
			v.Field = field
		case !strings.HasPrefix(v.Field, field+".") && !strings.HasPrefix(v.Field, field+"["):
			if strings.HasPrefix(v.Field, "[") {
				v.Field = field + v.Field
			} else {
				v.Field = field + "." + v.Field
			}
		}
		c.Violations[i] = v
	}
	return &c
}

// UnprefixConfigViolations undoes ConfigViolations on e, in place: "config.templates[0]"
// becomes "templates[0]" and "config" (the whole configuration) becomes "", the field paths of
// Message.Config a connector reports itself.
func UnprefixConfigViolations(e *connector.Error) {
	for i, v := range e.Violations {
		switch {
		case v.Field == configField:
			v.Field = ""
		case strings.HasPrefix(v.Field, configField+"."):
			v.Field = strings.TrimPrefix(v.Field, configField+".")
		case strings.HasPrefix(v.Field, configField+"["):
			v.Field = strings.TrimPrefix(v.Field, configField)
		}
		e.Violations[i] = v
	}
}

// MetadataToProto converts a connector's metadata. Values of JSON shape (schema, template, form
// defaults) go through encoding/json first, so any Go value that marshals as JSON is accepted
// (structpb.NewValue alone refuses []string and typed maps).
func MetadataToProto(m *connector.Metadata) (*smsv1.GetMetadataResponse, error) {
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
		pu, ok := UsageToProto(u)
		if !ok {
			return nil, fmt.Errorf("unknown usage type %q", u)
		}
		resp.SupportedUsageTypes = append(resp.SupportedUsageTypes, pu)
	}
	return resp, nil
}

// MetadataFromProto converts a GetMetadataResponse back into metadata. JSON-shaped values
// (schema, template, form defaults) come back as encoding/json decodes them: numbers are
// float64, objects map[string]any. The response's contract_version has no place in Metadata
// and is dropped; a form item type or usage type this contract does not know is kept by name
// ("" or "USAGE_TYPE_<n>"), so the caller sees it rather than losing it.
func MetadataFromProto(resp *smsv1.GetMetadataResponse) *connector.Metadata {
	m := &connector.Metadata{
		ID:          resp.GetId(),
		Target:      resp.GetTarget(),
		Name:        maps.Clone(resp.GetName()),
		Description: maps.Clone(resp.GetDescription()),
		Logo:        resp.GetLogo(),
		LogoDark:    resp.GetLogoDark(),
		Readme:      resp.GetReadme(),
		Version:     resp.GetConnectorVersion(),
	}
	for _, it := range resp.GetFormItems() {
		fi := connector.FormItem{
			Key:          it.GetKey(),
			Label:        it.GetLabel(),
			Type:         formItemTypeFromProto(it.GetType()),
			Required:     it.GetRequired(),
			Placeholder:  it.GetPlaceholder(),
			Confidential: it.GetConfidential(),
			Description:  it.GetDescription(),
		}
		if it.GetDefaultValue() != nil {
			fi.Default = it.GetDefaultValue().AsInterface()
		}
		for _, s := range it.GetSelectItems() {
			fi.SelectItems = append(fi.SelectItems, connector.SelectItem{Value: s.GetValue(), Title: s.GetTitle()})
		}
		m.FormItems = append(m.FormItems, fi)
	}
	if resp.GetConfigSchema() != nil {
		m.ConfigSchema = resp.GetConfigSchema().AsMap()
	}
	if resp.GetConfigTemplate() != nil {
		m.ConfigTemplate = resp.GetConfigTemplate().AsMap()
	}
	for _, u := range resp.GetSupportedUsageTypes() {
		m.UsageTypes = append(m.UsageTypes, UsageFromProto(u))
	}
	return m
}

// jsonToProto sets dst (a structpb.Value or Struct) to v as JSON.
func jsonToProto(v any, dst proto.Message) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return protojson.Unmarshal(b, dst)
}
