package authn

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// InvokeModelWithBidirectionalStream sends its request body as a chain of
// signed envelopes: event-stream messages whose headers are `:date`
// (timestamp) and `:chunk-signature` (32 bytes) and whose payload is one
// encoded inner event; an empty payload ends the input. Each signature is
// HMAC-SHA256, with the signing key of the envelope's date, over
//
//	AWS4-HMAC-SHA256-PAYLOAD \n <:date as YYYYMMDDTHHMMSSZ> \n <scope of that date>
//	\n hex(previous signature) \n hex(sha256(encoded headers except :chunk-signature))
//	\n hex(sha256(payload))
//
// seeded with the request's own signature, exactly as aws-sdk-go-v2's
// v4.StreamSigner computes it (smithy-go's eventstream.SigningWriter encodes
// only the `:date` header for the header hash).

const (
	chunkAlgorithm       = "AWS4-HMAC-SHA256-PAYLOAD"
	chunkDateHeader      = ":date"
	chunkSignatureHeader = ":chunk-signature"
)

// ChunkVerifier verifies a caller's envelope chain and unwraps the inner
// events. It is not safe for concurrent use (a chain is sequential).
type ChunkVerifier struct {
	v                   *Verifier
	accessKeyID, secret string // to derive the next day's key mid-stream
	region              string
	prev                [32]byte // the previous signature in the chain
	dec                 *eventstream.Decoder
	headerBuf           bytes.Buffer
	msgBuf, sts         []byte
	lastKeyDate         string
	lastKey             []byte
	ended               bool
}

// NewChunkVerifier starts verifying the chain of a request Authenticate
// accepted with SigV4. API keys cannot sign envelopes.
func (v *Verifier) NewChunkVerifier(res *Result) (*ChunkVerifier, error) {
	if res == nil || res.Credential == nil || res.Signature == "" || res.Credential.Kind != KindSigV4 {
		return nil, bedrock.Validation("InvokeModelWithBidirectionalStream requires SigV4 authentication.")
	}
	date, rest, _ := strings.Cut(res.Scope, "/")
	region, _, _ := strings.Cut(rest, "/")
	c := &ChunkVerifier{
		v:           v,
		accessKeyID: res.Credential.ID,
		secret:      res.Credential.Secret,
		region:      region,
		dec:         eventstream.NewDecoder(),
		lastKeyDate: date,
		lastKey:     res.SigningKey,
	}
	if !decodeHex(c.prev[:], res.Signature) {
		return nil, bedrock.BadSignature("malformed seed signature")
	}
	return c, nil
}

// Next reads one envelope from r, verifies it and returns its payload (the
// encoded inner event), valid until the next call. end is true for the empty
// envelope that closes the input; after it, Next returns io.EOF.
func (c *ChunkVerifier) Next(r io.Reader) (payload []byte, end bool, err error) {
	msg, err := c.dec.Decode(r, c.msgBuf[:0])
	if err != nil {
		if errors.Is(err, io.EOF) && c.ended {
			return nil, false, io.EOF
		}
		if errors.Is(err, io.EOF) {
			return nil, false, io.ErrUnexpectedEOF
		}
		return nil, false, fmt.Errorf("decoding signed envelope: %w", err)
	}
	c.msgBuf = msg.Payload[:0]
	return c.Verify(msg)
}

