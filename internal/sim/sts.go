package sim

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bedrock-gateway/gateway/internal/authn"
)

// The simulator's STS stand-in answers GetCallerIdentity in the AWS Query
// protocol (form POST or query GET, XML answers), so that IAM identity tokens
// (presigned GetCallerIdentity URLs) can be minted and checked locally. It
// verifies SigV4 (service "sts") against the built-in Identities.

// Identity is a built-in IAM user or assumed-role session of the example
// organization (deploy/examples/state.yaml). Its secrets are public: they
// exist only in the simulator.
type Identity struct {
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken is set for assumed-role sessions: requests must carry it
	// (X-Amz-Security-Token), as with real temporary credentials.
	SessionToken string
	Account      string
	Arn          string
	UserID       string
}

// Identities returns the built-in identities: in each member account
// 222222222222, 333333333333 and 444444444444, one IAM user and one
// assumed-role session.
func Identities() []Identity {
	return []Identity{
		simUser("222222222222", "support-dev"), simRole("222222222222", "support-bot"),
		simUser("333333333333", "data-scientist"), simRole("333333333333", "notebooks"),
		simUser("444444444444", "campaign-manager"), simRole("444444444444", "campaigns"),
	}
}

// SimRoleSession is the session name of the built-in assumed-role sessions.
const SimRoleSession = "sim"

func simUser(account, name string) Identity {
	return Identity{
		AccessKeyID:     "AKIASIMUSER" + account[:9],
		SecretAccessKey: "sim-user-secret-" + account,
		Account:         account,
		Arn:             "arn:aws:iam::" + account + ":user/" + name,
		UserID:          "AIDASIMUSER" + account[:9],
	}
}

func simRole(account, name string) Identity {
	return Identity{
		AccessKeyID:     "ASIASIMROLE" + account[:9],
		SecretAccessKey: "sim-role-secret-" + account,
		SessionToken:    "sim-session-token-" + account,
		Account:         account,
		Arn:             "arn:aws:sts::" + account + ":assumed-role/" + name + "/" + SimRoleSession,
		UserID:          "AROASIMROLE" + account[:9] + ":" + SimRoleSession,
	}
}

const (
	stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"
	stsVersion   = "2011-06-15"
	// stsMaxBody bounds a form body: GetCallerIdentity has no parameters.
	stsMaxBody = 64 << 10
	// STS accepts a signature 15 minutes either side of its clock, and a
	// presigned request for 15 minutes whatever its X-Amz-Expires says.
	stsMaxSkew       = 15 * time.Minute
	stsMaxPresignAge = 15 * time.Minute
)

// isSTS reports whether r is for the STS stand-in: path "/" with an Action
// in the query, or a form POST to "/". Bedrock Runtime has no route at "/".
func isSTS(r *http.Request) bool {
	if rawPath(r) != "/" {
		return false
	}
	if strings.Contains(rawQuery(r), "Action=") {
		return true
	}
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	return r.Method == http.MethodPost && strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded")
}

// rawQuery is the query exactly as sent (what the signature covers).
func rawQuery(r *http.Request) string {
	if p := r.RequestURI; strings.HasPrefix(p, "/") {
		_, q, _ := strings.Cut(p, "?")
		return q
	}
	return r.URL.RawQuery
}

// stsError is an STS error answer (ErrorResponse/Error).
type stsError struct {
	status  int
	code    string
	message string
}

func (e *stsError) Error() string { return e.code + ": " + e.message }

