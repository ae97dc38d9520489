package quota

import (
	"context"
	_ "embed"
	"sort"

	"github.com/redis/go-redis/v9"
)

//go:embed refresh.lua
var refreshLua string

// refreshChunk bounds the zset entries one refresh script call extends, so no
// single call holds Redis for long.
const refreshChunk = 512

// held is what the refresher needs of one in-flight reservation.
type held struct {
	entitlement string
	zsets       []string // one per cap, in the reservation's month
	member      string   // "<id>:<tokens>"
}

// track starts refreshing r's expiry; it stops when r's settlement is written.
func (l *Limiter) track(r *Reservation) {
	if len(r.req.Caps) == 0 {
		return // nothing reserved in Redis, nothing to expire
	}
	k := l.keysFor(r.req.Entitlement)
	h := held{entitlement: r.req.Entitlement, member: reservationMember(r.ID, r.Tokens)}
	for _, c := range r.req.Caps {
		h.zsets = append(h.zsets, k.capZset(r.Month, c))
	}
	l.heldMu.Lock()
	l.held[r.ID] = h
	l.heldMu.Unlock()
}

func (l *Limiter) untrack(id string) {
	l.heldMu.Lock()
	delete(l.held, id)
	l.heldMu.Unlock()
}

// refreshLoop extends the reservations of this replica's calls every
// RefreshInterval (and at once when Redis answers again after an outage), so
// a reservation holds for as long as its call runs; the TTL then only bounds
// what a crashed replica leaves behind.
func (l *Limiter) refreshLoop() {
	defer close(l.refreshDone)
	for {
		c, stop := l.opts.Clock.After(l.opts.RefreshInterval)
		select {
		case <-c:
		case <-l.refreshKick:
		case <-l.refreshStop:
			stop()
			return
		}
		stop()
		// While degraded the worker probes; the kick on recovery refreshes then.
		if l.healthy.Load() {
			l.refresh(context.Background())
		}
		l.refreshRounds.Add(1)
	}
}

// refresh extends every tracked reservation in one pipeline: one script call
// per entitlement (its keys share a hash tag, so one slot) and chunk.
func (l *Limiter) refresh(ctx context.Context) {
	l.heldMu.Lock()
	if len(l.held) == 0 {
		l.heldMu.Unlock()
		return
	}
	type entry struct {
		id string
		h  held
	}
	entries := make([]entry, 0, len(l.held))
	for id, h := range l.held {
		entries = append(entries, entry{id, h})
	}
	l.heldMu.Unlock()
	sort.Slice(entries, func(i, j int) bool { return entries[i].h.entitlement < entries[j].h.entitlement })

	type call struct {
		keys []string
		args []any
		ids  []string // the reservation of each key
	}
	var calls []*call
	var cur *call
	for i, e := range entries {
		if cur == nil || len(cur.keys)+len(e.h.zsets) > refreshChunk || entries[i-1].h.entitlement != e.h.entitlement {
			cur = &call{args: []any{l.timeOffsetMs(), l.opts.ReservationTTL.Milliseconds()}}
			calls = append(calls, cur)
		}
		for _, z := range e.h.zsets {
			cur.keys = append(cur.keys, z)
			cur.args = append(cur.args, e.h.member)
			cur.ids = append(cur.ids, e.id)
		}
	}

	for attempt := 0; attempt < 2; attempt++ {
		pipe := l.client.Pipeline()
		cmds := make([]*redis.Cmd, len(calls))
		for i, c := range calls {
			cmds[i] = pipe.EvalSha(ctx, l.refreshScript.Hash(), c.keys, c.args...)
		}
		cctx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
		_, _ = pipe.Exec(cctx)
		cancel()
		var retry []*call
		gone := map[string]bool{}      // reservation -> every member gone so far
		members := map[string]string{} // reservation -> the member refreshed
		for i, c := range calls {
			flags, err := cmds[i].Int64Slice()
			switch {
			case err == nil && len(flags) == len(c.keys):
				for j, f := range flags {
					id := c.ids[j]
					members[id] = c.args[2+j].(string)
					g, seen := gone[id]
					gone[id] = (g || !seen) && f == 0
				}
			case isNoScript(err):
				retry = append(retry, c)
			case isUnreachable(err):
				l.markDown("refresh reservations", err)
				return
			default:
				l.log.Error("quota refresh script failed", "err", err, "reply", flags)
			}
		}
		for id, g := range gone {
			if g && l.leaseMoved(id, members[id]) {
				// A lease's next generation was written meanwhile: not gone.
				continue
			}
			if g {
				// Purged while its call still runs (Redis lost it, or it stalled
				// past the TTL): the settlement will still charge the usage.
				l.log.Warn("quota reservation expired while its call was running", "id", id)
				l.untrack(id)
			}
		}
		if len(retry) == 0 {
			return
		}
		// A restarted server has an empty script cache.
		if err := l.loadScripts(ctx); err != nil {
			if isUnreachable(err) {
				l.markDown("loading scripts", err)
			}
			return
		}
		calls = retry
	}
}

// leaseMoved tells whether the reservation tracked as id is no longer held
// under the member just found gone: settled meanwhile, or a lease whose next
// generation was written while the refresh ran.
func (l *Limiter) leaseMoved(id, member string) bool {
	l.heldMu.Lock()
	defer l.heldMu.Unlock()
	h, ok := l.held[id]
	return !ok || h.member != member
}
