package authn

import (
	"context"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
	"github.com/bedrock-gateway/gateway/pkg/iamtoken"
)

const (
	testGatewayID = "o-abc123def4"
	iamTestAKID   = "ASIAEXAMPLEEXAMPLE01"
)

var iamTestNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func iamTestOpts() IAMTokenOptions {
	return IAMTokenOptions{GatewayID: testGatewayID, Now: func() time.Time { return iamTestNow }}
}

// mintTestToken mints with the real pkg/iamtoken (the contract's producer).
func mintTestToken(t testing.TB, sessionToken string, opts iamtoken.Options) string {
	t.Helper()
	cfg := aws.Config{
		Region:      "eu-west-1",
		Credentials: credentials.NewStaticCredentialsProvider(iamTestAKID, "secretsecretsecret", sessionToken),
	}
	if opts.GatewayID == "" {
		opts.GatewayID = testGatewayID
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return iamTestNow }
	}
	tok, err := iamtoken.Mint(context.Background(), cfg, opts)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	return tok
}

func decodeTestToken(t testing.TB, tok string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok, iamtoken.Prefix))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func encodeTestToken(rawURL string) string {
	return iamtoken.Prefix + base64.RawURLEncoding.EncodeToString([]byte(rawURL))
}

func TestParseIAMTokenRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		session      string
		mint         iamtoken.Options
		allowed      string
		wantHost     string
		wantRegion   string
		wantValidity time.Duration
	}{
		{name: "static credentials", wantHost: "sts.eu-west-1.amazonaws.com", wantRegion: "eu-west-1", wantValidity: 15 * time.Minute},
		{name: "temporary credentials", session: "IQoJb3JpZ2luX2VjE/+=session", wantHost: "sts.eu-west-1.amazonaws.com", wantRegion: "eu-west-1", wantValidity: 15 * time.Minute},
		{name: "short expiry", mint: iamtoken.Options{Expires: 90 * time.Second}, wantHost: "sts.eu-west-1.amazonaws.com", wantRegion: "eu-west-1", wantValidity: 90 * time.Second},
		{name: "global endpoint", mint: iamtoken.Options{Region: "aws-global"}, wantHost: "sts.amazonaws.com", wantRegion: "us-east-1", wantValidity: 15 * time.Minute},
		{name: "FIPS", mint: iamtoken.Options{Region: "us-east-2", UseFIPS: true}, wantHost: "sts-fips.us-east-2.amazonaws.com", wantRegion: "us-east-2", wantValidity: 15 * time.Minute},
		{name: "China", session: "tok", mint: iamtoken.Options{Region: "cn-north-1"}, wantHost: "sts.cn-north-1.amazonaws.com.cn", wantRegion: "cn-north-1", wantValidity: 15 * time.Minute},
		{name: "GovCloud", mint: iamtoken.Options{Region: "us-gov-west-1"}, wantHost: "sts.us-gov-west-1.amazonaws.com", wantRegion: "us-gov-west-1", wantValidity: 15 * time.Minute},
		{name: "allowed http origin", mint: iamtoken.Options{STSEndpoint: "http://127.0.0.1:4566"}, allowed: "http://127.0.0.1:4566", wantHost: "127.0.0.1:4566", wantRegion: "eu-west-1", wantValidity: 15 * time.Minute},
		{name: "allowed VPC endpoint origin", mint: iamtoken.Options{STSEndpoint: "https://vpce-0123-abcd.sts.eu-west-1.vpce.amazonaws.com"}, allowed: "https://vpce-0123-abcd.sts.eu-west-1.vpce.amazonaws.com/", wantHost: "vpce-0123-abcd.sts.eu-west-1.vpce.amazonaws.com", wantRegion: "eu-west-1", wantValidity: 15 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok := mintTestToken(t, tt.session, tt.mint)
			opts := iamTestOpts()
			opts.AllowedOrigin = tt.allowed
			req, err := ParseIAMToken(tok, opts)
			if err != nil {
				t.Fatalf("ParseIAMToken: %v", err)
			}
			u, err := url.Parse(req.URL)
			if err != nil {
				t.Fatal(err)
			}
			if u.Host != tt.wantHost {
				t.Errorf("host = %q, want %q", u.Host, tt.wantHost)
			}
			if req.URL != decodeTestToken(t, tok) {
				t.Errorf("URL = %q, want the token's URL unchanged", req.URL)
			}
			if got := req.Header.Get(iamtoken.GatewayIDHeader); got != testGatewayID {
				t.Errorf("gateway id header = %q", got)
			}
			if req.AccessKeyID != iamTestAKID || req.Region != tt.wantRegion {
				t.Errorf("access key, region = %q, %q", req.AccessKeyID, req.Region)
			}
			if !req.SignedAt.Equal(iamTestNow) || !req.Expires.Equal(iamTestNow.Add(tt.wantValidity)) {
				t.Errorf("signed at %v, expires %v", req.SignedAt, req.Expires)
			}
			if req.Temporary != (tt.session != "") {
				t.Errorf("Temporary = %v", req.Temporary)
			}
			if got := u.Query().Get("X-Amz-SignedHeaders"); got != "host;x-bedrock-gateway-id" {
				t.Errorf("signed headers = %q", got)
			}
		})
	}
}

