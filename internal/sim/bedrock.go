package sim

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bedrock-gateway/gateway/internal/bedrock"
)

// The Bedrock control plane's application inference profiles (REST-JSON,
// signing name bedrock, the paths of aws-sdk-go-v2/service/bedrock):
//
//	POST   /inference-profiles                 CreateInferenceProfile
//	GET    /inference-profiles                 ListInferenceProfiles (?type=APPLICATION&maxResults&nextToken)
//	GET    /inference-profiles/{id or ARN}     GetInferenceProfile
//	DELETE /inference-profiles/{id or ARN}     DeleteInferenceProfile
//	POST   /tagResource, /untagResource, /listTagsForResource
//
// A profile is invocable through the runtime routes with its ARN or ID as the
// model label, answering as the model it copies; usage is counted per model ID
// as the caller named it (ModelUsage).

// HubAccount is the account the simulator's resources belong to (the
// example organization's hub).
const HubAccount = "111111111111"

// DefaultProfilePageSize is how many profiles ListInferenceProfiles returns
// per page when the request names no maxResults (small, so that paging is
// exercised).
const DefaultProfilePageSize = 10

// Profile is an application inference profile as the simulator holds it.
type Profile struct {
	ID, ARN, Name, Description string
	// Source is the copyFrom ARN it was created from; Model is the foundation
	// model ID it answers as.
	Source, Model        string
	Tags                 map[string]string
	CreatedAt, UpdatedAt time.Time
}

// profileStore holds the control plane's profiles; guarded by Simulator.mu.
type profileStore struct {
	byID map[string]*Profile
}

// Profiles returns the application inference profiles, sorted by ID.
func (s *Simulator) Profiles() []Profile {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Profile, 0, len(s.profiles.byID))
	for _, p := range s.profiles.byID {
		c := *p
		c.Tags = cloneTags(p.Tags)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Profile) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func cloneTags(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// isControlPlane reports whether r is one of the control-plane operations
// above (the runtime's paths all start with /model, /async-invoke,
// /guardrail or /foundation-models, so nothing collides).
func isControlPlane(r *http.Request) bool {
	p := rawPath(r)
	switch p {
	case "/inference-profiles", "/tagResource", "/untagResource", "/listTagsForResource":
		return true
	}
	return strings.HasPrefix(p, "/inference-profiles/")
}

// maxControlBody bounds a control-plane request body: a name, a description,
// an ARN and up to 200 tags.
const maxControlBody = 256 << 10

func (s *Simulator) serveControlPlane(w http.ResponseWriter, r *http.Request) {
	c := &cpCall{s: s, w: w, r: r, requestID: newRequestID()}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxControlBody))
	if err != nil {
		c.fail(bedrock.Validation("The request body is too large."))
		return
	}
	if s.opts.Verify != nil {
		// The control plane signs for service bedrock, as the runtime does.
		if err := s.opts.Verify(r, body); err != nil {
			be, ok := errors.AsType[*bedrock.Error](err)
			if !ok {
				be = bedrock.BadSignature("The request signature we calculated does not match the signature you provided.")
			}
			c.fail(be)
			return
		}
	}
	if ctl, be := s.controls(r); be != nil {
		c.fail(be)
		return
	} else if f := ctl.fault; f != "" && f != FaultMidstream && f != FaultReset {
		c.fail(faultError(f))
		return
	}
	c.body = body
	c.region = regionOf(r.Header.Get("Authorization"))
	p := rawPath(r)
	switch {
	case p == "/inference-profiles" && r.Method == http.MethodPost:
		c.create()
	case p == "/inference-profiles" && r.Method == http.MethodGet:
		c.list()
	case strings.HasPrefix(p, "/inference-profiles/") && (r.Method == http.MethodGet || r.Method == http.MethodDelete):
		id, err := url.PathUnescape(strings.TrimPrefix(p, "/inference-profiles/"))
		if err != nil || id == "" {
			c.fail(bedrock.Validation("The inference profile identifier is malformed."))
			return
		}
		if r.Method == http.MethodGet {
			c.get(id)
		} else {
			c.delete(id)
		}
	case p == "/tagResource" && r.Method == http.MethodPost:
		c.tag()
	case p == "/untagResource" && r.Method == http.MethodPost:
		c.untag()
	case p == "/listTagsForResource" && r.Method == http.MethodPost:
		c.listTags()
	default:
		c.fail(&bedrock.Error{Type: "UnknownOperationException", Status: http.StatusNotFound, Message: "The simulator does not implement this operation."})
	}
}

