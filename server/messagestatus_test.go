package server

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sms-connector/sms-connector/connector"
	smsv1 "github.com/sms-connector/sms-connector/gen/connector/sms/v1"
)

// statusFake is fakeConnector that can also tell delivery statuses (a connector.StatusReader):
// it records what it was asked and answers with status.
type statusFake struct {
	*fakeConnector
	status func(ctx context.Context, id string, cfg json.RawMessage) (*connector.MessageStatus, error)

	mu    sync.Mutex
	asked []statusQuery
}

// statusQuery is one MessageStatus call.
type statusQuery struct {
	id  string
	cfg string
}

// MessageStatus records the query and answers with f.status.
func (f *statusFake) MessageStatus(ctx context.Context, id string, cfg json.RawMessage) (*connector.MessageStatus, error) {
	f.mu.Lock()
	f.asked = append(f.asked, statusQuery{id, string(cfg)})
	f.mu.Unlock()
	return f.status(ctx, id, cfg)
}

// queries returns what MessageStatus was asked.
func (f *statusFake) queries() []statusQuery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]statusQuery(nil), f.asked...)
}

// startStatus serves a statusFake answering with status, with defaultCfg as the server's
// default config (nil for none).
func startStatus(t *testing.T, defaultCfg json.RawMessage, status func(context.Context, string, json.RawMessage) (*connector.MessageStatus, error)) (*harness, *statusFake) {
	sf := &statusFake{fakeConnector: &fakeConnector{}, status: status}
	h := start(t, sf.fakeConnector, "", func(o *Options) {
		o.Connector = sf
		o.DefaultConfig = defaultCfg
	})
	return h, sf
}

const testMessageID = "SM0123456789abcdef0123456789abcdef"

func TestGetMessageStatus(t *testing.T) {
	updated := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	h, sf := startStatus(t, json.RawMessage(`{"x":"default"}`), func(_ context.Context, id string, _ json.RawMessage) (*connector.MessageStatus, error) {
		return &connector.MessageStatus{MessageID: id, To: "+14155550123", State: connector.DeliveryUndelivered, VendorStatus: "undelivered",
			Reason: connector.ReasonRecipientUnreachable, VendorCode: "30003", UpdatedAt: updated, Segments: 2, Price: "-0.0150", PriceUnit: "USD"}, nil
	})
	got, err := h.client.GetMessageStatus(ctxFor(t), &smsv1.GetMessageStatusRequest{MessageId: testMessageID})
	if err != nil {
		t.Fatal(err)
	}
	want := &smsv1.MessageStatus{MessageId: testMessageID, State: smsv1.DeliveryState_DELIVERY_STATE_UNDELIVERED, VendorStatus: "undelivered",
		ErrorReason: smsv1.ErrorReason_ERROR_REASON_RECIPIENT_UNREACHABLE, VendorCode: "30003", Segments: 2, Price: "-0.0150", PriceUnit: "USD"}
	if got.GetMessageId() != want.MessageId || got.GetState() != want.State || got.GetVendorStatus() != want.VendorStatus ||
		got.GetErrorReason() != want.ErrorReason || got.GetVendorCode() != want.VendorCode || got.GetSegments() != want.Segments ||
		got.GetPrice() != want.Price || got.GetPriceUnit() != want.PriceUnit || !got.GetUpdateTime().AsTime().Equal(updated) {
		t.Errorf("GetMessageStatus = %v, want %v at %v", got, want, updated)
	}
	if q := sf.queries(); len(q) != 1 || q[0] != (statusQuery{testMessageID, `{"x":"default"}`}) {
		t.Errorf("the connector was asked %+v, want the id with the default config", q)
	}
}

