// Package quota owns the gateway's shared usage accounting in Redis: monthly
// token caps at three levels (entitlement, share, account), per-account
// per-minute request and token rate limits, the monthly usage ledger and
// budget-alert threshold crossings, plus what happens while Redis is away.
//
// # Reserve, then settle
//
// Reserve runs one Lua script in one round trip. The script reads the time
// from Redis TIME (never the replica's clock; see Time) and picks the calendar month,
// in the configured zone, among candidates Go precomputes from its own clock;
// if the replica's clock is so far off that none fits, the script says so with
// the Redis time and Go retries once with candidates built from that time, so
// a skewed replica can never put a request in the wrong month. It purges
// expired reservations, checks used+reserved+tokens <= limit for every cap and
// the GCRA rate limits, and then reserves in all caps or in none.
//
// A reservation holds until its call settles or releases, however long the
// call runs: the limiter tracks its in-flight reservations and every
// RefreshInterval (ReservationTTL/3) extends their expiry scores in one
// pipelined round trip (one script per entitlement, so one slot each), only
// for members still present, so a settled or purged reservation never comes
// back. ReservationTTL thus only bounds what a crashed replica leaves behind;
// Status purges expired reservations before reading, so reports stop counting
// them when the TTL is up.
//
// A reserve that fails with an unknown outcome (a timeout, a caller gone
// mid-call) may still run in Redis later. Its release is queued like a
// settlement (kind "o": no ledger entry, spilled at Close like the rest): it
// removes the reservation if present and leaves the settled marker, which
// makes a reserve script arriving later reserve nothing.
//
// Settle replaces the reservation with the exact usage, updates the ledger and
// claims newly crossed alert thresholds, all in one script, exactly once per
// reservation ID: a settled-marker key (TTL 2×ReservationTTL) makes retries
// harmless, and a reservation that already expired still has its usage
// counted (the tokens were consumed); such a settlement is logged and
// reported through Options.OnReservationExpired. Release removes a reservation without
// charge. Settlements are queued and written by one worker goroutine in
// batched pipelines of EVALSHA; a full queue makes Settle write synchronously.
//
// The ledger counts a request in `requests` only when it is settled; a
// released reservation (the upstream call failed) counts one in `errors` and
// nothing in `requests`. A call that was admitted and charged (for example a
// client that went away) is settled, so it counts as a request. A settlement
// whose usage Bedrock did not report also counts one in `estimated`, and one
// whose upstream failed mid-stream one in `errors` as well.
//
// With Options.UsageStreamMaxLen set, the worker also appends one event per
// settlement or release it writes to a Redis Stream for billing pipelines;
// the ledger stays the record.
//
// # Time
//
// Every decision is dated by Redis TIME, one clock for all replicas, so caps,
// reservation expiry and rate limits hold however far the replicas' clocks
// drift apart. Every script takes time_offset_ms as its first argument and
// adds it to Redis TIME; Status adds the same offset to the Redis time it
// picks the month by. The offset is Options.RedisTimeOffset: nil, that is 0,
// in production. It belongs to the scripts' protocol rather than being a test
// hook: it is how a deployment could correct a Redis server whose clock is
// known to be off (every replica passing the same offset), and it is how the
// tests move Redis time without waiting on it.
//
// What the replica times itself goes through Options.Clock (default: the wall
// clock): the candidate months proposed to the reserve script, the month of a
// fail-open admission, the local fail-open limiter, usage event times, and the
// timers of the worker (probe, backoff, shutdown retries) and the refresher.
// Tests inject a clock that skews the replica's time or fires the timers only
// when they advance it.
//
// # Keys
//
// Every key of one decision carries the hash tag {ent:<entitlement>}, so each
// script touches one cluster slot:
//
//	<prefix>:{ent:<name>}:cap:<month>:<level>:<target>     hash: used, reserved
//	<prefix>:{ent:<name>}:capres:<month>:<level>:<target>  zset: reservation id -> expiry (ms)
//	<prefix>:{ent:<name>}:rpm:<account>, ...:tpm:<account> GCRA theoretical arrival time (ms)
//	<prefix>:{ent:<name>}:ledger:<month>                   hash: <account>|<model>|<metric>
//	<prefix>:{ent:<name>}:ledgerday:<YYYY-MM-DD>           hash: the same fields, per day
//	<prefix>:{ent:<name>}:alerts:<month>                   hash: <level>:<target>:<threshold> -> used
//	<prefix>:{ent:<name>}:settled:<id>                     settled marker
//	<prefix>:usage-events                                  stream of settlements (optional; no hash tag)
//
// Cap and alert keys expire at the end of their month plus Grace; ledger keys
// (monthly and per-day) 400 days after the end of their month.
//
// The per-day ledger dates a settlement by Redis TIME when it is written, in
// the configured zone, among candidate days Go computes from its clock
// within the reservation's month (as reserve picks the month): the days of
// one month add up to its monthly ledger, and a settlement written late
// (queued through an outage) counts on the nearest day of its month.
//
// # Leases
//
// With Options.Leases.Enabled a replica does not reserve per request. It
// takes a lease: one reserve script run (one round trip) that reserves a
// block of tokens in every cap of a key (the same caps with the same limits,
// plus the account when a rate limit applies) under one reservation ID,
// "<lease>.0", exactly as one request would. Requests with that key are then
// admitted in memory against the lease; their exact usage accumulates per
// ledger line (account, team, model, tier) and is written in batches, every
// FlushInterval or FlushSize calls, by the settle script (kind 'l'), one run
// per ledger line, all in the worker's pipelines. Each run charges the usage
// to the caps and the ledger exactly as a settlement does and moves the
// lease to its next generation "<lease>.<n+1>" holding that much less (or
// less still when it retires, nothing when it is returned). A generation is
// settled once (its settled marker), so retried batches change nothing.
//
// Strictness. In Redis, used + reserved never exceeds a cap, leases being
// reservations: a lease is only granted by the reserve script's check, and
// a batch moves tokens from a lease's reservation to used in one script, so
// the sum never grows. Locally a replica admits a request only if the
// estimates of the lease's calls in flight plus the usage not yet written
// plus the request fit in what Redis holds for the lease, so with strict
// estimates (usage never above the estimate) the usage written never exceeds
// what the lease held; with typical estimates a call may use more than its
// estimate, which the lease covers from what it still holds, and a lease
// overdrawn that way writes its usage at once (not at the next batch), so
// the overshoot stays bounded as without leases, by the estimation error of
// the calls in flight when the cap filled. A lease
// never admits after its local deadline (MaxAge after it was asked for, at
// most ReservationTTL/3), and once the limiter knows Redis is unreachable
// (or the store wiped) no lease is spent at all: admission takes the
// documented fail-open and fail-closed paths. Until it knows, which under
// traffic is the next batch write (FlushInterval) and when idle the health
// ping, it spends only what Redis already holds for it. Redis frees a lease
// only ReservationTTL after its last refresh, so a replica cut off from
// Redis has stopped spending it long before.
//
// Sizing. A lease asks for what the replica's recent demand on the key
// would use in Window (1s), at least MinRequests (4) times the request
// at hand; the script lowers it to what is left of the tightest cap divided
// by K (4) times the live replicas (from the heartbeats, through
// Options.Leases.Replicas), and refuses it when that is below the minimum:
// near the end of a cap the last tokens go to per-request reservations, as
// without leases. A lease whose calls no longer fit is retired (it still
// settles its calls in flight and shrinks to what they need) and the next
// is taken. A lease nothing was admitted against for IdleTimeout (1s) is
// returned; Close returns every lease before the worker drains.
//
// Taken ahead. Once the current lease of a key is half spent (tokens or
// request slots) or within MaxAge/4 of its deadline, a goroutine asks for
// the next one, sized the same way, and keeps it beside the current one;
// requests go on spending the current lease and move to the next when it
// can no longer admit them. A key with steady traffic thus never waits for
// Redis after its first lease, however thin its traffic is spread across
// keys. One lease is asked for at a time per key (a request that finds
// both spent waits for the one under way rather than asking again); a
// lease asked for before DropLeases or Close arrives is given back, not
// installed. When Redis refuses or fails to grant it, requests go on
// spending the current lease and no lease is asked for ahead on that key
// for FlushInterval, so a slow Redis is not asked by every request. A lease granted less than it asked for (the cap nears its
// end) is given back as soon as it is replaced or its last call settles,
// not at the next batch, so that its last tokens are free for others.
//
// Stranded tokens. A replica that dies leaves its leases reserved until
// ReservationTTL after their last refresh, then the next script run purges
// them, as it purges a crashed replica's reservations. At most its current
// leases are stranded: per key the current lease and the one taken ahead,
// each at most what was left divided by K times the replicas (and never
// more than Window of its traffic, or MinRequests requests), plus its
// retired leases' calls in flight. The usage of its
// calls not yet written (at most FlushInterval of its traffic, as a queued
// settlement is without leases) is lost with it: those tokens were held by
// the lease and are freed uncharged with it.
//
// Months. A lease belongs to the month the reserve script picked by Redis
// time. Requests reserve on their own when Redis time (as last seen from the
// replica) is within 2×MaxAge+1s of the end of the month, and a lease taken
// that close to it is returned at once, so no lease is spent outside its
// month.
//
// Rate limits are leased the same way: a lease of a key with a
// requests-per-minute limit takes its request slots (its share, like
// tokens, of the limit) from the GCRA in the same script, and one with a
// tokens-per-minute limit charges its tokens there, so neither is ever
// exceeded across replicas. Returning a lease gives its unused tokens back
// to the tokens-per-minute limit (the settle script's true-up) and its
// unused request slots back to the requests-per-minute GCRA (the returned
// lease's last batch moves the limit's TAT back by them, never before now),
// so once returned a lease cost the account only what its calls used. While
// leases are held, an account near its RPM limit may be refused on one
// replica for slots another holds (per replica at most two leases' slots,
// each at most RPM/(K×replicas)), as a cap's tokens are.
// A lease refused by a rate limit makes that key reserve per request until
// the limit's retry-after.
//
// Changes. The server calls DropLeases with every new snapshot: the
// leases retire at once and give back what they hold beyond their calls in
// flight, so the next request is decided by the new state (a lowered cap or
// limit is another key anyway, and a cap lowered below its used admits
// nothing more: the lease script refuses, and so does the request's own).
// The ledger, the caps' used and the alerts stay exact to the token once
// the batches are written; X-Gateway-Quota-Remaining-Tokens of a leased
// request is approximate (what was left when the lease was taken plus what
// the lease still holds).
//
// # When Redis is unreachable
//
// Connection errors and timeouts (not script errors, which are bugs: they are
// logged and fail closed) mark the limiter degraded; while degraded it does not
// call Redis on the request path and the worker probes Redis every
// ProbeInterval until it answers, then writes what is queued at once.
// Fail-closed requests get ErrStoreUnavailable. Fail-open requests are admitted
// under a per-replica token bucket (Reservation.Degraded, no Redis reservation,
// month from the replica's clock) while the settlement queue has room; their
// settlements wait in the queue and are written when Redis returns. Close
// drains the queue within its context and appends whatever it could not write
// to Options.SpillFile (JSON lines), which New reads back and queues again.
//
// A store that lost its data (SetWiped, from the state syncer) is admitted
// against the same way: its counters restarted at zero and cannot be trusted,
// so nothing is reserved in Redis until it is restored; settlements are still
// written.
//
// The client passed in should be built with ContextTimeoutEnabled so that
// Options.Timeout bounds every call.
package quota
