package bedrock

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMaxOutputLookup(t *testing.T) {
	t.Parallel()
	table, err := NewMaxOutputTable(map[string]int64{
		"amazon.nova-pro-v1:0":     5000, // replaces the built-in entry
		"us.amazon.nova-lite-v1:0": 7000, // a profile's own entry wins over its base model's
		"mistral.new-model-v1":     1234, // without the ":N" version
		appProfile:                 2222,
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		table *MaxOutputTable
		model string
		want  int64 // 0: not found
	}{
		{"base model", nil, "anthropic.claude-3-5-haiku-20241022-v1:0", 8192},
		{"us profile", nil, "us.anthropic.claude-sonnet-4-20250514-v1:0", 64000},
		{"apac profile", nil, "apac.anthropic.claude-3-haiku-20240307-v1:0", 4096},
		{"global profile", nil, "global.anthropic.claude-sonnet-4-5-20250929-v1:0", 64000},
		{"context variant", nil, "anthropic.claude-3-haiku-20240307-v1:0:200k", 4096},
		{"profile context variant", nil, "us.amazon.nova-pro-v1:0:300k", 10000},
		{"FM ARN", nil, "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-lite-v1", 4096},
		{"profile ARN", nil, "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-3-7-sonnet-20250219-v1:0", 128000},
		{"titan with a version", nil, "amazon.titan-text-express-v1:0:8k", 8192},
		{"unknown", nil, "writer.palmyra-x5-v1:0", 0},
		{"app profile unknown", nil, appProfile, 0},
		{"invalid", nil, "Not A Model", 0},
		{"operator replaces", table, "amazon.nova-pro-v1:0", 5000},
		{"operator profile entry", table, "us.amazon.nova-lite-v1:0", 7000},
		{"other profile: base entry", table, "eu.amazon.nova-lite-v1:0", 10000},
		{"operator entry without version", table, "mistral.new-model-v1:0", 1234},
		{"operator ARN entry", table, appProfile, 2222},
		{"built-in kept", table, "cohere.command-r-v1:0", 4000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := tt.table.Lookup(tt.model)
			if ok != (tt.want > 0) || got != tt.want {
				t.Errorf("Lookup(%q) = %d, %v; want %d", tt.model, got, ok, tt.want)
			}
		})
	}
}

// TestBuiltinMaxOutput: every built-in key is a valid model ID and every value positive.
func TestBuiltinMaxOutput(t *testing.T) {
	t.Parallel()
	for m, n := range builtinMaxOutput {
		if _, err := ParseModelID(m); err != nil || n <= 0 {
			t.Errorf("%s: %d, %v", m, n, err)
		}
	}
	if _, err := NewMaxOutputTable(builtinMaxOutput); err != nil {
		t.Error(err)
	}
}

func TestParseMaxOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		yaml    string
		model   string
		want    int64
		wantErr []string
	}{
		{name: "entries", yaml: "amazon.nova-sonic-v1:0: 1024\n# comment\nmeta.llama3-8b-instruct-v1:0: 2_048\n", model: "amazon.nova-sonic-v1:0", want: 1024},
		{name: "underscores", yaml: "meta.llama3-8b-instruct-v1:0: 2_048\n", model: "meta.llama3-8b-instruct-v1:0", want: 2048},
		{name: "empty file", yaml: "", model: "amazon.nova-lite-v1:0", want: 10000},
		{name: "every problem", yaml: "Bad Model: 5\namazon.nova-lite-v1:0: 0\namazon.nova-pro-v1:0: -3\n",
			wantErr: []string{`"Bad Model"`, `"amazon.nova-lite-v1:0": the maximum output must be a positive`, `"amazon.nova-pro-v1:0"`}},
		{name: "not a number", yaml: "amazon.nova-lite-v1:0: lots\n", wantErr: []string{"mapping of model ID to tokens"}},
		{name: "a list", yaml: "- amazon.nova-lite-v1:0\n", wantErr: []string{"mapping of model ID to tokens"}},
		{name: "duplicate key", yaml: "amazon.nova-lite-v1:0: 1\namazon.nova-lite-v1:0: 2\n", wantErr: []string{"already defined"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			table, err := ParseMaxOutput(strings.NewReader(tt.yaml))
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatal("accepted")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := table.Lookup(tt.model); !ok || got != tt.want {
				t.Errorf("Lookup(%q) = %d, %v; want %d", tt.model, got, ok, tt.want)
			}
		})
	}
}

func TestLoadMaxOutput(t *testing.T) {
	t.Parallel()
	if table, err := LoadMaxOutput(""); err != nil || table == nil {
		t.Fatalf("no file: %v, %v", table, err)
	}
	path := filepath.Join(t.TempDir(), "max-output.yaml")
	if err := os.WriteFile(path, []byte("amazon.nova-sonic-v1:0: 1024\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	table, err := LoadMaxOutput(path)
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := table.Lookup("amazon.nova-sonic-v1:0"); !ok || n != 1024 {
		t.Errorf("Lookup = %d, %v", n, ok)
	}
	if _, err := LoadMaxOutput(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("a missing file was accepted")
	}
	if err := os.WriteFile(path, []byte("x: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadMaxOutput(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("a bad file: %v, want an error naming it", err)
	}
}
