package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the "proto" codec this one wraps
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sms-connector/sms-connector/connector"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
	"github.com/sms-connector/sms-connector/internal/protoconv"
	"github.com/sms-connector/sms-connector/internal/structdigest"
)

// requestCodec is the server's codec: gRPC's own proto codec, except for a request of the
// SmsConnector service that does not decode. gRPC answers any such request INTERNAL ("grpc:
// error unmarshalling request") before an interceptor or the service sees it, which blames
// the server for the caller's bytes and carries no ErrorInfo. The commonest cause is a string
// field that is not UTF-8, which proto3 refuses: a client in a language whose strings are
// bytes can send one. So instead, the request is emptied and marked with what was wrong
// (decodeFailure), and the service answers INVALID_ARGUMENT with reason INVALID_REQUEST (or
// INVALID_PHONE_NUMBER when only "to" is wrong) and a BadRequest naming each field whose
// string is not UTF-8. Other services (health, reflection) keep gRPC's behaviour.
//
// It also spares a SendMessage request's configuration the cost of decoding. A platform with
// many tenants sends each tenant's configuration with every request, as a
// google.protobuf.Struct, and decoding a Struct (a map of Values, one allocation each) and
// turning it into the connector's JSON cost more than the rest of the request. So the codec
// takes the digest of the Struct's wire bytes (internal/structdigest: canonical, so the
// random map order of some encoders does not matter) and looks its JSON up in a bounded cache;
// only on a miss does it decode the Struct and convert it. The request is then decoded without
// its config field, and the JSON travels to the service in the request's unknown fields
// (configMarkerField, see requestConfig). A Struct the digest refuses (not plainly encoded)
// or that does not convert is decoded the ordinary way.
type requestCodec struct {
	encoding.CodecV2
	configs *connector.ConfigCache[json.RawMessage] // per-request configurations by digest; nil: off
}

// newRequestCodec wraps gRPC's registered proto codec; cacheSize bounds its configuration
// cache (0: the default, negative: no cache).
func newRequestCodec(cacheSize int) requestCodec {
	c := requestCodec{CodecV2: encoding.GetCodecV2("proto")}
	if cacheSize >= 0 {
		c.configs = connector.NewConfigCache[json.RawMessage](cacheSize, 0)
	}
	return c
}

// markerField is the field number of the mark decodeFailure reads: the largest one protobuf
// allows, which no message of the contract uses. The mark travels in the message's unknown
// fields, so it lives and dies with the request and needs no shared state.
const markerField protowire.Number = protowire.MaxValidNumber

// configMarkerField is the field number under which the codec hands the service a request's
// configuration as JSON (see requestCodec), in the request's unknown fields like markerField.
const configMarkerField protowire.Number = protowire.MaxValidNumber - 1

// sendConfigField is the field number of SendMessageRequest.config.
var sendConfigField = (&smsv1.SendMessageRequest{}).ProtoReflect().Descriptor().Fields().ByName("config").Number()

// Unmarshal decodes data into v; see requestCodec.
func (c requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if r, ok := v.(*smsv1.SendMessageRequest); ok && c.configs != nil && c.unmarshalSend(data, r) {
		return nil
	}
	err := c.CodecV2.Unmarshal(data, v)
	m, ok := v.(proto.Message)
	if !ok || !ourRequest(m) {
		return err
	}
	if err == nil {
		stripMarker(m) // a client cannot forge the mark
		return nil
	}
	br := &errdetails.BadRequest{FieldViolations: scanStrings(data.Materialize(), m.ProtoReflect().Descriptor())}
	if len(br.FieldViolations) == 0 {
		br.FieldViolations = []*errdetails.BadRequest_FieldViolation{{
			Description: fmt.Sprintf("the request is not a valid %s: %v", m.ProtoReflect().Descriptor().FullName(), err)}}
	}
	mark, merr := proto.Marshal(br)
	if merr != nil {
		return err
	}
	proto.Reset(m)
	m.ProtoReflect().SetUnknown(protowire.AppendBytes(protowire.AppendTag(nil, markerField, protowire.BytesType), mark))
	return nil
}

