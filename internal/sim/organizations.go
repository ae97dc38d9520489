package sim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bedrock-gateway/gateway/internal/state"
)

// The AWS Organizations stand-in: the simulator also answers the Organizations
// API (JSON 1.1: POST /, X-Amz-Target: AWSOrganizationsV20161128.<Operation>)
// from Options.Organization, so `gateway org sync` can be tried and tested
// without an AWS account. It serves the read operations a sync needs, with
// AWS's pagination (MaxResults 1 to 20, opaque NextToken) and error shapes.

// OrganizationsTargetPrefix is the X-Amz-Target prefix of Organizations calls.
const OrganizationsTargetPrefix = "AWSOrganizationsV20161128."

// Account states as Organizations reports them (Account.State).
const (
	AccountActive            = "ACTIVE"
	AccountSuspended         = "SUSPENDED"
	AccountPendingClosure    = "PENDING_CLOSURE"
	AccountClosed            = "CLOSED"
	AccountPendingActivation = "PENDING_ACTIVATION"
)

// orgMaxResults is Organizations' largest page (and the page size when the
// caller sets no MaxResults).
const orgMaxResults = 20

// orgJoined is every account's JoinedTimestamp: fixed so answers are reproducible.
var orgJoined = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// Organization is what the Organizations stand-in serves: the tree (a
// state.Organization: IDs, names, parents; Team is ignored, AWS has no such
// field) plus what only AWS knows. The hub (management) account is listed
// under the root, as AWS lists it, unless Accounts already holds it.
type Organization struct {
	state.Organization
	// HubName is the management account's name when Accounts does not hold it;
	// empty means "management".
	HubName string
	// States maps account IDs to their State (AccountActive and the other
	// Account* constants); absent means ACTIVE.
	States map[string]string
	// Tags maps a resource ID (account, OU or root) to its tags.
	Tags map[string]map[string]string
}

// OrganizationFromState is what `gateway sim --organization` serves for a
// state file's organization: every account in its state's State (ACTIVE
// unless the file says suspended or closed) and, when the state names its
// team, tagged team=<team> (the tag `gateway org sync` reads by default), so
// a sync against the simulator gives back the file's teams and states.
func OrganizationFromState(o state.Organization) *Organization {
	org := &Organization{Organization: o, Tags: map[string]map[string]string{}, States: map[string]string{}}
	for _, a := range o.Accounts {
		if a.Team != "" {
			org.Tags[a.ID] = map[string]string{"team": a.Team}
		}
		switch a.State {
		case state.AccountSuspended:
			org.States[a.ID] = AccountSuspended
		case state.AccountClosed:
			org.States[a.ID] = AccountClosed
		}
	}
	return org
}

// Check reports what would make o unservable (bad IDs, unknown parents, cycles,
// duplicates, states or tags of unknown resources): the error SetOrganization
// would return.
func (o *Organization) Check() error {
	if o == nil {
		return nil
	}
	_, err := newOrgIndex(o)
	return err
}

// orgIndex is an Organization prepared for lookups; it is immutable once built.
type orgIndex struct {
	org      *Organization
	rootID   string
	units    map[string]*state.Unit
	accounts map[string]*state.Account
	childOUs map[string][]*state.Unit    // parent ID -> OUs, in the order given
	childAcc map[string][]*state.Account // parent ID -> accounts, in the order given
	parent   map[string]string           // child ID -> parent ID
}

