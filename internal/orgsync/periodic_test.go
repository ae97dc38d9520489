package orgsync

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bedrock-gateway/gateway/internal/sim"
	"github.com/bedrock-gateway/gateway/internal/state"
)

// TestPeriodicOnce: each result is counted; the lock is released whatever
// happened; the state is written only through Update and Replace.
func TestPeriodicOnce(t *testing.T) {
	t.Parallel()
	awsOrg := state.Organization{ID: "o-exampleorg1", Root: "r-ex12", HubAccount: "111111111111",
		Accounts: []state.Account{{ID: "111111111111", Name: "hub"}, {ID: "222222222222", Name: "gone-bad"}}}
	good := httptest.NewServer(sim.New(sim.Options{Organization: &sim.Organization{Organization: awsOrg,
		States: map[string]string{"222222222222": sim.AccountClosed}}}))
	t.Cleanup(good.Close)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no", http.StatusBadRequest)
	}))
	t.Cleanup(down.Close)
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIAORGSYNCTEST00001", "secret", "")}

	for _, tc := range []struct {
		name      string
		endpoint  string
		lockOK    bool
		lockErr   error
		want      string
		wantWrite bool
	}{
		{"ok", good.URL, true, nil, ResultOK, true},
		{"locked", good.URL, false, nil, ResultSkippedLocked, false},
		{"lock error", good.URL, false, errors.New("redis down"), ResultError, false},
		{"read error", down.URL, true, nil, ResultError, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := prometheus.NewRegistry()
			m, err := NewMetrics(reg)
			if err != nil {
				t.Fatal(err)
			}
			var cur state.State
			released, wrote := 0, false
			p, err := NewPeriodic(PeriodicOptions{
				Interval: time.Hour, Timeout: time.Minute, Client: NewClient(cfg, tc.endpoint), Metrics: m,
				Lock: func(context.Context) (func(context.Context) error, bool, error) {
					if !tc.lockOK {
						return nil, false, tc.lockErr
					}
					return func(context.Context) error { released++; return nil }, true, nil
				},
				Update: func(_ context.Context, fn func(*state.State) error) error { return fn(&cur) },
				Replace: func(st *state.State, org state.Organization) error {
					wrote = true
					st.Organization = org
					return nil
				},
				Now: func() time.Time { return time.Unix(1700000000, 0) },
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Once(t.Context()); got != tc.want {
				t.Fatalf("result %q, want %q", got, tc.want)
			}
			if got := gathered(t, reg, "gateway_org_sync_total", tc.want); got != 1 {
				t.Errorf("gateway_org_sync_total{result=%q} = %v, want 1", tc.want, got)
			}
			if tc.lockOK && released != 1 {
				t.Errorf("lock released %d times, want 1", released)
			}
			if wrote != tc.wantWrite {
				t.Errorf("wrote = %v, want %v", wrote, tc.wantWrite)
			}
			last := gathered(t, reg, "gateway_org_sync_last_success_timestamp_seconds", "")
			if (tc.want == ResultOK) != (last == 1700000000) {
				t.Errorf("last success %v after %s", last, tc.want)
			}
			if tc.wantWrite {
				if len(cur.Organization.Accounts) != 2 || cur.Organization.Accounts[1].State != state.AccountClosed {
					t.Errorf("written organization %+v", cur.Organization)
				}
			}
		})
	}
}

// gathered reads one sample of reg: the counter of family with label
// result=result, or the gauge when result is empty.
func gathered(t *testing.T, reg *prometheus.Registry, family, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, m := range mf.GetMetric() {
			if result == "" {
				return m.GetGauge().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("%s{result=%q} not registered", family, result)
	return 0
}
