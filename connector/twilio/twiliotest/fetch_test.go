package twiliotest_test

import (
	"net/http"
	"testing"

	twilioApi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
)

func TestFetchMessage(t *testing.T) {
	srv := newServer(t)
	c, _ := sandboxClient(t, srv)
	created, err := c.Api.CreateMessage(params(recipient, twiliotest.FromValid, "Your code is 123456"))
	if err != nil {
		t.Fatal(err)
	}
	p := &twilioApi.CreateMessageParams{}
	p.SetTo(recipient).SetMessagingServiceSid(serviceA).SetBody("Your code is 654321")
	viaService, err := c.Api.CreateMessage(p)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		sid    string
		status string
	}{
		{"queued right after creation", *created.Sid, "queued"},
		{"accepted through a Messaging Service", *viaService.Sid, "accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Api.FetchMessage(tt.sid, nil)
			if err != nil {
				t.Fatal(err)
			}
			if deref(got.Sid) != tt.sid || deref(got.Status) != tt.status || deref(got.To) != recipient ||
				deref(got.AccountSid) != twiliotest.SandboxAccountSID || deref(got.DateUpdated) == "" {
				t.Errorf("FetchMessage = sid %q status %q to %q account %q updated %q", deref(got.Sid), deref(got.Status),
					deref(got.To), deref(got.AccountSid), deref(got.DateUpdated))
			}
		})
	}
	if got, err := c.Api.FetchMessage(*created.Sid, nil); err != nil || deref(got.NumSegments) != "1" || deref(got.Body) != "Your code is 123456" {
		t.Errorf("FetchMessage = segments %q body %q, %v", deref(got.NumSegments), deref(got.Body), err)
	}
}

func TestFetchMessageRejected(t *testing.T) {
	srv := newServer(t, twiliotest.WithAccount(otherAC, "othertoken"))
	owner, _ := dial(t, srv, nil, otherAC, otherAC, "othertoken")
	created, err := owner.Api.CreateMessage(params(recipient, twiliotest.FromValid, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		account    string
		user, pass string
		sid        string
		status     int
		code       int
	}{
		{"unknown SID", otherAC, otherAC, "othertoken", "SM00000000000000000000000000000000", http.StatusNotFound, 20404},
		{"wrong credentials", otherAC, otherAC, "wrong", *created.Sid, http.StatusUnauthorized, 20003},
		{"another account in the path", twiliotest.SandboxAccountSID, otherAC, "othertoken", *created.Sid, http.StatusNotFound, 20404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := dial(t, srv, nil, tt.account, tt.user, tt.pass)
			_, err := c.Api.FetchMessage(tt.sid, nil)
			restError(t, err, tt.status, tt.code)
		})
	}
	// A DELETE of the message is not served.
	req, err := http.NewRequest(http.MethodDelete, srv.URL+"/2010-04-01/Accounts/"+otherAC+"/Messages/"+*created.Sid+".json", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(otherAC, "othertoken")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodGet {
		t.Errorf("DELETE answered %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	http.DefaultClient.CloseIdleConnections()
}
