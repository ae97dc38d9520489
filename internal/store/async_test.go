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
		record := func(arn, account, entitlement, wantOwner string) {
			t.Helper()
			owner, err := a.Record(ctx, arn, account, entitlement)
			if err != nil || owner != wantOwner {
				t.Fatalf("Record(%s, %s) (cluster=%v) = %q, %v; want owner %q", arn, account, cluster, owner, err, wantOwner)
			}
		}
		record(arns[0], "222222222222", "nova", "222222222222")
		record(arns[1], "333333333333", "nova", "333333333333")
		// The owner's retry is harmless; another account cannot take it over.
		record(arns[0], "222222222222", "nova", "222222222222")
		record(arns[0], "333333333333", "reel", "222222222222")
		acct, ent, ok, err := a.Owner(ctx, arns[0])
		if err != nil || !ok || acct != "222222222222" || ent != "nova" {
			t.Fatalf("owner after a second account's record: %q %q %v %v", acct, ent, ok, err)
		}
		if _, _, ok, err := a.Owner(ctx, arns[2]); ok || err != nil {
			t.Fatalf("unknown ARN: %v %v", ok, err)
		}
		owners, err := a.Owners(ctx, arns)
		if err != nil || len(owners) != 2 || owners[arns[0]] != "222222222222" || owners[arns[1]] != "333333333333" {
			t.Fatalf("owners (cluster=%v): %v %v", cluster, owners, err)
		}
	}
}
