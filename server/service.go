package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sms-connector/sms-connector/connector"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
	"github.com/sms-connector/sms-connector/internal/protoconv"
)

// service implements smsv1.SmsConnectorServer on top of a connector.SmsConnector.
type service struct {
	smsv1.UnimplementedSmsConnectorServer

	conn          connector.SmsConnector
	defaultConfig json.RawMessage
	connectorID   string
	log           *zap.Logger
}

// SendMessage validates the request, resolves the config, sends through the connector and
// converts its receipt.
func (s *service) SendMessage(ctx context.Context, req *smsv1.SendMessageRequest) (*smsv1.SendMessageResponse, error) {
	if err := decodeFailure(req); err != nil {
		return nil, s.fail(ctx, err)
	}
	msg, err := protoconv.MessageFromRequest(req)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	cfg, cfgField, err := s.useConfig(req.GetConfig(), req.GetConfigJson())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	msg.Config = cfg
	return s.send(connector.WithTransport(ctx, connector.TransportGRPC), msg, cfgField)
}

// send sends msg, a checked message with its config resolved (cfgField names the request
// field the config came in, "" for the default config), and converts the receipt, or the
// error into the status the caller gets. Every transport's send ends here.
func (s *service) send(ctx context.Context, msg *connector.Message, cfgField string) (*smsv1.SendMessageResponse, error) {
	r, err := s.conn.Send(ctx, msg)
	if err != nil {
		var ce *connector.Error
		if errors.As(err, &ce) && ce.Reason == connector.ReasonInvalidConfig && len(ce.Violations) > 0 {
			err = protoconv.ConfigViolationsIn(ce, cfgField)
		}
		return nil, s.fail(ctx, err)
	}
	if r == nil {
		return nil, s.fail(ctx, errors.New("connector returned neither a receipt nor an error"))
	}
	resp := protoconv.ResponseFromReceipt(r, s.connectorID)
	if resp.To == "" {
		resp.To = msg.To
	}
	return resp, nil
}

// ValidateConfig checks a config through the connector; an invalid config is a successful call.
func (s *service) ValidateConfig(ctx context.Context, req *smsv1.ValidateConfigRequest) (*smsv1.ValidateConfigResponse, error) {
	if err := decodeFailure(req); err != nil {
		return nil, s.fail(ctx, err)
	}
	cfg, cfgField, err := requestConfig(req.GetConfig(), req.GetConfigJson())
	switch {
	case err != nil:
		return nil, s.fail(ctx, err)
	case cfg == nil:
		return nil, s.fail(ctx, &connector.Error{
			Reason:     connector.ReasonInvalidRequest,
			Message:    "config is required: the connector configuration as a JSON object (or as JSON text in config_json)",
			Violations: []connector.Violation{{Field: "config", Description: "is required"}},
		})
	case cfgField == protoconv.ConfigJSONField && !jsonObjectText(req.GetConfigJson()):
		return &smsv1.ValidateConfigResponse{Violations: protoconv.ViolationsToProto([]connector.Violation{{Description: descNotObject}})}, nil
	}
	vs, err := s.conn.ValidateConfig(ctx, cfg)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &smsv1.ValidateConfigResponse{Valid: len(vs) == 0, Violations: protoconv.ViolationsToProto(vs)}, nil
}

// GetMessageStatus validates the request, resolves the config as SendMessage does and asks the
// connector stack for the message's status (NOT_SUPPORTED when it cannot tell).
func (s *service) GetMessageStatus(ctx context.Context, req *smsv1.GetMessageStatusRequest) (*smsv1.MessageStatus, error) {
	if err := decodeFailure(req); err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := protoconv.CheckMessageID(req.GetMessageId()); err != nil {
		return nil, s.fail(ctx, err)
	}
	cfg, cfgField, err := s.useConfig(req.GetConfig(), req.GetConfigJson())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	st, err := connector.ReadStatus(ctx, s.conn, req.GetMessageId(), cfg)
	if err != nil {
		var ce *connector.Error
		if cfgField != "" && errors.As(err, &ce) && ce.Reason == connector.ReasonInvalidConfig && len(ce.Violations) > 0 {
			err = protoconv.ConfigViolationsIn(ce, cfgField)
		}
		return nil, s.fail(ctx, err)
	}
	if st == nil {
		return nil, s.fail(ctx, errors.New("connector returned neither a status nor an error"))
	}
	out := *st // st may be shared (a store's copy): never write to it
	if out.MessageID == "" {
		out.MessageID = req.GetMessageId()
	}
	return protoconv.MessageStatusToProto(&out), nil
}