type cpCall struct {
	s         *Simulator
	w         http.ResponseWriter
	r         *http.Request
	requestID string
	body      []byte
	region    string
}

func (c *cpCall) fail(e *bedrock.Error) { bedrock.WriteError(c.w, c.requestID, e) }

func (c *cpCall) ok(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		c.fail(bedrock.Internal("The simulator could not encode its response."))
		return
	}
	h := c.w.Header()
	h.Set("X-Amzn-Requestid", c.requestID)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	c.w.WriteHeader(http.StatusOK)
	_, _ = c.w.Write(b)
}

// decode reads the JSON body into v, refusing what is not one object.
func (c *cpCall) decode(v any) bool {
	if err := json.Unmarshal(c.body, v); err != nil {
		c.fail(bedrock.Validation("Malformed input request, please reformat your input and try again."))
		return false
	}
	return true
}

func conflict(msg string) *bedrock.Error {
	return &bedrock.Error{Type: "ConflictException", Status: http.StatusBadRequest, Message: msg}
}

func tooManyTags() *bedrock.Error {
	return &bedrock.Error{Type: "TooManyTagsException", Status: http.StatusBadRequest, Message: "The number of tags exceeds the limit of 200."}
}

// Constraints of the Bedrock API on names, tags and ARNs.
var (
	profileNameRE = regexp.MustCompile(`^([0-9a-zA-Z:.][ _-]?)+$`)
	tagRE         = regexp.MustCompile(`^[a-zA-Z0-9\s._:/=+@-]*$`)
	// copyFromRE: a foundation model or a system-defined (cross-region)
	// inference profile, the sources an application profile may copy.
	copyFromRE = regexp.MustCompile(`^arn:aws(-[a-z-]+)?:bedrock:[a-z0-9-]+:(\d{12})?:(foundation-model|inference-profile)/[a-zA-Z0-9.:_-]+$`)
)

const maxTags = 200

type wireTag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func checkTags(tags []wireTag) *bedrock.Error {
	if len(tags) > maxTags {
		return tooManyTags()
	}
	for _, t := range tags {
		if len(t.Key) < 1 || len(t.Key) > 128 || !tagRE.MatchString(t.Key) || len(t.Value) > 256 || !tagRE.MatchString(t.Value) {
			return bedrock.Validation("1 validation error detected: Value at 'tags' failed to satisfy constraint: tag keys are 1-128 and values 0-256 characters of [a-zA-Z0-9 ._:/=+@-].")
		}
	}
	return nil
}

// wireProfile is GetInferenceProfile's answer and a list summary.
type wireProfile struct {
	InferenceProfileArn  string         `json:"inferenceProfileArn"`
	InferenceProfileID   string         `json:"inferenceProfileId"`
	InferenceProfileName string         `json:"inferenceProfileName"`
	Description          string         `json:"description,omitempty"`
	Models               []wireModelArn `json:"models"`
	Status               string         `json:"status"`
	Type                 string         `json:"type"`
	CreatedAt            string         `json:"createdAt"`
	UpdatedAt            string         `json:"updatedAt"`
}

type wireModelArn struct {
	ModelArn string `json:"modelArn"`
}

func (c *cpCall) wire(p *Profile) wireProfile {
	region := regionOfARN(p.ARN)
	return wireProfile{
		InferenceProfileArn: p.ARN, InferenceProfileID: p.ID, InferenceProfileName: p.Name, Description: p.Description,
		Models: []wireModelArn{{ModelArn: "arn:aws:bedrock:" + region + "::foundation-model/" + p.Model}},
		Status: "ACTIVE", Type: "APPLICATION",
		CreatedAt: p.CreatedAt.UTC().Format(time.RFC3339Nano), UpdatedAt: p.UpdatedAt.UTC().Format(time.RFC3339Nano),
	}
}

func regionOfARN(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return "us-east-1"
	}
	return parts[3]
}