func TestParseIAMTokenRefusals(t *testing.T) {
	t.Parallel()
	valid := decodeTestToken(t, mintTestToken(t, "sess", iamtoken.Options{}))
	replace := func(old, new string) string {
		if !strings.Contains(valid, old) {
			t.Fatalf("%q not in %q", old, valid)
		}
		return encodeTestToken(strings.Replace(valid, old, new, 1))
	}
	// setParam rewrites one query parameter of the valid URL.
	setParam := func(name, value string) string {
		u, _ := url.Parse(valid)
		q := u.Query()
		q.Set(name, value)
		u.RawQuery = q.Encode()
		return encodeTestToken(u.String())
	}
	delParam := func(name string) string {
		u, _ := url.Parse(valid)
		q := u.Query()
		q.Del(name)
		u.RawQuery = q.Encode()
		return encodeTestToken(u.String())
	}
	tests := []struct {
		name    string
		token   string
		allowed string
		now     time.Time
		want    error
	}{
		{name: "wrong prefix", token: "bgw-iam-v2." + strings.TrimPrefix(encodeTestToken(valid), iamtoken.Prefix), want: ErrIAMTokenInvalid},
		{name: "no prefix", token: strings.TrimPrefix(encodeTestToken(valid), iamtoken.Prefix), want: ErrIAMTokenInvalid},
		{name: "padded base64", token: iamtoken.Prefix + base64.URLEncoding.EncodeToString([]byte(valid+"x")), want: ErrIAMTokenInvalid},
		{name: "standard base64 alphabet", token: iamtoken.Prefix + base64.RawStdEncoding.EncodeToString([]byte(valid+"??>")), want: ErrIAMTokenInvalid},
		{name: "bad base64", token: iamtoken.Prefix + "!!!!", want: ErrIAMTokenInvalid},
		{name: "empty", token: iamtoken.Prefix, want: ErrIAMTokenInvalid},
		{name: "too long", token: iamtoken.Prefix + strings.Repeat("A", maxIAMTokenLen+1), want: ErrIAMTokenInvalid},
		{name: "other action", token: setParam("Action", "AssumeRole"), want: ErrIAMTokenInvalid},
		{name: "other version", token: setParam("Version", "2012-01-01"), want: ErrIAMTokenInvalid},
		{name: "extra parameter", token: setParam("RoleArn", "arn:aws:iam::1:role/x"), want: ErrIAMTokenInvalid},
		{name: "lowercase parameter name", token: replace("Action=", "action="), want: ErrIAMTokenInvalid},
		{name: "duplicate parameter", token: replace("Action=GetCallerIdentity", "Action=GetCallerIdentity&Action=GetCallerIdentity"), want: ErrIAMTokenInvalid},
		{name: "duplicate with other value", token: replace("Action=GetCallerIdentity", "Action=GetCallerIdentity&Action=AssumeRole"), want: ErrIAMTokenInvalid},
		{name: "semicolon in query", token: replace("Action=GetCallerIdentity", "Action=GetCallerIdentity;x=y"), want: ErrIAMTokenInvalid},
		{name: "missing expires", token: delParam("X-Amz-Expires"), want: ErrIAMTokenInvalid},
		{name: "missing signature", token: delParam("X-Amz-Signature"), want: ErrIAMTokenInvalid},
		{name: "empty security token", token: setParam("X-Amz-Security-Token", ""), want: ErrIAMTokenInvalid},
		{name: "expires above 900", token: setParam("X-Amz-Expires", "901"), want: ErrIAMTokenInvalid},
		{name: "expires zero", token: setParam("X-Amz-Expires", "0"), want: ErrIAMTokenInvalid},
		{name: "expires negative", token: setParam("X-Amz-Expires", "-1"), want: ErrIAMTokenInvalid},
		{name: "expires leading zero", token: setParam("X-Amz-Expires", "060"), want: ErrIAMTokenInvalid},
		{name: "expires huge", token: setParam("X-Amz-Expires", "99999999999999999999"), want: ErrIAMTokenInvalid},
		{name: "expired", token: encodeTestToken(valid), now: iamTestNow.Add(15 * time.Minute), want: ErrIAMTokenExpired},
		{name: "future dated", token: encodeTestToken(valid), now: iamTestNow.Add(-5*time.Minute - time.Second), want: ErrIAMTokenNotYetValid},
		{name: "malformed date", token: setParam("X-Amz-Date", "2026-03-04T05:06:07Z"), want: ErrIAMTokenInvalid},
		{name: "other algorithm", token: setParam("X-Amz-Algorithm", "AWS4-ECDSA-P256-SHA256"), want: ErrIAMTokenInvalid},
		{name: "other service", token: replace("%2Fsts%2F", "%2Fbedrock%2F"), want: ErrIAMTokenInvalid},
		{name: "other terminator", token: replace("aws4_request", "aws4_reqest"), want: ErrIAMTokenInvalid},
		{name: "credential date not the request's", token: replace("%2F20260304%2F", "%2F20260303%2F"), want: ErrIAMTokenInvalid},
		{name: "malformed signature", token: setParam("X-Amz-Signature", "zz"), want: ErrIAMTokenInvalid},
		{name: "gateway id not signed", token: setParam("X-Amz-SignedHeaders", "host"), want: ErrIAMTokenInvalid},
		{name: "host not signed", token: setParam("X-Amz-SignedHeaders", "x-bedrock-gateway-id"), want: ErrIAMTokenInvalid},
		{name: "signed headers unsorted", token: setParam("X-Amz-SignedHeaders", "x-bedrock-gateway-id;host"), want: ErrIAMTokenInvalid},
		{name: "foreign host", token: replace("sts.eu-west-1.amazonaws.com", "sts.eu-west-1.amazonaws.com.evil.example"), want: ErrIAMTokenInvalid},
		{name: "foreign host with sts prefix", token: replace("sts.eu-west-1.amazonaws.com", "sts.evil.example"), want: ErrIAMTokenInvalid},
		{name: "metadata address", token: replace("sts.eu-west-1.amazonaws.com", "169.254.169.254"), want: ErrIAMTokenInvalid},
		{name: "AWS host with port", token: replace("sts.eu-west-1.amazonaws.com", "sts.eu-west-1.amazonaws.com:8443"), want: ErrIAMTokenInvalid},
		{name: "userinfo", token: replace("https://", "https://sts.eu-west-1.amazonaws.com@"), want: ErrIAMTokenInvalid},
		{name: "FIPS in China", token: replace("sts.eu-west-1.amazonaws.com", "sts-fips.cn-north-1.amazonaws.com.cn"), want: ErrIAMTokenInvalid},
		{name: "China domain for other region", token: replace("sts.eu-west-1.amazonaws.com", "sts.eu-west-1.amazonaws.com.cn"), want: ErrIAMTokenInvalid},
		{name: "http to AWS", token: replace("https://", "http://"), want: ErrIAMTokenInvalid},
		{name: "http to a non-allowed origin", token: replace("https://sts.eu-west-1.amazonaws.com", "http://127.0.0.1:4566"), allowed: "http://127.0.0.1:4567", want: ErrIAMTokenInvalid},
		{name: "allowed host, other scheme", token: replace("https://sts.eu-west-1.amazonaws.com", "https://127.0.0.1:4566"), allowed: "http://127.0.0.1:4566", want: ErrIAMTokenInvalid},
		{name: "allowed host, other port", token: replace("https://sts.eu-west-1.amazonaws.com", "http://127.0.0.1"), allowed: "http://127.0.0.1:4566", want: ErrIAMTokenInvalid},
		{name: "other path", token: replace(".com/?", ".com/x?"), want: ErrIAMTokenInvalid},
		{name: "no path", token: replace(".com/?", ".com?"), want: ErrIAMTokenInvalid},
		{name: "fragment", token: encodeTestToken(valid + "#f"), want: ErrIAMTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := iamTestOpts()
			opts.AllowedOrigin = tt.allowed
			if !tt.now.IsZero() {
				opts.Now = func() time.Time { return tt.now }
			}
			req, err := ParseIAMToken(tt.token, opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseIAMToken = %+v, %v; want %v", req, err, tt.want)
			}
			var be *bedrock.Error
			if !errors.As(err, &be) || be.Status != 403 {
				t.Errorf("client error = %v, want a 403 Bedrock error", be)
			}
			if len(tt.token) > 40 && strings.Contains(err.Error(), tt.token[len(iamtoken.Prefix):len(iamtoken.Prefix)+24]) {
				t.Errorf("error %q echoes the token", err)
			}
		})
	}
}

