// Package twiliotest is an in-process emulator of Twilio's Programmable Messaging API, shaped
// like net/http/httptest.
//
// It serves the endpoints the Twilio connector uses,
//
//	POST /2010-04-01/Accounts/{AccountSid}/Messages.json
//	GET  /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json
//
// over real HTTP, so tests can run the real github.com/twilio/twilio-go client against it
// without the internet, and the binary's --sandbox mode can offer a working "Twilio" to a user
// who has no Twilio account yet. It records every accepted message, so a test can read the
// verification code out of [Server.Messages], and it injects faults on demand
// ([Server.InjectFault], [Server.SetLatency]).
//
// twilio-go's base URL is the constant https://api.twilio.com, so clients reach the emulator
// through a [net/http.RoundTripper] that rewrites the scheme and host of each request to
// [Server.URL]; see the package example.
//
// # Requests
//
// A request passes these steps in order; the first that fails answers it.
//
//  1. Route: any other path is 404 (code 20404). Requests to the routes are counted by
//     [Server.Requests] from here on, whatever their outcome.
//  2. Fault: a queued [Fault] is taken (first in, first out) and, after the latency, answers
//     the request instead of the steps below.
//  3. Latency: the response waits for the duration set with [Server.SetLatency]; if the
//     client goes away or the server closes first, nothing is written.
//  4. Basic auth: the account SID with its auth token, or an API key SID with its secret
//     ([WithAccount], [WithAPIKey]); anything else is 401 (code 20003).
//  5. Account: the {AccountSid} in the path must be the authenticated account: 404 (20404).
//  6. Method: anything but POST is 405 (code 20004).
//  7. Body: more than 64 KiB is 413; an undecodable form is 400 (both without a Twilio code).
//  8. Form validation, in Twilio's order, and the magic numbers (below): 400 with the code.
//
// A GET of a message passes steps 1 to 5, then answers anything but GET 405 (20004), a SID the
// emulator did not accept for the account 404 (20404), and else 200 with the message resource
// as the create call returned it, with the message's current [Message.Status].
//
// An accepted message is answered 201 with Twilio's message resource: a fresh "SM" SID,
// status "queued" ("accepted" when a MessagingServiceSid was given), the counters num_segments
// and num_media as JSON strings as Twilio sends them, and dates in RFC 1123 with a numeric zone.
// As on Twilio, a message sent through a Messaging Service reports num_segments "0" because no
// sender has been picked yet; [Message.NumSegments] always holds the computed count.
//
// Errors are Twilio's JSON, with Content-Type application/json:
//
//	{"code":21211,"message":"...","more_info":"https://www.twilio.com/docs/errors/21211","status":400}
//
// # Validation
//
//	code   cause
//	21604  To missing
//	21602  Body missing and no MediaUrl
//	21603  neither From nor MessagingServiceSid
//	21211  To not E.164 (+ then 7 to 15 digits, no leading 0)
//	21705  MessagingServiceSid not "MG" + 32 hex, or not one of WithMessagingServices
//	21212  From neither E.164, nor a sender of the account, nor an alphanumeric sender ID
//	21606  From is an E.164 number the account does not own
//	21617  Body longer than 1600 characters (in UTF-16 code units: outside the BMP, two)
//	21624  ValidityPeriod not an integer from 1 to 36000
//
// The account owns [FromValid], the numbers given with [WithSenders], and any alphanumeric
// sender ID (1 to 11 of A-Z, a-z, 0-9 and space, at least one letter).
//
// # Magic numbers
//
// These reproduce Twilio's test-credential numbers and are checked after the validation above.
// [ToLandline] is this emulator's own addition (Twilio has no magic number for 21635).
//
//	number        as From                 as To
//	+15005550001  21212 invalid From      21211 invalid To
//	+15005550002                          21612 To not reachable from this sender
//	+15005550003                          21408 no geo permission for the To country
//	+15005550004                          21610 recipient replied STOP
//	+15005550006  accepted
//	+15005550007  21606 From not owned
//	+15005550008  21611 sender queue full
//	+15005550009                          21614 To is not a mobile number
//	+15005550010                          21635 To is a landline (emulator extension)
//
// # Status callbacks
//
// A message created with a StatusCallback URL gets Twilio's status callbacks there: form posts
// (AccountSid, MessageSid, SmsSid, MessageStatus, SmsStatus, To, From, ErrorCode, ...) signed
// in X-Twilio-Signature as Twilio signs them ([Sign]: HMAC-SHA1 with the account's auth token
// over the URL and the sorted parameters), each after [WithCallbackDelay] (default
// [DefaultCallbackDelay]). Ordinary recipients go queued, sent, delivered; these end otherwise
// (the emulator's own numbers: Twilio's test credentials never call back):
//
//	To            last callback            ErrorCode
//	+15005550011  undelivered              30003 unreachable handset
//	+15005550012  undelivered              30005 unknown handset
//	+15005550013  undelivered              30006 landline or unreachable carrier
//	+15005550014  undelivered              30007 filtered by the carrier
//	+15005550015  failed (after queued)    30008 unknown error
//
// [WithCallbackChaos] posts every message's callbacks out of order and twice, as Twilio may:
// sent, final, queued, sent, final. [Message.Status] follows the callbacks without going back;
// [Server.Callbacks] lists the callbacks posted and their answers; [Server.WaitCallbacks] waits
// for those in progress. Close aborts the callbacks not yet posted.
//
// # Faults
//
// [Server.InjectFault] queues a [Fault] for the next requests to the routes. Fault.Status
// overrides the HTTP status and Fault.RetryAfter adds a Retry-After header in whole seconds.
//
//	kind                   default status  what the client sees (twilio-go v1.31.0)
//	FaultTooManyRequests   429             *client.TwilioRestError code 20429
//	FaultServerErrorHTML   502             an HTML body, as from a load balancer: a plain decode
//	                                       error, not a *client.TwilioRestError
//	FaultServerErrorJSON   500             *client.TwilioRestError code 20500
//	FaultConnectionReset   none            the connection is reset (TCP RST) without a response:
//	                                       a transport error, *url.Error
//	FaultRedirect          302             a 3xx without Location and a body of "{}": twilio-go
//	                                       reports success with every field nil
//
// A faulted request is counted by [Server.Requests] but never validated nor recorded.
package twiliotest