// newOrgIndex checks org and indexes it. nil means no organization.
func newOrgIndex(org *Organization) (*orgIndex, error) {
	if org == nil {
		return nil, nil
	}
	if !state.IsOrgID(org.ID) {
		return nil, fmt.Errorf("organization: id %q is not an organization ID", org.ID)
	}
	if !state.IsAccountID(org.HubAccount) {
		return nil, fmt.Errorf("organization: hub account %q is not an account ID", org.HubAccount)
	}
	x := &orgIndex{
		org:      org,
		rootID:   org.Root,
		units:    make(map[string]*state.Unit, len(org.Units)),
		accounts: make(map[string]*state.Account, len(org.Accounts)+1),
		childOUs: make(map[string][]*state.Unit),
		childAcc: make(map[string][]*state.Account),
		parent:   make(map[string]string, len(org.Units)+len(org.Accounts)+1),
	}
	if x.rootID == "" {
		x.rootID = "r-" + org.ID[2:6] // o- is followed by at least 10 characters
	} else if !state.IsRootID(x.rootID) {
		return nil, fmt.Errorf("organization: root %q is not a root ID", x.rootID)
	}
	norm := func(p string) string {
		if p == "" {
			return x.rootID
		}
		return p
	}
	for i := range org.Units {
		u := &org.Units[i]
		if !state.IsOUID(u.ID) {
			return nil, fmt.Errorf("organization: unit %q is not an OU ID", u.ID)
		}
		if _, dup := x.units[u.ID]; dup {
			return nil, fmt.Errorf("organization: unit %q listed twice", u.ID)
		}
		x.units[u.ID] = u
	}
	for i := range org.Units {
		u := &org.Units[i]
		p := norm(u.Parent)
		if _, ok := x.units[p]; !ok && p != x.rootID {
			return nil, fmt.Errorf("organization: unit %q: parent %q not found", u.ID, u.Parent)
		}
		x.parent[u.ID] = p
		x.childOUs[p] = append(x.childOUs[p], u)
	}
	// A cycle would make paths and walks endless.
	for id := range x.units {
		seen := 0
		for p := x.parent[id]; p != x.rootID; p = x.parent[p] {
			if seen++; seen > len(x.units) {
				return nil, fmt.Errorf("organization: unit %q is in a cycle", id)
			}
		}
	}
	accounts := org.Accounts
	if !slices.ContainsFunc(accounts, func(a state.Account) bool { return a.ID == org.HubAccount }) {
		name := org.HubName
		if name == "" {
			name = "management"
		}
		accounts = append([]state.Account{{ID: org.HubAccount, Name: name}}, accounts...)
	}
	for i := range accounts {
		a := &accounts[i]
		if !state.IsAccountID(a.ID) {
			return nil, fmt.Errorf("organization: account %q is not an account ID", a.ID)
		}
		if _, dup := x.accounts[a.ID]; dup {
			return nil, fmt.Errorf("organization: account %q listed twice", a.ID)
		}
		p := norm(a.Unit)
		if _, ok := x.units[p]; !ok && p != x.rootID {
			return nil, fmt.Errorf("organization: account %q: unit %q not found", a.ID, a.Unit)
		}
		x.accounts[a.ID] = a
		x.parent[a.ID] = p
		x.childAcc[p] = append(x.childAcc[p], a)
	}
	for id, st := range org.States {
		if _, ok := x.accounts[id]; !ok {
			return nil, fmt.Errorf("organization: state of unknown account %q", id)
		}
		switch st {
		case AccountActive, AccountSuspended, AccountPendingClosure, AccountClosed, AccountPendingActivation:
		default:
			return nil, fmt.Errorf("organization: account %q: unknown state %q", id, st)
		}
	}
	for id := range org.Tags {
		if !x.exists(id) {
			return nil, fmt.Errorf("organization: tags of unknown resource %q", id)
		}
	}
	return x, nil
}

func (x *orgIndex) exists(id string) bool {
	_, isUnit := x.units[id]
	_, isAcc := x.accounts[id]
	return isUnit || isAcc || id == x.rootID
}

func (x *orgIndex) arn(kind, id string) string {
	return "arn:aws:organizations::" + x.org.HubAccount + ":" + kind + "/" + x.org.ID + "/" + id
}

// path is "o-…/r-…/ou-…/…/id/" as Organizations' Path and Paths fields give it.
func (x *orgIndex) path(id string) string {
	var ids []string
	for p := id; p != x.rootID; p = x.parent[p] {
		ids = append(ids, p)
	}
	ids = append(ids, x.rootID, x.org.ID)
	slices.Reverse(ids)
	return strings.Join(ids, "/") + "/"
}