func TestGetMessageStatusConfig(t *testing.T) {
	answer := func(_ context.Context, id string, _ json.RawMessage) (*connector.MessageStatus, error) {
		return &connector.MessageStatus{MessageID: id, State: connector.DeliveryQueued, VendorStatus: "queued"}, nil
	}
	tests := []struct {
		name       string
		defaultCfg json.RawMessage
		config     map[string]any
		configJSON string
		want       string // the config the connector gets
	}{
		{"the default", json.RawMessage(`{"x":"default"}`), nil, "", `{"x":"default"}`},
		{"an empty Struct is the default", json.RawMessage(`{"x":"default"}`), map[string]any{}, "", `{"x":"default"}`},
		{"the request's Struct", json.RawMessage(`{"x":"default"}`), map[string]any{"x": "own"}, "", `{"x":"own"}`},
		{"the request's JSON text", nil, nil, `{"x": "text"}`, `{"x": "text"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, sf := startStatus(t, tt.defaultCfg, answer)
			req := &smsv1.GetMessageStatusRequest{MessageId: testMessageID, ConfigJson: tt.configJSON}
			if tt.config != nil {
				req.Config = mustStruct(t, tt.config)
			}
			if _, err := h.client.GetMessageStatus(ctxFor(t), req); err != nil {
				t.Fatal(err)
			}
			if q := sf.queries(); len(q) != 1 || q[0].cfg != tt.want {
				t.Errorf("the connector was asked %+v, want config %s", q, tt.want)
			}
		})
	}
}

func TestGetMessageStatusInvalidRequest(t *testing.T) {
	tests := []struct {
		name       string
		defaultCfg json.RawMessage
		req        *smsv1.GetMessageStatusRequest
		code       codes.Code
		reason     connector.Reason
		fields     []string
	}{
		{"no message_id", nil, &smsv1.GetMessageStatusRequest{}, codes.InvalidArgument, connector.ReasonInvalidRequest, []string{"message_id"}},
		{"message_id too long", nil, &smsv1.GetMessageStatusRequest{MessageId: strings.Repeat("S", 129)},
			codes.InvalidArgument, connector.ReasonInvalidRequest, []string{"message_id"}},
		{"message_id with a space", nil, &smsv1.GetMessageStatusRequest{MessageId: "SM 1"},
			codes.InvalidArgument, connector.ReasonInvalidRequest, []string{"message_id"}},
		{"message_id with a line break", nil, &smsv1.GetMessageStatusRequest{MessageId: "SM1\nlevel=error"},
			codes.InvalidArgument, connector.ReasonInvalidRequest, []string{"message_id"}},
		{"config and config_json", nil, &smsv1.GetMessageStatusRequest{MessageId: testMessageID,
			Config: &structpb.Struct{Fields: map[string]*structpb.Value{"x": structpb.NewStringValue("a")}}, ConfigJson: `{"x":"b"}`},
			codes.InvalidArgument, connector.ReasonInvalidRequest, []string{"config_json"}},
		{"config_json not an object", nil, &smsv1.GetMessageStatusRequest{MessageId: testMessageID, ConfigJson: `[1]`},
			codes.InvalidArgument, connector.ReasonInvalidConfig, []string{"config_json"}},
		{"no config and no default", nil, &smsv1.GetMessageStatusRequest{MessageId: testMessageID},
			codes.FailedPrecondition, connector.ReasonConfigMissing, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, sf := startStatus(t, tt.defaultCfg, func(context.Context, string, json.RawMessage) (*connector.MessageStatus, error) {
				return &connector.MessageStatus{State: connector.DeliveryQueued}, nil
			})
			_, err := h.client.GetMessageStatus(ctxFor(t), tt.req)
			wantStatus(t, err, tt.code, tt.reason, tt.fields)
			if q := sf.queries(); len(q) != 0 {
				t.Errorf("the connector was asked %+v", q)
			}
		})
	}
}

func TestGetMessageStatusErrors(t *testing.T) {
	t.Run("a connector that cannot tell", func(t *testing.T) {
		h := start(t, &fakeConnector{}, "", func(o *Options) { o.DefaultConfig = json.RawMessage(`{}`) })
		_, err := h.client.GetMessageStatus(ctxFor(t), &smsv1.GetMessageStatusRequest{MessageId: testMessageID})
		wantStatus(t, err, codes.Unimplemented, connector.ReasonNotSupported, nil)
	})
	tests := []struct {
		name   string
		status *connector.MessageStatus
		err    error
		code   codes.Code
		reason connector.Reason
		fields []string
	}{
		{"unknown id", nil, connector.Errorf(connector.ReasonMessageNotFound, "no such message"), codes.NotFound, connector.ReasonMessageNotFound, nil},
		{"vendor down", nil, &connector.Error{Reason: connector.ReasonProviderUnavailable, Message: "Twilio unreachable", RetryAfter: time.Second},
			codes.Unavailable, connector.ReasonProviderUnavailable, nil},
		{"invalid config, fields under config", nil, &connector.Error{Reason: connector.ReasonInvalidConfig, Message: "bad",
			Violations: []connector.Violation{{Field: "accountSID", Description: "is required"}}},
			codes.InvalidArgument, connector.ReasonInvalidConfig, []string{"config.accountSID"}},
		{"an untyped error", nil, errors.New("boom at 10.0.0.1"), codes.Internal, connector.ReasonInternal, nil},
		{"neither status nor error", nil, nil, codes.Internal, connector.ReasonInternal, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := startStatus(t, nil, func(context.Context, string, json.RawMessage) (*connector.MessageStatus, error) {
				return tt.status, tt.err
			})
			_, err := h.client.GetMessageStatus(ctxFor(t), &smsv1.GetMessageStatusRequest{MessageId: testMessageID,
				Config: mustStruct(t, map[string]any{"x": "own"})})
			d := wantStatus(t, err, tt.code, tt.reason, tt.fields)
			if d.info.GetDomain() == "" {
				t.Errorf("no ErrorInfo domain")
			}
		})
	}
}

func TestGetMessageStatusFillsIDAndNeverWritesTheConnectorsStatus(t *testing.T) {
	shared := &connector.MessageStatus{State: connector.DeliveryDelivered, VendorStatus: "delivered"}
	h, _ := startStatus(t, json.RawMessage(`{}`), func(context.Context, string, json.RawMessage) (*connector.MessageStatus, error) {
		return shared, nil
	})
	got, err := h.client.GetMessageStatus(ctxFor(t), &smsv1.GetMessageStatusRequest{MessageId: testMessageID})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetMessageId() != testMessageID || got.GetState() != smsv1.DeliveryState_DELIVERY_STATE_DELIVERED {
		t.Errorf("GetMessageStatus = %v", got)
	}
	if shared.MessageID != "" {
		t.Errorf("the server wrote to the connector's status: %+v", shared)
	}
}

func TestGetMessageStatusLogsOneLine(t *testing.T) {
	h, _ := startStatus(t, json.RawMessage(`{}`), func(_ context.Context, id string, _ json.RawMessage) (*connector.MessageStatus, error) {
		return &connector.MessageStatus{MessageID: id, State: connector.DeliverySent}, nil
	})
	ctx := ctxFor(t)
	if _, err := h.client.GetMessageStatus(ctx, &smsv1.GetMessageStatusRequest{MessageId: testMessageID}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.GetMessageStatus(ctx, &smsv1.GetMessageStatusRequest{MessageId: "SM\nforged line"}); err == nil {
		t.Fatal("want an error")
	}
	entries := finished(h.logs)
	if len(entries) != 2 {
		t.Fatalf("%d finish lines for 2 RPCs", len(entries))
	}
	want := []map[string]any{
		{"grpc.method": "GetMessageStatus", "grpc.code": "OK", "connector.id": fakeID, "sms.message_id": testMessageID},
		{"grpc.method": "GetMessageStatus", "grpc.code": "InvalidArgument", "sms.message_id": "(invalid)", "error.reason": "INVALID_REQUEST"},
	}
	for i, e := range entries {
		got := e.ContextMap()
		for k, v := range want[i] {
			if got[k] != v {
				t.Errorf("line %d: %s = %v, want %v (%v)", i+1, k, got[k], v, got)
			}
		}
	}
}
