package web_test

// Security tests: attacks through HTTP that the application withstands.

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"esgo.dev/examples/ticketing/users"
	"esgo.dev/examples/ticketing/web"
)

// Failed log-ins sent at once must still be limited to LoginFailures.
func TestAdvLoginRateLimitHoldsUnderConcurrency(t *testing.T) {
	e := newEnv(t)
	victim := e.newUser("victim", users.Customer)
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.anonymous()
			st, err := c.send("POST", "/api/session", map[string]string{"email": victim.Email, "password": fmt.Sprintf("wrong-%d-xxxx", i)})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			counts[st]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts[401] > 5 {
		t.Errorf("40 concurrent wrong passwords: %d were checked (401), limit is 5; statuses %v", counts[401], counts)
	}
}

// A successful log-in (the attacker's own account) must not reset the
// failures counted against the client address: else one address sprays
// passwords over many accounts without end.
func TestAdvLoginRateLimitPerAddressIsNotResetByOwnLogIn(t *testing.T) {
	e := newEnv(t)
	own := e.newUser("attacker", users.Customer)
	var victims []*user
	for i := range 5 {
		victims = append(victims, e.newUser(fmt.Sprintf("v%d", i), users.Customer))
	}
	failures := 0
	for round := range 5 {
		for _, v := range victims[:4] {
			st, body := e.anonymous().do("POST", "/api/session", map[string]string{"email": v.Email, "password": fmt.Sprintf("guess-%d-xxxx", round)})
			if st == 429 {
				return // held
			}
			if st != 401 {
				t.Fatalf("%d %s", st, body)
			}
			failures++
		}
		// the attacker logs in with their own account from the same address
		if st, body := e.anonymous().do("POST", "/api/session", map[string]string{"email": own.Email, "password": "correct horse battery"}); st != 200 {
			t.Fatalf("own log-in: %d %s", st, body)
		}
	}
	t.Errorf("one client address made %d failed log-ins over 4 accounts without a 429 (limit 5), by logging into its own account in between", failures)
}

// Log-in takes as long for an unknown address as for a known one
// (the app compares against a dummy hash for that reason). The limit is
// raised so that no attempt is refused before its password is compared.
func TestAdvLogInTimingDoesNotTellAccountsApart(t *testing.T) {
	e := newEnv(t, func(c *web.Config) { c.LoginFailures = 100 })
	u := e.newUser("known", users.Customer)
	measure := func(email string) time.Duration {
		var total time.Duration
		for i := range 4 {
			c := e.anonymous()
			start := time.Now()
			c.do("POST", "/api/session", map[string]string{"email": email, "password": fmt.Sprintf("wrong password %d", i)})
			total += time.Since(start)
		}
		return total / 4
	}
	known, unknown := measure(u.Email), measure("nobody-at-all@example.com")
	if unknown > 3*known || known > 3*unknown {
		t.Errorf("failed log-in takes %v for a known address, %v for an unknown one: is the dummy hash at PasswordCost?", known, unknown)
	}
}
