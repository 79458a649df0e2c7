//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// lockFile is not implemented on this system: leases across processes
// need flock.
func lockFile(context.Context, string, bool) (*os.File, error) {
	return nil, fmt.Errorf("sqlite: lock: %w", errors.ErrUnsupported)
}
