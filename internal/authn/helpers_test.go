package authn

import (
	"crypto/hmac"
	"crypto/sha256"
)

// hmacForTest is crypto/hmac, independent of the verifier's allocation-free HMAC.
func hmacForTest(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// deriveSigningKeyForTest is the SigV4 key chain written out with crypto/hmac.
func deriveSigningKeyForTest(secret, date, region string) []byte {
	k := hmacForTest([]byte("AWS4"+secret), date)
	k = hmacForTest(k, region)
	k = hmacForTest(k, "bedrock")
	return hmacForTest(k, "aws4_request")
}