func (c *cpCall) create() {
	var in struct {
		InferenceProfileName string `json:"inferenceProfileName"`
		Description          string `json:"description"`
		ModelSource          struct {
			CopyFrom string `json:"copyFrom"`
		} `json:"modelSource"`
		Tags []wireTag `json:"tags"`
	}
	if !c.decode(&in) {
		return
	}
	switch {
	case len(in.InferenceProfileName) < 1 || len(in.InferenceProfileName) > 64 || !profileNameRE.MatchString(in.InferenceProfileName):
		c.fail(bedrock.Validation("1 validation error detected: Value at 'inferenceProfileName' failed to satisfy constraint: Member must satisfy regular expression pattern: ([0-9a-zA-Z:.][ _-]?)+"))
		return
	case len(in.Description) > 200:
		c.fail(bedrock.Validation("1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 200"))
		return
	case !copyFromRE.MatchString(in.ModelSource.CopyFrom):
		c.fail(bedrock.Validation("The provided model source is invalid: copyFrom must be the ARN of a foundation model or of a system-defined inference profile."))
		return
	}
	if be := checkTags(in.Tags); be != nil {
		c.fail(be)
		return
	}
	model := in.ModelSource.CopyFrom[strings.LastIndexByte(in.ModelSource.CopyFrom, '/')+1:]
	if i := strings.IndexByte(model, '.'); i > 0 && crossRegionGeo(model[:i]) {
		model = model[i+1:] // a system profile answers as its base model
	}
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.profiles.byID {
		if p.Name == in.InferenceProfileName {
			c.fail(conflict("An inference profile with the name " + in.InferenceProfileName + " already exists."))
			return
		}
	}
	id := profileID()
	now := time.Now().UTC()
	p := &Profile{
		ID: id, ARN: "arn:aws:bedrock:" + c.region + ":" + HubAccount + ":application-inference-profile/" + id,
		Name: in.InferenceProfileName, Description: in.Description, Source: in.ModelSource.CopyFrom, Model: model,
		Tags: map[string]string{}, CreatedAt: now, UpdatedAt: now,
	}
	for _, t := range in.Tags {
		p.Tags[t.Key] = t.Value
	}
	if s.profiles.byID == nil {
		s.profiles.byID = map[string]*Profile{}
	}
	s.profiles.byID[id] = p
	c.ok(map[string]string{"inferenceProfileArn": p.ARN, "status": "ACTIVE"})
}

// crossRegionGeo reports whether g is the geography prefix of a cross-region
// (system-defined) inference profile ID.
func crossRegionGeo(g string) bool {
	switch g {
	case "us", "eu", "apac", "us-gov", "jp", "au", "global", "ca":
		return true
	}
	return false
}

// profileID is 12 lowercase letters and digits, as Bedrock's are.
func profileID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b [12]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}

// lookupProfile finds a profile by ID or ARN; s.mu must be held.
func (s *Simulator) lookupProfile(idOrARN string) *Profile {
	if p := s.profiles.byID[idOrARN]; p != nil {
		return p
	}
	if i := strings.LastIndex(idOrARN, ":application-inference-profile/"); i >= 0 && strings.HasPrefix(idOrARN, "arn:") {
		if p := s.profiles.byID[idOrARN[i+len(":application-inference-profile/"):]]; p != nil && p.ARN == idOrARN {
			return p
		}
	}
	return nil
}

func notFound(id string) *bedrock.Error {
	return bedrock.NotFound("The inference profile " + id + " was not found.")
}

func (c *cpCall) get(id string) {
	c.s.mu.Lock()
	p := c.s.lookupProfile(id)
	var out wireProfile
	if p != nil {
		out = c.wire(p)
	}
	c.s.mu.Unlock()
	if p == nil {
		c.fail(notFound(id))
		return
	}
	c.ok(out)
}

func (c *cpCall) delete(id string) {
	c.s.mu.Lock()
	p := c.s.lookupProfile(id)
	if p != nil {
		delete(c.s.profiles.byID, p.ID)
	}
	c.s.mu.Unlock()
	if p == nil {
		c.fail(notFound(id))
		return
	}
	c.ok(struct{}{})
}

