package web

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"esgo.dev/es"
)

// errKeyReused refuses a request whose Idempotency-Key was used for a
// different request (422).
var errKeyReused = errors.New("web: Idempotency-Key already used for a different request")

// keyRetention is how long a used Idempotency-Key is remembered: a client
// retries within minutes, so after a day the key may name a new request.
const keyRetention = 24 * time.Hour

// idempotencyKeys remembers, in the table web_idempotency_keys, the
// fingerprint of the request each Idempotency-Key was first used for. The
// command handler recognises a repeat by its command ID alone, so without
// this a key reused with another body would be answered as the first
// request's success while doing nothing of the second.
type idempotencyKeys struct {
	db    Database
	clock es.Clock
}

func newIdempotencyKeys(ctx context.Context, db Database, clock es.Clock) (*idempotencyKeys, error) {
	// BIGINT seconds and TEXT keep the table the same on SQLite and
	// PostgreSQL, like web_sessions.
	if err := db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS web_idempotency_keys (
			command_id TEXT PRIMARY KEY,
			fingerprint TEXT NOT NULL,
			created_at BIGINT NOT NULL)`)
		return err
	}); err != nil {
		return nil, fmt.Errorf("web: idempotency keys table: %w", err)
	}
	return &idempotencyKeys{db: db, clock: clock}, nil
}

// claim records fingerprint for commandID unless it has one, and refuses
// with errKeyReused if it has another. It reports whether this call
// recorded it, so that a request that then fails can give the key back.
func (k *idempotencyKeys) claim(ctx context.Context, commandID, fingerprint string) (bool, error) {
	now := k.clock.Now()
	var recorded, reused bool
	err := k.db.WriteTx(ctx, func(tx *sql.Tx) error {
		// Old keys are pruned as keys are used: no background job.
		if _, err := tx.ExecContext(ctx, `DELETE FROM web_idempotency_keys WHERE created_at < $1`, now.Add(-keyRetention).Unix()); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO web_idempotency_keys (command_id, fingerprint, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (command_id) DO NOTHING`, commandID, fingerprint, now.Unix())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if recorded = n == 1; recorded {
			return nil
		}
		var stored string
		if err := tx.QueryRowContext(ctx, `SELECT fingerprint FROM web_idempotency_keys WHERE command_id = $1`, commandID).Scan(&stored); err != nil {
			return err
		}
		reused = stored != fingerprint
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("web: idempotency key: %w", err)
	}
	if reused {
		return false, errKeyReused
	}
	return recorded, nil
}

// release forgets commandID's fingerprint: its request failed and stored
// nothing (a command is atomic), so the key may be used again, for a
// corrected request say.
func (k *idempotencyKeys) release(ctx context.Context, commandID string) error {
	return k.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM web_idempotency_keys WHERE command_id = $1`, commandID)
		return err
	})
}

// fingerprint identifies what a request asks for: its method, route
// pattern and path, its viewer, and its body as decoded and encoded again
// (so that spacing or the order of fields does not make two requests
// differ).
func fingerprint(r *http.Request) string {
	var body []byte
	if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
		body = info.request
	}
	h := sha256.New()
	for _, part := range []string{r.Method, r.Pattern, r.URL.EscapedPath(), viewerOf(r.Context()).ID} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// maxKeyLen bounds an Idempotency-Key.
const maxKeyLen = 200

// commandID returns the command ID of a request: derived from its
// Idempotency-Key header and the route (kind), so the same key on two
// kinds of command are two commands, or a new ID without the header. A key
// used before for a different request (see fingerprint) is refused with
// errKeyReused; for the same request it gives the same ID, so the command
// handler answers the repeat.
func (s *Server) commandID(r *http.Request, kind string) (string, error) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		return es.NewID(), nil
	}
	if len(key) > maxKeyLen || strings.ContainsFunc(key, func(c rune) bool { return c < 0x21 || c > 0x7e }) {
		return "", fmt.Errorf("%w: the Idempotency-Key must be 1 to %d printable ASCII characters", errBadRequest, maxKeyLen)
	}
	// The viewer is part of the name: one user's key never repeats
	// another's command.
	id := es.DeriveID("web/"+kind+"/"+viewerOf(r.Context()).ID+"/"+key, 0)
	recorded, err := s.keys.claim(r.Context(), id, fingerprint(r))
	if err != nil {
		return "", err
	}
	if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok && recorded {
		info.claimedKey = id // fail gives it back
	}
	return id, nil
}
