package sim

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/organizations/types"
	"github.com/aws/smithy-go"

	"github.com/bedrock-gateway/gateway/internal/state"
)

const (
	orgTestKey    = "AKIAORGSIMTEST000001"
	orgTestSecret = "org-sim-test-secret"
)

// orgServer serves a simulator holding org (nil: none) that checks signatures
// for the test key.
func orgServer(t *testing.T, org *Organization) (*Simulator, *httptest.Server) {
	t.Helper()
	s := New(Options{
		Organization: org,
		VerifyOrganizations: NewSigV4Check(SigV4Check{Service: "organizations", Region: "us-east-1",
			Secrets: map[string]string{orgTestKey: orgTestSecret}}),
	})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

// orgClient is the official Organizations client aimed at srv.
func orgClient(srv *httptest.Server, key, secret, region string) *organizations.Client {
	return organizations.New(organizations.Options{
		BaseEndpoint: aws.String(srv.URL),
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(key, secret, ""),
		HTTPClient:   SDKHTTPClient(srv.Client()),
	})
}

// smallOrg: root > platform (ou-plat) > ml (ou-ml, nested), root > retail; four
// members and the hub.
func smallOrg() *Organization {
	return &Organization{
		Organization: state.Organization{
			ID: "o-exampleorg1", Root: "r-ex12", HubAccount: "111111111111",
			Units: []state.Unit{
				{ID: "ou-ex12-platform", Name: "platform"},
				{ID: "ou-ex12-mlteam01", Name: "ml", Parent: "ou-ex12-platform"},
				{ID: "ou-ex12-retail01", Name: "retail", Parent: "r-ex12"},
			},
			Accounts: []state.Account{
				{ID: "222222222222", Name: "ml-prod", Unit: "ou-ex12-mlteam01", Team: "ignored"},
				{ID: "333333333333", Name: "ml-dev", Unit: "ou-ex12-mlteam01"},
				{ID: "444444444444", Name: "shop", Unit: "ou-ex12-retail01"},
				{ID: "555555555555", Name: "sandbox"},
			},
		},
		States: map[string]string{"333333333333": AccountSuspended, "555555555555": AccountPendingClosure},
		Tags: map[string]map[string]string{
			"222222222222":     {"team": "ml-research", "cost-center": "42"},
			"ou-ex12-retail01": {"owner": "retail"},
		},
	}
}

func TestOrganizationsOperations(t *testing.T) {
	t.Parallel()
	_, srv := orgServer(t, smallOrg())
	c := orgClient(srv, orgTestKey, orgTestSecret, "us-east-1")
	ctx := t.Context()
	arn := func(kind, id string) string {
		return "arn:aws:organizations::111111111111:" + kind + "/o-exampleorg1/" + id
	}
	for _, tc := range []struct {
		name string
		call func() (any, error)
		want any
	}{
		{"DescribeOrganization", func() (any, error) {
			out, err := c.DescribeOrganization(ctx, &organizations.DescribeOrganizationInput{})
			if err != nil {
				return nil, err
			}
			o := out.Organization
			return []string{*o.Id, *o.Arn, *o.MasterAccountId, *o.MasterAccountArn, string(o.FeatureSet)}, nil
		}, []string{"o-exampleorg1", "arn:aws:organizations::111111111111:organization/o-exampleorg1", "111111111111",
			arn("account", "111111111111"), "ALL"}},
		{"ListRoots", func() (any, error) {
			out, err := c.ListRoots(ctx, &organizations.ListRootsInput{})
			if err != nil {
				return nil, err
			}
			var got []string
			for _, r := range out.Roots {
				got = append(got, *r.Id, *r.Name, *r.Arn)
			}
			return got, nil
		}, []string{"r-ex12", "Root", arn("root", "r-ex12")}},
		{"ListOrganizationalUnitsForParent root", func() (any, error) {
			out, err := c.ListOrganizationalUnitsForParent(ctx, &organizations.ListOrganizationalUnitsForParentInput{ParentId: aws.String("r-ex12")})
			if err != nil {
				return nil, err
			}
			var got []string
			for _, u := range out.OrganizationalUnits {
				got = append(got, *u.Id+" "+*u.Name+" "+*u.Path+" "+*u.Arn)
			}
			return got, nil
		}, []string{
			"ou-ex12-platform platform o-exampleorg1/r-ex12/ou-ex12-platform/ " + arn("ou", "ou-ex12-platform"),
			"ou-ex12-retail01 retail o-exampleorg1/r-ex12/ou-ex12-retail01/ " + arn("ou", "ou-ex12-retail01"),
		}},
		{"ListOrganizationalUnitsForParent nested", func() (any, error) {
			out, err := c.ListOrganizationalUnitsForParent(ctx, &organizations.ListOrganizationalUnitsForParentInput{ParentId: aws.String("ou-ex12-platform")})
			if err != nil {
				return nil, err
			}
			var got []string
			for _, u := range out.OrganizationalUnits {
				got = append(got, *u.Id+" "+*u.Path)
			}
			return got, nil
		}, []string{"ou-ex12-mlteam01 o-exampleorg1/r-ex12/ou-ex12-platform/ou-ex12-mlteam01/"}},
		{"ListAccountsForParent OU", func() (any, error) {
			out, err := c.ListAccountsForParent(ctx, &organizations.ListAccountsForParentInput{ParentId: aws.String("ou-ex12-mlteam01")})
			if err != nil {
				return nil, err
			}
			return accountLines(out.Accounts), nil
		}, []string{
			"222222222222 ml-prod ACTIVE ACTIVE INVITED aws+222222222222@example.com 2024-01-02T03:04:05Z [o-exampleorg1/r-ex12/ou-ex12-platform/ou-ex12-mlteam01/222222222222/] " + arn("account", "222222222222"),
			"333333333333 ml-dev SUSPENDED SUSPENDED INVITED aws+333333333333@example.com 2024-01-02T03:04:05Z [o-exampleorg1/r-ex12/ou-ex12-platform/ou-ex12-mlteam01/333333333333/] " + arn("account", "333333333333"),
		}},
		{"ListAccountsForParent root lists the hub first", func() (any, error) {
			out, err := c.ListAccountsForParent(ctx, &organizations.ListAccountsForParentInput{ParentId: aws.String("r-ex12")})
			if err != nil {
				return nil, err
			}
			return accountLines(out.Accounts), nil
		}, []string{
			"111111111111 management ACTIVE ACTIVE CREATED aws+111111111111@example.com 2024-01-02T03:04:05Z [o-exampleorg1/r-ex12/111111111111/] " + arn("account", "111111111111"),
			"555555555555 sandbox PENDING_CLOSURE PENDING_CLOSURE INVITED aws+555555555555@example.com 2024-01-02T03:04:05Z [o-exampleorg1/r-ex12/555555555555/] " + arn("account", "555555555555"),
		}},
		{"DescribeAccount", func() (any, error) {
			out, err := c.DescribeAccount(ctx, &organizations.DescribeAccountInput{AccountId: aws.String("444444444444")})
			if err != nil {
				return nil, err
			}
			return accountLines([]types.Account{*out.Account}), nil
		}, []string{"444444444444 shop ACTIVE ACTIVE INVITED aws+444444444444@example.com 2024-01-02T03:04:05Z [o-exampleorg1/r-ex12/ou-ex12-retail01/444444444444/] " + arn("account", "444444444444")}},
		{"ListParents of an account", func() (any, error) {
			out, err := c.ListParents(ctx, &organizations.ListParentsInput{ChildId: aws.String("222222222222")})
			if err != nil {
				return nil, err
			}
			return parentLines(out.Parents), nil
		}, []string{"ou-ex12-mlteam01 ORGANIZATIONAL_UNIT"}},
		{"ListParents of a top OU", func() (any, error) {
			out, err := c.ListParents(ctx, &organizations.ListParentsInput{ChildId: aws.String("ou-ex12-platform")})
			if err != nil {
				return nil, err
			}
			return parentLines(out.Parents), nil
		}, []string{"r-ex12 ROOT"}},
		{"ListTagsForResource account", func() (any, error) {
			out, err := c.ListTagsForResource(ctx, &organizations.ListTagsForResourceInput{ResourceId: aws.String("222222222222")})
			if err != nil {
				return nil, err
			}
			return tagLines(out.Tags), nil
		}, []string{"cost-center=42", "team=ml-research"}},
		{"ListTagsForResource OU", func() (any, error) {
			out, err := c.ListTagsForResource(ctx, &organizations.ListTagsForResourceInput{ResourceId: aws.String("ou-ex12-retail01")})
			if err != nil {
				return nil, err
			}
			return tagLines(out.Tags), nil
		}, []string{"owner=retail"}},
		{"ListTagsForResource untagged", func() (any, error) {
			out, err := c.ListTagsForResource(ctx, &organizations.ListTagsForResourceInput{ResourceId: aws.String("444444444444")})
			if err != nil {
				return nil, err
			}
			return tagLines(out.Tags), nil
		}, []string(nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.call()
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func accountLines(accts []types.Account) []string {
	var out []string
	for _, a := range accts {
		out = append(out, fmt.Sprintf("%s %s %s %s %s %s %s %v %s", *a.Id, *a.Name, a.State, a.Status, a.JoinedMethod, *a.Email,
			a.JoinedTimestamp.UTC().Format(time.RFC3339), a.Paths, *a.Arn))
	}
	return out
}

func parentLines(ps []types.Parent) []string {
	var out []string
	for _, p := range ps {
		out = append(out, *p.Id+" "+string(p.Type))
	}
	return out
}

func tagLines(tags []types.Tag) []string {
	var out []string
	for _, tg := range tags {
		out = append(out, *tg.Key+"="+*tg.Value)
	}
	return out
}

func TestOrganizationsErrors(t *testing.T) {
	t.Parallel()
	_, srv := orgServer(t, smallOrg())
	_, empty := orgServer(t, nil)
	good := orgClient(srv, orgTestKey, orgTestSecret, "us-east-1")
	ctx := t.Context()
	// A valid token of the root's account listing, to replay elsewhere.
	first, err := good.ListAccountsForParent(ctx, &organizations.ListAccountsForParentInput{ParentId: aws.String("r-ex12"), MaxResults: aws.Int32(1)})
	if err != nil || first.NextToken == nil {
		t.Fatalf("first page: %v, token %v", err, first)
	}
	listAccounts := func(c *organizations.Client, parent string, max *int32, token *string) func() error {
		return func() error {
			_, err := c.ListAccountsForParent(ctx, &organizations.ListAccountsForParentInput{ParentId: aws.String(parent), MaxResults: max, NextToken: token})
			return err
		}
	}
	for _, tc := range []struct {
		name     string
		call     func() error
		wantCode string
		reason   string // InvalidInputException's Reason
	}{
		{"unknown parent OU", listAccounts(good, "ou-ex12-nothere1", nil, nil), "ParentNotFoundException", ""},
		{"unknown root", listAccounts(good, "r-zz99", nil, nil), "ParentNotFoundException", ""},
		{"unknown parent of OUs", func() error {
			_, err := good.ListOrganizationalUnitsForParent(ctx, &organizations.ListOrganizationalUnitsForParentInput{ParentId: aws.String("ou-ex12-nothere1")})
			return err
		}, "ParentNotFoundException", ""},
		{"parent not an ID", listAccounts(good, "222222222222", nil, nil), "InvalidInputException", "INVALID_PATTERN"},
		{"MaxResults too big", listAccounts(good, "r-ex12", aws.Int32(21), nil), "InvalidInputException", "MAX_VALUE_EXCEEDED"},
		{"MaxResults zero", listAccounts(good, "r-ex12", aws.Int32(0), nil), "InvalidInputException", "MIN_VALUE_EXCEEDED"},
		{"garbage NextToken", listAccounts(good, "r-ex12", nil, aws.String("garbage!")), "InvalidInputException", "INVALID_NEXT_TOKEN"},
		{"NextToken of another parent", listAccounts(good, "ou-ex12-mlteam01", nil, first.NextToken), "InvalidInputException", "INVALID_NEXT_TOKEN"},
		{"NextToken of another operation", func() error {
			_, err := good.ListOrganizationalUnitsForParent(ctx, &organizations.ListOrganizationalUnitsForParentInput{ParentId: aws.String("r-ex12"), NextToken: first.NextToken})
			return err
		}, "InvalidInputException", "INVALID_NEXT_TOKEN"},
		{"unknown account", func() error {
			_, err := good.DescribeAccount(ctx, &organizations.DescribeAccountInput{AccountId: aws.String("999999999999")})
			return err
		}, "AccountNotFoundException", ""},
		{"unknown child", func() error {
			_, err := good.ListParents(ctx, &organizations.ListParentsInput{ChildId: aws.String("999999999999")})
			return err
		}, "ChildNotFoundException", ""},
		{"tags of unknown resource", func() error {
			_, err := good.ListTagsForResource(ctx, &organizations.ListTagsForResourceInput{ResourceId: aws.String("999999999999")})
			return err
		}, "TargetNotFoundException", ""},
		{"tags of a bad ID", func() error {
			_, err := good.ListTagsForResource(ctx, &organizations.ListTagsForResourceInput{ResourceId: aws.String("p-12345678")})
			return err
		}, "InvalidInputException", "INVALID_PATTERN_TARGET_ID"},
		{"no organization", func() error {
			_, err := orgClient(empty, orgTestKey, orgTestSecret, "us-east-1").DescribeOrganization(ctx, &organizations.DescribeOrganizationInput{})
			return err
		}, "AWSOrganizationsNotInUseException", ""},
		{"operation not served", func() error {
			_, err := good.ListAccounts(ctx, &organizations.ListAccountsInput{})
			return err
		}, "UnknownOperationException", ""},
		{"wrong secret", listAccounts(orgClient(srv, orgTestKey, "wrong", "us-east-1"), "r-ex12", nil, nil), "InvalidSignatureException", ""},
		{"unknown key", listAccounts(orgClient(srv, "AKIAUNKNOWN000000000", orgTestSecret, "us-east-1"), "r-ex12", nil, nil), "UnrecognizedClientException", ""},
		{"wrong signing region", listAccounts(orgClient(srv, orgTestKey, orgTestSecret, "eu-west-1"), "r-ex12", nil, nil), "InvalidSignatureException", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			ae, ok := errors.AsType[smithy.APIError](err)
			if !ok || ae.ErrorCode() != tc.wantCode {
				t.Fatalf("got %v, want %s", err, tc.wantCode)
			}
			if tc.reason != "" {
				ie, ok := errors.AsType[*types.InvalidInputException](err)
				if !ok || string(ie.Reason) != tc.reason {
					t.Errorf("got %v, want reason %s", err, tc.reason)
				}
			}
		})
	}
	// The typed exception the sync will match on.
	if _, ok := errors.AsType[*types.ParentNotFoundException](listAccounts(good, "ou-ex12-nothere1", nil, nil)()); !ok {
		t.Error("unknown parent: not a *types.ParentNotFoundException")
	}
}

func TestOrganizationsPagination(t *testing.T) {
	t.Parallel()
	org := &Organization{
		Organization: state.Organization{ID: "o-paginate01", HubAccount: "100000000000"},
		Tags:         map[string]map[string]string{"100000000001": {}},
	}
	for i := range 46 {
		org.Units = append(org.Units, state.Unit{ID: fmt.Sprintf("ou-page-%08d", i), Name: fmt.Sprint("unit", i)})
		org.Accounts = append(org.Accounts, state.Account{ID: fmt.Sprintf("%012d", 100000000001+i), Name: fmt.Sprint("acct", i)})
	}
	for i := range 45 {
		org.Tags["100000000001"][fmt.Sprintf("k%02d", i)] = fmt.Sprint(i)
	}
	s, srv := orgServer(t, org)
	c := orgClient(srv, orgTestKey, orgTestSecret, "us-east-1")
	ctx := t.Context()
	root := "r-" + "pagi" // derived from the organization ID when Root is empty

	for _, max := range []int32{1, 3, 7, 20} {
		t.Run(fmt.Sprint("MaxResults=", max), func(t *testing.T) {
			var ids []string
			pages := 0
			p := organizations.NewListAccountsForParentPaginator(c, &organizations.ListAccountsForParentInput{ParentId: aws.String(root), MaxResults: aws.Int32(max)})
			for p.HasMorePages() {
				out, err := p.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if len(out.Accounts) > int(max) {
					t.Fatalf("page of %d accounts, MaxResults %d", len(out.Accounts), max)
				}
				for _, a := range out.Accounts {
					ids = append(ids, *a.Id)
				}
			}
			want := []string{"100000000000"} // the hub, then the members in order
			for _, a := range org.Accounts {
				want = append(want, a.ID)
			}
			if !slices.Equal(ids, want) {
				t.Errorf("accounts %v, want %v", ids, want)
			}
			if wantPages := (len(want) + int(max) - 1) / int(max); pages != wantPages {
				t.Errorf("%d pages, want %d", pages, wantPages)
			}

			var units []string
			up := organizations.NewListOrganizationalUnitsForParentPaginator(c, &organizations.ListOrganizationalUnitsForParentInput{ParentId: aws.String(root), MaxResults: aws.Int32(max)})
			for up.HasMorePages() {
				out, err := up.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, u := range out.OrganizationalUnits {
					units = append(units, *u.Id)
				}
			}
			if len(units) != len(org.Units) || units[0] != org.Units[0].ID || units[len(units)-1] != org.Units[len(org.Units)-1].ID {
				t.Errorf("units %v", units)
			}
		})
	}
	t.Run("no MaxResults pages by 20", func(t *testing.T) {
		out, err := c.ListAccountsForParent(ctx, &organizations.ListAccountsForParentInput{ParentId: aws.String(root)})
		if err != nil || len(out.Accounts) != 20 || out.NextToken == nil {
			t.Fatalf("got %d accounts, token %v, err %v", len(out.Accounts), out.NextToken, err)
		}
	})
	t.Run("tags", func(t *testing.T) {
		var keys []string
		pages := 0
		p := organizations.NewListTagsForResourcePaginator(c, &organizations.ListTagsForResourceInput{ResourceId: aws.String("100000000001")})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, tg := range out.Tags {
				keys = append(keys, *tg.Key)
			}
		}
		if len(keys) != 45 || !slices.IsSorted(keys) || pages != 3 {
			t.Errorf("%d pages, keys %v", pages, keys)
		}
	})
	// Organizations calls are not Bedrock requests.
	if n := len(s.Requests()); n != 0 {
		t.Errorf("Requests() holds %d Organizations calls", n)
	}
	if calls := s.OrganizationsCalls(); calls["ListAccountsForParent"] == 0 || calls["ListTagsForResource"] != 3 {
		t.Errorf("OrganizationsCalls() = %v", calls)
	}
}

// bigOrg builds 5,000 accounts in 300 OUs nested 5 deep (4, 16, 48, 96 and 136
// OUs per level), one in 301 accounts directly under the root, every account
// tagged with a team.
func bigOrg() (org *Organization, parentOf map[string]string) {
	org = &Organization{
		Organization: state.Organization{ID: "o-bigorg0001", Root: "r-big1", HubAccount: "100000000000"},
		Tags:         map[string]map[string]string{},
	}
	parentOf = map[string]string{"100000000000": "r-big1"}
	prev := []string{"r-big1"}
	var all []string
	for level, n := range []int{4, 16, 48, 96, 136} {
		var cur []string
		for j := range n {
			id := fmt.Sprintf("ou-big1-l%d%06d", level+1, j)
			p := prev[j%len(prev)]
			org.Units = append(org.Units, state.Unit{ID: id, Name: fmt.Sprintf("unit-%d-%d", level+1, j), Parent: p})
			parentOf[id] = p
			cur = append(cur, id)
		}
		all = append(all, cur...)
		prev = cur
	}
	for k := range 5000 {
		id := fmt.Sprintf("%012d", 200000000000+k)
		p := "r-big1"
		if k%301 != 300 {
			p = all[k%len(all)]
		}
		org.Accounts = append(org.Accounts, state.Account{ID: id, Name: fmt.Sprint("account-", k), Unit: p})
		parentOf[id] = p
		org.Tags[id] = map[string]string{"team": fmt.Sprint("team-", k%50)}
	}
	return org, parentOf
}

func TestOrganizationsLargeWalk(t *testing.T) {
	t.Parallel()
	org, parentOf := bigOrg()
	if len(org.Units) != 300 {
		t.Fatalf("%d units", len(org.Units))
	}
	_, srv := orgServer(t, org)
	c := orgClient(srv, orgTestKey, orgTestSecret, "us-east-1")
	ctx := t.Context()
	start := time.Now()
	roots, err := c.ListRoots(ctx, &organizations.ListRootsInput{})
	if err != nil {
		t.Fatal(err)
	}
	gotParent := map[string]string{}
	maxDepth := 0
	calls := 0
	queue := []string{*roots.Roots[0].Id}
	for len(queue) > 0 {
		parent := queue[0]
		queue = queue[1:]
		up := organizations.NewListOrganizationalUnitsForParentPaginator(c, &organizations.ListOrganizationalUnitsForParentInput{ParentId: aws.String(parent)})
		for up.HasMorePages() {
			out, err := up.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			calls++
			for _, u := range out.OrganizationalUnits {
				gotParent[*u.Id] = parent
				queue = append(queue, *u.Id)
				maxDepth = max(maxDepth, strings.Count(*u.Path, "ou-"))
			}
		}
		ap := organizations.NewListAccountsForParentPaginator(c, &organizations.ListAccountsForParentInput{ParentId: aws.String(parent)})
		for ap.HasMorePages() {
			out, err := ap.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			calls++
			for _, a := range out.Accounts {
				if _, dup := gotParent[*a.Id]; dup {
					t.Fatalf("account %s listed twice", *a.Id)
				}
				gotParent[*a.Id] = parent
			}
		}
	}
	// The sync reads every account's tags: so does this walk, four at a time
	// (which also has the race detector watch concurrent calls).
	teams := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	ids := make(chan string)
	for range 4 {
		wg.Go(func() {
			for id := range ids {
				out, err := c.ListTagsForResource(ctx, &organizations.ListTagsForResourceInput{ResourceId: aws.String(id)})
				if err != nil {
					t.Error(err)
					continue
				}
				if len(out.Tags) != 1 || *out.Tags[0].Value != org.Tags[id]["team"] {
					t.Errorf("tags of %s: %v", id, tagLines(out.Tags))
					continue
				}
				mu.Lock()
				teams[*out.Tags[0].Value]++
				calls++
				mu.Unlock()
			}
		})
	}
	for _, a := range org.Accounts {
		ids <- a.ID
	}
	close(ids)
	wg.Wait()
	t.Logf("walked %d OUs and %d accounts (tags included) in %d calls, %v", len(org.Units), len(org.Accounts)+1, calls, time.Since(start))
	if maxDepth != 5 {
		t.Errorf("deepest OU path has %d OUs, want 5", maxDepth)
	}
	if len(gotParent) != len(parentOf) {
		t.Errorf("walk reached %d OUs and accounts, want %d", len(gotParent), len(parentOf))
	}
	for id, p := range parentOf {
		if gotParent[id] != p {
			t.Errorf("%s: parent %q, want %q", id, gotParent[id], p)
		}
	}
	if len(teams) != 50 {
		t.Errorf("%d teams, want 50", len(teams))
	}
}

func TestSetOrganization(t *testing.T) {
	t.Parallel()
	base := func() state.Organization {
		return state.Organization{ID: "o-exampleorg1", HubAccount: "111111111111",
			Units:    []state.Unit{{ID: "ou-ex12-aaaaaaaa", Name: "a"}},
			Accounts: []state.Account{{ID: "222222222222", Name: "x", Unit: "ou-ex12-aaaaaaaa"}}}
	}
	for _, tc := range []struct {
		name    string
		edit    func(*Organization)
		wantErr string
	}{
		{"valid", func(*Organization) {}, ""},
		{"bad org ID", func(o *Organization) { o.ID = "org1" }, "not an organization ID"},
		{"bad hub", func(o *Organization) { o.HubAccount = "1" }, "hub account"},
		{"bad root", func(o *Organization) { o.Root = "root" }, "not a root ID"},
		{"bad OU ID", func(o *Organization) { o.Units[0].ID = "ou-x" }, "not an OU ID"},
		{"duplicate OU", func(o *Organization) { o.Units = append(o.Units, o.Units[0]) }, "listed twice"},
		{"unknown OU parent", func(o *Organization) { o.Units[0].Parent = "ou-ex12-bbbbbbbb" }, "parent"},
		{"cycle", func(o *Organization) {
			o.Units = append(o.Units, state.Unit{ID: "ou-ex12-bbbbbbbb", Name: "b", Parent: "ou-ex12-aaaaaaaa"})
			o.Units[0].Parent = "ou-ex12-bbbbbbbb"
		}, "cycle"},
		{"bad account ID", func(o *Organization) { o.Accounts[0].ID = "22" }, "not an account ID"},
		{"duplicate account", func(o *Organization) { o.Accounts = append(o.Accounts, o.Accounts[0]) }, "listed twice"},
		{"hub listed twice", func(o *Organization) {
			o.Accounts = append(o.Accounts, state.Account{ID: "111111111111", Name: "hub"}, state.Account{ID: "111111111111", Name: "hub"})
		}, "listed twice"},
		{"account in unknown OU", func(o *Organization) { o.Accounts[0].Unit = "ou-ex12-bbbbbbbb" }, "not found"},
		{"state of unknown account", func(o *Organization) { o.States = map[string]string{"999999999999": AccountSuspended} }, "unknown account"},
		{"unknown state", func(o *Organization) { o.States = map[string]string{"222222222222": "GONE"} }, "unknown state"},
		{"tags of unknown resource", func(o *Organization) { o.Tags = map[string]map[string]string{"ou-ex12-zzzzzzzz": {}} }, "unknown resource"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			org := &Organization{Organization: base()}
			tc.edit(org)
			err := New(Options{}).SetOrganization(org)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("got %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// An invalid Options.Organization is visible at the first call, and
// SetOrganization moves, suspends and retags between two reads.
func TestOrganizationsChange(t *testing.T) {
	t.Parallel()
	bad := smallOrg()
	bad.Units[0].ID = "nope"
	s, srv := orgServer(t, bad)
	c := orgClient(srv, orgTestKey, orgTestSecret, "us-east-1")
	c = organizations.New(c.Options(), func(o *organizations.Options) { o.RetryMaxAttempts = 1 })
	ctx := t.Context()
	if _, err := c.DescribeOrganization(ctx, &organizations.DescribeOrganizationInput{}); err == nil || !strings.Contains(err.Error(), "not an OU ID") {
		t.Fatalf("invalid organization: %v", err)
	}
	org := smallOrg()
	if err := s.SetOrganization(org); err != nil {
		t.Fatal(err)
	}
	moved := smallOrg()
	moved.Accounts[0].Unit = "ou-ex12-retail01"
	moved.Accounts[0].Name = "ml-prod-renamed"
	moved.States = map[string]string{"222222222222": AccountSuspended}
	moved.Tags = map[string]map[string]string{"222222222222": {"team": "retail"}}
	if err := s.SetOrganization(moved); err != nil {
		t.Fatal(err)
	}
	out, err := c.ListAccountsForParent(ctx, &organizations.ListAccountsForParentInput{ParentId: aws.String("ou-ex12-retail01")})
	if err != nil {
		t.Fatal(err)
	}
	if got := accountLines(out.Accounts); len(got) != 2 || !strings.HasPrefix(got[0], "222222222222 ml-prod-renamed SUSPENDED") {
		t.Errorf("after the move: %q", got)
	}
	tags, err := c.ListTagsForResource(ctx, &organizations.ListTagsForResourceInput{ResourceId: aws.String("222222222222")})
	if err != nil || fmt.Sprint(tagLines(tags.Tags)) != "[team=retail]" {
		t.Errorf("tags after the change: %v %v", tags, err)
	}
}

// Hand-built requests: what no SDK sends.
func TestOrganizationsBadRequests(t *testing.T) {
	t.Parallel()
	_, signed := orgServer(t, smallOrg())
	unsigned := httptest.NewServer(New(Options{Organization: smallOrg()}))
	t.Cleanup(unsigned.Close)
	for _, tc := range []struct {
		name              string
		srv               *httptest.Server
		contentType, body string
		auth, wantType    string
		fault             string // X-Sim-Fault
		wantStatus        int    // 0: 400
	}{
		{"unsigned", signed, "application/x-amz-json-1.1", "{}", "", "MissingAuthenticationTokenException", "", 0},
		{"malformed authorization", signed, "application/x-amz-json-1.1", "{}", "AWS4-HMAC-SHA256 Credential=x", "IncompleteSignatureException", "", 0},
		{"two authorizations", signed, "application/x-amz-json-1.1", "{}", "AWS4-HMAC-SHA256 a, b, c", "IncompleteSignatureException", "", 0},
		{"not JSON", unsigned, "application/x-amz-json-1.1", "{", "", "SerializationException", "", 0},
		{"wrong content type", unsigned, "application/json", "{}", "", "SerializationException", "", 0},
		{"ParentId not a string", unsigned, "application/x-amz-json-1.1", `{"ParentId":1}`, "", "SerializationException", "", 0},
		{"fault throttle", unsigned, "application/x-amz-json-1.1", "{}", "", "TooManyRequestsException", FaultThrottle, 0},
		{"fault unavailable", unsigned, "application/x-amz-json-1.1", "{}", "", "ServiceException", FaultUnavailable, 503},
		{"fault internal", unsigned, "application/x-amz-json-1.1", "{}", "", "ServiceException", FaultInternal, 500},
		{"unknown fault", unsigned, "application/x-amz-json-1.1", "{}", "", "InvalidInputException", "nope", 0},
		{"fault after the signature check", signed, "application/x-amz-json-1.1", "{}", "", "MissingAuthenticationTokenException", FaultThrottle, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, tc.srv.URL+"/", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Amz-Target", OrganizationsTargetPrefix+"DescribeOrganization")
			req.Header.Set("Content-Type", tc.contentType)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			if tc.fault != "" {
				req.Header.Set(HeaderFault, tc.fault)
			}
			if tc.wantStatus == 0 {
				tc.wantStatus = http.StatusBadRequest
			}
			resp, err := tc.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus || !strings.Contains(string(body), `"__type":"`+tc.wantType+`"`) ||
				resp.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
				t.Errorf("status %d, body %s", resp.StatusCode, body)
			}
		})
	}
}

// `gateway sim --organization` serves a state file's organization with its
// teams as team tags.
func TestOrganizationFromState(t *testing.T) {
	t.Parallel()
	st, err := state.LoadFile("../../deploy/examples/state.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The last account is suspended in the file, so in the simulator too.
	suspended := &st.Organization.Accounts[len(st.Organization.Accounts)-1]
	suspended.State = state.AccountSuspended
	org := OrganizationFromState(st.Organization)
	if got := org.States[suspended.ID]; got != AccountSuspended {
		t.Errorf("state of %s: %q, want %s", suspended.ID, got, AccountSuspended)
	}
	if err := org.Check(); err != nil {
		t.Fatal(err)
	}
	_, srv := orgServer(t, org)
	c := orgClient(srv, orgTestKey, orgTestSecret, "us-east-1")
	for _, a := range st.Organization.Accounts {
		out, err := c.ListTagsForResource(t.Context(), &organizations.ListTagsForResourceInput{ResourceId: aws.String(a.ID)})
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(tagLines(out.Tags)); got != "[team="+a.Team+"]" {
			t.Errorf("%s: tags %s, want team=%s", a.ID, got, a.Team)
		}
	}
	out, err := c.ListAccountsForParent(t.Context(), &organizations.ListAccountsForParentInput{ParentId: aws.String(st.Organization.Root)})
	if err != nil {
		t.Fatal(err)
	}
	if got := accountLines(out.Accounts); len(got) != 1 || !strings.HasPrefix(got[0], "111111111111 hub ACTIVE ACTIVE CREATED") {
		t.Errorf("root accounts: %q (the hub, listed once)", got)
	}
}

// Throttled Organizations calls are TooManyRequestsException, which the
// official client's retryer retries.
func TestOrganizationsThrottling(t *testing.T) {
	t.Parallel()
	noDelay := func(o *retry.StandardOptions) {
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		o.RateLimiter = ratelimit.None
	}
	for _, tc := range []struct {
		name      string
		rate      float64
		attempts  int
		wantErr   string
		wantCalls int // 0: not checked
	}{
		{"always throttled: every attempt made, then the error", 1, 4, "TooManyRequestsException", 4},
		{"often throttled: retries get through", 0.5, 40, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := New(Options{Organization: smallOrg(), FaultRate: tc.rate, Fault: FaultThrottle, Seed: 7})
			srv := httptest.NewServer(s)
			t.Cleanup(srv.Close)
			c := organizations.New(orgClient(srv, orgTestKey, orgTestSecret, "us-east-1").Options(), func(o *organizations.Options) {
				o.Retryer = retry.NewStandard(noDelay, func(o *retry.StandardOptions) { o.MaxAttempts = tc.attempts })
			})
			var got []string
			p := organizations.NewListAccountsForParentPaginator(c, &organizations.ListAccountsForParentInput{ParentId: aws.String("r-ex12"), MaxResults: aws.Int32(1)})
			var err error
			for p.HasMorePages() && err == nil {
				var out *organizations.ListAccountsForParentOutput
				if out, err = p.NextPage(t.Context()); err == nil {
					for _, a := range out.Accounts {
						got = append(got, *a.Id)
					}
				}
			}
			if tc.wantErr != "" {
				if ae, ok := errors.AsType[smithy.APIError](err); !ok || ae.ErrorCode() != tc.wantErr {
					t.Fatalf("got %v, want %s", err, tc.wantErr)
				}
			} else if err != nil || fmt.Sprint(got) != "[111111111111 555555555555]" {
				t.Fatalf("got %v, %v", got, err)
			}
			if n := s.OrganizationsCalls()["ListAccountsForParent"]; tc.wantCalls != 0 && n != tc.wantCalls {
				t.Errorf("%d calls, want %d", n, tc.wantCalls)
			}
		})
	}
}