func (c *cpCall) list() {
	q := c.r.URL.Query()
	size := DefaultProfilePageSize
	if v := q.Get("maxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			c.fail(bedrock.Validation("1 validation error detected: Value at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 1000"))
			return
		}
		size = n
	}
	switch q.Get("type") {
	case "", "APPLICATION":
	case "SYSTEM_DEFINED":
		c.ok(map[string]any{"inferenceProfileSummaries": []wireProfile{}}) // the simulator defines none
		return
	default:
		c.fail(bedrock.Validation("1 validation error detected: Value at 'typeEquals' failed to satisfy constraint: Member must satisfy enum value set: [SYSTEM_DEFINED, APPLICATION]"))
		return
	}
	after := q.Get("nextToken") // the ID the next page starts after
	c.s.mu.Lock()
	ids := make([]string, 0, len(c.s.profiles.byID))
	for id, p := range c.s.profiles.byID {
		if id > after && regionOfARN(p.ARN) == c.region { // profiles are regional
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	out := map[string]any{}
	page := make([]wireProfile, 0, min(size, len(ids)))
	for _, id := range ids[:min(size, len(ids))] {
		page = append(page, c.wire(c.s.profiles.byID[id]))
	}
	if len(ids) > size {
		out["nextToken"] = ids[size-1]
	}
	c.s.mu.Unlock()
	out["inferenceProfileSummaries"] = page
	c.ok(out)
}

// taggedProfile finds the profile a tagging call names by ARN; s.mu must be held.
func (c *cpCall) taggedProfile(arn string) *Profile {
	if !strings.HasPrefix(arn, "arn:") {
		return nil
	}
	return c.s.lookupProfile(arn)
}

func (c *cpCall) tag() {
	var in struct {
		ResourceARN string    `json:"resourceARN"`
		Tags        []wireTag `json:"tags"`
	}
	if !c.decode(&in) {
		return
	}
	if be := checkTags(in.Tags); be != nil {
		c.fail(be)
		return
	}
	c.s.mu.Lock()
	p := c.taggedProfile(in.ResourceARN)
	var be *bedrock.Error
	switch {
	case p == nil:
		be = notFound(in.ResourceARN)
	default:
		next := cloneTags(p.Tags)
		for _, t := range in.Tags {
			next[t.Key] = t.Value
		}
		if len(next) > maxTags {
			be = tooManyTags()
		} else {
			p.Tags, p.UpdatedAt = next, time.Now().UTC()
		}
	}
	c.s.mu.Unlock()
	if be != nil {
		c.fail(be)
		return
	}
	c.ok(struct{}{})
}

func (c *cpCall) untag() {
	var in struct {
		ResourceARN string   `json:"resourceARN"`
		TagKeys     []string `json:"tagKeys"`
	}
	if !c.decode(&in) {
		return
	}
	c.s.mu.Lock()
	p := c.taggedProfile(in.ResourceARN)
	if p != nil {
		for _, k := range in.TagKeys {
			delete(p.Tags, k)
		}
		p.UpdatedAt = time.Now().UTC()
	}
	c.s.mu.Unlock()
	if p == nil {
		c.fail(notFound(in.ResourceARN))
		return
	}
	c.ok(struct{}{})
}

func (c *cpCall) listTags() {
	var in struct {
		ResourceARN string `json:"resourceARN"`
	}
	if !c.decode(&in) {
		return
	}
	c.s.mu.Lock()
	p := c.taggedProfile(in.ResourceARN)
	var tags []wireTag
	if p != nil {
		for k, v := range p.Tags {
			tags = append(tags, wireTag{k, v})
		}
	}
	c.s.mu.Unlock()
	if p == nil {
		c.fail(notFound(in.ResourceARN))
		return
	}
	slices.SortFunc(tags, func(a, b wireTag) int { return strings.Compare(a.Key, b.Key) })
	c.ok(map[string]any{"tags": append([]wireTag{}, tags...)})
}

// resolveProfile maps a runtime call's model label to the model it answers
// as: an application inference profile's ARN or ID gives the model it
// copies; anything else is returned as is (an application profile the
// simulator did not create answers as the body's model family, as before
// the control plane existed).
func (s *Simulator) resolveProfile(modelID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.lookupProfile(modelID); p != nil {
		return p.Model
	}
	return modelID
}
