package smsplugin

import (
	"encoding/json"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/sms-connector/sms-connector/connector"
)

func TestClientMessageStatus(t *testing.T) {
	fake := &statusFake{fakeConnector: newFake()}
	r := startServe(t, fake, hostEnv(t, nil))
	conn := r.dial(t, nil)
	c := NewClient(conn)

	tests := []struct {
		name    string
		id      string
		config  string
		want    *connector.MessageStatus
		reason  connector.Reason
		fields  []string
		asked   string // the config the served connector got; "" when it was not called
		noCalls bool
	}{
		{name: "delivered, the default config", id: fakeMessageID, asked: `{"templates":[]}`,
			want: &connector.MessageStatus{MessageID: fakeMessageID, State: connector.DeliveryDelivered, VendorStatus: "delivered", Segments: 1,
				UpdatedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}},
		{name: "own config", id: fakeMessageID, config: `{"accountSID":"AC1"}`, asked: `{"accountSID":"AC1"}`,
			want: &connector.MessageStatus{MessageID: fakeMessageID, State: connector.DeliveryDelivered, VendorStatus: "delivered", Segments: 1,
				UpdatedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}},
		{name: "unknown id", id: unknownMessageID, asked: `{"templates":[]}`, reason: connector.ReasonMessageNotFound},
		{name: "invalid config, the config's own field paths", id: fakeMessageID, config: `{"bad":true}`, asked: `{"bad":true}`,
			reason: connector.ReasonInvalidConfig, fields: []string{"accountSID"}},
		{name: "config not an object, no call", id: fakeMessageID, config: `[1]`, reason: connector.ReasonInvalidConfig, fields: []string{""}, noCalls: true},
		{name: "no id, refused by the server", id: "", reason: connector.ReasonInvalidRequest, fields: []string{"message_id"}, noCalls: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(fake.askedConfigs())
			got, err := c.MessageStatus(ctxFor(t), tt.id, json.RawMessage(tt.config))
			if tt.want != nil {
				if err != nil || *got != *tt.want {
					t.Fatalf("MessageStatus = %+v, %v; want %+v", got, err, tt.want)
				}
			} else {
				var ce *connector.Error
				if !errors.As(err, &ce) || ce.Reason != tt.reason {
					t.Fatalf("MessageStatus = %+v, %v; want %s", got, err, tt.reason)
				}
				var fields []string
				for _, v := range ce.Violations {
					fields = append(fields, v.Field)
				}
				if !slices.Equal(fields, tt.fields) {
					t.Errorf("violations at %q, want %q", fields, tt.fields)
				}
			}
			asked := fake.askedConfigs()[before:]
			switch {
			case tt.noCalls && len(asked) != 0:
				t.Errorf("the connector was asked %q", asked)
			case !tt.noCalls && (len(asked) != 1 || asked[0] != tt.asked):
				t.Errorf("the connector was asked %q, want %q", asked, tt.asked)
			}
		})
	}
	shutdown(t, r, conn)
}

func TestClientMessageStatusNotSupported(t *testing.T) {
	t.Run("a connector that cannot tell", func(t *testing.T) {
		r := startServe(t, newFake(), hostEnv(t, nil))
		conn := r.dial(t, nil)
		_, err := NewClient(conn).MessageStatus(ctxFor(t), fakeMessageID, nil)
		if connector.ReasonOf(err) != connector.ReasonNotSupported || status.Code(err) != codes.Unimplemented {
			t.Errorf("err = %v, want NOT_SUPPORTED (UNIMPLEMENTED)", err)
		}
		shutdown(t, r, conn)
	})
	t.Run("a server without the RPC", func(t *testing.T) {
		// A gRPC server that serves nothing of the contract answers as a server of an older
		// contract does for GetMessageStatus: gRPC's own UNIMPLEMENTED, without ErrorInfo.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer()
		served := make(chan error, 1)
		go func() { served <- srv.Serve(l) }()
		t.Cleanup(func() {
			srv.Stop()
			<-served
		})
		conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = NewClient(conn).MessageStatus(ctxFor(t), fakeMessageID, nil)
		if connector.ReasonOf(err) != connector.ReasonNotSupported || status.Code(err) != codes.Unimplemented {
			t.Errorf("err = %v, want NOT_SUPPORTED (UNIMPLEMENTED)", err)
		}
	})
}
