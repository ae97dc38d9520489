package store

import (
	"testing"
	"time"

	"github.com/bedrock-gateway/gateway/internal/testutil/redistest"
)

func TestTryLock(t *testing.T) {
	t.Parallel()
	client := redistest.Start(t).Client(t)
	a, err := New(Options{Client: client})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{Client: client})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	la, ok, err := a.TryLock(ctx, "org-sync", time.Minute)
	if err != nil || !ok {
		t.Fatalf("first TryLock = %v, %v", ok, err)
	}
	if _, ok, err := b.TryLock(ctx, "org-sync", time.Minute); err != nil || ok {
		t.Fatalf("second TryLock while held = %v, %v; want refused", ok, err)
	}
	if _, ok, err := b.TryLock(ctx, "other", time.Minute); err != nil || !ok {
		t.Fatalf("another lock = %v, %v; want taken", ok, err)
	}
	if ttl := client.PTTL(ctx, "gw:{state}:lock:org-sync").Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("lock key TTL %v, want an expiry within a minute", ttl)
	}

	// A holder whose lock expired and was taken by another must not release
	// the other's: simulate the expiry by deleting the key.
	client.Del(ctx, "gw:{state}:lock:org-sync")
	lb, ok, err := b.TryLock(ctx, "org-sync", time.Minute)
	if err != nil || !ok {
		t.Fatalf("TryLock after expiry = %v, %v", ok, err)
	}
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.TryLock(ctx, "org-sync", time.Minute); ok {
		t.Fatal("a stale holder released another replica's lock")
	}
	if err := lb.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := a.TryLock(ctx, "org-sync", time.Minute); err != nil || !ok {
		t.Fatalf("TryLock after release = %v, %v", ok, err)
	}
	if _, _, err := a.TryLock(ctx, "", time.Minute); err == nil {
		t.Fatal("a nameless lock was accepted")
	}
}
