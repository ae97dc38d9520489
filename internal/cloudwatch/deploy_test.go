package cloudwatch

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The AWS/Bedrock metrics the shipped dashboard may read: those the
// simulator serves and reconcile compares.
var bedrockMetrics = []string{"Invocations", "InputTokenCount", "OutputTokenCount"}

var searchPattern = regexp.MustCompile(`^SEARCH\('\{([^}]*)\} (.*)', '(Sum|Average|Minimum|Maximum|SampleCount)', (\d+)\)$`)
var metricNamePattern = regexp.MustCompile(`MetricName="([^"]+)"`)

// checkMetric fails unless (namespace, name, dimensions) is something the
// publisher emits (or, for AWS/Bedrock, Bedrock's own per-ModelId counts).
func checkMetric(t *testing.T, where, namespace, name string, dims []string) {
	t.Helper()
	switch namespace {
	case "AWS/Bedrock":
		if !slices.Contains(bedrockMetrics, name) || !slices.Equal(dims, []string{BedrockModelID}) {
			t.Errorf("%s: AWS/Bedrock %s by %v is not a metric reconcile reads", where, name, dims)
		}
	case "BedrockGateway", "${Namespace}":
		if !slices.Contains(MetricNames(), name) {
			t.Errorf("%s: metric %q is not one the publisher emits (%v)", where, name, MetricNames())
		}
		sorted := slices.Sorted(slices.Values(dims))
		ok := slices.ContainsFunc(DimensionSets(true), func(set []string) bool {
			return slices.Equal(slices.Sorted(slices.Values(set)), sorted)
		})
		if !ok {
			t.Errorf("%s: dimensions %v are not a set the publisher emits (%v)", where, dims, DimensionSets(true))
		}
	default:
		t.Errorf("%s: namespace %q", where, namespace)
	}
}

// TestDashboard: deploy/cloudwatch/dashboard.json is a put-dashboard body
// whose every metric is one the publisher emits, with its dimensions.
func TestDashboard(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../deploy/cloudwatch/dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Widgets []struct {
			Type       string `json:"type"`
			X, Y       *int
			Width      int `json:"width"`
			Height     int `json:"height"`
			Properties struct {
				Title   string            `json:"title"`
				Region  string            `json:"region"`
				Metrics []json.RawMessage `json:"metrics"`
			} `json:"properties"`
		} `json:"widgets"`
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&body); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, w := range body.Widgets {
		if w.Width < 1 || w.Width > 24 || w.Height < 1 {
			t.Errorf("widget %q: size %dx%d", w.Properties.Title, w.Width, w.Height)
		}
		if w.Type != "metric" {
			continue
		}
		if w.Properties.Region == "" || len(w.Properties.Metrics) == 0 {
			t.Errorf("widget %q: no region or no metrics", w.Properties.Title)
		}
		for _, m := range w.Properties.Metrics {
			var expr []struct {
				Expression string `json:"expression"`
			}
			if err := json.Unmarshal(m, &expr); err != nil || len(expr) != 1 || expr[0].Expression == "" {
				t.Errorf("widget %q: metric %s is not a SEARCH expression", w.Properties.Title, m)
				continue
			}
			s := searchPattern.FindStringSubmatch(expr[0].Expression)
			if s == nil {
				t.Errorf("widget %q: %q is not a SEARCH this test reads", w.Properties.Title, expr[0].Expression)
				continue
			}
			schema := strings.Split(s[1], ",")
			names := metricNamePattern.FindAllStringSubmatch(s[2], -1)
			if len(names) == 0 {
				t.Errorf("widget %q: %q names no metric", w.Properties.Title, s[2])
			}
			for _, n := range names {
				checkMetric(t, "dashboard "+w.Properties.Title, schema[0], n[1], schema[1:])
				seen[schema[0]+" "+n[1]] = true
			}
		}
	}
	for _, name := range MetricNames() {
		if !seen["BedrockGateway "+name] {
			t.Errorf("the dashboard shows no %s", name)
		}
	}
}

// TestAlarms: deploy/cloudwatch/alarms.json is a CloudFormation template
// whose alarms watch metrics the publisher emits, and whose metric math
// names only queries it defines.
func TestAlarms(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../deploy/cloudwatch/alarms.json")
	if err != nil {
		t.Fatal(err)
	}
	type dim struct {
		Name string `json:"Name"`
	}
	var tmpl struct {
		AWSTemplateFormatVersion string
		Parameters               map[string]json.RawMessage
		Resources                map[string]struct {
			Type       string
			Properties struct {
				AlarmName          json.RawMessage
				Namespace          json.RawMessage
				MetricName         string
				Dimensions         []dim
				Statistic          string
				ComparisonOperator string
				EvaluationPeriods  int
				Metrics            []struct {
					ID         string `json:"Id"`
					Expression string
					ReturnData *bool
					MetricStat *struct {
						Metric struct {
							Namespace  json.RawMessage
							MetricName string
							Dimensions []dim
						}
						Stat string
					}
				}
			}
		}
	}
	if err := json.Unmarshal(raw, &tmpl); err != nil {
		t.Fatal(err)
	}
	if tmpl.AWSTemplateFormatVersion != "2010-09-09" || tmpl.Parameters["Namespace"] == nil || tmpl.Parameters["Entitlement"] == nil {
		t.Fatalf("not the expected template: %s", raw[:min(len(raw), 200)])
	}
	names := func(ds []dim) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.Name)
		}
		return out
	}
	if len(tmpl.Resources) == 0 {
		t.Fatal("no alarms")
	}
	for id, r := range tmpl.Resources {
		p := r.Properties
		if r.Type != "AWS::CloudWatch::Alarm" || len(p.AlarmName) == 0 || p.ComparisonOperator == "" || p.EvaluationPeriods < 1 {
			t.Errorf("%s: %s is not a complete alarm", id, r.Type)
			continue
		}
		if p.MetricName != "" {
			checkMetric(t, "alarm "+id, "${Namespace}", p.MetricName, names(p.Dimensions))
			continue
		}
		ids, returned := map[string]bool{}, 0
		for _, m := range p.Metrics {
			ids[m.ID] = true
			if m.ReturnData == nil || *m.ReturnData {
				returned++
			}
			if m.MetricStat != nil {
				checkMetric(t, "alarm "+id, "${Namespace}", m.MetricStat.Metric.MetricName, names(m.MetricStat.Metric.Dimensions))
			}
		}
		if returned != 1 {
			t.Errorf("%s: %d queries return data, want 1", id, returned)
		}
		for _, m := range p.Metrics {
			for _, ref := range regexp.MustCompile(`[a-z][a-zA-Z0-9_]*`).FindAllString(m.Expression, -1) {
				if ref != "FILL" && !ids[ref] && strings.ToUpper(ref) != ref {
					t.Errorf("%s: expression %q names %q, not a query of the alarm", id, m.Expression, ref)
				}
			}
		}
	}
}