// Wire shapes (JSON 1.1, timestamps as epoch seconds).
type (
	orgOrganization struct {
		Arn                  string `json:"Arn"`
		AvailablePolicyTypes []any  `json:"AvailablePolicyTypes"`
		FeatureSet           string `json:"FeatureSet"`
		ID                   string `json:"Id"`
		MasterAccountArn     string `json:"MasterAccountArn"`
		MasterAccountEmail   string `json:"MasterAccountEmail"`
		MasterAccountID      string `json:"MasterAccountId"`
	}
	orgRoot struct {
		Arn         string `json:"Arn"`
		ID          string `json:"Id"`
		Name        string `json:"Name"`
		PolicyTypes []any  `json:"PolicyTypes"`
	}
	orgOU struct {
		Arn  string `json:"Arn"`
		ID   string `json:"Id"`
		Name string `json:"Name"`
		Path string `json:"Path"`
	}
	orgAccount struct {
		Arn             string   `json:"Arn"`
		Email           string   `json:"Email"`
		ID              string   `json:"Id"`
		JoinedMethod    string   `json:"JoinedMethod"`
		JoinedTimestamp int64    `json:"JoinedTimestamp"`
		Name            string   `json:"Name"`
		Paths           []string `json:"Paths"`
		State           string   `json:"State"`
		Status          string   `json:"Status"` // being retired by AWS; same value where it exists
	}
	orgTag struct {
		Key   string `json:"Key"`
		Value string `json:"Value"`
	}
	orgParent struct {
		ID   string `json:"Id"`
		Type string `json:"Type"`
	}
)

// orgRequest is the union of the inputs of the served operations.
type orgRequest struct {
	ParentID   *string `json:"ParentId"`
	ResourceID *string `json:"ResourceId"`
	AccountID  *string `json:"AccountId"`
	ChildID    *string `json:"ChildId"`
	NextToken  *string `json:"NextToken"`
	MaxResults *int    `json:"MaxResults"`
}

// orgError is an Organizations error answer.
type orgError struct {
	status int
	typ    string
	msg    string
	reason string // InvalidInputException's Reason
}

func (e *orgError) Error() string { return e.typ + ": " + e.msg }

func orgInvalid(reason, msg string) *orgError {
	return &orgError{status: http.StatusBadRequest, typ: "InvalidInputException", msg: msg, reason: reason}
}

// OrganizationsError returns an error that the Organizations stand-in answers
// with the given status, error type and message, for an
// Options.VerifyOrganizations that wants a particular refusal.
func OrganizationsError(status int, typ, msg string) error {
	return &orgError{status: status, typ: typ, msg: msg}
}

// SetOrganization replaces the organization the Organizations API serves (nil:
// AWSOrganizationsNotInUseException), so a test can move, rename, suspend or
// tag accounts between two syncs. The simulator keeps org: do not modify it
// afterwards, set a new one.
func (s *Simulator) SetOrganization(org *Organization) error {
	x, err := newOrgIndex(org)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.org, s.orgErr = x, nil
	return nil
}

// OrganizationsCalls returns how many Organizations calls of each operation
// were answered (successfully or not) since New or the last Reset.
func (s *Simulator) OrganizationsCalls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.orgCalls)
}

// isOrganizations reports whether r is an Organizations API call.
func isOrganizations(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("X-Amz-Target"), OrganizationsTargetPrefix)
}

// maxOrgBody bounds an Organizations request body: the inputs are a few IDs.
const maxOrgBody = 64 << 10

func (s *Simulator) serveOrganizations(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Amzn-Requestid", newRequestID())
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), OrganizationsTargetPrefix)
	s.mu.Lock()
	if s.orgCalls == nil {
		s.orgCalls = make(map[string]int)
	}
	s.orgCalls[op]++
	x, xErr := s.org, s.orgErr
	s.mu.Unlock()
	if xErr != nil {
		s.log.Error("sim: Options.Organization is invalid", "err", xErr)
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOrgBody))
	if err != nil {
		if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
			writeOrgJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"__type": "SerializationException", "message": "The request body is too large."})
		}
		return // or the client went away mid-body
	}
	out, err := s.orgAnswer(r, body, op, x, xErr)
	if err != nil {
		oe, ok := errors.AsType[*orgError](err)
		if !ok {
			oe = &orgError{status: http.StatusInternalServerError, typ: "ServiceException", msg: "internal error"}
		}
		s.log.Debug("sim: organizations call refused", "op", op, "err", oe)
		body := map[string]string{"__type": oe.typ, "message": oe.msg}
		if oe.reason != "" {
			body["Reason"] = oe.reason
		}
		writeOrgJSON(w, oe.status, body)
		return
	}
	writeOrgJSON(w, http.StatusOK, out)
}

func writeOrgJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"__type":"ServiceException","message":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (s *Simulator) orgAnswer(r *http.Request, body []byte, op string, x *orgIndex, xErr error) (any, error) {
	if s.opts.VerifyOrganizations != nil {
		if err := s.opts.VerifyOrganizations(r, body); err != nil {
			if oe, ok := errors.AsType[*orgError](err); ok {
				return nil, oe
			}
			return nil, &orgError{status: http.StatusBadRequest, typ: "InvalidSignatureException",
				msg: "The request signature we calculated does not match the signature you provided."}
		}
	}
	if fault, err := s.orgFault(r); err != nil || fault != "" {
		if err != nil {
			return nil, err
		}
		if fault == FaultReset {
			panic(http.ErrAbortHandler) // the connection is dropped without a response
		}
		return nil, orgFaultError(fault)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		return nil, &orgError{status: http.StatusBadRequest, typ: "SerializationException", msg: "Content-Type must be application/x-amz-json-1.1."}
	}
	var in orgRequest
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, &orgError{status: http.StatusBadRequest, typ: "SerializationException", msg: "The request body is not a valid JSON object."}
		}
	}
	handler, ok := orgOps[op]
	if !ok {
		return nil, &orgError{status: http.StatusBadRequest, typ: "UnknownOperationException", msg: "The simulator does not serve " + strconv.Quote(op) + "."}
	}
	if xErr != nil {
		return nil, &orgError{status: http.StatusInternalServerError, typ: "ServiceException", msg: "The simulator's organization is invalid: " + xErr.Error()}
	}
	if x == nil {
		return nil, &orgError{status: http.StatusBadRequest, typ: "AWSOrganizationsNotInUseException",
			msg: "Your account is not a member of an organization."}
	}
	return handler(x, &in)
}

// orgFault is the fault to inject into an Organizations call: X-Sim-Fault, or
// Options.Fault at Options.FaultRate, as for Bedrock calls.
func (s *Simulator) orgFault(r *http.Request) (string, error) {
	if v := r.Header.Get(HeaderFault); v != "" {
		if !ValidFault(v) {
			return "", orgInvalid("INVALID_ENUM", HeaderFault+" must be one of "+strings.Join(Faults(), ", ")+".")
		}
		return v, nil
	}
	if s.opts.FaultRate > 0 && s.roll() < s.opts.FaultRate {
		if !ValidFault(s.opts.Fault) {
			return FaultInternal, nil
		}
		return s.opts.Fault, nil
	}
	return "", nil
}

// orgFaultError is how Organizations answers a fault: throttling is its
// TooManyRequestsException (which the SDKs retry), the rest ServiceException.
func orgFaultError(fault string) *orgError {
	switch fault {
	case FaultThrottle:
		return &orgError{status: http.StatusBadRequest, typ: "TooManyRequestsException",
			msg: "You have sent too many requests in too short a period of time. The quota helps protect against denial-of-service attacks. Try again later."}
	case FaultUnavailable:
		return &orgError{status: http.StatusServiceUnavailable, typ: "ServiceException", msg: "AWS Organizations can't complete your request because of an internal service error. Try again later."}
	}
	return &orgError{status: http.StatusInternalServerError, typ: "ServiceException", msg: "AWS Organizations can't complete your request because of an internal service error. Try again later."}
}

var orgOps = map[string]func(*orgIndex, *orgRequest) (any, error){
	"DescribeOrganization":             describeOrganization,
	"ListRoots":                        listRoots,
	"ListOrganizationalUnitsForParent": listOUsForParent,
	"ListAccountsForParent":            listAccountsForParent,
	"ListTagsForResource":              listTagsForResource,
	"DescribeAccount":                  describeAccount,
	"ListParents":                      listParents,
}

