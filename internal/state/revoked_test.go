package state

import (
	"reflect"
	"strings"
	"testing"
)

var (
	hashA = strings.Repeat("ab", 32) // validState's API key
	hashB = strings.Repeat("cd", 32)
)

const akidB = "GWTEST00000000000002"

func TestCarry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		prev      *State
		mutate    func(next *State) // next starts as a copy of prev
		want      Revoked
		wantAdded int // tombstones next gains
	}{
		{"nothing removed", validState(), func(*State) {}, Revoked{}, 0},
		{"sigv4 removed", validState(), func(s *State) { s.Credentials = s.Credentials[1:] },
			Revoked{AccessKeyIDs: []string{"GWTEST00000000000001"}}, 1},
		{"api key removed", validState(), func(s *State) { s.Credentials = s.Credentials[:1] },
			Revoked{APIKeySHA256: []string{hashA}}, 1},
		{"every credential removed", validState(), func(s *State) { s.Credentials = nil },
			Revoked{AccessKeyIDs: []string{"GWTEST00000000000001"}, APIKeySHA256: []string{hashA}}, 2},
		{"api key replaced in place", validState(), func(s *State) { s.Credentials[1].KeySHA256 = hashB },
			Revoked{APIKeySHA256: []string{hashA}}, 1},
		{"sigv4 secret changed: the key stays", validState(), func(s *State) { s.Credentials[0].Secret = "fedcba9876543210" },
			Revoked{}, 0},
		{"credential renamed, same key", validState(), func(s *State) { s.Credentials[0].ID = "renamed" }, Revoked{}, 0},
		{"tombstones cannot be dropped", func() *State {
			s := validState()
			s.Revoked = Revoked{AccessKeyIDs: []string{akidB}, APIKeySHA256: []string{strings.ToUpper(hashB)}}
			return s
		}(), func(s *State) { s.Revoked = Revoked{} },
			Revoked{AccessKeyIDs: []string{akidB}, APIKeySHA256: []string{hashB}}, 2},
		{"tombstones are a union", func() *State {
			s := validState()
			s.Revoked = Revoked{AccessKeyIDs: []string{akidB}}
			return s
		}(), func(s *State) { s.Revoked = Revoked{AccessKeyIDs: []string{"GWTEST00000000000009", akidB}} },
			Revoked{AccessKeyIDs: []string{akidB, "GWTEST00000000000009"}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			next := tt.prev.Clone()
			tt.mutate(next)
			added := next.Carry(tt.prev)
			if !reflect.DeepEqual(next.Revoked, tt.want) {
				t.Errorf("revoked = %+v, want %+v", next.Revoked, tt.want)
			}
			if added != tt.wantAdded {
				t.Errorf("added %d, want %d", added, tt.wantAdded)
			}
			if again := next.Carry(tt.prev); again != 0 {
				t.Errorf("a second Carry added %d", again)
			}
		})
	}
}

func TestValidateRevoked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*State)
		want   []string // substrings of the error; none = valid
		never  string   // must not appear in the error
	}{
		{"unrelated tombstones", func(s *State) {
			s.Revoked = Revoked{AccessKeyIDs: []string{akidB}, APIKeySHA256: []string{hashB}}
		}, nil, ""},
		{"only tombstones", func(s *State) {
			*s = State{Revoked: Revoked{AccessKeyIDs: []string{akidB}}}
		}, nil, ""},
		{"revoked access key", func(s *State) { s.Revoked.AccessKeyIDs = []string{"GWTEST00000000000001"} },
			[]string{"credentials[0] (GWTEST00000000000001): access key GWTEST00000000000001 was revoked", "issue a new key"}, "0123456789abcdef"},
		{"revoked API key, any case", func(s *State) { s.Revoked.APIKeySHA256 = []string{strings.ToUpper(hashA)} },
			[]string{`credentials[1] (key-abababababababab): API key "notebook" (key_sha256 abababababababab…) was revoked`}, hashA},
		{"bad tombstones", func(s *State) {
			*s = State{Revoked: Revoked{AccessKeyIDs: []string{"AKIAEXAMPLE"}, APIKeySHA256: []string{"xyz"}}}
		}, []string{`revoked.access_key_ids[0]: "AKIAEXAMPLE" is not an access key ID`, "revoked.api_key_sha256[0]: must be 64 hex digits"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := validState()
			tt.mutate(s)
			s.Normalize()
			err := s.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tt.never != "" && strings.Contains(err.Error(), tt.never) {
				t.Errorf("error %q reveals %q", err, tt.never)
			}
		})
	}
}

func TestRevokedNormalizeDiffAndRoundTrip(t *testing.T) {
	t.Parallel()
	s := validState()
	s.Revoked = Revoked{AccessKeyIDs: []string{"GWTEST00000000000009", akidB, akidB}, APIKeySHA256: []string{strings.ToUpper(hashB)}}
	s.Normalize()
	want := Revoked{AccessKeyIDs: []string{akidB, "GWTEST00000000000009"}, APIKeySHA256: []string{hashB}}
	if !reflect.DeepEqual(s.Revoked, want) {
		t.Fatalf("normalized %+v, want %+v", s.Revoked, want)
	}

	old := validState()
	old.Normalize()
	got := Diff(old, s)
	wantChanges := []Change{
		{KindRevoked, OpCreate, akidB, "access key"},
		{KindRevoked, OpCreate, "GWTEST00000000000009", "access key"},
		{KindRevoked, OpCreate, "sha256:" + hashB, "API key"},
	}
	if !reflect.DeepEqual(got, wantChanges) {
		t.Errorf("Diff = %v, want %v", got, wantChanges)
	}
	if d := Diff(s, s.Clone()); d != nil {
		t.Errorf("Diff of equal states = %v", d)
	}

	out, err := Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(back.Revoked, s.Revoked) {
		t.Errorf("round trip: %+v\n%s", back.Revoked, out)
	}
	// A state without tombstones keeps its old form.
	out, err = Marshal(validState())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "revoked") {
		t.Errorf("an empty Revoked is written:\n%s", out)
	}
	// The clone does not share the lists.
	c := s.Clone()
	c.Revoked.AccessKeyIDs[0] = "x"
	if s.Revoked.AccessKeyIDs[0] != akidB {
		t.Error("Clone shares Revoked")
	}
}