// Verify checks one decoded envelope against the chain and returns its
// payload. Errors are *bedrock.Error (InvalidSignatureException).
func (c *ChunkVerifier) Verify(msg eventstream.Message) (payload []byte, end bool, err error) {
	if c.ended {
		return nil, false, bedrock.BadSignature("Event received after the end of the signed stream.")
	}
	var sig []byte
	var at time.Time
	var haveDate bool
	c.headerBuf.Reset()
	for _, h := range msg.Headers {
		switch h.Name {
		case chunkSignatureHeader:
			b, ok := h.Value.(eventstream.BytesValue)
			if !ok || sig != nil {
				return nil, false, errChunk("malformed ':chunk-signature' header")
			}
			sig = b
			continue
		case chunkDateHeader:
			t, ok := h.Value.(eventstream.TimestampValue)
			if !ok || haveDate {
				return nil, false, errChunk("malformed ':date' header")
			}
			at, haveDate = time.Time(t).UTC(), true
		}
		// Every header but the signature is covered by it, in order.
		if err := eventstream.EncodeHeaders(&c.headerBuf, eventstream.Headers{h}); err != nil {
			return nil, false, errChunk("malformed header")
		}
	}
	if len(sig) != sha256.Size || !haveDate {
		return nil, false, errChunk("envelope needs ':date' and ':chunk-signature' headers")
	}
	amzDate := at.Format(amzDateFormat)
	if err := c.v.checkSkew(amzDate, at, c.v.now()); err != nil {
		return nil, false, err
	}
	date := amzDate[:8]
	key := c.lastKey
	if date != c.lastKeyDate {
		// The stream crossed midnight: the chain continues with that day's key.
		key = c.v.keys.get(c.accessKeyID, c.secret, date, c.region, signingService)
		c.lastKey, c.lastKeyDate = key, date
	}
	headerHash := sha256.Sum256(c.headerBuf.Bytes())
	payloadHash := sha256.Sum256(msg.Payload)
	sts := append(c.sts[:0], chunkAlgorithm+"\n"...)
	sts = append(sts, amzDate...)
	sts = append(sts, '\n')
	sts = append(sts, date...)
	sts = append(sts, '/')
	sts = append(sts, c.region...)
	sts = append(sts, "/"+signingService+"/aws4_request\n"...)
	sts = hex.AppendEncode(sts, c.prev[:])
	sts = append(sts, '\n')
	sts = hex.AppendEncode(sts, headerHash[:])
	sts = append(sts, '\n')
	sts = hex.AppendEncode(sts, payloadHash[:])
	c.sts = sts
	want, _ := hmacSHA256(nil, key, sts)
	if !hmac.Equal(want[:], sig) {
		return nil, false, errSignatureMismatch()
	}
	c.prev = want
	if len(msg.Payload) == 0 {
		c.ended = true
		return nil, true, nil
	}
	return msg.Payload, false, nil
}

func errChunk(detail string) *bedrock.Error {
	return bedrock.BadSignature("Invalid signed event stream envelope: " + detail + ".")
}

// ChunkSignerOptions configure a ChunkSigner.
type ChunkSignerOptions struct {
	Credentials aws.Credentials // the upstream (hub) credentials
	Region      string          // the upstream signing region
	// Seed is the upstream request's signature, as v4.GetSignedRequestSignature
	// returns it after signing the HTTP request.
	Seed []byte
	Now  func() time.Time // default time.Now
}

// ChunkSigner wraps inner events in envelopes signed for the upstream, with
// aws-sdk-go-v2's own StreamSigner so the chain is exactly what Bedrock
// expects from an SDK. It is not safe for concurrent use.
type ChunkSigner struct {
	signer    *v4.StreamSigner
	enc       *eventstream.Encoder
	now       func() time.Time
	headerBuf bytes.Buffer
}

// NewChunkSigner returns a signer continuing the chain from opts.Seed.
func NewChunkSigner(opts ChunkSignerOptions) *ChunkSigner {
	s := &ChunkSigner{
		signer: v4.NewStreamSigner(opts.Credentials, signingService, opts.Region, opts.Seed),
		enc:    eventstream.NewEncoder(),
		now:    opts.Now,
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// WriteEnvelope signs payload (one encoded inner event; empty to end the
// input) and writes the envelope to w.
func (s *ChunkSigner) WriteEnvelope(w io.Writer, payload []byte) error {
	now := s.now().UTC()
	var msg eventstream.Message
	msg.Headers.Set(chunkDateHeader, eventstream.TimestampValue(now))
	msg.Payload = payload
	s.headerBuf.Reset()
	if err := eventstream.EncodeHeaders(&s.headerBuf, msg.Headers); err != nil {
		return fmt.Errorf("encoding envelope headers: %w", err)
	}
	sig, err := s.signer.GetSignature(context.Background(), s.headerBuf.Bytes(), payload, now)
	if err != nil {
		return fmt.Errorf("signing envelope: %w", err)
	}
	msg.Headers.Set(chunkSignatureHeader, eventstream.BytesValue(sig))
	if err := s.enc.Encode(w, msg); err != nil {
		return fmt.Errorf("writing envelope: %w", err)
	}
	return nil
}