func describeOrganization(x *orgIndex, _ *orgRequest) (any, error) {
	hub := x.org.HubAccount
	return map[string]any{"Organization": orgOrganization{
		Arn:                  "arn:aws:organizations::" + hub + ":organization/" + x.org.ID,
		AvailablePolicyTypes: []any{},
		FeatureSet:           "ALL",
		ID:                   x.org.ID,
		MasterAccountArn:     x.arn("account", hub),
		MasterAccountEmail:   accountEmail(hub),
		MasterAccountID:      hub,
	}}, nil
}

func listRoots(x *orgIndex, in *orgRequest) (any, error) {
	roots := []orgRoot{{Arn: x.arn("root", x.rootID), ID: x.rootID, Name: "Root", PolicyTypes: []any{}}}
	page, next, err := paginate(roots, "roots", in)
	if err != nil {
		return nil, err
	}
	return pageOut("Roots", page, next), nil
}

func (x *orgIndex) parentOf(in *orgRequest) (string, error) {
	if in.ParentID == nil || *in.ParentID == "" {
		return "", orgInvalid("INPUT_REQUIRED", "You must specify a value for ParentId.")
	}
	p := *in.ParentID
	if !state.IsRootID(p) && !state.IsOUID(p) {
		return "", orgInvalid("INVALID_PATTERN", "ParentId "+strconv.Quote(p)+" is not a root or OU ID.")
	}
	if _, ok := x.units[p]; !ok && p != x.rootID {
		return "", &orgError{status: http.StatusBadRequest, typ: "ParentNotFoundException", msg: "We can't find a root or OU with the ParentId that you specified."}
	}
	return p, nil
}

func listOUsForParent(x *orgIndex, in *orgRequest) (any, error) {
	p, err := x.parentOf(in)
	if err != nil {
		return nil, err
	}
	page, next, err := paginate(x.childOUs[p], "ous/"+p, in)
	if err != nil {
		return nil, err
	}
	out := make([]orgOU, len(page))
	for i, u := range page {
		out[i] = orgOU{Arn: x.arn("ou", u.ID), ID: u.ID, Name: u.Name, Path: x.path(u.ID)}
	}
	return pageOut("OrganizationalUnits", out, next), nil
}

func listAccountsForParent(x *orgIndex, in *orgRequest) (any, error) {
	p, err := x.parentOf(in)
	if err != nil {
		return nil, err
	}
	page, next, err := paginate(x.childAcc[p], "accounts/"+p, in)
	if err != nil {
		return nil, err
	}
	out := make([]orgAccount, len(page))
	for i, a := range page {
		out[i] = x.account(a)
	}
	return pageOut("Accounts", out, next), nil
}

func (x *orgIndex) account(a *state.Account) orgAccount {
	st := x.org.States[a.ID]
	if st == "" {
		st = AccountActive
	}
	status := st
	if st == AccountClosed || st == AccountPendingActivation {
		status = AccountSuspended // the retiring Status field has no such values
	}
	method := "INVITED"
	if a.ID == x.org.HubAccount {
		method = "CREATED"
	}
	return orgAccount{
		Arn: x.arn("account", a.ID), Email: accountEmail(a.ID), ID: a.ID,
		JoinedMethod: method, JoinedTimestamp: orgJoined.Unix(), Name: a.Name,
		Paths: []string{x.path(a.ID)}, State: st, Status: status,
	}
}

func accountEmail(id string) string { return "aws+" + id + "@example.com" }

func (x *orgIndex) accountOf(id *string, name string) (*state.Account, error) {
	if id == nil || *id == "" {
		return nil, orgInvalid("INPUT_REQUIRED", "You must specify a value for "+name+".")
	}
	if !state.IsAccountID(*id) {
		return nil, orgInvalid("INVALID_PATTERN", name+" "+strconv.Quote(*id)+" is not an account ID.")
	}
	a, ok := x.accounts[*id]
	if !ok {
		return nil, &orgError{status: http.StatusBadRequest, typ: "AccountNotFoundException", msg: "We can't find an AWS account with the AccountId that you specified."}
	}
	return a, nil
}

func describeAccount(x *orgIndex, in *orgRequest) (any, error) {
	a, err := x.accountOf(in.AccountID, "AccountId")
	if err != nil {
		return nil, err
	}
	return map[string]any{"Account": x.account(a)}, nil
}

