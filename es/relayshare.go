package es

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"
)

// A relayLease is a lease a sharing relay holds.
type relayLease struct {
	held    context.Context
	release func()
}

// relayCrew is a run of a sharing relay's workers over the buckets of
// the groups it held when the run started.
type relayCrew struct {
	stop context.CancelFunc // the soft stop: workers finish the message at hand
	done chan struct{}      // closed when the workers have stopped
	err  error              // why they stopped, when not asked to; set before done is closed
}

// relaySharer is the state of a relay that shares the outbox with others
// (see [Relay]): its membership lease, its groups, and its workers.
type relaySharer struct {
	r      *Relay
	locker TryLocker
	slot   int        // the membership lease's number, -1 when it holds none
	member relayLease // the membership lease, when slot >= 0
	groups map[int]relayLease
	keep   int // the share seen at the previous look: the relay gives up groups beyond both
	crew   *relayCrew
	err    error // why a crew stopped, when not asked to
}

// share runs a relay that shares the outbox with the relays of other
// processes until ctx ends (then it returns nil) or the outbox or the
// Locker failed more than MaxOutageRetries times in a row.
func (r *Relay) share(ctx context.Context, tl TryLocker) error {
	s := &relaySharer{r: r, locker: tl, slot: -1, groups: make(map[int]relayLease), keep: RelayGroups}
	defer s.leave()
	failures := 0
	for {
		if ctx.Err() != nil {
			return nil
		}
		if s.crew != nil {
			select {
			case <-s.crew.done:
				s.stopCrew() // a lease was lost, or the outbox failed for good
			default:
			}
		}
		if s.err != nil {
			return s.err
		}
		wait := jitter(r.cfg.RebalanceInterval*2/5) + r.cfg.RebalanceInterval*4/5
		changed, err := s.rebalance(ctx)
		if s.err != nil {
			return s.err
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			failures++
			if failures > r.cfg.MaxOutageRetries {
				return fmt.Errorf("es: relay: the Locker failed %d times in a row: %w", failures, err)
			}
			r.cfg.Logger.WarnContext(ctx, "relay: the Locker failed", "failures", failures, "err", err)
			wait = r.outageBackoff(failures)
		} else {
			failures = 0
		}
		if changed || s.crew == nil {
			s.startCrew(ctx)
		}
		var crewDone <-chan struct{}
		if s.crew != nil {
			crewDone = s.crew.done
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-crewDone:
		case <-t.C:
		}
		t.Stop()
	}
}

// rebalance drops the leases lost, counts the relays alive, and takes or
// gives up groups to hold this relay's share. It reports whether the
// groups held changed.
func (s *relaySharer) rebalance(ctx context.Context) (changed bool, err error) {
	for g, l := range s.groups {
		if l.held.Err() != nil {
			// The workers' context has been cancelled already (startCrew).
			s.stopCrew()
			l.release()
			delete(s.groups, g)
			changed = true
			s.r.cfg.Logger.WarnContext(ctx, "relay: lease lost", "group", g, "cause", context.Cause(l.held))
		}
	}
	if s.slot >= 0 && s.member.held.Err() != nil {
		s.member.release()
		s.slot = -1
	}
	// Membership: take the first free lease, then count those others hold.
	for n := 0; s.slot < 0 && n < RelayGroups; n++ {
		held, release, ok, err := s.locker.TryLock(ctx, relayMemberLease(n))
		if err != nil {
			return changed, err
		}
		if ok {
			s.slot, s.member = n, relayLease{held, release}
		}
	}
	relays, rank := 1, 0 // rank: the relays alive in lower slots
	for n := range RelayGroups {
		if n == s.slot {
			continue
		}
		_, release, ok, err := s.locker.TryLock(ctx, relayMemberLease(n))
		if err != nil {
			return changed, err
		}
		if ok {
			release()
		} else {
			relays++
			if n < s.slot {
				rank++
			}
		}
	}
	// The groups are dealt out by rank: every relay gets RelayGroups /
	// relays, and the first RelayGroups % relays one more, so that the
	// shares add up to every group and no relay is left idle (a share of
	// ceil(16/relays) each would leave 4 of 12 relays without a group).
	share := RelayGroups / relays
	if rank < RelayGroups%relays {
		share++
	}
	if s.slot < 0 {
		share = 0 // more relays than groups: this one stands by
	}
	// Give up groups beyond the share seen twice in a row, once the
	// workers have recorded what they delivered.
	if keep := max(share, s.keep); len(s.groups) > keep {
		s.stopCrew()
		surplus := slices.Collect(maps.Keys(s.groups))
		rand.Shuffle(len(surplus), func(i, j int) { surplus[i], surplus[j] = surplus[j], surplus[i] })
		for _, g := range surplus[:len(s.groups)-keep] {
			s.groups[g].release()
			delete(s.groups, g)
		}
		changed = true
	}
	s.keep = share
	// Take free groups up to the share, in random order so that relays
	// taking groups at once do not contend for the same ones.
	for _, g := range rand.Perm(RelayGroups) {
		if len(s.groups) >= share {
			break
		}
		if _, mine := s.groups[g]; mine {
			continue
		}
		held, release, ok, err := s.locker.TryLock(ctx, relayGroupLease(g))
		if err != nil {
			return changed, err
		}
		if ok {
			s.groups[g] = relayLease{held, release}
			changed = true
		}
	}
	return changed, nil
}

// startCrew stops the workers, if they run, and starts them again over
// the buckets of the groups held. Their deliveries are cancelled the
// moment any of those groups' leases is lost.
func (s *relaySharer) startCrew(ctx context.Context) {
	s.stopCrew()
	if len(s.groups) == 0 {
		return
	}
	var buckets []int
	for b := range OutboxBuckets {
		if _, ok := s.groups[b%RelayGroups]; ok {
			buckets = append(buckets, b)
		}
	}
	hard, cancelHard := context.WithCancelCause(ctx)
	var stops []func() bool
	for g, l := range s.groups {
		stops = append(stops, context.AfterFunc(l.held, func() {
			cancelHard(fmt.Errorf("es: relay: lease of group %d lost: %w", g, context.Cause(l.held)))
		}))
	}
	soft, cancelSoft := context.WithCancel(hard)
	c := &relayCrew{stop: cancelSoft, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		c.err = s.r.deliver(hard, soft, buckets)
		for _, stop := range stops {
			stop()
		}
		cancelSoft()
		cancelHard(nil)
	}()
	s.crew = c
}

// stopCrew stops the workers, if they run, and waits until they have
// recorded the deliveries in flight.
func (s *relaySharer) stopCrew() {
	if s.crew == nil {
		return
	}
	s.crew.stop()
	<-s.crew.done
	if s.crew.err != nil && s.err == nil {
		s.err = s.crew.err
	}
	s.crew = nil
}

// leave stops the workers and releases every lease, so that the other
// relays take the groups at their next look.
func (s *relaySharer) leave() {
	s.stopCrew()
	for g, l := range s.groups {
		l.release()
		delete(s.groups, g)
	}
	if s.slot >= 0 {
		s.member.release()
		s.slot = -1
	}
}
