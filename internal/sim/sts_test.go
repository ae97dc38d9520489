package sim

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func newSTSServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(New(Options{}))
	t.Cleanup(srv.Close)
	return srv
}

func identityByArnSuffix(t *testing.T, suffix string) Identity {
	t.Helper()
	for _, id := range Identities() {
		if strings.HasSuffix(id.Arn, suffix) {
			return id
		}
	}
	t.Fatalf("no built-in identity %s", suffix)
	return Identity{}
}

func stsClient(srv *httptest.Server, akid, secret, token string) *sts.Client {
	return sts.New(sts.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(akid, secret, token),
		HTTPClient:   SDKHTTPClient(srv.Client()),
	})
}

// shiftedPresigner is the SDK's own v4 signer with a chosen signing time and,
// when expires is set, an X-Amz-Expires parameter (which Go's PresignHTTP
// does not add by itself).
type shiftedPresigner struct {
	shift   time.Duration
	expires string
}

func (p shiftedPresigner) PresignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string,
	signingTime time.Time, optFns ...func(*v4.SignerOptions)) (string, http.Header, error) {
	if p.expires != "" {
		q := r.URL.Query()
		q.Set("X-Amz-Expires", p.expires)
		r.URL.RawQuery = q.Encode()
	}
	return v4.NewSigner().PresignHTTP(ctx, creds, r, payloadHash, service, region, signingTime.Add(p.shift), optFns...)
}

type stsAnswer struct {
	status          int
	code            string // error code, or "" on success
	arn, account    string
	userID, request string
}