// useConfig returns the configuration a message is sent or looked up with, from a request's
// config and config_json (see requestConfig), and the request field it came in: an empty or
// absent one is the server's default ("" field), and with neither it is CONFIG_MISSING;
// config_json text that is not a JSON object is INVALID_CONFIG.
func (s *service) useConfig(structCfg *structpb.Struct, text string) (json.RawMessage, string, error) {
	if len(structCfg.GetFields()) == 0 {
		structCfg = nil // an empty Struct, as an absent one, asks for the default config
	}
	cfg, cfgField, err := requestConfig(structCfg, text)
	switch {
	case err != nil:
		return nil, "", err
	case cfgField == protoconv.ConfigJSONField && !jsonObjectText(text):
		return nil, "", &connector.Error{
			Reason:     connector.ReasonInvalidConfig,
			Message:    "config_json is not a JSON object",
			Violations: []connector.Violation{{Field: protoconv.ConfigJSONField, Description: descNotObject}},
		}
	case cfg != nil:
		return cfg, cfgField, nil
	case s.defaultConfig != nil:
		return s.defaultConfig, "", nil
	}
	return nil, "", connector.Errorf(connector.ReasonConfigMissing,
		"the request carries no config and the server has no default config")
}

// requestConfig returns the configuration a request carries, as JSON, and the request field it
// came in: the text of config_json, or the Struct of config converted (nil, "" when neither is
// set). Both set is INVALID_REQUEST. Whether the configuration is valid is for the connector
// to say.
func requestConfig(structCfg *structpb.Struct, text string) (json.RawMessage, string, error) {
	switch {
	case text != "" && structCfg != nil:
		return nil, "", &connector.Error{
			Reason:     connector.ReasonInvalidRequest,
			Message:    "config_json must not be set together with config: send the configuration in one of them",
			Violations: []connector.Violation{{Field: protoconv.ConfigJSONField, Description: "must not be set together with config"}},
		}
	case text != "":
		return json.RawMessage(text), protoconv.ConfigJSONField, nil
	case structCfg != nil:
		b, err := json.Marshal(structCfg.AsMap())
		if err != nil {
			return nil, "", fmt.Errorf("server: config as JSON: %w", err)
		}
		return b, "config", nil
	}
	return nil, "", nil
}

// descNotObject describes config_json text that is not a JSON object.
const descNotObject = "is not a JSON object"

// jsonObjectText reports whether text starts, after JSON white space, as a JSON object does;
// whether the rest is valid JSON is for the connector's parser to say.
func jsonObjectText(text string) bool {
	t := strings.TrimLeft(text, " \t\r\n")
	return t != "" && t[0] == '{'
}

// GetMetadata converts the connector's metadata.
func (s *service) GetMetadata(ctx context.Context, req *smsv1.GetMetadataRequest) (*smsv1.GetMetadataResponse, error) {
	if err := decodeFailure(req); err != nil {
		return nil, s.fail(ctx, err)
	}
	md, err := s.conn.Metadata(ctx)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	if md == nil {
		return nil, s.fail(ctx, errors.New("connector returned nil metadata"))
	}
	resp, err := protoconv.MetadataToProto(md)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return resp, nil
}

// fail logs what the caller will not see and returns err as the status the caller gets. The
// cause of a connector.Error goes to debug level (it may name hosts, but never a secret); an
// error that is not a connector.Error is a connector bug, logged at error level, and the
// caller only learns "internal error".
func (s *service) fail(ctx context.Context, err error) error {
	var ce *connector.Error
	switch {
	case errors.As(err, &ce):
		if ce.Err != nil {
			if e := s.log.Check(zap.DebugLevel, "connector error cause"); e != nil {
				e.Write(append(zapFields(logging.ExtractFields(ctx)),
					zap.String(fieldErrorReason, string(ce.Reason)),
					causeField(ce.Err))...)
			}
		}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		if e := s.log.Check(zap.DebugLevel, "connector stopped by the RPC's context"); e != nil {
			e.Write(append(zapFields(logging.ExtractFields(ctx)), causeField(err))...)
		}
	default:
		s.log.Error("connector failed with an untyped error; the caller gets INTERNAL",
			append(zapFields(logging.ExtractFields(ctx)), causeField(err))...)
	}
	return Status(err).Err()
}