func TestParseIAMTokenValidityEdges(t *testing.T) {
	t.Parallel()
	tok := mintTestToken(t, "", iamtoken.Options{Expires: 60 * time.Second})
	tests := []struct {
		name string
		now  time.Time
		want error
	}{
		{name: "just signed", now: iamTestNow},
		{name: "last second", now: iamTestNow.Add(59 * time.Second)},
		{name: "expiry instant", now: iamTestNow.Add(60 * time.Second), want: ErrIAMTokenExpired},
		{name: "dated 5m ahead", now: iamTestNow.Add(-5 * time.Minute)},
		{name: "dated beyond 5m ahead", now: iamTestNow.Add(-5*time.Minute - time.Second), want: ErrIAMTokenNotYetValid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := iamTestOpts()
			opts.Now = func() time.Time { return tt.now }
			_, err := ParseIAMToken(tok, opts)
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Fatalf("ParseIAMToken: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestIAMTokenErrorMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind     error
		wantType string
	}{
		{ErrIAMTokenInvalid, "UnrecognizedClientException"},
		{ErrIAMTokenExpired, "UnrecognizedClientException"},
		{ErrIAMTokenNotYetValid, "InvalidSignatureException"},
	}
	for _, tt := range tests {
		var err error = &IAMTokenError{Kind: tt.kind, Reason: "r"}
		var be *bedrock.Error
		if !errors.As(err, &be) || be.Type != tt.wantType {
			t.Errorf("%v maps to %v, want %s", tt.kind, be, tt.wantType)
		}
	}
}

func TestParseIAMTokenNeedsGatewayID(t *testing.T) {
	t.Parallel()
	_, err := ParseIAMToken(mintTestToken(t, "", iamtoken.Options{}), IAMTokenOptions{Now: func() time.Time { return iamTestNow }})
	if err == nil || errors.Is(err, ErrIAMTokenInvalid) {
		t.Fatalf("err = %v, want a configuration error", err)
	}
}

func TestIsAWSSTSHost(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"sts.amazonaws.com":                    true,
		"sts.us-east-1.amazonaws.com":          true,
		"sts.ap-southeast-3.amazonaws.com":     true,
		"sts-fips.us-west-2.amazonaws.com":     true,
		"sts.us-gov-west-1.amazonaws.com":      true,
		"sts.cn-northwest-1.amazonaws.com.cn":  true,
		"sts.cn-north-1.amazonaws.com":         false,
		"sts.us-east-1.amazonaws.com.cn":       false,
		"sts-fips.cn-north-1.amazonaws.com.cn": false,
		"STS.us-east-1.amazonaws.com":          false,
		"sts.us-east-1.amazonaws.com.":         false,
		"sts.amazonaws.com.evil":               false,
		"evil.sts.us-east-1.amazonaws.com":     false,
		"sts.us-east.amazonaws.com":            false,
		"sts.useast1.amazonaws.com":            false,
		"iam.amazonaws.com":                    false,
		"":                                     false,
	}
	for host, want := range tests {
		if got := isAWSSTSHost(host); got != want {
			t.Errorf("isAWSSTSHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func FuzzParseIAMToken(f *testing.F) {
	f.Add(mintTestToken(f, "", iamtoken.Options{}))
	f.Add(mintTestToken(f, "session/token+=", iamtoken.Options{Region: "cn-north-1"}))
	f.Add(mintTestToken(f, "", iamtoken.Options{STSEndpoint: "http://127.0.0.1:4566"}))
	f.Add(iamtoken.Prefix + "aHR0cHM6Ly9zdHMuYW1hem9uYXdzLmNvbS8_")
	f.Add("bgw-iam-v1.")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		opts := iamTestOpts()
		opts.AllowedOrigin = "http://127.0.0.1:4566"
		req, err := ParseIAMToken(token, opts)
		if err != nil {
			var te *IAMTokenError
			if !errors.As(err, &te) {
				t.Fatalf("error %v is not an *IAMTokenError", err)
			}
			return
		}
		// An accepted token is exactly its URL, encoded, and parses alike again.
		if encodeTestToken(req.URL) != token {
			t.Fatalf("accepted token does not round-trip through its URL %q", req.URL)
		}
		again, err := ParseIAMToken(encodeTestToken(req.URL), opts)
		if err != nil || again.URL != req.URL || again.AccessKeyID != req.AccessKeyID || !again.Expires.Equal(req.Expires) {
			t.Fatalf("re-parse = %+v, %v", again, err)
		}
		u, err := url.Parse(req.URL)
		if err != nil || u.Query().Get("Action") != "GetCallerIdentity" || u.Path != "/" {
			t.Fatalf("accepted URL %q is not a GetCallerIdentity", req.URL)
		}
		if u.Host != "127.0.0.1:4566" && (u.Scheme != "https" || !isAWSSTSHost(u.Host)) {
			t.Fatalf("accepted URL %q has a foreign origin", req.URL)
		}
	})
}
