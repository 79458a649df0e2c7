package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/users"
)

// cookieName is the session cookie. The __Host- prefix makes browsers
// refuse it unless it is Secure, host-only and for path /.
const cookieName = "__Host-session"

// Viewer is who makes a request: a logged-in user, or the zero Viewer for
// an anonymous one.
type Viewer struct {
	ID    string     `json:"id"`
	Email string     `json:"email"`
	Name  string     `json:"name"`
	Role  users.Role `json:"role"`
}

// LoggedIn reports whether the viewer is a user.
func (v Viewer) LoggedIn() bool { return v.ID != "" }

// Is reports whether the viewer is logged in with one of roles.
func (v Viewer) Is(roles ...users.Role) bool {
	for _, r := range roles {
		if v.LoggedIn() && v.Role == r {
			return true
		}
	}
	return false
}

type viewerKey struct{}

// viewerOf returns the request's viewer (the zero Viewer if anonymous).
func viewerOf(ctx context.Context) Viewer {
	v, _ := ctx.Value(viewerKey{}).(Viewer)
	return v
}

// sessionStore keeps sessions in the table web_sessions.
type sessionStore struct {
	db    Database
	clock es.Clock
	ttl   time.Duration
}

func newSessionStore(ctx context.Context, db Database, clock es.Clock, ttl time.Duration) (*sessionStore, error) {
	// BIGINT seconds and TEXT keep the table the same on SQLite and
	// PostgreSQL.
	if err := db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS web_sessions (
			token_hash TEXT PRIMARY KEY,
			user_id TEXT NOT NULL,
			expires_at BIGINT NOT NULL)`)
		return err
	}); err != nil {
		return nil, fmt.Errorf("web: sessions table: %w", err)
	}
	return &sessionStore{db: db, clock: clock, ttl: ttl}, nil
}

func hashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// create starts a session for userID and returns its token and expiry.
func (s *sessionStore) create(ctx context.Context, userID string) (string, time.Time, error) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails.
	token := base64.RawURLEncoding.EncodeToString(b[:])
	now := s.clock.Now()
	expires := now.Add(s.ttl)
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		// Expired sessions are swept at each log-in: no background job.
		if _, err := tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE expires_at < $1`, now.Unix()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO web_sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)`,
			hashToken(token), userID, expires.Unix())
		return err
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("web: start a session: %w", err)
	}
	return token, expires, nil
}

// lookup returns the user ID of an unexpired session, or "".
func (s *sessionStore) lookup(ctx context.Context, token string) (string, error) {
	var userID string
	err := s.db.DB().QueryRowContext(ctx, `SELECT user_id FROM web_sessions WHERE token_hash = $1 AND expires_at >= $2`,
		hashToken(token), s.clock.Now().Unix()).Scan(&userID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return userID, err
}

func (s *sessionStore) delete(ctx context.Context, token string) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE token_hash = $1`, hashToken(token))
		return err
	})
}

// authenticate puts the request's Viewer in its context. An unknown or
// expired session is anonymous; only a failure to read is an error.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(cookieName)
		if err != nil || c.Value == "" {
			next.ServeHTTP(w, r)
			return
		}
		v, err := s.viewerFor(r.Context(), c.Value)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), viewerKey{}, v)))
	})
}

func (s *Server) viewerFor(ctx context.Context, token string) (Viewer, error) {
	userID, err := s.sessions.lookup(ctx, token)
	if err != nil || userID == "" {
		return Viewer{}, err
	}
	u, _, err := s.cfg.App.Users.Load(ctx, users.Stream(userID))
	if err != nil || u.ID == "" {
		return Viewer{}, err
	}
	return Viewer{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role}, nil
}

// loginLimiter counts failed log-ins per e-mail address and per client
// address in a fixed window. It is in memory: a restart forgets the
// counts, which only gives an attacker one more window.
//
// An attempt is counted before its password is checked (reserve), not
// after: bcrypt is slow, so attempts sent at once would all pass a check
// made before any of them had failed.
type loginLimiter struct {
	clock  es.Clock
	max    int
	window time.Duration

	mu       sync.Mutex
	failures map[string]failureCount
}

type failureCount struct {
	n     int
	since time.Time
}

func newLoginLimiter(clock es.Clock, max int, window time.Duration) *loginLimiter {
	return &loginLimiter{clock: clock, max: max, window: window, failures: map[string]failureCount{}}
}