// unmarshalSend decodes a SendMessage request whose configuration it can take from the cache
// or convert itself (see requestCodec), and reports whether it did. When it did not, r is
// untouched and the caller decodes data the ordinary way, with the ordinary errors.
func (c requestCodec) unmarshalSend(data mem.BufferSlice, r *smsv1.SendMessageRequest) bool {
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	b := buf.ReadOnlyData()

	start, end, cfg, ok := findField(b, sendConfigField)
	if !ok || len(cfg) == 0 {
		return false // an empty Struct means "the server's default": nothing to cache
	}
	digest, ok := structdigest.Digest(cfg)
	if !ok {
		return false
	}
	js, hit := c.configs.Lookup(digest)
	if !hit {
		var s structpb.Struct
		if proto.Unmarshal(cfg, &s) != nil {
			return false
		}
		var err error
		if js, err = protoconv.StructToJSON(&s); err != nil || len(js) == 0 {
			return false
		}
	}
	rest := make([]byte, 0, len(b)-(end-start))
	rest = append(append(rest, b[:start]...), b[end:]...)
	if proto.Unmarshal(rest, r) != nil {
		proto.Reset(r)
		return false
	}
	stripMarker(r) // a client cannot forge either mark
	m := r.ProtoReflect()
	m.SetUnknown(protowire.AppendBytes(protowire.AppendTag(m.GetUnknown(), configMarkerField, protowire.BytesType), js))
	if !hit {
		c.configs.Store(digest, len(js), js)
	}
	return true
}

// findField returns where the one occurrence of field num (length-delimited) sits in the
// message wire bytes b, tag included (b[start:end]), and its value. It reports false when the
// field is absent, occurs more than once (the decoder would merge the occurrences) or b is
// malformed.
func findField(b []byte, num protowire.Number) (start, end int, value []byte, ok bool) {
	for off := 0; off < len(b); {
		n, typ, tn := protowire.ConsumeTag(b[off:])
		if tn < 0 {
			return 0, 0, nil, false
		}
		vn := protowire.ConsumeFieldValue(n, typ, b[off+tn:])
		if vn < 0 {
			return 0, 0, nil, false
		}
		if n == num {
			if ok || typ != protowire.BytesType {
				return 0, 0, nil, false
			}
			v, _ := protowire.ConsumeBytes(b[off+tn:])
			start, end, value, ok = off, off+tn+vn, v, true
		}
		off += tn + vn
	}
	return start, end, value, ok
}

// requestConfig returns the configuration of req as JSON, and the request field it came in
// ("config" or "config_json"): config_json's text, the JSON the codec resolved for config, or
// the conversion of config's Struct. It is nil when the request carries none (or an empty
// one). Both fields set is INVALID_REQUEST; config_json text that is not a JSON object is
// INVALID_CONFIG. Whether the configuration is valid is for the connector to say.
func requestConfig(req *smsv1.SendMessageRequest) (json.RawMessage, string, error) {
	fromStruct, err := structConfig(req)
	if err != nil {
		return nil, "", err
	}
	text := req.GetConfigJson()
	if text == "" {
		return fromStruct, "config", nil
	}
	if fromStruct != nil {
		return nil, "", &connector.Error{
			Reason:     connector.ReasonInvalidRequest,
			Message:    "config_json must not be set together with config: send the configuration in one of them",
			Violations: []connector.Violation{{Field: protoconv.ConfigJSONField, Description: "must not be set together with config"}},
		}
	}
	if !jsonObjectText(text) {
		return nil, "", &connector.Error{
			Reason:     connector.ReasonInvalidConfig,
			Message:    "config_json is not a JSON object",
			Violations: []connector.Violation{{Field: protoconv.ConfigJSONField, Description: "is not a JSON object"}},
		}
	}
	return json.RawMessage(text), protoconv.ConfigJSONField, nil
}

// jsonObjectText reports whether text starts, after JSON white space, as a JSON object does;
// whether the rest is valid JSON is for the connector's parser to say.
func jsonObjectText(text string) bool {
	t := strings.TrimLeft(text, " \t\r\n")
	return t != "" && t[0] == '{'
}

// structConfig returns the JSON of req's config field: the one the codec resolved, or the
// conversion of its Struct (nil when it carries none or an empty one).
func structConfig(req *smsv1.SendMessageRequest) (json.RawMessage, error) {
	u := req.ProtoReflect().GetUnknown()
	for b := u; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			break
		}
		b = b[n:]
		if num == configMarkerField && typ == protowire.BytesType {
			if v, n := protowire.ConsumeBytes(b); n >= 0 {
				return v, nil
			}
			break
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			break
		}
		b = b[n:]
	}
	return protoconv.StructToJSON(req.GetConfig())
}

// ourRequest reports whether m is a request message of the SmsConnector service.
func ourRequest(m proto.Message) bool {
	switch m.(type) {
	case *smsv1.SendMessageRequest, *smsv1.ValidateConfigRequest, *smsv1.GetMetadataRequest:
		return true
	}
	return false
}