func listParents(x *orgIndex, in *orgRequest) (any, error) {
	if in.ChildID == nil || *in.ChildID == "" {
		return nil, orgInvalid("INPUT_REQUIRED", "You must specify a value for ChildId.")
	}
	c := *in.ChildID
	if !state.IsAccountID(c) && !state.IsOUID(c) {
		return nil, orgInvalid("INVALID_PATTERN", "ChildId "+strconv.Quote(c)+" is not an account or OU ID.")
	}
	p, ok := x.parent[c]
	if !ok {
		return nil, &orgError{status: http.StatusBadRequest, typ: "ChildNotFoundException", msg: "We can't find an organizational unit (OU) or AWS account with the ChildId that you specified."}
	}
	typ := "ORGANIZATIONAL_UNIT"
	if p == x.rootID {
		typ = "ROOT"
	}
	page, next, err := paginate([]orgParent{{ID: p, Type: typ}}, "parents/"+c, in)
	if err != nil {
		return nil, err
	}
	return pageOut("Parents", page, next), nil
}

func listTagsForResource(x *orgIndex, in *orgRequest) (any, error) {
	if in.ResourceID == nil || *in.ResourceID == "" {
		return nil, orgInvalid("INPUT_REQUIRED", "You must specify a value for ResourceId.")
	}
	id := *in.ResourceID
	if !state.IsAccountID(id) && !state.IsOUID(id) && !state.IsRootID(id) {
		return nil, orgInvalid("INVALID_PATTERN_TARGET_ID", "ResourceId "+strconv.Quote(id)+" is not an account, OU or root ID.")
	}
	if !x.exists(id) {
		return nil, &orgError{status: http.StatusBadRequest, typ: "TargetNotFoundException", msg: "We can't find a root, OU, account, or policy with the TargetId that you specified."}
	}
	tags := x.org.Tags[id]
	keys := slices.Sorted(maps.Keys(tags))
	all := make([]orgTag, len(keys))
	for i, k := range keys {
		all[i] = orgTag{Key: k, Value: tags[k]}
	}
	// ListTagsForResource takes no MaxResults; AWS pages tags all the same.
	page, next, err := paginate(all, "tags/"+id, &orgRequest{NextToken: in.NextToken})
	if err != nil {
		return nil, err
	}
	return pageOut("Tags", page, next), nil
}

// paginate returns the page of items that in's NextToken and MaxResults ask
// for and the token of the next page ("" after the last). A token names the
// listing it belongs to (scope) so it cannot be replayed against another.
func paginate[T any](items []T, scope string, in *orgRequest) ([]T, string, error) {
	size := orgMaxResults
	if in.MaxResults != nil {
		switch n := *in.MaxResults; {
		case n < 1:
			return nil, "", orgInvalid("MIN_VALUE_EXCEEDED", "MaxResults must be at least 1.")
		case n > orgMaxResults:
			return nil, "", orgInvalid("MAX_VALUE_EXCEEDED", "MaxResults must be at most "+strconv.Itoa(orgMaxResults)+".")
		default:
			size = n
		}
	}
	start := 0
	if in.NextToken != nil {
		var err error
		if start, err = decodeOrgToken(*in.NextToken, scope); err != nil {
			return nil, "", orgInvalid("INVALID_NEXT_TOKEN", "The NextToken is not valid for this request.")
		}
	}
	start = min(start, len(items)) // the organization may have shrunk between pages
	end := min(start+size, len(items))
	next := ""
	if end < len(items) {
		next = encodeOrgToken(scope, end)
	}
	return items[start:end], next, nil
}

func encodeOrgToken(scope string, offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(scope + "\n" + strconv.Itoa(offset)))
}

func decodeOrgToken(tok, scope string) (int, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, fmt.Errorf("decoding token: %w", err)
	}
	sc, off, ok := strings.Cut(string(b), "\n")
	if !ok || sc != scope {
		return 0, errors.New("token of another listing")
	}
	n, err := strconv.Atoi(off)
	if err != nil || n < 1 {
		return 0, errors.New("bad token offset")
	}
	return n, nil
}

func pageOut[T any](key string, page []T, next string) map[string]any {
	out := map[string]any{key: page}
	if next != "" {
		out["NextToken"] = next
	}
	return out
}