func stsInvalidToken() *stsError {
	return &stsError{http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid."}
}

func stsSignatureMismatch(msg string) *stsError {
	return &stsError{http.StatusForbidden, "SignatureDoesNotMatch", msg}
}

// STSCalls returns how many STS requests the simulator has answered (any
// outcome): tests of callers that cache STS answers count them.
func (s *Simulator) STSCalls() int64 { return s.stsCalls.Load() }

// serveSTS answers one STS request.
func (s *Simulator) serveSTS(w http.ResponseWriter, r *http.Request) {
	s.stsCalls.Add(1)
	requestID := newRequestID()
	w.Header().Set("X-Amzn-Requestid", requestID)
	id, err := s.stsCall(w, r)
	if err != nil {
		se, ok := errors.AsType[*stsError](err)
		if !ok {
			se = &stsError{http.StatusInternalServerError, "InternalFailure", "The request processing has failed."}
		}
		s.log.Debug("sim: sts refused", "code", se.code, "msg", se.message)
		kind := "Sender"
		if se.status >= 500 {
			kind = "Receiver"
		}
		writeXML(w, se.status, stsErrorResponse{
			Xmlns: stsNamespace, Type: kind, Code: se.code, Message: se.message, RequestID: requestID,
		})
		return
	}
	s.log.Debug("sim: sts GetCallerIdentity", "arn", id.Arn)
	out := getCallerIdentityResponse{Xmlns: stsNamespace, RequestID: requestID}
	out.Result.Arn, out.Result.UserID, out.Result.Account = id.Arn, id.UserID, id.Account
	writeXML(w, http.StatusOK, out)
}

// stsCall reads and authenticates r and returns the caller.
func (s *Simulator) stsCall(w http.ResponseWriter, r *http.Request) (*Identity, error) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return nil, &stsError{http.StatusMethodNotAllowed, "InvalidAction", "STS accepts GET and POST."}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, stsMaxBody))
	if err != nil {
		return nil, &stsError{http.StatusBadRequest, "ValidationError", "The request body is too large or incomplete."}
	}
	params, err := url.ParseQuery(rawQuery(r))
	if err != nil {
		return nil, &stsError{http.StatusBadRequest, "MalformedQueryString", "The query string does not parse."}
	}
	if r.Method == http.MethodPost && len(body) > 0 {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, &stsError{http.StatusBadRequest, "MalformedQueryString", "The form body does not parse."}
		}
		for k, vs := range form {
			params[k] = append(params[k], vs...)
		}
	}
	// Authentication comes first, as on AWS: an unauthenticated caller learns
	// nothing about the actions.
	sum := sha256.Sum256(body)
	id, err := s.stsAuthenticate(r, hex.EncodeToString(sum[:]))
	if err != nil {
		return nil, err
	}
	action := params["Action"]
	switch {
	case len(action) != 1 || action[0] == "":
		return nil, &stsError{http.StatusBadRequest, "MissingAction", "Missing Action"}
	case action[0] != "GetCallerIdentity":
		return nil, &stsError{http.StatusBadRequest, "InvalidAction",
			"Could not find operation " + truncateText(action[0], 64) + " for version " + stsVersion}
	}
	if v := params["Version"]; len(v) > 1 || len(v) == 1 && v[0] != stsVersion {
		return nil, &stsError{http.StatusBadRequest, "InvalidAction",
			"Could not find operation GetCallerIdentity for version " + truncateText(strings.Join(v, ","), 32)}
	}
	return id, nil
}

// stsAuthenticate checks the SigV4 signature (header or presigned query)
// against the built-in identities.
func (s *Simulator) stsAuthenticate(r *http.Request, payloadHash string) (*Identity, error) {
	sig, err := authn.ParseSigV4(r)
	switch {
	case errors.Is(err, authn.ErrSigV4Missing):
		return nil, &stsError{http.StatusForbidden, "MissingAuthenticationToken", "Request is missing Authentication Token"}
	case err != nil:
		code := "IncompleteSignature"
		if strings.Contains(rawQuery(r), "X-Amz-") {
			code = "AuthorizationQueryParametersError"
		}
		return nil, &stsError{http.StatusBadRequest, code, err.Error()}
	}
	if sig.Service != "sts" {
		return nil, stsSignatureMismatch("Credential should be scoped to correct service: 'sts'. ")
	}
	if err := sig.CheckTime(time.Now(), stsMaxSkew, stsMaxPresignAge); err != nil {
		return nil, stsSignatureMismatch(strings.ToUpper(err.Error()[:1]) + err.Error()[1:])
	}
	id := lookupIdentity(sig.AccessKeyID)
	if id == nil {
		return nil, stsInvalidToken()
	}
	// A session's token must come with its key, and a user's key with none.
	if subtle.ConstantTimeCompare([]byte(sig.SecurityToken), []byte(id.SessionToken)) != 1 {
		return nil, stsInvalidToken()
	}
	if !sig.Verify(r, id.SecretAccessKey, payloadHash) {
		return nil, stsSignatureMismatch("The request signature we calculated does not match the signature you provided. " +
			"Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return id, nil
}

func lookupIdentity(accessKeyID string) *Identity {
	for _, id := range Identities() {
		if id.AccessKeyID == accessKeyID {
			return &id
		}
	}
	return nil
}

type getCallerIdentityResponse struct {
	XMLName xml.Name `xml:"GetCallerIdentityResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Result  struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	} `xml:"GetCallerIdentityResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

type stsErrorResponse struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	Type      string   `xml:"Error>Type"`
	Code      string   `xml:"Error>Code"`
	Message   string   `xml:"Error>Message"`
	RequestID string   `xml:"RequestId"`
}

func writeXML(w http.ResponseWriter, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, nil
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = w.Write(append([]byte(xml.Header), b...))
}

// truncateText bounds client-supplied text echoed in error messages.
func truncateText(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "?")
}
