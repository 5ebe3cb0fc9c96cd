package server

import (
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

	"github.com/sms-connector/sms-connector/connector"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
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
type requestCodec struct {
	encoding.CodecV2
}

// newRequestCodec wraps gRPC's registered proto codec.
func newRequestCodec() requestCodec {
	return requestCodec{CodecV2: encoding.GetCodecV2("proto")}
}

// markerField is the field number of the mark decodeFailure reads: the largest one protobuf
// allows, which no message of the contract uses. The mark travels in the message's unknown
// fields, so it lives and dies with the request and needs no shared state.
const markerField protowire.Number = protowire.MaxValidNumber

// Unmarshal decodes data into v; see requestCodec.
func (c requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
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

// ourRequest reports whether m is a request message of the SmsConnector service.
func ourRequest(m proto.Message) bool {
	switch m.(type) {
	case *smsv1.SendMessageRequest, *smsv1.ValidateConfigRequest, *smsv1.GetMetadataRequest, *smsv1.GetMessageStatusRequest:
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
		if num != markerField {
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
	return connector.ViolationsError(reason, connector.RequestSubject, vs)
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