// stripMarker removes a mark a client may have sent itself.
func stripMarker(m proto.Message) {
	r := m.ProtoReflect()
	u := r.GetUnknown()
	if len(u) == 0 {
		return
	}
	var kept []byte
	for b := u; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return
		}
		if num != markerField && num != configMarkerField {
			kept = append(kept, b[:n+m]...)
		}
		b = b[n+m:]
	}
	if len(kept) != len(u) {
		r.SetUnknown(kept)
	}
}

// decodeFailure returns the INVALID_REQUEST error of a request the codec could not decode, or
// nil for a request that decoded.
func decodeFailure(m proto.Message) error {
	u := m.ProtoReflect().GetUnknown()
	for b := u; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil
		}
		b = b[n:]
		if num == markerField && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			br := &errdetails.BadRequest{}
			if n < 0 || proto.Unmarshal(v, br) != nil {
				return nil
			}
			return failureError(br)
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return nil
		}
		b = b[n:]
	}
	return nil
}

// failureError turns the codec's findings into the error the caller gets.
func failureError(br *errdetails.BadRequest) error {
	var vs []connector.Violation
	phoneOnly := true
	for _, v := range br.GetFieldViolations() {
		if v.GetField() == "" {
			return &connector.Error{Reason: connector.ReasonInvalidRequest, Message: v.GetDescription()}
		}
		phoneOnly = phoneOnly && v.GetField() == "to"
		vs = append(vs, connector.Violation{Field: v.GetField(), Description: v.GetDescription()})
	}
	reason := connector.ReasonInvalidRequest
	if phoneOnly {
		reason = connector.ReasonInvalidPhoneNumber
	}
	msg := vs[0].Field + " " + vs[0].Description
	if len(vs) > 1 {
		msg = fmt.Sprintf("the request has %d problems; first: %s", len(vs), msg)
	}
	return &connector.Error{Reason: reason, Message: msg, Violations: vs}
}

// maxScanDepth bounds how deeply scanStrings follows nested messages; a field nested deeper
// is reported as a whole.
const maxScanDepth = 64

// Descriptions of the problems scanStrings finds.
const (
	descNotUTF8  = "is not valid UTF-8: protobuf strings must be UTF-8"
	descTooDeep  = "is nested too deeply to decode"
	descBadValue = "has a string that is not valid UTF-8: protobuf strings must be UTF-8"
)

// scanStrings returns the fields of b (the wire bytes of a message of type md) that keep it
// from decoding: strings that are not UTF-8, and nesting too deep to follow, by proto field
// name ("to", "payload.code"). A problem anywhere inside a google.protobuf.Struct, Value or
// ListValue is reported as that field ("payload.variables", "config"), whose own structure is
// not a request field. It stops at malformed wire data.
func scanStrings(b []byte, md protoreflect.MessageDescriptor) []*errdetails.BadRequest_FieldViolation {
	var out []*errdetails.BadRequest_FieldViolation
	add := func(path, desc string) {
		for _, v := range out {
			if v.Field == path {
				return
			}
		}
		out = append(out, &errdetails.BadRequest_FieldViolation{Field: path, Description: desc})
	}
	scan(b, md, "", 0, add)
	return out
}

// scan walks one message's wire bytes for scanStrings.
func scan(b []byte, md protoreflect.MessageDescriptor, prefix string, depth int, add func(path, desc string)) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return
		}
		b = b[n:]
		fd := md.Fields().ByNumber(num)
		if fd == nil {
			continue
		}
		path := string(fd.Name())
		if prefix != "" {
			path = prefix + "." + path
		}
		switch {
		case fd.Kind() == protoreflect.StringKind:
			if !utf8.Valid(v) {
				add(path, descNotUTF8)
			}
		case fd.Kind() != protoreflect.MessageKind:
		case depth >= maxScanDepth:
			add(path, descTooDeep)
		case wellKnownJSON(fd.Message()):
			desc := ""
			scan(v, fd.Message(), "", depth+1, func(_, d string) {
				if desc == "" || d == descTooDeep {
					desc = d
				}
			})
			switch desc {
			case "":
			case descTooDeep:
				add(path, descTooDeep)
			default:
				add(path, descBadValue)
			}
		default:
			scan(v, fd.Message(), path, depth+1, add)
		}
	}
}

// wellKnownJSON reports whether md is one of the JSON-shaped well-known types.
func wellKnownJSON(md protoreflect.MessageDescriptor) bool {
	name := string(md.FullName())
	return strings.HasPrefix(name, "google.protobuf.") &&
		(name == "google.protobuf.Struct" || name == "google.protobuf.Value" || name == "google.protobuf.ListValue")
}
