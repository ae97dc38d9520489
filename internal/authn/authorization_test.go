package authn

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

const sig64 = "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"

func TestParseAuthorization(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     SigV4Header
		wantErr  string
	}{
		{name: "go sdk", in: "AWS4-HMAC-SHA256 Credential=GWEXAMPLE00000000001/20260101/us-east-1/bedrock/aws4_request, SignedHeaders=content-length;host;x-amz-date, Signature=" + sig64,
			want: SigV4Header{AccessKeyID: "GWEXAMPLE00000000001", Date: "20260101", Region: "us-east-1", Service: "bedrock", Terminal: "aws4_request",
				SignedHeaders: []string{"content-length", "host", "x-amz-date"}, Signature: sig64}},
		{name: "no spaces, other order", in: "AWS4-HMAC-SHA256 Signature=" + sig64 + ",SignedHeaders=:authority;x-amz-date,Credential=AK/20260101/eu-west-1/bedrock/aws4_request",
			want: SigV4Header{AccessKeyID: "AK", Date: "20260101", Region: "eu-west-1", Service: "bedrock", Terminal: "aws4_request",
				SignedHeaders: []string{":authority", "x-amz-date"}, Signature: sig64}},
		{name: "other service parses", in: "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + sig64,
			want: SigV4Header{AccessKeyID: "AK", Date: "20260101", Region: "us-east-1", Service: "s3", Terminal: "aws4_request",
				SignedHeaders: []string{"host"}, Signature: sig64}},
		{name: "empty", in: "", wantErr: "requires 'Credential'"},
		{name: "algorithm only", in: "AWS4-HMAC-SHA256", wantErr: "requires 'Credential'"},
		{name: "sigv2", in: "AWS AKIDEXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=", wantErr: "requires 'Credential'"},
		{name: "sigv4a", in: "AWS4-ECDSA-P256-SHA256 Credential=AK/20260101/bedrock/aws4_request, SignedHeaders=host, Signature=00", wantErr: "Unsupported AWS 'algorithm'"},
		{name: "missing signature", in: "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/bedrock/aws4_request, SignedHeaders=host", wantErr: "requires 'Signature'"},
		{name: "no equals", in: "AWS4-HMAC-SHA256 Credential", wantErr: "missing equal-sign"},
		{name: "duplicate", in: "AWS4-HMAC-SHA256 Credential=a/20260101/r/bedrock/aws4_request, Credential=b/20260101/r/bedrock/aws4_request, SignedHeaders=host, Signature=" + sig64, wantErr: "duplicate"},
		{name: "unknown parameter", in: "AWS4-HMAC-SHA256 Credential=a/20260101/r/bedrock/aws4_request, SignedHeaders=host, Signature=" + sig64 + ", Extra=1", wantErr: "unexpected parameter"},
		{name: "short credential", in: "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/bedrock, SignedHeaders=host, Signature=" + sig64, wantErr: "valid credential"},
		{name: "long credential", in: "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/bedrock/aws4_request/x, SignedHeaders=host, Signature=" + sig64, wantErr: "valid credential"},
		{name: "empty access key", in: "AWS4-HMAC-SHA256 Credential=/20260101/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=" + sig64, wantErr: "valid credential"},
		{name: "bad date", in: "AWS4-HMAC-SHA256 Credential=AK/2026011/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=" + sig64, wantErr: "YYYYMMDD"},
		{name: "bad region", in: "AWS4-HMAC-SHA256 Credential=AK/20260101/US EAST/bedrock/aws4_request, SignedHeaders=host, Signature=" + sig64, wantErr: "valid region"},
		{name: "empty signed header", in: "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/bedrock/aws4_request, SignedHeaders=host;;x, Signature=" + sig64, wantErr: "SignedHeaders"},
		{name: "trailing separator", in: "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/bedrock/aws4_request, SignedHeaders=host;, Signature=" + sig64, wantErr: "SignedHeaders"},
		{name: "space in header name", in: "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/bedrock/aws4_request, SignedHeaders=ho st, Signature=" + sig64, wantErr: "SignedHeaders"},
		{name: "short signature", in: "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=abcd", wantErr: "Signature"},
		{name: "non-hex signature", in: "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("g", 64), wantErr: "Signature"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseAuthorization(tc.in)
			if tc.wantErr != "" {
				var be *bedrock.Error
				if !errors.As(err, &be) || be.Type != "InvalidSignatureException" {
					t.Fatalf("error = %v, want InvalidSignatureException", err)
				}
				if !strings.Contains(be.Message, tc.wantErr) {
					t.Fatalf("message %q does not mention %q", be.Message, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=GWEXAMPLE00000000001/20260101/us-east-1/bedrock/aws4_request, SignedHeaders=content-length;host;x-amz-date, Signature=" + sig64)
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e,SignedHeaders=:authority,Signature=" + sig64)
	f.Add("AWS4-HMAC-SHA256 ,,,")
	f.Add("Bearer bgw-abc")
	f.Fuzz(func(t *testing.T, in string) {
		h, err := ParseAuthorization(in)
		if err != nil {
			var be *bedrock.Error
			if !errors.As(err, &be) || be.Type != "InvalidSignatureException" {
				t.Fatalf("error %v is not an InvalidSignatureException", err)
			}
			return
		}
		if h.AccessKeyID == "" || len(h.Date) != 8 || h.Region == "" || h.Service == "" || h.Terminal == "" {
			t.Fatalf("accepted an incomplete credential: %+v", h)
		}
		if len(h.SignedHeaders) == 0 {
			t.Fatal("accepted no signed headers")
		}
		for _, n := range h.SignedHeaders {
			if n == "" || strings.ContainsAny(n, "; ,=") {
				t.Fatalf("bad signed header name %q", n)
			}
		}
		if _, err := hex.DecodeString(h.Signature); err != nil || len(h.Signature) != 64 {
			t.Fatalf("bad signature %q", h.Signature)
		}
		// Everything parsed must come from the input.
		for _, part := range []string{h.AccessKeyID, h.Date, h.Region, h.Service, h.Terminal, h.Signature} {
			if !strings.Contains(in, part) {
				t.Fatalf("field %q is not part of the input", part)
			}
		}
	})
}

func TestNewAccessKey(t *testing.T) {
	t.Parallel()
	idRE := regexp.MustCompile(`^GW[A-Z0-9]{18}$`)
	seen := map[string]bool{}
	for range 200 {
		id, secret, err := NewAccessKey()
		if err != nil {
			t.Fatal(err)
		}
		if !idRE.MatchString(id) {
			t.Fatalf("access key ID %q does not match %s", id, idRE)
		}
		if len(secret) != 40 {
			t.Fatalf("secret has %d characters, want 40", len(secret))
		}
		if _, err := base64.StdEncoding.DecodeString(secret); err != nil {
			t.Fatalf("secret is not base64: %v", err)
		}
		if seen[id] || seen[secret] {
			t.Fatal("repeated access key or secret")
		}
		seen[id], seen[secret] = true, true
	}
}

func TestNewAPIKey(t *testing.T) {
	t.Parallel()
	keyRE := regexp.MustCompile(`^bgw-[A-Za-z0-9_-]{43}$`)
	a, aSum, err := NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	if !keyRE.MatchString(a) || a == b {
		t.Fatalf("keys %q, %q", a, b)
	}
	sum := HashAPIKey(a)
	if aSum != hex.EncodeToString(sum[:]) || aSum != sha256Hex([]byte(a)) {
		t.Fatalf("hash %q does not match the key", aSum)
	}
}

func TestStaticLookupValidates(t *testing.T) {
	t.Parallel()
	if _, err := NewStaticLookup(&Credential{ID: "k", Kind: KindAPIKey}); err == nil {
		t.Error("accepted an api_key as an access key")
	}
	if _, err := NewStaticLookup(&Credential{ID: "k", Kind: KindSigV4}); err == nil {
		t.Error("accepted an access key without a secret")
	}
	if _, err := NewStaticLookup(testKey, testKey); err == nil {
		t.Error("accepted a duplicate access key")
	}
	l, err := NewStaticLookup()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.AddAPIKey([32]byte{}, testKey); err == nil {
		t.Error("accepted a sigv4 credential as an API key")
	}
}
