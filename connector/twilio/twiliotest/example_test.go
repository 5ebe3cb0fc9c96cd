package twiliotest_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	twilio "github.com/twilio/twilio-go"
	"github.com/twilio/twilio-go/client"
	twilioApi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/sms-connector/sms-connector/connector/twilio/twiliotest"
)

// rewriteHost sends every request to target instead of the host twilio-go chose
// (https://api.twilio.com, a constant in twilio-go).
type rewriteHost struct {
	target *url.URL
	next   http.RoundTripper
}

func (rt rewriteHost) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host, r.Host = rt.target.Scheme, rt.target.Host, ""
	return rt.next.RoundTrip(r)
}

// newRestClient returns a twilio-go client that talks to srv with the given credentials.
func newRestClient(srv *twiliotest.Server, tr http.RoundTripper, accountSID, user, pass string) *twilio.RestClient {
	target, err := url.Parse(srv.URL)
	if err != nil {
		panic(err)
	}
	c := &client.Client{
		Credentials: client.NewCredentials(user, pass),
		HTTPClient:  &http.Client{Transport: rewriteHost{target: target, next: tr}},
	}
	c.SetAccountSid(accountSID)
	return twilio.NewRestClientWithParams(twilio.ClientParams{Client: c})
}

// The real twilio-go client sends a message to the emulator, and the test reads what Twilio
// would have delivered.
func Example() {
	srv := twiliotest.NewServer()
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	rest := newRestClient(srv, tr, twiliotest.SandboxAccountSID,
		twiliotest.SandboxAccountSID, twiliotest.SandboxAuthToken)

	params := &twilioApi.CreateMessageParams{}
	params.SetTo("+14155550123").SetFrom(twiliotest.FromValid).SetBody("Your code is 424242")
	msg, err := rest.Api.CreateMessage(params)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(*msg.Status, *msg.NumSegments)
	fmt.Println(srv.Messages()[0].Body)
	// Output:
	// queued 1
	// Your code is 424242
}

// A magic number makes the emulator answer with a given Twilio error.
func Example_magicNumber() {
	srv := twiliotest.NewServer()
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	rest := newRestClient(srv, tr, twiliotest.SandboxAccountSID,
		twiliotest.SandboxAccountSID, twiliotest.SandboxAuthToken)

	params := &twilioApi.CreateMessageParams{}
	params.SetTo(twiliotest.ToOptedOut).SetFrom(twiliotest.FromValid).SetBody("Your code is 424242")
	_, err := rest.Api.CreateMessage(params)
	if terr, ok := errors.AsType[*client.TwilioRestError](err); ok {
		fmt.Println(terr.Status, terr.Code)
	}
	// Output:
	// 400 21610
}

// A queued fault answers the next request instead of the API.
func ExampleServer_InjectFault() {
	srv := twiliotest.NewServer()
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	rest := newRestClient(srv, tr, twiliotest.SandboxAccountSID,
		twiliotest.SandboxAccountSID, twiliotest.SandboxAuthToken)

	srv.InjectFault(twiliotest.Fault{Kind: twiliotest.FaultTooManyRequests}, 1)
	params := &twilioApi.CreateMessageParams{}
	params.SetTo("+14155550123").SetFrom(twiliotest.FromValid).SetBody("Your code is 424242")
	_, err := rest.Api.CreateMessage(params)
	if terr, ok := errors.AsType[*client.TwilioRestError](err); ok {
		fmt.Println(terr.Status, terr.Code)
	}
	_, err = rest.Api.CreateMessage(params) // the fault was used up
	fmt.Println(err, len(srv.Messages()), srv.Requests())
	// Output:
	// 429 20429
	// <nil> 1 2
}