// reserve counts one attempt against every key and reports true, or, if
// any key has used up its attempts in the window, counts nothing and
// reports false. Check and count are one step under the lock, so no more
// than max attempts per key are ever checked at once.
func (l *loginLimiter) reserve(keys ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	for k, f := range l.failures { // forget old windows, so the map stays small
		if now.Sub(f.since) >= l.window {
			delete(l.failures, k)
		}
	}
	for _, k := range keys {
		if l.failures[k].n >= l.max {
			return false
		}
	}
	for _, k := range keys {
		f := l.failures[k]
		if f.n == 0 {
			f.since = now
		}
		f.n++
		l.failures[k] = f
	}
	return true
}

// release gives back one reserved attempt of every key: the attempt did
// not fail (a success, or an error that said nothing about the password).
func (l *loginLimiter) release(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		f, ok := l.failures[k]
		if !ok {
			continue // its window passed meanwhile
		}
		if f.n--; f.n <= 0 {
			delete(l.failures, k)
		} else {
			l.failures[k] = f
		}
	}
}

// forget clears the counts of keys: a right password for an e-mail
// address ends the guessing of that address.
func (l *loginLimiter) forget(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		delete(l.failures, k)
	}
}

// clientAddr is the request's remote IP (without the port). The example
// trusts no proxy header: behind a proxy, put the proxy's client address
// into RemoteAddr first.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// authRoutes: register, log in, log out, who am I.
func (s *Server) authRoutes(mux *http.ServeMux) {
	for _, rt := range s.authRouteList() {
		mux.HandleFunc(rt.pattern, rt.handler)
	}
}

// authRouteList lists the auth routes, for authRoutes and the tests.
func (s *Server) authRouteList() []route {
	return []route{
		{"POST /api/users", s.register},
		{"POST /api/session", s.logIn},
		{"DELETE /api/session", s.logOut},
		{"GET /api/session", s.whoAmI},
	}
}

type registration struct {
	Email    string `json:"email"`
	Name     string `json:"name"`
	Password string `json:"password"`
}

// register creates a customer account; the Idempotency-Key makes the user
// ID, so a retried registration is recognised. Other roles are given by an
// admin.
func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	req, err := decode[registration](w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// Anonymous clients share one space of keys, so the e-mail address is
	// part of the ID too: two strangers who pick the same key register
	// two accounts, while a retry (same key, same address) is recognised.
	email := strings.TrimSpace(req.Email)
	if e, err := users.NormaliseEmail(req.Email); err == nil {
		email = e
	}
	h := sha256.Sum256([]byte(email))
	userID, err := s.commandID(r, "register/"+hex.EncodeToString(h[:]))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	err = s.cfg.App.RegisterUser(r.Context(), userID, req.Email, req.Name, req.Password, users.Customer)
	if errors.Is(err, users.ErrUserExists) {
		// The app's error names the user ID, which belongs to whoever
		// registered first with this key and address.
		err = fmt.Errorf("%w: this Idempotency-Key was used for another registration", users.ErrUserExists)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": userID})
}

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (s *Server) logIn(w http.ResponseWriter, r *http.Request) {
	req, err := decode[credentials](w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	emailKey, addrKey := "email:"+strings.ToLower(strings.TrimSpace(req.Email)), "addr:"+clientAddr(r)
	if !s.limiter.reserve(emailKey, addrKey) {
		s.fail(w, r, errTooManyLogIns)
		return
	}
	u, err := s.cfg.App.LogIn(r.Context(), req.Email, req.Password)
	if err != nil {
		// A wrong password keeps the attempt counted; any other failure
		// (the store, a cancelled request) was no guess and is given back.
		if !errors.Is(err, users.ErrInvalidCredentials) {
			s.limiter.release(emailKey, addrKey)
		}
		s.fail(w, r, err)
		return
	}
	// A success ends the guessing of this account, but not the address's
	// earlier failures: else one address could spray guesses over many
	// accounts, logging into its own one in between.
	s.limiter.forget(emailKey)
	s.limiter.release(addrKey)
	token, expires, err := s.sessions.create(r.Context(), u.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: token, Path: "/", Expires: expires,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	writeJSON(w, http.StatusOK, Viewer{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role})
}

func (s *Server) logOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil {
		if err := s.sessions.delete(r.Context(), c.Value); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) whoAmI(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r.Context())
	if err := require(v); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}