// getPresigned GETs a presigned URL as any HTTP client would, with its signed headers.
func getPresigned(t *testing.T, srv *httptest.Server, p *v4.PresignedHTTPRequest, rawURL string) stsAnswer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), p.Method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range p.SignedHeader {
		if !strings.EqualFold(k, "host") {
			req.Header[k] = vs
		}
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var doc struct {
		XMLName   xml.Name
		Arn       string `xml:"GetCallerIdentityResult>Arn"`
		Account   string `xml:"GetCallerIdentityResult>Account"`
		UserID    string `xml:"GetCallerIdentityResult>UserId"`
		Code      string `xml:"Error>Code"`
		RequestID string `xml:"ResponseMetadata>RequestId"`
		ErrReqID  string `xml:"RequestId"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil {
		t.Fatalf("answer is not XML: %v\n%s", err, body)
	}
	a := stsAnswer{status: resp.StatusCode, code: doc.Code, arn: doc.Arn, account: doc.Account, userID: doc.UserID, request: doc.RequestID + doc.ErrReqID}
	if a.request == "" || resp.Header.Get("X-Amzn-Requestid") != a.request {
		t.Errorf("request id %q in body, %q in header", a.request, resp.Header.Get("X-Amzn-Requestid"))
	}
	return a
}

func TestSTSGetCallerIdentitySDK(t *testing.T) {
	t.Parallel()
	srv := newSTSServer(t)
	for _, id := range Identities() {
		t.Run(id.Arn, func(t *testing.T) {
			t.Parallel()
			out, err := stsClient(srv, id.AccessKeyID, id.SecretAccessKey, id.SessionToken).GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(out.Arn) != id.Arn || aws.ToString(out.Account) != id.Account || aws.ToString(out.UserId) != id.UserID {
				t.Errorf("got %s %s %s, want %s %s %s", aws.ToString(out.Arn), aws.ToString(out.Account), aws.ToString(out.UserId),
					id.Arn, id.Account, id.UserID)
			}
		})
	}
}

func TestSTSGetCallerIdentitySDKRefusals(t *testing.T) {
	t.Parallel()
	srv := newSTSServer(t)
	user := identityByArnSuffix(t, ":user/support-dev")
	role := identityByArnSuffix(t, ":assumed-role/support-bot/sim")
	for _, tc := range []struct {
		name                string
		akid, secret, token string
		status              int
		code                string
	}{
		{"wrong secret", user.AccessKeyID, "not-the-secret", "", 403, "SignatureDoesNotMatch"},
		{"unknown key", "AKIAUNKNOWN000000000", "secret", "", 403, "InvalidClientTokenId"},
		{"role without its session token", role.AccessKeyID, role.SecretAccessKey, "", 403, "InvalidClientTokenId"},
		{"role with a wrong session token", role.AccessKeyID, role.SecretAccessKey, "forged", 403, "InvalidClientTokenId"},
		{"user with a session token", user.AccessKeyID, user.SecretAccessKey, "sim-session-token-222222222222", 403, "InvalidClientTokenId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := stsClient(srv, tc.akid, tc.secret, tc.token).GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
			checkAPIError(t, err, tc.status, tc.code)
		})
	}
}

func checkAPIError(t *testing.T, err error, status int, code string) {
	t.Helper()
	apiErr, ok := errors.AsType[smithy.APIError](err)
	if !ok {
		t.Fatalf("got %v, want API error %s", err, code)
	}
	if apiErr.ErrorCode() != code {
		t.Errorf("code %q (%v), want %q", apiErr.ErrorCode(), err, code)
	}
	if re, ok := errors.AsType[*smithyhttp.ResponseError](err); !ok || re.HTTPStatusCode() != status {
		t.Errorf("%v: want status %d", err, status)
	}
}

func TestSTSPresignedGetCallerIdentity(t *testing.T) {
	t.Parallel()
	srv := newSTSServer(t)
	user := identityByArnSuffix(t, ":user/data-scientist")
	role := identityByArnSuffix(t, ":assumed-role/support-bot/sim")
	tamper := func(u string) string {
		// Flip the last hex digit of X-Amz-Signature.
		parsed, _ := url.Parse(u)
		q := parsed.Query()
		sig := q.Get("X-Amz-Signature")
		last := "0"
		if sig[len(sig)-1] == '0' {
			last = "1"
		}
		return strings.Replace(u, "X-Amz-Signature="+sig, "X-Amz-Signature="+sig[:len(sig)-1]+last, 1)
	}
	addParam := func(u string) string { return u + "&Extra=1" }
	for _, tc := range []struct {
		name      string
		id        Identity
		akid      string // overrides id.AccessKeyID
		presigner shiftedPresigner
		header    string // x-bedrock-gateway-id, signed, when set
		edit      func(string) string
		status    int
		code      string
	}{
		{name: "IAM user", id: user, status: 200},
		{name: "assumed role", id: role, status: 200},
		{name: "signed audience header", id: role, header: "gw-test", status: 200},
		{name: "X-Amz-Expires within its life", id: user, presigner: shiftedPresigner{shift: -time.Minute, expires: "120"}, status: 200},
		{name: "tampered signature", id: user, edit: tamper, status: 403, code: "SignatureDoesNotMatch"},
		{name: "unsigned extra parameter", id: user, edit: addParam, status: 403, code: "SignatureDoesNotMatch"},
		{name: "unknown key", id: user, akid: "AKIAUNKNOWN000000000", status: 403, code: "InvalidClientTokenId"},
		{name: "expired: older than 15 minutes", id: user, presigner: shiftedPresigner{shift: -16 * time.Minute}, status: 403, code: "SignatureDoesNotMatch"},
		{name: "expired: X-Amz-Expires elapsed", id: role, presigner: shiftedPresigner{shift: -2 * time.Minute, expires: "60"}, status: 403, code: "SignatureDoesNotMatch"},
		{name: "X-Amz-Expires above 15 minutes still ends at 15", id: user, presigner: shiftedPresigner{shift: -16 * time.Minute, expires: "3600"}, status: 403, code: "SignatureDoesNotMatch"},
		{name: "not yet valid", id: user, presigner: shiftedPresigner{shift: 16 * time.Minute}, status: 403, code: "SignatureDoesNotMatch"},
		{name: "X-Amz-Expires malformed", id: user, presigner: shiftedPresigner{expires: "0"}, status: 400, code: "AuthorizationQueryParametersError"},
		{name: "duplicate signature", id: user, edit: func(u string) string { return u + "&X-Amz-Signature=" + strings.Repeat("0", 64) },
			status: 400, code: "AuthorizationQueryParametersError"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			akid := tc.id.AccessKeyID
			if tc.akid != "" {
				akid = tc.akid
			}
			client := stsClient(srv, akid, tc.id.SecretAccessKey, tc.id.SessionToken)
			if tc.header != "" {
				client = sts.New(sts.Options{
					Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), HTTPClient: SDKHTTPClient(srv.Client()),
					Credentials: credentials.NewStaticCredentialsProvider(akid, tc.id.SecretAccessKey, tc.id.SessionToken),
					APIOptions:  []func(*middleware.Stack) error{smithyhttp.SetHeaderValue("x-bedrock-gateway-id", tc.header)},
				})
			}
			p, err := sts.NewPresignClient(client, func(o *sts.PresignOptions) { o.Presigner = tc.presigner }).
				PresignGetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(p.URL, "X-Amz-Signature=") || p.Method != http.MethodGet {
				t.Fatalf("not a presigned GET: %s %s", p.Method, p.URL)
			}
			if tc.header != "" && p.SignedHeader.Get("x-bedrock-gateway-id") != tc.header {
				t.Fatalf("audience header not signed: %v", p.SignedHeader)
			}
			u := p.URL
			if tc.edit != nil {
				u = tc.edit(u)
			}
			got := getPresigned(t, srv, p, u)
			if got.status != tc.status || got.code != tc.code {
				t.Fatalf("got %d %q, want %d %q", got.status, got.code, tc.status, tc.code)
			}
			if tc.status == 200 && (got.arn != tc.id.Arn || got.account != tc.id.Account || got.userID != tc.id.UserID) {
				t.Errorf("got %+v, want %s", got, tc.id.Arn)
			}
		})
	}
}

// TestSTSPresignedAudienceHeaderIsSigned: a presigned URL that signs
// x-bedrock-gateway-id does not verify without that header, or with another value.
func TestSTSPresignedAudienceHeaderIsSigned(t *testing.T) {
	t.Parallel()
	srv := newSTSServer(t)
	role := identityByArnSuffix(t, ":assumed-role/campaigns/sim")
	client := sts.New(sts.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), HTTPClient: SDKHTTPClient(srv.Client()),
		Credentials: credentials.NewStaticCredentialsProvider(role.AccessKeyID, role.SecretAccessKey, role.SessionToken),
		APIOptions:  []func(*middleware.Stack) error{smithyhttp.SetHeaderValue("x-bedrock-gateway-id", "gw-a")},
	})
	p, err := sts.NewPresignClient(client).PresignGetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	for name, header := range map[string]http.Header{
		"missing": {},
		"other":   {"X-Bedrock-Gateway-Id": {"gw-b"}},
	} {
		q := *p
		q.SignedHeader = header
		if got := getPresigned(t, srv, &q, p.URL); got.status != 403 || got.code != "SignatureDoesNotMatch" {
			t.Errorf("%s: got %d %q, want 403 SignatureDoesNotMatch", name, got.status, got.code)
		}
	}
}

func TestSTSRequests(t *testing.T) {
	t.Parallel()
	srv := newSTSServer(t)
	for _, tc := range []struct {
		name, method, target, body string
		status                     int
		code                       string
	}{
		{"no signature", "GET", "/?Action=GetCallerIdentity&Version=2011-06-15", "", 403, "MissingAuthenticationToken"},
		{"no signature, form", "POST", "/", "Action=GetCallerIdentity&Version=2011-06-15", 403, "MissingAuthenticationToken"},
		{"malformed query", "GET", "/?Action=GetCallerIdentity&X-Amz-Algorithm=AWS4-HMAC-SHA256", "", 400, "AuthorizationQueryParametersError"},
		{"wrong algorithm", "GET", "/?Action=GetCallerIdentity&X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256&X-Amz-Credential=A/20260101/us-east-1/sts/aws4_request" +
			"&X-Amz-Date=20260101T000000Z&X-Amz-SignedHeaders=host&X-Amz-Signature=" + strings.Repeat("a", 64), "", 400, "AuthorizationQueryParametersError"},
		{"bad method", "PUT", "/?Action=GetCallerIdentity", "", 405, "InvalidAction"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequestWithContext(t.Context(), tc.method, srv.URL+tc.target, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.method == "POST" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var doc struct {
				Type string `xml:"Error>Type"`
				Code string `xml:"Error>Code"`
			}
			body, _ := io.ReadAll(resp.Body)
			if err := xml.Unmarshal(body, &doc); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if resp.StatusCode != tc.status || doc.Code != tc.code || doc.Type != "Sender" {
				t.Errorf("got %d %s/%s, want %d Sender/%s", resp.StatusCode, doc.Type, doc.Code, tc.status, tc.code)
			}
		})
	}
}

// TestSTSOtherActionRefusedAfterAuthentication: a signed call of another STS
// action is refused as unknown, not answered as GetCallerIdentity.
func TestSTSOtherActionRefusedAfterAuthentication(t *testing.T) {
	t.Parallel()
	srv := newSTSServer(t)
	user := identityByArnSuffix(t, ":user/campaign-manager")
	_, err := stsClient(srv, user.AccessKeyID, user.SecretAccessKey, "").GetSessionToken(t.Context(), &sts.GetSessionTokenInput{})
	checkAPIError(t, err, 400, "InvalidAction")
}

// TestSTSLeavesBedrockAlone: STS calls are not Bedrock requests, and Bedrock
// routes still answer as before.
func TestSTSLeavesBedrockAlone(t *testing.T) {
	t.Parallel()
	s := New(Options{})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	id := Identities()[0]
	if _, err := stsClient(srv, id.AccessKeyID, id.SecretAccessKey, id.SessionToken).GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Requests()); n != 0 {
		t.Errorf("%d Bedrock requests observed, want 0", n)
	}
	resp, err := srv.Client().Get(srv.URL + "/foundation-models")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(s.Requests()) != 1 {
		t.Errorf("GET /foundation-models: %d, %d observed", resp.StatusCode, len(s.Requests()))
	}
}

// TestHelpListsSTSIdentities: `gateway sim --help` documents every built-in identity.
func TestHelpListsSTSIdentities(t *testing.T) {
	t.Parallel()
	h := Help()
	for _, id := range Identities() {
		for _, want := range []string{id.Arn, id.AccessKeyID, id.SecretAccessKey, id.SessionToken} {
			if !strings.Contains(h, want) {
				t.Errorf("help does not mention %q", want)
			}
		}
	}
}
