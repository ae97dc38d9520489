package store

import (
	"context"
	"testing"

	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

func TestAsyncOwners(t *testing.T) {
	t.Parallel()
	for _, cluster := range []bool{false, true} {
		var a *AsyncOwners
		if cluster {
			a = NewAsyncOwners(AsyncOwnersOptions{Client: redistest.StartCluster(t, 3).Client(t)})
		} else {
			a = NewAsyncOwners(AsyncOwnersOptions{Client: redistest.Start(t).Client(t)})
		}
		ctx := context.Background()
		arns := []string{"arn:aws:bedrock:us-east-1:111111111111:async-invoke/a1", "arn:aws:bedrock:us-east-1:111111111111:async-invoke/b2", "arn:aws:bedrock:us-east-1:111111111111:async-invoke/c3"}
		if err := a.Record(ctx, arns[0], "222222222222", "nova"); err != nil {
			t.Fatal(err)
		}
		if err := a.Record(ctx, arns[1], "333333333333", "nova"); err != nil {
			t.Fatal(err)
		}
		acct, ent, ok, err := a.Owner(ctx, arns[0])
		if err != nil || !ok || acct != "222222222222" || ent != "nova" {
			t.Fatalf("owner: %q %q %v %v", acct, ent, ok, err)
		}
		if _, _, ok, err := a.Owner(ctx, arns[2]); ok || err != nil {
			t.Fatalf("unknown ARN: %v %v", ok, err)
		}
		owners, err := a.Owners(ctx, arns)
		if err != nil || len(owners) != 2 || owners[arns[1]] != "333333333333" {
			t.Fatalf("owners (cluster=%v): %v %v", cluster, owners, err)
		}
	}
}
